//! A tree of path segments for tables whose every route is plain: literal segments and
//! parameters with Journey's default requirement, and at most a final `(.:format)`.
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
//! route that is not plain (a glob, an optional group other than a final `(.:format)`, a
//! requirement, a mount, a literal with bytes whose encoding could matter) gets no tree: mixing
//! would need the automata anyway. A final `(.:format)` — Rails' default on every route
//! `resources` draws — is the one group the tree takes: it only lets the last segment be
//! `stem.extension`.

use super::query::Candidates;
use super::CompiledRoute;
use crate::heap;
use crate::journey::{parse_spec, SpecNode};
use crate::routes::RouteDef;
use crate::segment_scan::segment_end;

/// One node: the literal segments and the parameter segment that lead on, and the routes whose
/// spec ends here.
#[derive(Debug, Default)]
struct Node {
    /// Literal segment → child node, sorted by length (then head and bytes), so that a
    /// segment is compared only with the keys of its own length, first 8 bytes as one integer
    /// (GitHub's set, whose root and `/repos/:owner/:repo` have 33 and 43 literals: a lookup
    /// hashed with FxHash was ~90 instructions, a scan of every key more, a binary search ~60,
    /// this ~25).
    literals: Vec<Literal>,
    /// `by_len[n]..by_len[n + 1]`: the literals of `n` bytes (up to the longest).
    by_len: Vec<u32>,
    /// The child a `:param` segment leads to.
    param: Option<u32>,
    /// Routes whose spec ends at this node, ascending.
    routes: Vec<u32>,
    /// Routes whose spec ends at this node with an optional `(.:format)`, ascending: they also
    /// take the last segment with a `.` and an extension after it.
    formatted: Vec<u32>,
}

/// A literal segment of a node.
#[derive(Debug)]
struct Literal {
    /// Its first 8 bytes (fewer: zeros after them), big-endian.
    head: u64,
    text: Box<[u8]>,
    child: u32,
}

/// The first 8 bytes of the segment `path[start..start + len]` as [`Literal::head`] holds them:
/// one load from the path, also for a segment near its end (no copy).
#[inline]
fn head_of(path: &[u8], start: usize, len: usize) -> u64 {
    if len == 0 {
        return 0;
    }
    let word = match path.get(start..start + 8) {
        Some(word) => u64::from_be_bytes(word.try_into().unwrap()),
        // The path's last 8 bytes, shifted to start with the segment's (1 to 7 bytes in).
        None if path.len() >= 8 => u64::from_be_bytes(path[path.len() - 8..].try_into().unwrap()) << (8 * (start + 8 - path.len())),
        None => {
            let mut buffer = [0u8; 8];
            buffer[..path.len() - start].copy_from_slice(&path[start..]);
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

/// A plain spec: its segments, and whether it ends with an optional `(.:format)`.
struct Pieces<'s> {
    segments: Vec<Piece<'s>>,
    formatted: bool,
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
            let pieces = plain_pieces(&spec)?;
            let mut at = 0usize;
            for piece in pieces.segments {
                let next = tree.nodes.len() as u32;
                let node = &mut tree.nodes[at];
                let child = match piece {
                    Piece::Literal(text) => match node.literals.iter().find(|l| *l.text == *text.as_bytes()) {
                        Some(l) => l.child,
                        None => {
                            let text: Box<[u8]> = text.as_bytes().into();
                            node.literals.push(Literal { head: head_of(&text, 0, text.len()), text, child: next });
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
            let node = &mut tree.nodes[at];
            if pieces.formatted { &mut node.formatted } else { &mut node.routes }.push(route.index as u32);
        }
        for node in &mut tree.nodes {
            node.literals.sort_by(|a, b| (a.text.len(), a.head, &a.text).cmp(&(b.text.len(), b.head, &b.text)));
            node.literals.shrink_to_fit();
            if let Some(longest) = node.literals.last().map(|l| l.text.len()) {
                node.by_len = (0..=longest + 1).map(|n| node.literals.partition_point(|l| l.text.len() < n) as u32).collect();
            }
            node.routes.shrink_to_fit();
            node.formatted.shrink_to_fit();
        }
        tree.nodes.shrink_to_fit();
        Some(tree)
    }

    /// Adds every route whose spec matches `path` (normalized: it starts with `/`) to `out`,
    /// unsorted (each route once: a route ends at one node only, and a formatted route is
    /// taken with or without the extension, never both).
    #[inline]
    pub fn candidates(&self, path: &[u8], out: &mut Candidates) {
        if path == b"/" {
            out.extend_from_slice(&self.nodes[0].routes);
        } else if path.first() == Some(&b'/') {
            self.walk(0, 1, path, out);
        }
    }

    /// Walks from node `at` with the segment at `path[start..]`. A loop while one child leads
    /// on; a node where a literal and the parameter both take the segment walks the parameter's
    /// branch in a call of its own, so the depth of calls is bounded by the tree's.
    fn walk(&self, mut at: usize, mut start: usize, path: &[u8], out: &mut Candidates) {
        loop {
            let node = &self.nodes[at];
            if node.by_len.is_empty() && node.param.is_none() {
                return;
            }
            let (len, dotted) = segment_end(&path[start..], b'.');
            let next = start + len + 1;
            let last = next > path.len();
            if dotted {
                // Neither a literal nor a parameter holds a `.`: only the last segment can
                // match, as `stem.extension` for the formatted routes.
                if last {
                    self.formatted(node, start, len, path, out);
                }
                return;
            }
            let literal = Self::literal(node, path, start, len);
            // Journey's default requirement, `[^/.?]+` (a normalized path holds no `?`).
            let param = node.param.filter(|_| len > 0);
            match (literal, param) {
                (None, None) => return,
                (Some(child), None) | (None, Some(child)) if !last => (at, start) = (child as usize, next),
                (Some(child), None) | (None, Some(child)) => return self.ended(child, out),
                (Some(literal), Some(param)) if !last => {
                    self.walk(param as usize, next, path, out);
                    (at, start) = (literal as usize, next);
                }
                (Some(literal), Some(param)) => {
                    self.ended(literal, out);
                    return self.ended(param, out);
                }
            }
        }
    }

    /// The child the literal segment `path[start..start + len]` leads to, if the node has it.
    #[inline(always)]
    fn literal(node: &Node, path: &[u8], start: usize, len: usize) -> Option<u32> {
        match (node.by_len.get(len), node.by_len.get(len + 1)) {
            (Some(&from), Some(&to)) if from < to => {
                let head = head_of(path, start, len);
                let segment = &path[start..start + len];
                // Keys are distinct: at most one is the segment.
                node.literals[from as usize..to as usize].iter().find(|l| l.head == head && (len <= 8 || l.text[8..] == segment[8..])).map(|l| l.child)
            }
            _ => None,
        }
    }

    /// The path ended at `child` without an extension: its routes, formatted or not.
    #[inline]
    fn ended(&self, child: u32, out: &mut Candidates) {
        let node = &self.nodes[child as usize];
        out.extend_from_slice(&node.routes);
        // Most tables have formats on every route or on none: one of the two lists is empty,
        // and an empty copy is still a call.
        if !node.formatted.is_empty() {
            out.extend_from_slice(&node.formatted);
        }
    }

    /// The last segment `path[start..start + len]` holds a `.`: Journey's `(?:\.([^/.?]+))?`
    /// after a literal or a parameter takes it as `stem.extension`, with one `.` only and
    /// neither side empty (a parameter's stem: its `[^/.?]+`; a literal's: the literal).
    fn formatted(&self, node: &Node, start: usize, len: usize, path: &[u8], out: &mut Candidates) {
        let segment = &path[start..start + len];
        let Some(dot) = segment.iter().position(|&b| b == b'.') else { return };
        let extension = &segment[dot + 1..];
        if extension.is_empty() || extension.contains(&b'.') {
            return;
        }
        let literal = Self::literal(node, path, start, dot);
        let param = node.param.filter(|_| dot > 0);
        for child in [literal, param].into_iter().flatten() {
            out.extend_from_slice(&self.nodes[child as usize].formatted);
        }
    }

    /// Heap bytes: the nodes, their literal tables and keys, and their route lists.
    pub fn memory_usage(&self) -> usize {
        heap::vec(&self.nodes)
            + self
                .nodes
                .iter()
                .map(|n| {
                    heap::vec(&n.literals)
                        + n.literals.iter().map(|l| l.text.len()).sum::<usize>()
                        + heap::vec(&n.by_len)
                        + heap::vec(&n.routes)
                        + heap::vec(&n.formatted)
                })
                .sum::<usize>()
    }
}

/// Whether the route is plain (see the module's doc): the tree can hold it.
pub(super) fn is_plain(route: &CompiledRoute) -> bool {
    plain_spec(route).is_some_and(|spec| plain_pieces(&spec).is_some())
}

/// Whether a definition can compile to a plain route, told from the definition alone (a
/// route that compiles with a widening or a host regex is still refused by [`is_plain`]), so
/// that a table that is not plain is set aside before anything is compiled for its tree.
pub(super) fn could_be_plain(def: &RouteDef) -> bool {
    path_only_spec(def).is_some_and(|spec| plain_pieces(&spec).is_some())
}

/// The route's spec when nothing but its path decides whether it matches and the automaton
/// decides it exactly: [`path_only_spec`], and no host regex, no widening.
fn plain_spec(route: &CompiledRoute) -> Option<Vec<SpecNode>> {
    if route.host_regex.is_some() || !route.is_exact_in_dfa() {
        return None;
    }
    path_only_spec(&route.def)
}

/// The definition's spec when nothing but its path decides whether it matches: no mount, no
/// requirement, no encoded literals.
fn path_only_spec(def: &RouteDef) -> Option<Vec<SpecNode>> {
    if def.mounted || def.encoded_literals_after.is_some() || !def.requirements.is_empty() {
        return None;
    }
    parse_spec(&def.path).ok()
}

/// The segments of a spec made only of `/literal` and `/:param` (`/` alone: none), and
/// optionally `(.:format)` after the last of them; `None` for anything else. Literals are kept
/// to bytes that no normalization or encoding can touch (ASCII letters, digits, `-`, `_`, `~`),
/// so a byte comparison is Journey's match.
fn plain_pieces(spec: &[SpecNode]) -> Option<Pieces<'_>> {
    if let [SpecNode::Slash] = spec {
        return Some(Pieces { segments: Vec::new(), formatted: false });
    }
    let (spec, formatted) = match spec {
        [rest @ .., SpecNode::Group(group)] => match &group[..] {
            [SpecNode::Dot, SpecNode::Symbol(_)] => (rest, true),
            _ => return None,
        },
        _ => (spec, false),
    };
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
    (!pieces.is_empty()).then_some(Pieces { segments: pieces, formatted })
}

fn is_plain_literal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use crate::{Classifier, Requirement, RouteDef};

    fn tree_of(specs: &[&str]) -> bool {
        let c = Classifier::new(specs.iter().map(|s| RouteDef::new("GET", *s)).collect()).unwrap();
        c.segment_tree.is_some()
    }

    #[test]
    fn only_tables_of_plain_routes_get_a_tree() {
        assert!(tree_of(&["/", "/users/:id", "/repos/:owner/:repo/issues", "/a-b_c~d/x1"]));
        assert!(tree_of(&["/users/:id(.:format)", "/users(.:format)", "/users/:id/edit(.:type)"]));
        for other in [
            "/*path",
            "/users/:id.json",
            "/a.b",
            "/users/v:id",
            "/a/%75",
            "/ü",
            "/a|/b",
            "relative",
            "/users(/:id)",
            "/users(.:format)/x",
            "/users(.json)",
            "/users(.:a.:b)",
            "/(.:format)",
            "/users(.:format)(.:x)",
        ] {
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

    /// `(.:format)` after the last segment: Journey's `(?:\.([^/.?]+))?`, a stem and an
    /// extension, one `.`, neither side empty.
    #[test]
    fn formatted_routes_take_one_extension() {
        let c = Classifier::new(vec![
            RouteDef::new("GET", "/users/:id(.:format)"),
            RouteDef::new("GET", "/users/new(.:format)"),
            RouteDef::new("GET", "/users/:id"),
            RouteDef::new("GET", "/users(.:format)"),
            RouteDef::new("GET", "/:a/:b(.:format)"),
        ])
        .unwrap();
        assert!(c.segment_tree.is_some());
        let picks = |p: &[u8]| c.matches("GET", p).unwrap().iter().map(|m| m.route_index()).collect::<Vec<_>>();
        assert_eq!(picks(b"/users/1"), [0, 2, 4]);
        assert_eq!(picks(b"/users/1.json"), [0, 4]);
        assert_eq!(picks(b"/users/new.json"), [0, 1, 4]);
        assert_eq!(picks(b"/users.xml"), [3]);
        assert_eq!(picks(b"/users"), [3]);
        for none in [&b"/users/1."[..], b"/users/.json", b"/users/1.json.gz", b"/users.", b"/users/1.json/x", b"/users.json/1", b"/.json"] {
            assert!(picks(none).is_empty(), "{}", String::from_utf8_lossy(none));
        }
        let m = c.recognize("GET", b"/users/7.json").unwrap().unwrap();
        assert_eq!((m.param("id").as_deref(), m.param("format").as_deref()), (Some(&b"7"[..]), Some(&b"json"[..])));
        let m = c.recognize("GET", b"/users/7").unwrap().unwrap();
        assert_eq!((m.route_index(), m.param("format")), (0, None));
    }
}
