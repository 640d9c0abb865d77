//! A tree of path segments for tables whose every route is plain: literal segments and
//! parameters with Journey's default requirement, nothing else.
//!
//! Why: an API table such as GitHub's REST routes (path-tree's fixture: `/repos/:owner/:repo/issues`
//! and 314 more) needs no automaton at all. Walked as a path router walks its radix tree, one
//! segment at a time, a path finds every route whose regex matches it: a literal segment is one
//! lookup among its node's literals, a parameter segment is any non-empty segment without `.` or
//! `?` (Journey's `[^/.?]+`). The automata walked the whole path twice (the keyed automaton and
//! the leading routes') and merged what three searches proposed: about 1,600 instructions a
//! lookup on that set, where matchit takes a fraction of it.
//!
//! The tree yields *every* route that matches, not a best one: Rails' order (the first route
//! defined that matches and allows the verb, then the host's constraints) is still decided by
//! the query side over the candidates, ascending, exactly as for the automata's. A table with one
//! route that is not plain (a glob, an optional group, a format, a requirement, a mount, a
//! literal with bytes whose encoding could matter) gets no tree: mixing would need the automata
//! anyway.

use super::query::Candidates;
use super::CompiledRoute;
use crate::heap;
use crate::journey::{parse_spec, SpecNode};

/// One node: the literal segments and the parameter segment that lead on, and the routes whose
/// spec ends here.
#[derive(Debug, Default)]
struct Node {
    /// Literal segment → child node, sorted by [`Literal::order`] for a binary search that
    /// compares two integers per step (GitHub's set, whose root and `/repos/:owner/:repo` have
    /// 33 and 43 literals: a lookup hashed with FxHash was ~90 instructions, a scan more).
    literals: Vec<Literal>,
    /// The child a `:param` segment leads to.
    param: Option<u32>,
    /// Routes whose spec ends at this node, ascending.
    routes: Vec<u32>,
}

/// A literal segment of a node, keyed for [`Node::literals`]' binary search.
#[derive(Debug)]
struct Literal {
    len: usize,
    /// Its first 8 bytes (fewer: zeros after them), big-endian.
    head: u64,
    text: Box<[u8]>,
    child: u32,
}

impl Literal {
    /// Length, then the first 8 bytes, then the rest: a segment of the same length and head
    /// differs from a key only after its 8th byte.
    fn order(&self, len: usize, head: u64, segment: &[u8]) -> std::cmp::Ordering {
        (self.len, self.head).cmp(&(len, head)).then_with(|| if len > 8 { self.text[8..].cmp(&segment[8..]) } else { std::cmp::Ordering::Equal })
    }
}

/// The first 8 bytes of `rest[..len]` as [`Literal::head`] holds them.
#[inline]
fn head_of(rest: &[u8], len: usize) -> u64 {
    let word = match rest.get(..8) {
        Some(first) => u64::from_be_bytes(first.try_into().unwrap()),
        None => {
            let mut buffer = [0u8; 8];
            buffer[..rest.len()].copy_from_slice(rest);
            u64::from_be_bytes(buffer)
        }
    };
    if len >= 8 {
        word
    } else {
        word & !(u64::MAX >> (8 * len))
    }
}

/// The segment tree of a table whose routes are all plain (see the module doc).
#[derive(Debug)]
pub(crate) struct SegmentTree {
    /// The root (`/`) is node 0.
    nodes: Vec<Node>,
}

/// One segment of a plain spec.
enum Piece<'s> {
    Literal(&'s str),
    Param,
}

impl SegmentTree {
    /// The tree of `routes`, or `None` when one of them is not plain (or there are none).
    pub fn of(routes: &[CompiledRoute]) -> Option<SegmentTree> {
        if routes.is_empty() {
            return None;
        }
        let mut tree = SegmentTree { nodes: vec![Node::default()] };
        for route in routes {
            let spec = plain_spec(route)?;
            let mut at = 0usize;
            for piece in plain_pieces(&spec)? {
                let next = tree.nodes.len() as u32;
                let node = &mut tree.nodes[at];
                let child = match piece {
                    Piece::Literal(text) => match node.literals.iter().find(|l| *l.text == *text.as_bytes()) {
                        Some(l) => l.child,
                        None => {
                            let text: Box<[u8]> = text.as_bytes().into();
                            node.literals.push(Literal { len: text.len(), head: head_of(&text, text.len()), text, child: next });
                            next
                        }
                    },
                    Piece::Param => *node.param.get_or_insert(next),
                };
                if child == next {
                    tree.nodes.push(Node::default());
                }
                at = child as usize;
            }
            // Routes come in definition order: each list stays ascending.
            tree.nodes[at].routes.push(route.index as u32);
        }
        for node in &mut tree.nodes {
            node.literals.sort_by(|a, b| a.order(b.len, b.head, &b.text));
            node.literals.shrink_to_fit();
            node.routes.shrink_to_fit();
        }
        tree.nodes.shrink_to_fit();
        Some(tree)
    }

    /// Adds every route whose spec matches `path` (normalized: it starts with `/`) to `out`,
    /// unsorted (each route once: a route ends at one node only).
    #[inline]
    pub fn candidates(&self, path: &[u8], out: &mut Candidates) {
        let Some(rest) = path.strip_prefix(b"/") else { return };
        if rest.is_empty() {
            out.extend_from_slice(&self.nodes[0].routes);
            return;
        }
        self.walk(0, rest, out);
    }

    /// `rest`: what follows a `/` of the path, read from node `at`. Recursion is bounded by the
    /// tree's depth: a node without children ends the walk before its segment is read.
    fn walk(&self, at: usize, rest: &[u8], out: &mut Candidates) {
        let node = &self.nodes[at];
        if node.literals.is_empty() && node.param.is_none() {
            return;
        }
        let (end, dotted) = segment_end(rest);
        let (segment, tail) = (&rest[..end], rest.get(end + 1..));
        let mut next = |child: u32| match tail {
            None => out.extend_from_slice(&self.nodes[child as usize].routes),
            Some(tail) => self.walk(child as usize, tail, out),
        };
        if !node.literals.is_empty() {
            let head = head_of(rest, end);
            if let Ok(at) = node.literals.binary_search_by(|l| l.order(end, head, segment)) {
                next(node.literals[at].child);
            }
        }
        // Journey's default requirement, `[^/.?]+` (a normalized path holds no `?`).
        if !dotted && end > 0 {
            if let Some(child) = node.param {
                next(child);
            }
        }
    }

    /// Heap bytes: the nodes, their literal tables and keys, and their route lists.
    pub fn memory_usage(&self) -> usize {
        heap::vec(&self.nodes)
            + self.nodes.iter().map(|n| heap::vec(&n.literals) + n.literals.iter().map(|l| l.text.len()).sum::<usize>() + heap::vec(&n.routes)).sum::<usize>()
    }
}

/// The length of the segment `rest` starts with (up to its `/` or its end), and whether it
/// holds a `.`. Eight bytes at a time (SWAR): the byte loop was ~8 instructions a byte, a third
/// of a lookup on GitHub's set.
#[inline]
fn segment_end(rest: &[u8]) -> (usize, bool) {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A high bit set in each byte of `word` equal to `byte`; exact up to the first such byte
    // (a borrow can only mark bytes after a true one), which is all that is read of it.
    let equal = |word: u64, byte: u8| {
        let x = word ^ (ONES * byte as u64);
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut at = 0;
    while let Some(chunk) = rest.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap());
        let (slash, dot) = (equal(word, b'/'), equal(word, b'.'));
        if slash != 0 {
            let first = slash.trailing_zeros();
            // The dots before the `/` (bits below it): exact, as above.
            return (at + first as usize / 8, dot & ((1u64 << first) - 1) != 0);
        }
        if dot != 0 {
            let end = at + 8 + rest[at + 8..].iter().position(|&b| b == b'/').unwrap_or(rest.len() - at - 8);
            return (end, true);
        }
        at += 8;
    }
    let mut dotted = false;
    for (i, &b) in rest[at..].iter().enumerate() {
        match b {
            b'/' => return (at + i, dotted),
            b'.' => dotted = true,
            _ => {}
        }
    }
    (rest.len(), dotted)
}

/// The route's spec when nothing but its path decides whether it matches and the automaton
/// decides it exactly: no mount, no requirement, no host regex, no widening.
fn plain_spec(route: &CompiledRoute) -> Option<Vec<SpecNode>> {
    let def = &route.def;
    if def.mounted || def.encoded_literals_after.is_some() || !def.requirements.is_empty() || route.host_regex.is_some() || !route.is_exact_in_dfa() {
        return None;
    }
    parse_spec(&def.path).ok()
}

/// The segments of a spec made only of `/literal` and `/:param` (`/` alone: none); `None` for
/// anything else. Literals are kept to bytes that no normalization or encoding can touch
/// (ASCII letters, digits, `-`, `_`, `~`), so a byte comparison is Journey's match.
fn plain_pieces(spec: &[SpecNode]) -> Option<Vec<Piece<'_>>> {
    if let [SpecNode::Slash] = spec {
        return Some(Vec::new());
    }
    let mut pieces = Vec::with_capacity(spec.len() / 2);
    let mut nodes = spec.iter();
    while let Some(node) = nodes.next() {
        if !matches!(node, SpecNode::Slash) {
            return None;
        }
        pieces.push(match nodes.next()? {
            SpecNode::Literal(text) if is_plain_literal(text) => Piece::Literal(text),
            SpecNode::Symbol(_) => Piece::Param,
            _ => return None,
        });
    }
    (!pieces.is_empty()).then_some(pieces)
}

fn is_plain_literal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::segment_end;
    use crate::{Classifier, Requirement, RouteDef};

    /// `segment_end` read byte by byte.
    fn segment_end_plainly(rest: &[u8]) -> (usize, bool) {
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        (end, rest[..end].contains(&b'.'))
    }

    #[test]
    fn segment_ends_eight_bytes_at_a_time_as_byte_by_byte() {
        // Every string of up to 9 bytes over `/`, `.` (each one xor 0x01 of the other: a
        // borrow's false match), another byte, 0x00 and 0x01; then longer ones at random.
        let alphabet = [b'/', b'.', b'a', 0x00, 0x01];
        let mut word = Vec::new();
        let mut count = 0usize;
        loop {
            assert_eq!(segment_end(&word), segment_end_plainly(&word), "{word:?}");
            count += 1;
            // The next word in shortlex order.
            let mut i = word.len();
            loop {
                if i == 0 {
                    word.insert(0, alphabet[0]);
                    word.iter_mut().for_each(|b| *b = alphabet[0]);
                    break;
                }
                i -= 1;
                let at = alphabet.iter().position(|&a| a == word[i]).unwrap();
                if at + 1 < alphabet.len() {
                    word[i] = alphabet[at + 1];
                    break;
                }
                word[i] = alphabet[0];
            }
            if word.len() > 9 {
                break;
            }
        }
        assert_eq!(count, (5usize.pow(10) - 1) / 4);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let len = (next() % 40) as usize;
            let word: Vec<u8> = (0..len).map(|_| alphabet[(next() % 5) as usize]).collect();
            assert_eq!(segment_end(&word), segment_end_plainly(&word), "{word:?}");
        }
    }

    fn tree_of(specs: &[&str]) -> bool {
        let c = Classifier::new(specs.iter().map(|s| RouteDef::new("GET", *s)).collect()).unwrap();
        c.segment_tree.is_some()
    }

    #[test]
    fn only_tables_of_plain_routes_get_a_tree() {
        assert!(tree_of(&["/", "/users/:id", "/repos/:owner/:repo/issues", "/a-b_c~d/x1"]));
        for other in ["/users/:id(.:format)", "/*path", "/users/:id.json", "/a.b", "/users/v:id", "/a/%75", "/ü", "/a|/b", "relative"] {
            assert!(!tree_of(&["/users/:id", other]), "{other}");
        }
        let required = Classifier::new(vec![RouteDef::new("GET", "/users/:id").requirement("id", Requirement::regex("\\d+"))]).unwrap();
        assert!(required.segment_tree.is_none());
        let mounted = Classifier::new(vec![RouteDef::new("GET", "/admin").mounted()]).unwrap();
        assert!(mounted.segment_tree.is_none());
    }

    #[test]
    fn every_matching_route_is_found_in_rails_order() {
        let c = Classifier::new(vec![
            RouteDef::new("GET", "/users/:id"),
            RouteDef::new("GET", "/users/new"),
            RouteDef::new("POST", "/:a/:b"),
            RouteDef::new("GET", "/"),
            RouteDef::new("GET", "/users/new/edit"),
        ])
        .unwrap();
        assert!(c.segment_tree.is_some());
        let picks = |m: &str, p: &[u8]| c.matches(m, p).unwrap().iter().map(|m| m.route_index()).collect::<Vec<_>>();
        assert_eq!(picks("GET", b"/users/new"), [0, 1]);
        assert_eq!(picks("POST", b"/users/new"), [2]);
        assert_eq!(picks("GET", b"//users/new/"), [0, 1]);
        assert_eq!(picks("GET", b"/"), [3]);
        assert_eq!(picks("GET", b"/users/new/edit"), [4]);
        // Journey's `[^/.?]+`: a `.` keeps a parameter from taking the segment.
        assert!(picks("GET", b"/users/1.json").is_empty());
        assert!(picks("POST", b"/a/b.c").is_empty());
        assert_eq!(picks("POST", b"/%2E/b"), [2]);
        assert!(picks("GET", b"/users/new/edit/x").is_empty());
        let m = c.recognize("GET", b"/users/42").unwrap().unwrap();
        assert_eq!(m.param("id").as_deref(), Some(&b"42"[..]));
    }
}
