//! The JSON log line format: the same lines as tracing-subscriber's
//! `json().flatten_event(true).with_current_span(false)` — `{"timestamp":…,"level":…, the
//! event's fields…,"target":…}` — written without serde.
//!
//! Why: with access logs on, tracing-subscriber's JSON formatter cost more than half again the
//! instructions of proxying the request (callgrind; the README's figures): every field goes
//! through serde_json, which
//! writes through an `io::Write` → `fmt::Write` adaptor that re-validates each fragment as UTF-8,
//! and the timestamp is rebuilt from the calendar on every line. Here the fields are written
//! straight into tracing-subscriber's line buffer with a JSON string escaper, and the date and
//! time up to the second is kept per thread and renewed once a second. Still a
//! [`FormatEvent`], so filtering, the non-blocking writer and everything else stay
//! tracing-subscriber's.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// The event formatter (see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // Built in a String of this thread's, then handed over in one piece: `Writer` writes
        // through a `dyn fmt::Write`, one virtual call per fragment.
        let mut line = LINE.take();
        line.clear();
        let built = build_line(&mut line, event);
        let written = built.and_then(|()| w.write_str(&line));
        LINE.set(line);
        written
    }
}

thread_local! {
    static LINE: Cell<String> = const { Cell::new(String::new()) };
}

fn build_line(line: &mut String, event: &Event<'_>) -> fmt::Result {
    let meta = event.metadata();
    line.push_str("{\"timestamp\":\"");
    write_timestamp(line, SystemTime::now())?;
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push('"');
    let mut fields = Fields { w: line, result: Ok(()) };
    event.record(&mut fields);
    fields.result?;
    line.push_str(",\"target\":");
    write_json_str(line, meta.target())?;
    line.push_str("}\n");
    Ok(())
}

/// Writes each field as `,"name":value`: 64-bit numbers and booleans bare, everything else
/// (128-bit integers too, as tracing-subscriber does) a string.
struct Fields<'a> {
    w: &'a mut String,
    result: fmt::Result,
}

impl Fields<'_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.w.write_char(',')?;
                write_json_str(self.w, field.name())?;
                self.w.write_char(':')?;
                value(self.w)
            })();
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| write_json_str(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| {
            w.push_str(itoa::Buffer::new().format(value));
            Ok(())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| {
            w.push_str(itoa::Buffer::new().format(value));
            Ok(())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's spelling (it formats floats with zmij too): the shortest round-trip
        // digits, `1.0` rather than `1`, and null for what JSON cannot hold.
        self.field(field, |w| {
            let mut digits = zmij::Buffer::new();
            w.push_str(if value.is_finite() { digits.format_finite(value) } else { "null" });
            Ok(())
        });
    }
}

/// `s` as a JSON string, escaped as serde_json escapes: `"`, `\` and control characters.
fn write_json_str(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// A writer that escapes what passes through it for the inside of a JSON string.
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b >= 0x20 && b != b'"' && b != b'\\' {
                continue;
            }
            // Escapes are ASCII, so `start..i` ends on a character boundary.
            self.0.write_str(&s[start..i])?;
            match b {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                0x08 => self.0.write_str("\\b")?,
                0x0c => self.0.write_str("\\f")?,
                _ => write!(self.0, "\\u{b:04x}")?,
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

thread_local! {
    /// The second the cached text is for, and `YYYY-MM-DDTHH:MM:SS` of that second.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// RFC 3339 in UTC with microseconds, as tracing-subscriber's default timer writes it:
/// `2026-11-28T17:21:49.203255Z`.
fn write_timestamp(w: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            text.clear();
            let t = i64::try_from(secs).ok().and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            write!(text, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())?;
            *cached = secs;
        }
        w.write_str(text)
    })?;
    write!(w, ".{:06}Z", since.subsec_micros())
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Sink {
        type Writer = Sink;
        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }

    /// Every kind of field the router logs, and strings that need escaping.
    fn emit() {
        let method = http::Method::GET;
        tracing::info!(
            target: "cells_router::access",
            method = method.as_str(),
            path = "/a\"b\\c/\u{e9}/\n\t\r\u{1}\u{8}\u{c}\u{7f}",
            status = 200u16,
            cache = "hit",
            learned_from = Some("cell_0"),
            cell = None::<&str>,
            learn_ms = Some(1.0f64),
            retried = false,
            negative = -3i64,
            big = u128::MAX,
            small = i128::MIN,
            nan = f64::NAN,
            huge = 1e300f64,
            tiny = -2.5e-8f64,
            duration_ms = 9.239446000000001f64,
            shown = %"display \"quoted\"",
            debugged = ?vec!["x"],
            "request {}",
            "line\nbreak"
        );
        tracing::warn!(reason = %"bad", "cache header refused");
    }

    /// The lines each formatter writes for `emit`, with the timestamps' values cut out (they
    /// are a moment apart) and checked for shape.
    fn lines(json: bool) -> Vec<String> {
        let sink = Sink::default();
        let builder = tracing_subscriber::fmt().with_writer(sink.clone()).with_max_level(tracing::Level::INFO);
        if json {
            tracing::subscriber::with_default(builder.json().flatten_event(true).with_current_span(false).finish(), emit);
        } else {
            tracing::subscriber::with_default(builder.event_format(JsonLines).finish(), emit);
        }
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'), "{text}");
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                let t = v["timestamp"].as_str().unwrap();
                assert_eq!(t.len(), 27, "{t}");
                assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T' && t.as_bytes()[19] == b'.', "{t}");
                l.replacen(t, "T", 1)
            })
            .collect()
    }

    /// Byte for byte tracing-subscriber's JSON lines: key order, escapes, number spellings.
    #[test]
    fn lines_match_tracing_subscribers_json() {
        let (ours, theirs) = (lines(false), lines(true));
        assert_eq!(ours.len(), 2);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let at = |secs: u64, micros: u32| {
            let mut s = String::new();
            write_timestamp(&mut s, UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros.into())).unwrap();
            s
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(1_795_887_709, 203_255), "2026-11-28T17:41:49.203255Z");
        // The cached second is renewed when the second changes, in either direction.
        assert_eq!(at(1_795_887_710, 1), "2026-11-28T17:41:50.000001Z");
        assert_eq!(at(951_782_400, 999_999), "2000-02-29T00:00:00.999999Z");
        assert_eq!(at(1_795_887_709, 0), "2026-11-28T17:41:49.000000Z");
    }
}
