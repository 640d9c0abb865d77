//! The next byte an accelerated DFA state leaves on: `memchr` for one to three bytes, with a
//! first look at one 16-byte window.
//!
//! Why: a dense DFA state that only one to three bytes leave (a parameter's `[^/.?]+` waiting
//! for its `/`, `.` or `?`) skips ahead to the next such byte rather than stepping through
//! the bytes one dependent transition after another. In a request path the next such byte is
//! a segment away, a few bytes, where `memchr3`'s setup for a short haystack cost ~200
//! instructions a call (about a quarter of a `recognize` on the GitHub API set, three
//! parameters a path). One SSE2 compare of the 16 bytes from the state on (or the path's last
//! 16, when fewer remain) answers most such skips in a dozen instructions; `memchr` searches
//! past the window only when the byte is not in it.

use regex_automata::dfa::{dense, Automaton};
use regex_automata::util::primitives::StateID;

/// The offset of the first byte of `hay[at..]` that is one of `needles` (one to three bytes,
/// as regex-automata accelerates), as an index into `hay`.
#[inline(always)]
pub(crate) fn find(needles: &[u8], hay: &[u8], at: usize) -> Option<usize> {
    debug_assert!(at <= hay.len());
    #[cfg(target_arch = "x86_64")]
    if let Some(found) = window::first(needles, hay, at) {
        return found;
    }
    let rest = &hay[at..];
    let i = match *needles {
        [a] => memchr::memchr(a, rest),
        [a, b] => memchr::memchr2(a, b, rest),
        [a, b, c] => memchr::memchr3(a, b, c, rest),
        // Never more than three (regex-automata's accelerators); a state left by more is
        // stepped through byte by byte, which is always right.
        _ => Some(0),
    };
    i.map(|i| at + i)
}

/// The needles of every accelerated state of one dense DFA, ready for [`States::skip`]: what
/// `dense::DFA::accelerator` answers, laid out for the 16-byte window.
///
/// Why: asking the DFA for a state's needles (an index computed and two slices bounds-checked)
/// and broadcasting each needle into a vector (four instructions apiece without SSSE3) cost
/// about as much as the window's compare itself, on every skip: two to five skips a path. Here
/// each state's needles are three vectors made once (a state with fewer repeats its first), so
/// a skip is three compares of one load.
pub(crate) struct States {
    /// The id of the first accelerated state; the others follow it, one stride apart
    /// (regex-automata keeps them contiguous).
    first: usize,
    stride2: usize,
    needles: Vec<Needles>,
}

/// One state's one to three needles, each broadcast over a 16-byte lane, and as bytes (for
/// `memchr` past the window).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Needles {
    lanes: [[u8; 16]; 3],
    bytes: [u8; 3],
    len: u8,
}

impl States {
    /// The accelerated states of `dfa` reachable from `start` (every state a walk from it can
    /// be in), found by visiting each state once per byte class.
    pub(crate) fn of(dfa: &dense::DFA<Vec<u32>>, start: Option<StateID>) -> States {
        let empty = States { first: 0, stride2: dfa.stride2(), needles: Vec::new() };
        let Some(start) = start else { return empty };
        let representatives: Vec<u8> = dfa.byte_classes().representatives(..).filter_map(|u| u.as_u8()).collect();
        let mut seen = std::collections::HashSet::from([start]);
        let mut todo = vec![start];
        let (mut least, mut most) = (usize::MAX, 0);
        while let Some(sid) = todo.pop() {
            if dfa.is_accel_state(sid) {
                least = least.min(sid.as_usize());
                most = most.max(sid.as_usize());
            }
            if dfa.is_dead_state(sid) || dfa.is_quit_state(sid) {
                continue;
            }
            for &b in &representatives {
                let next = dfa.next_state(sid, b);
                if seen.insert(next) {
                    todo.push(next);
                }
            }
        }
        if least > most {
            return empty;
        }
        let mut needles = Vec::with_capacity(((most - least) >> dfa.stride2()) + 1);
        let mut id = least;
        while id <= most {
            // Between two accelerated states every state is one (they are contiguous); one that
            // were not would have no needles and be found byte by byte.
            let of = StateID::new(id).map(|sid| dfa.accelerator(sid)).unwrap_or(&[]);
            needles.push(Needles::new(of));
            id += 1 << dfa.stride2();
        }
        States { first: least, stride2: dfa.stride2(), needles }
    }

    /// Where the walk goes on after accelerated state `sid` at `at`: the offset of the next
    /// byte that leaves it, or the end of `hay`.
    #[inline(always)]
    pub(crate) fn skip(&self, dfa: &dense::DFA<Vec<u32>>, sid: StateID, hay: &[u8], at: usize) -> usize {
        match self.needles.get(sid.as_usize().wrapping_sub(self.first) >> self.stride2) {
            Some(n) => n.find(hay, at),
            None => find(dfa.accelerator(sid), hay, at),
        }
        .unwrap_or(hay.len())
    }

    /// Heap bytes held.
    pub(crate) fn memory_usage(&self) -> usize {
        crate::heap::vec(&self.needles)
    }
}

impl Needles {
    fn new(of: &[u8]) -> Needles {
        let mut n = Needles { lanes: [[0; 16]; 3], bytes: [0; 3], len: of.len().min(3) as u8 };
        if let Some(&first) = of.first() {
            for (i, lane) in n.lanes.iter_mut().enumerate() {
                *lane = [*of.get(i).unwrap_or(&first); 16];
            }
        }
        n.bytes[..n.len as usize].copy_from_slice(&of[..n.len as usize]);
        n
    }

    /// Window after window for up to [`WINDOWS`] of them, then [`find`] from where they
    /// stopped. A state waiting for a byte the path does not hold (GitLab CE's leading routes
    /// wait for a newline after `/x`) reads to the end of the path: with one window then
    /// `memchr`, that was ~170 instructions of `memchr`'s setup on a 50-byte path, a tenth of
    /// a `recognize` answered by `/*id(.:format)`; each further window is a load, three
    /// compares and a mask.
    #[inline(always)]
    fn find(&self, hay: &[u8], at: usize) -> Option<usize> {
        let bytes = &self.bytes[..self.len as usize];
        #[cfg(target_arch = "x86_64")]
        let at = {
            let mut at = at;
            // (A haystack shorter than a window gets no window: `find` scans it.)
            if !bytes.is_empty() && hay.len() >= window::WIDTH {
                for _ in 0..WINDOWS {
                    match window::first_of_lanes(&self.lanes, hay, at) {
                        Some(found) => return found,
                        // No needle in the 16 bytes from `at` (the window started there), and
                        // bytes past them remain.
                        None => at += window::WIDTH,
                    }
                }
            }
            at
        };
        find(bytes, hay, at)
    }
}

/// Windows of 16 bytes [`Needles::find`] reads before it leaves the rest to `memchr` (whose
/// setup pays off on longer haystacks than request paths).
#[cfg(target_arch = "x86_64")]
const WINDOWS: usize = 6;

#[cfg(target_arch = "x86_64")]
mod window {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128};

    /// Bytes in the window.
    pub(super) const WIDTH: usize = 16;

    /// What the window says about `hay[at..]`: `Some(answer)` when it decides (the byte is in
    /// it, or it reaches the end of `hay` without it), `None` when bytes past it are left to
    /// search, which [`super::find`] then searches from `at` as if the window had not looked.
    #[inline(always)]
    pub(super) fn first(needles: &[u8], hay: &[u8], at: usize) -> Option<Option<usize>> {
        if hay.len() < WIDTH || needles.is_empty() || needles.len() > 3 {
            return None;
        }
        // The 16 bytes from `at`, or the last 16 of `hay` (some before `at`, masked off below).
        let start = at.min(hay.len() - WIDTH);
        // SAFETY: `start + WIDTH <= hay.len()`, and the load is unaligned. SSE2 is part of the
        // x86_64 baseline, so the intrinsics are always available.
        let hits = unsafe {
            let bytes = _mm_loadu_si128(hay.as_ptr().add(start).cast::<__m128i>());
            let mut any = _mm_setzero_si128();
            for &n in needles {
                any = _mm_or_si128(any, _mm_cmpeq_epi8(bytes, _mm_set1_epi8(n as i8)));
            }
            _mm_movemask_epi8(any) as u32
        };
        decide(hits, start, hay.len(), at)
    }

    /// [`first`] with the needles already broadcast (three lanes; fewer needles repeat one).
    #[inline(always)]
    pub(super) fn first_of_lanes(lanes: &[[u8; 16]; 3], hay: &[u8], at: usize) -> Option<Option<usize>> {
        if hay.len() < WIDTH {
            return None;
        }
        let start = at.min(hay.len() - WIDTH);
        // SAFETY: as in `first`; the lanes are 16-byte aligned (`Needles` is `align(16)`), and
        // read unaligned anyway.
        let hits = unsafe {
            let bytes = _mm_loadu_si128(hay.as_ptr().add(start).cast::<__m128i>());
            let a = _mm_cmpeq_epi8(bytes, _mm_loadu_si128(lanes[0].as_ptr().cast::<__m128i>()));
            let b = _mm_cmpeq_epi8(bytes, _mm_loadu_si128(lanes[1].as_ptr().cast::<__m128i>()));
            let c = _mm_cmpeq_epi8(bytes, _mm_loadu_si128(lanes[2].as_ptr().cast::<__m128i>()));
            _mm_movemask_epi8(_mm_or_si128(a, _mm_or_si128(b, c))) as u32
        };
        decide(hits, start, hay.len(), at)
    }

    /// The answer of a window of `hits` (a bit per byte from `start`) for a search from `at`.
    #[inline(always)]
    fn decide(hits: u32, start: usize, len: usize, at: usize) -> Option<Option<usize>> {
        // Only the bytes from `at` on count (`at - start < WIDTH`, or the window is all before `at`).
        let skip = at - start;
        let hits = if skip >= WIDTH { 0 } else { hits & (u32::MAX << skip) };
        if hits != 0 {
            return Some(Some(start + hits.trailing_zeros() as usize));
        }
        if start + WIDTH >= len {
            return Some(None);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::find;

    /// The plain scan the window must agree with.
    fn reference(needles: &[u8], hay: &[u8], at: usize) -> Option<usize> {
        hay[at..].iter().position(|b| needles.contains(b)).map(|i| at + i)
    }

    /// Each accelerated state of a dense DFA skips to where its own needles
    /// (`dense::DFA::accelerator`) say, from every offset of paths long and short; checked to
    /// fail when a state's lanes are those of its neighbour.
    #[test]
    fn a_dfas_states_skip_as_their_own_needles_say() {
        use crate::engine::{parse_patterns, Engine, EngineConfig, EngineKind};
        use regex_automata::dfa::Automaton;
        let patterns = parse_patterns(&[
            r"/(?s-u:.+?)/[^/.?]+/-/issues(?:\.[^/.?]+)?",
            r"/api/[^/.?]+/projects/[^/]+/issues",
            r"/groups/(?s-u:.+?)/-/edit",
            r"/[^/.?]+(?:\.[^/.?]+)?",
            r"/users/[^/\n]+/keys",
        ])
        .unwrap();
        let engine = Engine::build(&patterns, &EngineConfig { kind: EngineKind::Dense, ..EngineConfig::default() }).unwrap();
        let Engine::Dense(dfa, Some(start), states) = &engine else { panic!("a dense DFA with a start state") };
        // Every state a walk reaches, and the accelerated ones among them.
        let mut seen = std::collections::HashSet::from([*start]);
        let mut todo = vec![*start];
        let mut accelerated = Vec::new();
        while let Some(sid) = todo.pop() {
            if dfa.is_accel_state(sid) {
                accelerated.push(sid);
            }
            for b in 0..=255u8 {
                let next = dfa.next_state(sid, b);
                if !dfa.is_dead_state(next) && seen.insert(next) {
                    todo.push(next);
                }
            }
        }
        assert!(accelerated.len() >= 3, "{}", accelerated.len());
        // Past the windows too (`WINDOWS` × 16 bytes): a needle first found by `memchr`.
        let long_segment = format!("/{}/x", "a".repeat(140));
        let late_newline = format!("/gitlab-org/{}/-/issues\n/x", "sub/".repeat(30));
        let no_newline = format!("/gitlab-org/{}/-/issues.json", "sub/".repeat(30));
        let hays: [&[u8]; 9] = [
            b"",
            b"/a",
            b"/a/b.c?d",
            b"/gitlab-org/sub/project/-/issues.json",
            b"/users/someone-with-a-long-name/keys\nx",
            b"/x.y/z?w/q.r/s.t/u?v/w/x/y/z/aa/bb/cc",
            long_segment.as_bytes(),
            late_newline.as_bytes(),
            no_newline.as_bytes(),
        ];
        let mut checked = 0;
        for sid in accelerated {
            for hay in hays {
                for at in 0..=hay.len() {
                    let expected = reference(dfa.accelerator(sid), hay, at).unwrap_or(hay.len());
                    assert_eq!(states.skip(dfa, sid, hay, at), expected, "state {sid:?} in {hay:?} from {at}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 300, "{checked}");
    }

    #[test]
    fn agrees_with_a_plain_scan_at_every_offset() {
        let alphabet = b"ab/.?\nz";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let needle_sets: [&[u8]; 6] = [b"/", b"?", b"/.", b"\n?", b"/.?", b"ab\n"];
        let mut checked = 0;
        // Up to 200 bytes: past the windows `Needles::find` reads before `memchr` (112).
        for len in 0..200 {
            for _ in 0..20 {
                // Sparse hits: most bytes not a needle, so windows miss and the scan goes on.
                let hay: Vec<u8> = (0..len).map(|_| if next() % 9 == 0 { alphabet[(next() % alphabet.len() as u64) as usize] } else { b'x' }).collect();
                for needles in needle_sets {
                    let broadcast = super::Needles::new(needles);
                    for at in 0..=len {
                        let expected = reference(needles, &hay, at);
                        assert_eq!(find(needles, &hay, at), expected, "{needles:?} in {hay:?} from {at}");
                        assert_eq!(broadcast.find(&hay, at), expected, "windows: {needles:?} in {hay:?} from {at}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1_000_000);
    }
}
