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
            Node::Empty | Node::Class(_) | Node::Assert(_) => {}
        }
    }
}
