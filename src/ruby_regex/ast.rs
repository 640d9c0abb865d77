//! The syntax tree shared by the Ruby-regex parser, the DFA translator and the exact matcher.
//!
//! Rails matches routes against `PATH_INFO`, a binary (ASCII-8BIT) string, so every node here
//! works on bytes: a class is a set of bytes and `.` is "any byte but `\n`". Case folding
//! (`i`) and dot-all (`m`) are applied while parsing, so the tree carries no flags and the two
//! back ends cannot disagree about them.

/// A set of bytes, one bit per byte value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    pub const fn empty() -> Self {
        ByteSet([0; 4])
    }

    pub fn full() -> Self {
        ByteSet([u64::MAX; 4])
    }

    pub fn single(b: u8) -> Self {
        let mut s = Self::empty();
        s.insert(b);
        s
    }

    pub fn range(lo: u8, hi: u8) -> Self {
        let mut s = Self::empty();
        s.insert_range(lo, hi);
        s
    }

    #[inline]
    pub fn contains(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1u64 << (b & 63)) != 0
    }

    pub fn insert(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1u64 << (b & 63);
    }

    pub fn insert_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.insert(b);
        }
    }

    pub fn union(&mut self, other: &ByteSet) {
        for i in 0..4 {
            self.0[i] |= other.0[i];
        }
    }

    pub fn intersect(&mut self, other: &ByteSet) {
        for i in 0..4 {
            self.0[i] &= other.0[i];
        }
    }

    pub fn negate(&mut self) {
        for w in &mut self.0 {
            *w = !*w;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Adds the other ASCII case of every letter in the set (Onigmo folds ASCII only on binary strings).
    pub fn fold_ascii_case(&mut self) {
        for b in b'a'..=b'z' {
            if self.contains(b) || self.contains(b.to_ascii_uppercase()) {
                self.insert(b);
                self.insert(b.to_ascii_uppercase());
            }
        }
    }

    /// The set as inclusive byte ranges, in order.
    pub fn ranges(&self) -> Vec<(u8, u8)> {
        let mut out = Vec::new();
        let mut start: Option<u8> = None;
        for b in 0..=255u8 {
            match (self.contains(b), start) {
                (true, None) => start = Some(b),
                (false, Some(s)) => {
                    out.push((s, b - 1));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push((s, 255));
        }
        out
    }
}

impl std::fmt::Debug for ByteSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[")?;
        for (lo, hi) in self.ranges() {
            if lo == hi {
                write!(f, "{}", std::ascii::escape_default(lo))?;
            } else {
                write!(f, "{}-{}", std::ascii::escape_default(lo), std::ascii::escape_default(hi))?;
            }
        }
        write!(f, "]")
    }
}

/// Zero-width assertions that Ruby regexes (and Journey's own anchors) use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Assertion {
    /// `\A`
    StartText,
    /// `\z`
    EndText,
    /// `\Z`: end of text, or before a final `\n`.
    EndTextOptionalNewline,
    /// `^` (Ruby's `^` is always a line anchor)
    StartLine,
    /// `$` (always a line anchor in Ruby)
    EndLine,
    /// `\b` (ASCII word characters, as on a binary string)
    WordBoundary,
    /// `\B`
    NotWordBoundary,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Empty,
    /// One byte from the set.
    Class(ByteSet),
    Concat(Vec<Node>),
    /// Alternatives in priority order (leftmost first).
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
    /// A group whose match is never backtracked into: `(?>...)` and possessive quantifiers.
    Atomic(Box<Node>),
    /// `(?=...)`, `(?!...)`, `(?<=...)`, `(?<!...)`.
    Look {
        behind: bool,
        negate: bool,
        node: Box<Node>,
    },
    Assert(Assertion),
    /// A run of byte classes matched one after another (built by [`Node::optimized`]).
    Seq(Vec<ByteSet>),
    /// Alternatives that are all [`Node::Seq`]-like runs, tried in order (built by [`Node::optimized`]).
    SeqAlt(RunSet),
    /// A route parameter: its slot in the route's parameter list. Capture groups inside a
    /// requirement are plain groups here, as Journey's offsets make them invisible to params.
    Capture { slot: usize, node: Box<Node> },
}

impl Node {
    pub fn literal(bytes: &[u8]) -> Node {
        match bytes.len() {
            0 => Node::Empty,
            1 => Node::Class(ByteSet::single(bytes[0])),
            _ => Node::Concat(bytes.iter().map(|&b| Node::Class(ByteSet::single(b))).collect()),
        }
    }

    /// The number of bytes every match of this node has, if that is fixed
    /// (Onigmo requires look-behind alternatives to have one).
    pub fn fixed_len(&self) -> Option<usize> {
        match self {
            Node::Empty | Node::Assert(_) | Node::Look { .. } => Some(0),
            Node::Class(_) => Some(1),
            Node::Seq(v) => Some(v.len()),
            Node::SeqAlt(set) => {
                let first = set.runs.first()?.len();
                set.runs.iter().all(|a| a.len() == first).then_some(first)
            }
            Node::Concat(v) => v.iter().map(Node::fixed_len).sum(),
            Node::Alt(v) => {
                let first = v.first()?.fixed_len()?;
                v.iter().all(|n| n.fixed_len() == Some(first)).then_some(first)
            }
            Node::Repeat { node, min, max, .. } => {
                if Some(*min) == *max {
                    node.fixed_len().map(|l| l * *min as usize)
                } else {
                    None
                }
            }
            Node::Atomic(n) | Node::Capture { node: n, .. } => n.fixed_len(),
        }
    }

    /// Calls `f` on this node and every node below it.
    pub fn walk(&self, f: &mut impl FnMut(&Node)) {
        f(self);
        match self {
            Node::Concat(v) | Node::Alt(v) => v.iter().for_each(|n| n.walk(f)),
            Node::Repeat { node, .. }
            | Node::Atomic(node)
            | Node::Look { node, .. }
            | Node::Capture { node, .. } => node.walk(f),
            Node::Empty | Node::Class(_) | Node::Assert(_) | Node::Seq(_) | Node::SeqAlt(_) => {}
        }
    }

    /// The same language and priorities, shaped for the backtracking matcher: nested
    /// sequences flattened, runs of classes merged into [`Node::Seq`], alternations of such
    /// runs (reserved-word lists, `.git|.atom`) into [`Node::SeqAlt`], so they are checked
    /// in a tight loop instead of one continuation call per byte.
    pub fn optimized(self) -> Node {
        match self {
            Node::Concat(items) => {
                let mut flat = Vec::with_capacity(items.len());
                for item in items {
                    match item.optimized() {
                        Node::Concat(inner) => flat.extend(inner),
                        Node::Empty => {}
                        other => flat.push(other),
                    }
                }
                let mut out: Vec<Node> = Vec::with_capacity(flat.len());
                for item in flat {
                    let run = match &item {
                        Node::Class(set) => Some(vec![*set]),
                        Node::Seq(sets) => Some(sets.clone()),
                        _ => None,
                    };
                    match (run, out.last_mut()) {
                        (Some(run), Some(Node::Seq(prev))) => prev.extend(run),
                        (Some(run), Some(Node::Class(prev))) => {
                            let mut seq = vec![*prev];
                            seq.extend(run);
                            *out.last_mut().unwrap() = Node::Seq(seq);
                        }
                        _ => out.push(item),
                    }
                }
                match out.len() {
                    0 => Node::Empty,
                    1 => out.pop().unwrap(),
                    _ => Node::Concat(out),
                }
            }
            Node::Alt(alts) => {
                let alts: Vec<Node> = alts.into_iter().map(Node::optimized).collect();
                let runs: Option<Vec<Vec<ByteSet>>> = alts
                    .iter()
                    .map(|a| match a {
                        Node::Class(set) => Some(vec![*set]),
                        Node::Seq(sets) => Some(sets.clone()),
                        Node::Empty => Some(Vec::new()),
                        _ => None,
                    })
                    .collect();
                match runs {
                    Some(runs) => Node::SeqAlt(RunSet::new(runs)),
                    None => Node::Alt(alts),
                }
            }
            Node::Repeat { node, min, max, greedy } => Node::Repeat { node: Box::new(node.optimized()), min, max, greedy },
            Node::Atomic(node) => Node::Atomic(Box::new(node.optimized())),
            Node::Look { behind, negate, node } => Node::Look { behind, negate, node: Box::new(node.optimized()) },
            Node::Capture { slot, node } => Node::Capture { slot, node: Box::new(node.optimized()) },
            other => other,
        }
    }
}

/// Alternative runs of byte classes, indexed by first byte so that a list of forty reserved
/// words costs one or two comparisons, not forty.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunSet {
    pub runs: Vec<Vec<ByteSet>>,
    /// For each byte, the runs (in priority order) whose first class contains it; empty runs
    /// are listed under every byte and handled by [`RunSet::candidates`].
    by_first: Vec<Vec<u16>>,
    has_empty: bool,
}

impl RunSet {
    pub fn new(runs: Vec<Vec<ByteSet>>) -> RunSet {
        let mut by_first = vec![Vec::new(); 256];
        let has_empty = runs.iter().any(Vec::is_empty);
        for (i, run) in runs.iter().enumerate() {
            for (b, list) in by_first.iter_mut().enumerate() {
                if run.first().is_none_or(|set| set.contains(b as u8)) {
                    list.push(i as u16);
                }
            }
        }
        RunSet { runs, by_first, has_empty }
    }

    /// The runs that may match at `pos`, in priority order.
    #[inline]
    pub fn candidates(&self, hay: &[u8], pos: usize) -> impl Iterator<Item = &[ByteSet]> + '_ {
        let list: &[u16] = match hay.get(pos) {
            Some(&b) => &self.by_first[b as usize],
            None => &[],
        };
        let at_end_empty = hay.get(pos).is_none() && self.has_empty;
        let empties = self.runs.iter().filter(move |r| at_end_empty && r.is_empty()).map(Vec::as_slice);
        list.iter().map(move |&i| self.runs[i as usize].as_slice()).chain(empties)
    }
}

/// True when `hay[pos..]` starts with one byte of each set, in order.
#[inline]
pub fn seq_matches_at(sets: &[ByteSet], hay: &[u8], pos: usize) -> bool {
    match hay.get(pos..pos + sets.len()) {
        Some(bytes) => sets.iter().zip(bytes).all(|(set, &b)| set.contains(b)),
        None => false,
    }
}
