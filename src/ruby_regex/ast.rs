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

    /// Whether every byte but perhaps `\n` is in the set (Ruby's `.`, a glob's `.+?`).
    #[inline]
    pub fn holds_all_but_newline(&self) -> bool {
        self.0[0] | (1 << b'\n') == u64::MAX && self.0[1] == u64::MAX && self.0[2] == u64::MAX && self.0[3] == u64::MAX
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

    /// The set as inclusive byte ranges, in order. Runs are read a word at a time (the DFA
    /// patterns write a class per parameter, most of them `[^/.?]`: 253 members).
    pub fn ranges(&self) -> Vec<(u8, u8)> {
        let mut out = Vec::new();
        let mut b: u32 = 0;
        while b < 256 {
            // Skip to the next member.
            let word = self.0[(b >> 6) as usize] >> (b & 63);
            if word == 0 {
                b = (b | 63) + 1;
                continue;
            }
            b += word.trailing_zeros();
            let start = b;
            // Then over the members that follow it, into the next words while they go on.
            loop {
                let ones = (self.0[(b >> 6) as usize] >> (b & 63)).trailing_ones();
                b += ones;
                if ones == 0 || b & 63 != 0 || b >= 256 {
                    break;
                }
            }
            out.push((start as u8, (b - 1) as u8));
        }
        out
    }

    /// The only member, if the set has exactly one.
    /// Calls `f` with each byte of the set, ascending.
    #[inline]
    pub fn for_each_byte(&self, mut f: impl FnMut(u8)) {
        for (w, &word) in self.0.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                f((w * 64) as u8 + bits.trailing_zeros() as u8);
                bits &= bits - 1;
            }
        }
    }

    pub fn single_byte(&self) -> Option<u8> {
        if self.len() != 1 {
            return None;
        }
        self.0.iter().enumerate().find(|(_, w)| **w != 0).map(|(i, w)| (i as u32 * 64 + w.trailing_zeros()) as u8)
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
    /// Shared: a route's regex holds its requirements' run sets (GitLab's reserved-word lists,
    /// ~15 KiB each) without copying them, and the matchers intern them by address.
    SeqAlt(std::sync::Arc<RunSet>),
    /// A route parameter: its slot in the route's parameter list. Capture groups inside a
    /// requirement are plain groups here, as Journey's offsets make them invisible to params.
    Capture {
        slot: usize,
        node: Box<Node>,
    },
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
            Node::Repeat { node, .. } | Node::Atomic(node) | Node::Look { node, .. } | Node::Capture { node, .. } => node.walk(f),
            Node::Empty | Node::Class(_) | Node::Assert(_) | Node::Seq(_) | Node::SeqAlt(_) => {}
        }
    }

    /// The same language and priorities, shaped for the backtracking matcher: nested
    /// sequences flattened, runs of classes merged into [`Node::Seq`], alternations of such
    /// runs (reserved-word lists, `.git|.atom`) into [`Node::SeqAlt`], so they are checked
    /// in a tight loop instead of one continuation call per byte.
    pub fn optimized(&self) -> Node {
        match self {
            Node::Concat(items) => {
                // Nested sequences are flattened into one Vec (a Vec per level cost an
                // allocation and a copy each).
                let mut flat = Vec::with_capacity(items.len());
                self.optimized_into(&mut flat);
                // Each maximal run of two or more classes becomes one `Seq`, sized once (a
                // one-element Vec per class, grown by doubling, was most of this function's
                // cost on GitLab's template snapshot, whose literals are one class per byte).
                let mut kept = 0;
                let mut i = 0;
                while i < flat.len() {
                    let end = i + flat[i..].iter().take_while(|n| n.run_len().is_some()).count();
                    let node = if end - i < 2 {
                        std::mem::replace(&mut flat[i], Node::Empty)
                    } else {
                        let mut seq = Vec::with_capacity(flat[i..end].iter().filter_map(Node::run_len).sum());
                        for node in &flat[i..end] {
                            match node {
                                Node::Class(set) => seq.push(*set),
                                Node::Seq(sets) => seq.extend_from_slice(sets),
                                _ => unreachable!("a run holds classes and sequences only"),
                            }
                        }
                        Node::Seq(seq)
                    };
                    flat[kept] = node;
                    kept += 1;
                    i = end.max(i + 1);
                }
                flat.truncate(kept);
                match flat.len() {
                    0 => Node::Empty,
                    1 => flat.pop().unwrap(),
                    _ => Node::Concat(flat),
                }
            }
            Node::Alt(alts) => {
                let alts: Vec<Node> = alts.iter().map(Node::optimized).collect();
                if alts.iter().all(|a| a.run_len().is_some() || matches!(a, Node::Empty)) {
                    let runs = alts
                        .into_iter()
                        .map(|a| match a {
                            Node::Class(set) => vec![set],
                            Node::Seq(sets) => sets,
                            _ => Vec::new(),
                        })
                        .collect();
                    Node::SeqAlt(std::sync::Arc::new(RunSet::new(runs)))
                } else {
                    Node::Alt(alts)
                }
            }
            Node::Repeat { node, min, max, greedy } => Node::Repeat { node: Box::new(node.optimized()), min: *min, max: *max, greedy: *greedy },
            Node::Atomic(node) => Node::Atomic(Box::new(node.optimized())),
            Node::Look { behind, negate, node } => Node::Look { behind: *behind, negate: *negate, node: Box::new(node.optimized()) },
            Node::Capture { slot, node } => Node::Capture { slot: *slot, node: Box::new(node.optimized()) },
            other => other.clone(),
        }
    }

    /// Appends this node's optimized items to `flat`: a sequence's items (nested sequences
    /// flattened), nothing for `Empty`, else the optimized node.
    fn optimized_into(&self, flat: &mut Vec<Node>) {
        match self {
            Node::Concat(items) => items.iter().for_each(|item| item.optimized_into(flat)),
            Node::Empty => {}
            other => match other.optimized() {
                Node::Concat(inner) => flat.extend(inner),
                Node::Empty => {}
                node => flat.push(node),
            },
        }
    }

    /// The number of classes of a class (1) or a run of them, `None` for anything else.
    fn run_len(&self) -> Option<usize> {
        match self {
            Node::Class(_) => Some(1),
            Node::Seq(sets) => Some(sets.len()),
            _ => None,
        }
    }
}

/// Alternative runs of byte classes, indexed by first byte so that a list of forty reserved
/// words costs one or two comparisons, not forty.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunSet {
    pub runs: Vec<Vec<ByteSet>>,
    /// For byte `b`, the runs (in priority order) whose first class contains it are
    /// `index[offsets[b]..offsets[b + 1]]` (a compact adjacency list: two allocations).
    offsets: Vec<u32>,
    index: Vec<u16>,
    /// Empty runs match anywhere; they are kept aside.
    empty: Vec<u16>,
    /// The union of every run's last class (look-behind checks the byte before `pos` first).
    pub last: ByteSet,
}

impl RunSet {
    pub fn new(runs: Vec<Vec<ByteSet>>) -> RunSet {
        // A counting sort by first byte: each run's first class is read twice, where asking
        // every run about each of the 256 bytes was 8% of building GitLab CE's table (two
        // reserved-word lists of ~100 words in most of its 1,077 matchers).
        let firsts = || runs.iter().enumerate().filter_map(|(i, run)| Some((i as u16, run.first()?)));
        let mut counts = [0u32; 256];
        for (_, set) in firsts() {
            set.for_each_byte(|b| counts[b as usize] += 1);
        }
        let mut offsets = Vec::with_capacity(257);
        let mut total = 0;
        for count in counts {
            offsets.push(total);
            total += count;
        }
        offsets.push(total);
        // Runs in priority order, so each byte's runs come out ascending.
        let mut next: [u32; 256] = std::array::from_fn(|b| offsets[b]);
        let mut index = vec![0u16; total as usize];
        for (i, set) in firsts() {
            set.for_each_byte(|b| {
                index[next[b as usize] as usize] = i;
                next[b as usize] += 1;
            });
        }
        let empty: Vec<u16> = runs.iter().enumerate().filter(|(_, r)| r.is_empty()).map(|(i, _)| i as u16).collect();
        let mut last = ByteSet::empty();
        for run in &runs {
            match run.last() {
                Some(set) => last.union(set),
                None => last = ByteSet::full(),
            }
        }
        RunSet { runs, offsets, index, empty, last }
    }

    pub fn has_empty_runs(&self) -> bool {
        !self.empty.is_empty()
    }

    /// Priorities of the non-empty runs whose first class contains `b`, ascending.
    #[inline]
    pub fn starting_with(&self, b: u8) -> &[u16] {
        &self.index[self.offsets[b as usize] as usize..self.offsets[b as usize + 1] as usize]
    }

    /// The runs (with their priority) that may match at `pos`, in priority order, from
    /// priority `from` on.
    #[inline]
    pub fn candidates_from<'a>(&'a self, hay: &[u8], pos: usize, from: usize) -> impl Iterator<Item = (usize, &'a [ByteSet])> + 'a {
        let list: &[u16] = match hay.get(pos) {
            Some(&b) => &self.index[self.offsets[b as usize] as usize..self.offsets[b as usize + 1] as usize],
            None => &[],
        };
        // Keep priority order when empty runs are mixed in: merge the two ascending lists.
        let mut a = list.iter().filter(move |&&i| i as usize >= from).peekable();
        let mut e = self.empty.iter().filter(move |&&i| i as usize >= from).peekable();
        std::iter::from_fn(move || {
            let next = match (a.peek(), e.peek()) {
                (Some(&&x), Some(&&y)) => {
                    if x < y {
                        a.next()
                    } else {
                        e.next()
                    }
                }
                (Some(_), None) => a.next(),
                (None, Some(_)) => e.next(),
                (None, None) => None,
            }?;
            Some((*next as usize, self.runs[*next as usize].as_slice()))
        })
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

impl RunSet {
    /// Heap bytes held (for `Classifier::memory_usage`).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.runs.capacity() * size_of::<Vec<ByteSet>>()
            + self.runs.iter().map(|r| r.capacity() * size_of::<ByteSet>()).sum::<usize>()
            + self.offsets.capacity() * size_of::<u32>()
            + (self.index.capacity() + self.empty.capacity()) * size_of::<u16>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index as first written: every run asked about each byte in turn.
    fn naive_index(runs: &[Vec<ByteSet>]) -> Vec<Vec<u16>> {
        (0..=255u8).map(|b| (0..runs.len()).filter(|&i| runs[i].first().is_some_and(|s| s.contains(b))).map(|i| i as u16).collect()).collect()
    }

    #[test]
    fn run_sets_index_every_run_under_each_byte_of_its_first_class_in_priority_order() {
        let mut folded = ByteSet::single(b'a');
        folded.fold_ascii_case();
        let mut high = ByteSet::range(0x80, 0xff);
        high.insert(0);
        let runs = vec![
            vec![ByteSet::single(b'a'), ByteSet::single(b'b')],
            vec![],
            vec![folded],
            vec![ByteSet::full(), ByteSet::single(b'/')],
            vec![high],
            vec![ByteSet::range(b'0', b'9')],
            vec![ByteSet::single(b'a')],
            vec![ByteSet::single(0xff)],
        ];
        let set = RunSet::new(runs.clone());
        let naive = naive_index(&runs);
        for b in 0..=255u8 {
            assert_eq!(set.starting_with(b), &naive[b as usize][..], "byte {b}");
        }
        assert!(set.has_empty_runs());
        let mut bytes = Vec::new();
        high.for_each_byte(|b| bytes.push(b));
        assert_eq!(bytes, std::iter::once(0).chain(0x80..=0xff).collect::<Vec<u8>>());
    }

    /// The ranges as first written: each member found byte by byte.
    fn naive_ranges(set: &ByteSet) -> Vec<(u8, u8)> {
        let mut out: Vec<(u8, u8)> = Vec::new();
        for b in 0..=255u8 {
            if set.contains(b) {
                match out.last_mut() {
                    Some((_, hi)) if *hi as u16 + 1 == b as u16 => *hi = b,
                    _ => out.push((b, b)),
                }
            }
        }
        out
    }

    #[test]
    fn all_but_newline_is_ruby_dot_or_more() {
        let mut dot = ByteSet::single(b'\n');
        dot.negate();
        assert!(dot.holds_all_but_newline());
        assert!(ByteSet::full().holds_all_but_newline());
        for missing in [0u8, b'a', b'/', 63, 64, 127, 128, 200, 255] {
            let mut set = dot;
            set.0[(missing >> 6) as usize] &= !(1u64 << (missing & 63));
            assert!(!set.holds_all_but_newline(), "without {missing}");
        }
        assert!(!ByteSet::range(0, 254).holds_all_but_newline());
    }

    /// Ranges read word by word are those found byte by byte: runs inside a word, ending on and
    /// crossing word boundaries (63/64, 127/128, 191/192), at both ends of the byte range.
    #[test]
    fn ranges_are_the_runs_of_members() {
        let mut sets = vec![ByteSet::empty(), ByteSet::full()];
        let edges = [0u8, 1, 2, 62, 63, 64, 65, 126, 127, 128, 129, 190, 191, 192, 193, 253, 254, 255];
        for &lo in &edges {
            for &hi in edges.iter().filter(|&&hi| hi >= lo) {
                let run = ByteSet::range(lo, hi);
                let mut holes = ByteSet::full();
                for b in [lo, hi] {
                    holes.0[(b >> 6) as usize] &= !(1 << (b & 63));
                }
                let mut two = run;
                two.insert_range(hi.saturating_add(2), 255);
                sets.extend([run, holes, two]);
            }
        }
        for b in 0..=255u8 {
            let mut every_other = ByteSet::empty();
            (0..=255u8).filter(|x| x % 2 == b % 2).for_each(|x| every_other.insert(x));
            let mut without = ByteSet::full();
            without.0[(b >> 6) as usize] &= !(1 << (b & 63));
            sets.extend([ByteSet::single(b), every_other, without]);
        }
        for set in sets {
            assert_eq!(set.ranges(), naive_ranges(&set), "{set:?}");
        }
    }
}
