//! The binding's allocator: mimalloc, set up for a library that lives in a long-running Ruby
//! process.
//!
//! Why not the C allocator: every `learn` leaves one answer for Ruby's GC, which frees them
//! thousands at a time, long after the calls that made them. glibc's malloc served those bursts
//! from its slow paths (under callgrind, most of a `learn`'s frees went through `_int_free`'s
//! bins rather than the thread cache, and the answers' box pool ran empty between sweeps): ~8,340
//! instructions a `learn` on GitLab CE's table with glibc, ~7,930 with mimalloc.
//!
//! Built with `local_dynamic_tls`: Ruby loads this library with `dlopen`, where mimalloc's default
//! initial-exec TLS model may find no room in the static TLS block.
//!
//! Bulk work purges at once ([`in_bulk`]: compiling, loading, the route table as JSON). Its
//! megabytes of temporaries are freed in a burst, and at mimalloc's default purge delay (10 ms) the
//! pages they held stayed resident, a delayed purge waiting for allocations in heaps that had
//! gone quiet (the build's worker threads end with it): a Ruby process that had compiled GitLab
//! CE's table held ~10 MiB more than with glibc (57 against 46 MiB RSS). Not for `learn`: purging
//! every freed page at once made its calls slower and uneven (the pages an answer's box comes from
//! given back to the OS and faulted in again).

use std::sync::atomic::{AtomicUsize, Ordering};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its place in mimalloc v2's `mi_option_t` (`mimalloc.h`), for which
/// the `libmimalloc-sys` crate names no constant. The test below reads it back.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The environment variable mimalloc itself reads for [`PURGE_DELAY`]: when an operator sets it,
/// it decides, bulk work included.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Bulk calls running now: the delay goes back to what it was when the last one ends.
static BULK_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The delay outside bulk work: mimalloc's default, or the operator's.
static DELAY_OUTSIDE_BULK: std::sync::OnceLock<std::os::raw::c_long> = std::sync::OnceLock::new();

/// [`DELAY_OUTSIDE_BULK`], read from mimalloc the first time (before any bulk call changed it).
fn delay_outside_bulk() -> std::os::raw::c_long {
    // SAFETY: reading mimalloc's option table; any thread, any time.
    *DELAY_OUTSIDE_BULK.get_or_init(|| unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) })
}

/// Runs `work` (bulk work: compiling, loading, writing the table) with freed memory purged at
/// once, unless `MIMALLOC_PURGE_DELAY` is set (see the module doc). Nested and concurrent calls
/// are counted: the delay is restored when the last one ends, whether it returned or panicked.
/// (One ending just as another starts may leave the second at the default delay: only its
/// process's RSS differs.)
pub(crate) fn in_bulk<R>(work: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            if self.0 && BULK_CALLS.fetch_sub(1, Ordering::AcqRel) == 1 {
                // SAFETY: a store into mimalloc's option table.
                unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, delay_outside_bulk()) };
            }
        }
    }
    let managed = std::env::var_os(PURGE_DELAY_ENV).is_none();
    if managed {
        delay_outside_bulk();
        BULK_CALLS.fetch_add(1, Ordering::AcqRel);
        // SAFETY: a store into mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
    }
    let _restore = Restore(managed);
    work()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delay() -> std::os::raw::c_long {
        // SAFETY: reading mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
    }

    #[test]
    fn builds_purge_at_once_and_put_the_delay_back() {
        if std::env::var_os(PURGE_DELAY_ENV).is_some() {
            return; // the operator's value decides; nothing of ours to check
        }
        // mimalloc.h: "memory purging is delayed by N milli seconds (=10)": the option at this
        // place has that default (its neighbours default to 1 and 0).
        assert_eq!(delay_outside_bulk(), 10);
        assert_eq!(delay(), 10);
        let inside = in_bulk(|| (delay(), in_bulk(delay), delay()));
        assert_eq!(inside, (0, 0, 0), "nested builds purge at once until the outer one ends");
        assert_eq!(delay(), 10);
        let panicked = std::panic::catch_unwind(|| in_bulk(|| panic!("a failed build")));
        assert!(panicked.is_err());
        assert_eq!(delay(), 10, "a panicking build puts the delay back too");
    }
}
