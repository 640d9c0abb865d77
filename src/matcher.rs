//! The exact matcher: a backtracking virtual machine with Onigmo's semantics for one route's regex.
//!
//! The DFA answers "which routes could match"; this answers "does this route match, exactly
//! as Ruby decides, and what are its parameters". It implements what the DFA cannot:
//! look-ahead and look-behind that see past a parameter's own text, atomic groups, and
//! leftmost-first capture positions with greedy and lazy quantifiers, explored in the same
//! priority order as Onigmo. It only runs on the few candidates the DFA found, on one path.
//!
//! The regex is compiled to a flat program run by a loop with an explicit backtrack stack
//! (no recursion per input byte, so a path of thousands of segments cannot overflow a Puma
//! thread's stack). Runs of one byte class (`[a-z0-9_.-]{0,254}`) are one instruction that
//! backtracks by count, and reserved-word lists are indexed by first byte. A step budget
//! bounds the work on hostile input: Ruby 3.1 has no regex timeout, and we answer an error
//! instead of spinning.

use std::sync::Arc;

use crate::piece_check::PieceCheck;
use crate::ruby_regex::ast::{seq_matches_at, Assertion, ByteSet, Node, RunSet};
use crate::shared_runs::{Counted, RunSets};
use crate::span_plan::{self, SpanPlan, Verdict};

/// Look-ahead bodies are expanded into at most this many literal runs (else run as programs).
pub(crate) const MAX_LOOK_RUNS: usize = 4096;

/// Steps (instructions executed) one match may take before it is abandoned.
pub const DEFAULT_STEP_BUDGET: u64 = 2_000_000;

/// The match was abandoned: the regex backtracks too much on this input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the route's regex needs more than {budget} backtracking steps on this path")]
pub struct BudgetExceeded {
    /// The steps allowed.
    pub budget: u64,
}

/// Byte spans of the route's parameters, by slot; `None` where an optional part did not match.
pub type Spans = Vec<Option<(usize, usize)>>;

const INFINITE: u32 = u32::MAX;

#[derive(Clone, Debug)]
enum Inst {
    Class(ByteSet),
    Seq(Box<[ByteSet]>),
    /// Alternative literal runs in priority order; `next` continues after the group.
    SeqAlt {
        set: Arc<RunSet>,
        next: u32,
    },
    /// `set{min,max}`, backtracking one byte at a time.
    ClassRepeat {
        set: ByteSet,
        min: u32,
        max: u32,
        greedy: bool,
    },
    /// Try `first`, and on backtracking `second`.
    Split {
        first: u32,
        second: u32,
    },
    Jmp(u32),
    /// Capture slot (2 × parameter, +1 for the end).
    Save(u32),
    Assert(Assertion),
    /// Look-around: a sub-program (or, for look-behind, one per fixed-length alternative).
    Look {
        negate: bool,
        behind: bool,
        progs: Box<[(u32, usize)]>,
    },
    /// Look-behind over literal runs (`(?<!\.git|\.atom)`), checked in place.
    BehindRuns {
        negate: bool,
        set: Arc<RunSet>,
    },
    /// Look-ahead over literal runs, checked in place.
    AheadRuns {
        negate: bool,
        set: Arc<RunSet>,
    },
    /// Runs the sub-program to its first match and continues there, never backtracking into it.
    Atomic(u32),
    /// Starts a counted loop: its counter and start-position registers are reset.
    LoopEnter {
        reg: u32,
    },
    /// Decides whether to run the body (next instruction) again or leave to `exit`.
    LoopHead {
        reg: u32,
        min: u32,
        max: u32,
        greedy: bool,
        exit: u32,
    },
    /// Ends one iteration; an iteration that consumed nothing ends the loop (Onigmo's empty check).
    LoopTail {
        reg: u32,
        head: u32,
        exit: u32,
    },
    Match,
}

/// A compiled program: the main one is `progs[0]`; look-around and atomic bodies follow.
#[derive(Clone, Debug)]
struct Program {
    insts: Vec<Inst>,
    /// Entry point of each program.
    entries: Vec<u32>,
    /// Registers: two per loop (count, start position).
    regs: usize,
    /// For each instruction, what the path from it must meet first, when that is known
    /// statically (`None`: it may consume nothing anywhere, or depends on loop counters). A
    /// branch whose lead the input does not meet is skipped without a backtrack frame — this
    /// is what keeps a greedy namespace loop from re-trying every shorter split, and a lazy
    /// glob before `(.:format)\Z` from trying every length short of a `.` or the end.
    first: FirstSets,
}

/// What the path from an instruction needs at its start: a byte of `bytes` to consume, or
/// (`at_end`) to be where `\Z` holds, with nothing left but an optional final newline.
///
/// A necessary condition only: where it fails the path cannot match, where it holds it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lead {
    bytes: ByteSet,
    at_end: bool,
}

impl Lead {
    fn consuming(bytes: ByteSet) -> Lead {
        Lead { bytes, at_end: false }
    }

    fn union(mut self, other: &Lead) -> Lead {
        self.bytes.union(&other.bytes);
        self.at_end |= other.at_end;
        self
    }

    /// Whether a path led by this can start at `pos` of `hay`.
    #[inline]
    fn admits(&self, hay: &[u8], pos: usize) -> bool {
        match hay.get(pos) {
            Some(&b) => self.bytes.contains(b) || (self.at_end && b == b'\n' && pos + 1 == hay.len()),
            None => self.at_end,
        }
    }
}

/// An instruction's lead, and the lead one byte on when it consumes exactly one ([`Vm::leads`]).
#[derive(Clone, Copy)]
struct Leads<'p> {
    lead: &'p Lead,
    then: Option<&'p Lead>,
}

impl Leads<'_> {
    #[inline]
    fn admit(self, hay: &[u8], pos: usize) -> bool {
        self.lead.admits(hay, pos) && self.then.is_none_or(|then| then.admits(hay, pos + 1))
    }
}

/// [`Program::first`], interned: one small id per instruction into the program's distinct leads.
///
/// A program's instructions share a handful of leads (a reserved-word list's letters,
/// `[a-zA-Z0-9_.]`, `/`...), but one 40-byte `Option<ByteSet>` per instruction was a third of
/// what GitLab CE's 1,077 exact matchers held (1.1 of 3.5 MB): two bytes each now.
#[derive(Clone, Debug)]
struct FirstSets {
    /// Per instruction, `0` (not known statically) or `1 +` the index of its lead in `leads`.
    ids: Box<[u16]>,
    leads: Box<[Lead]>,
}

impl FirstSets {
    fn intern(per_inst: Vec<Option<Lead>>) -> FirstSets {
        let mut leads: Vec<Lead> = Vec::new();
        let ids = per_inst
            .into_iter()
            .map(|lead| {
                let Some(lead) = lead else { return 0 };
                let index = leads.iter().position(|l| *l == lead).unwrap_or_else(|| {
                    leads.push(lead);
                    leads.len() - 1
                });
                // Past `u16::MAX` leads (no route comes near), "not known" is always safe: the
                // branch is tried and fails at its first byte instead.
                u16::try_from(index + 1).unwrap_or(0)
            })
            .collect();
        FirstSets { ids, leads: leads.into_boxed_slice() }
    }

    /// The lead of instruction `pc`, if known.
    #[inline]
    fn get(&self, pc: usize) -> Option<&Lead> {
        match self.ids[pc] {
            0 => None,
            id => Some(&self.leads[id as usize - 1]),
        }
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of_val::<[u16]>(&self.ids) + std::mem::size_of_val::<[Lead]>(&self.leads)
    }
}

/// The leads of every instruction (see [`Program::first`]).
fn first_sets(insts: &[Inst]) -> Vec<Option<Lead>> {
    fn first(insts: &[Inst], pc: usize, seen: &mut Vec<bool>, memo: &mut Vec<Option<Option<Lead>>>) -> Option<Lead> {
        if let Some(known) = memo[pc] {
            return known;
        }
        if seen[pc] {
            return None; // a cycle through non-consuming instructions: give up
        }
        seen[pc] = true;
        let result = match &insts[pc] {
            Inst::Class(set) => Some(Lead::consuming(*set)),
            Inst::Seq(sets) => sets.first().copied().map(Lead::consuming),
            Inst::SeqAlt { set, .. } if !set.has_empty_runs() => {
                let mut all = ByteSet::empty();
                for run in &set.runs {
                    all.union(&run[0]);
                }
                Some(Lead::consuming(all))
            }
            Inst::ClassRepeat { set, min, .. } if *min > 0 => Some(Lead::consuming(*set)),
            Inst::ClassRepeat { set, .. } => first(insts, pc + 1, seen, memo).map(|f| f.union(&Lead::consuming(*set))),
            Inst::Split { first: a, second: b } => either(insts, *a as usize, *b as usize, seen, memo),
            Inst::Jmp(to) => first(insts, *to as usize, seen, memo),
            // Whatever follows, nothing can: `\Z` (and `\z`, stricter) hold only at the end.
            Inst::Assert(Assertion::EndText | Assertion::EndTextOptionalNewline) => Some(Lead { bytes: ByteSet::empty(), at_end: true }),
            // Zero-width and bookkeeping instructions pass through to what follows.
            Inst::Save(_) | Inst::Assert(_) | Inst::BehindRuns { .. } | Inst::AheadRuns { .. } | Inst::Look { .. } | Inst::LoopEnter { .. } => {
                first(insts, pc + 1, seen, memo)
            }
            // A loop goes on to its body or its exit, as its counter decides at run time: either.
            Inst::LoopHead { exit, .. } => either(insts, pc + 1, *exit as usize, seen, memo),
            Inst::LoopTail { head, exit, .. } => either(insts, *head as usize, *exit as usize, seen, memo),
            Inst::Atomic(_) | Inst::Match | Inst::SeqAlt { .. } => None,
        };
        seen[pc] = false;
        memo[pc] = Some(result);
        result
    }
    /// The lead of a path going on at `a` or at `b`.
    fn either(insts: &[Inst], a: usize, b: usize, seen: &mut Vec<bool>, memo: &mut Vec<Option<Option<Lead>>>) -> Option<Lead> {
        Some(first(insts, a, seen, memo)?.union(&first(insts, b, seen, memo)?))
    }
    let mut seen = vec![false; insts.len()];
    let mut memo = vec![None; insts.len()];
    (0..insts.len()).map(|pc| first(insts, pc, &mut seen, &mut memo)).collect()
}

/// One route's full regex, ready to run.
#[derive(Clone, Debug)]
pub struct Matcher {
    program: Program,
    slots: usize,
    /// Where the spans can be read off the path instead (see [`SpanPlan`]); for a route the
    /// automaton widens, a [`SpanPlan::verifying`] plan.
    plan: Option<SpanPlan>,
    /// With a verifying plan: each parameter's slot and its own regex's program, run on the
    /// span the plan gives it (shared by the matchers whose routes have that requirement).
    params: Box<[(u32, Arc<ParamProgram>)]>,
}

/// A parameter's regex compiled alone, for [`Matcher::confirm`].
#[derive(Debug)]
pub(crate) struct ParamProgram {
    program: Program,
    /// The same regex decided without backtracking, when its shape allows (see [`PieceCheck`]).
    pieces: Option<PieceCheck>,
}

impl ParamProgram {
    fn compile(node: &Node, runs: &mut RunSets) -> ParamProgram {
        let node = node.optimized();
        let mut c = Compiler { insts: Vec::new(), entries: vec![0], regs: 0, in_sub: true, runs };
        c.emit_node(&node);
        let program = c.finish();
        ParamProgram { program, pieces: PieceCheck::compile(&node, runs) }
    }

    /// A parameter regex compiled alone, and its [`PieceCheck`] if its shape has one (tests).
    #[cfg(test)]
    pub(crate) fn for_tests(node: &Node) -> (ParamProgram, bool) {
        let program = ParamProgram::compile(node, &mut RunSets::default());
        let checked = program.pieces.is_some();
        (program, checked)
    }

    /// Whether the regex matches exactly `hay[start..end]`, by the backtracking matcher and,
    /// when the regex has one, by its [`PieceCheck`] (tests compare the two).
    #[cfg(test)]
    pub(crate) fn both_ways(&self, hay: &[u8], start: usize, end: usize) -> (bool, Option<bool>) {
        let mut vm = Vm { prog: &self.program, hay, limit: end, steps: 0, budget: DEFAULT_STEP_BUDGET, regs: vec![0; self.program.regs] };
        let by_program = vm.run_with(0, start, &mut [], Some(end), &mut Vec::new()).expect("within the step budget").is_some();
        (by_program, self.pieces.as_ref().map(|p| p.matches(hay, start, end)))
    }

    /// Its [`PieceCheck`]'s [`segment_counts`](PieceCheck::segment_counts), if it has one (tests).
    #[cfg(test)]
    pub(crate) fn segment_counts(&self, hay: &[u8], start: usize) -> Option<std::ops::RangeInclusive<usize>> {
        self.pieces.as_ref().map(|p| p.segment_counts(hay, start))
    }
}

enum Frame {
    Resume {
        pc: u32,
        pos: usize,
    },
    RestoreSlot {
        slot: u32,
        old: Option<usize>,
    },
    RestoreReg {
        reg: u32,
        old: usize,
    },
    /// Greedy: try `count - 1` bytes next; lazy: try `count + 1` (up to `limit`).
    Repeat {
        pc: u32,
        start: usize,
        count: usize,
        min: usize,
        limit: usize,
        greedy: bool,
    },
    /// Try the literal runs after `index` at `pos`.
    Runs {
        pc: u32,
        pos: usize,
        index: usize,
    },
}

impl Matcher {
    pub fn new(node: Node, slots: usize) -> Self {
        Self::new_sharing(&node, slots, &mut RunSets::default())
    }

    /// [`Matcher::new`], sharing its literal-run sets (reserved-word lists) with the other
    /// matchers compiled with `runs` (see [`crate::shared_runs`]).
    pub(crate) fn new_sharing(node: &Node, slots: usize, runs: &mut RunSets) -> Self {
        Self::for_route(node, slots, runs, true)
    }

    /// [`Matcher::new_sharing`] for a route whose regex the automaton decides exactly
    /// (`exact`: its spans may be read off a path it matched) or widens (a verifying plan, when
    /// the route's shape allows one, decides whether it matches: see [`Matcher::confirm`]).
    pub(crate) fn for_route(node: &Node, slots: usize, runs: &mut RunSets, exact: bool) -> Self {
        let mut plan = if exact { SpanPlan::new(node, slots) } else { SpanPlan::verifying(node, slots) };
        let node = node.optimized();
        let mut c = Compiler { insts: Vec::new(), entries: vec![0], regs: 0, in_sub: false, runs };
        c.emit_node(&node);
        let mut params = Vec::new();
        if plan.as_ref().is_some_and(SpanPlan::is_verifying) {
            let mut captures = Vec::new();
            collect_captures(&node, &mut captures);
            let mut slots_seen = vec![false; slots];
            let distinct = captures.iter().all(|(slot, _)| (*slot as usize) < slots && !std::mem::replace(&mut slots_seen[*slot as usize], true));
            if distinct {
                // A parameter that is one class repeated is decided by the plan's own class
                // check: no program to run.
                params = captures
                    .into_iter()
                    .filter(|(_, inner)| !span_plan::checks_as_class(inner))
                    .map(|(slot, inner)| (slot, c.runs.param_program(inner, |runs| ParamProgram::compile(inner, runs))))
                    .collect();
            } else {
                plan = None;
            }
        }
        Matcher { program: c.finish(), slots, plan, params: params.into_boxed_slice() }
    }

    /// Whether `hay` matches, with the spans, for a path an automaton proposed this route for:
    /// a verifying plan's answer when it has one (each parameter's regex run on its span
    /// only), else the whole regex run ([`Matcher::captures`]).
    pub fn confirm(&self, hay: &[u8]) -> Result<Option<Spans>, BudgetExceeded> {
        let Some(plan) = self.plan.as_ref().filter(|p| p.is_verifying()) else { return self.captures(hay) };
        let budget = DEFAULT_STEP_BUDGET;
        let (mut stack, mut regs, caps) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        regs.clear();
        regs.resize(self.program.regs, 0);
        let mut vm = Vm { prog: &self.program, hay, limit: hay.len(), steps: 0, budget, regs };
        let params = &self.params;
        let segments = |slot: u32, start: usize| {
            let (_, param) = params.iter().find(|(s, _)| *s == slot)?;
            Some(param.pieces.as_ref()?.segment_counts(hay, start))
        };
        let verdict = plan.verify(
            hay,
            |spans, known| {
                for (slot, param) in params.iter() {
                    if Some(*slot) == known {
                        continue;
                    }
                    if let Some((start, end)) = spans[*slot as usize] {
                        if let Some(pieces) = &param.pieces {
                            if !pieces.matches(hay, start, end) {
                                return Ok(false);
                            }
                            continue;
                        }
                        stack.clear();
                        vm.prog = &param.program;
                        vm.regs.clear();
                        vm.regs.resize(param.program.regs, 0);
                        vm.limit = end;
                        if vm.run_with(0, start, &mut [], Some(end), &mut stack)?.is_none() {
                            return Ok(false);
                        }
                    }
                }
                Ok(true)
            },
            segments,
        );
        stack.clear();
        SCRATCH.with(|s| *s.borrow_mut() = (stack, vm.regs, caps));
        match verdict.map_err(|()| BudgetExceeded { budget })? {
            Verdict::Match(spans) => Ok(Some(spans)),
            Verdict::NoMatch => Ok(None),
            Verdict::Undecided => self.captures(hay),
        }
    }

    /// The parameter spans of a path this regex is known to match (the automaton decided it
    /// exactly): read off the path where the route's shape forces them, else found by running
    /// the program.
    pub fn known_match_spans(&self, hay: &[u8]) -> Result<Option<Spans>, BudgetExceeded> {
        // No parameter, nothing to find (a route mounted at `/`, which has no plan: on GitLab
        // CE's recorded requests a fifth of the answers, each ran the whole program for none).
        if self.slots == 0 {
            return Ok(Some(Vec::new()));
        }
        match self.plan.as_ref().and_then(|plan| plan.spans(hay)) {
            Some(spans) => Ok(Some(spans)),
            None => self.captures(hay),
        }
    }

    /// Matches from the start of `hay`; on success returns the parameter spans.
    pub fn captures(&self, hay: &[u8]) -> Result<Option<Spans>, BudgetExceeded> {
        self.captures_with_budget(hay, DEFAULT_STEP_BUDGET)
    }

    pub fn captures_with_budget(&self, hay: &[u8], budget: u64) -> Result<Option<Spans>, BudgetExceeded> {
        // Reuse this thread's buffers: three allocations per match were a tenth of its cost.
        let (mut stack, mut regs, mut caps) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        regs.clear();
        regs.resize(self.program.regs, 0);
        caps.clear();
        caps.resize(self.slots * 2, None);
        stack.clear();
        let mut vm = Vm { prog: &self.program, hay, limit: hay.len(), steps: 0, budget, regs };
        let outcome = vm.run_with(self.program.entries[0], 0, &mut caps, None, &mut stack);
        let spans = outcome.map(|found| {
            found.map(|_| {
                caps.chunks(2)
                    .map(|pair| match (pair[0], pair[1]) {
                        (Some(s), Some(e)) => Some((s, e)),
                        _ => None,
                    })
                    .collect::<Spans>()
            })
        });
        stack.clear();
        SCRATCH.with(|s| *s.borrow_mut() = (stack, vm.regs, caps));
        spans.map_err(|()| BudgetExceeded { budget })
    }
}

struct Compiler<'r> {
    insts: Vec<Inst>,
    entries: Vec<u32>,
    regs: usize,
    /// Inside a look-around or atomic body, which never captures parameters.
    in_sub: bool,
    runs: &'r mut RunSets,
}

impl Compiler<'_> {
    fn pc(&self) -> u32 {
        self.insts.len() as u32
    }

    /// Compiles `node` as a separate program (look-around and atomic bodies); returns its entry.
    /// Ends the main program with its `Match` and makes it a [`Program`].
    fn finish(mut self) -> Program {
        self.insts.push(Inst::Match);
        // Held for the classifier's lifetime: drop the growth slack (a third of the
        // instructions' bytes on GitLab CE's table).
        self.insts.shrink_to_fit();
        self.entries.shrink_to_fit();
        let first = FirstSets::intern(first_sets(&self.insts));
        Program { insts: self.insts, entries: self.entries, regs: self.regs, first }
    }

    fn sub_program(&mut self, node: &Node) -> u32 {
        // Sub-programs are laid out after a jump over them, so the main flow skips them.
        let jump = self.pc();
        self.insts.push(Inst::Jmp(0));
        let entry = self.pc();
        let outer = std::mem::replace(&mut self.in_sub, true);
        self.emit_node(node);
        self.in_sub = outer;
        self.insts.push(Inst::Match);
        let after = self.pc();
        self.insts[jump as usize] = Inst::Jmp(after);
        self.entries.push(entry);
        entry
    }

    fn emit_node(&mut self, node: &Node) {
        match node {
            Node::Empty => {}
            Node::Class(set) => self.insts.push(Inst::Class(*set)),
            Node::Seq(sets) => self.insts.push(Inst::Seq(sets.clone().into_boxed_slice())),
            Node::SeqAlt(set) => {
                let at = self.pc();
                self.insts.push(Inst::SeqAlt { set: self.runs.share(set), next: at + 1 });
            }
            Node::Concat(items) => items.iter().for_each(|n| self.emit_node(n)),
            Node::Alt(alts) => {
                // Split(a, next) ; a ; Jmp end ; next: Split(b, ...) ...
                let mut jumps = Vec::new();
                for (i, alt) in alts.iter().enumerate() {
                    if i + 1 < alts.len() {
                        let split = self.pc();
                        self.insts.push(Inst::Split { first: split + 1, second: 0 });
                        self.emit_node(alt);
                        jumps.push(self.pc());
                        self.insts.push(Inst::Jmp(0));
                        let next = self.pc();
                        self.insts[split as usize] = Inst::Split { first: split + 1, second: next };
                    } else {
                        self.emit_node(alt);
                    }
                }
                let end = self.pc();
                for j in jumps {
                    self.insts[j as usize] = Inst::Jmp(end);
                }
            }
            Node::Repeat { node: inner, min, max, greedy } => {
                if let Node::Class(set) = &**inner {
                    self.insts.push(Inst::ClassRepeat { set: *set, min: *min, max: max.unwrap_or(INFINITE), greedy: *greedy });
                    return;
                }
                if *min == 0 && *max == Some(1) {
                    // x? : Split(x, end) greedy, Split(end, x) lazy.
                    let split = self.pc();
                    self.insts.push(Inst::Split { first: 0, second: 0 });
                    let body = self.pc();
                    self.emit_node(inner);
                    let end = self.pc();
                    self.insts[split as usize] = if *greedy { Inst::Split { first: body, second: end } } else { Inst::Split { first: end, second: body } };
                    return;
                }
                let reg = self.regs as u32;
                self.regs += 2;
                self.insts.push(Inst::LoopEnter { reg });
                let head = self.pc();
                self.insts.push(Inst::LoopHead { reg, min: *min, max: max.unwrap_or(INFINITE), greedy: *greedy, exit: 0 });
                self.emit_node(inner);
                let tail = self.pc();
                self.insts.push(Inst::LoopTail { reg, head, exit: 0 });
                let exit = self.pc();
                self.insts[head as usize] = Inst::LoopHead { reg, min: *min, max: max.unwrap_or(INFINITE), greedy: *greedy, exit };
                self.insts[tail as usize] = Inst::LoopTail { reg, head, exit };
            }
            Node::Atomic(inner) => {
                let entry = self.sub_program(inner);
                self.insts.push(Inst::Atomic(entry));
            }
            Node::Look { behind, negate, node: inner } => match (look_runs(inner, *behind, self.runs), behind) {
                (Some(set), true) => self.insts.push(Inst::BehindRuns { negate: *negate, set }),
                (Some(set), false) => self.insts.push(Inst::AheadRuns { negate: *negate, set }),
                (None, false) => {
                    let entry = self.sub_program(inner);
                    self.insts.push(Inst::Look { negate: *negate, behind: false, progs: Box::new([(entry, 0)]) });
                }
                (None, true) => {
                    let alts: Vec<&Node> = match &**inner {
                        Node::Alt(alts) => alts.iter().collect(),
                        single => vec![single],
                    };
                    // The parser only accepts fixed-length look-behind alternatives.
                    let progs: Vec<(u32, usize)> = alts.into_iter().filter_map(|a| a.fixed_len().map(|len| (self.sub_program(a), len))).collect();
                    self.insts.push(Inst::Look { negate: *negate, behind: true, progs: progs.into_boxed_slice() });
                }
            },
            Node::Assert(a) => self.insts.push(Inst::Assert(*a)),
            Node::Capture { node: inner, .. } if self.in_sub => self.emit_node(inner),
            Node::Capture { slot, node: inner } => {
                self.insts.push(Inst::Save(*slot as u32 * 2));
                self.emit_node(inner);
                self.insts.push(Inst::Save(*slot as u32 * 2 + 1));
            }
        }
    }
}

/// A look-around body as the shared literal runs it checks in place, when it is made of them:
/// a look-behind over one class, one run or run alternatives (`(?<=/)`, `(?<!\.git|\.atom)`), a look-ahead over a
/// sequence of classes, runs and run alternatives that expands into at most [`MAX_LOOK_RUNS`]
/// runs (`(?!(admin|api|...)/)`). `None`: the body runs as a program.
pub(crate) fn look_runs(body: &Node, behind: bool, runs: &mut RunSets) -> Option<Arc<RunSet>> {
    match (body, behind) {
        (Node::SeqAlt(set), true) => Some(runs.share(set)),
        (Node::Seq(run), true) => Some(runs.share_owned(RunSet::new(vec![run.clone()]))),
        (Node::Class(set), true) => Some(runs.share_owned(RunSet::new(vec![vec![*set]]))),
        (Node::Concat(_) | Node::Seq(_) | Node::SeqAlt(_) | Node::Class(_), false)
            if literal_items(body).iter().all(|i| matches!(i, Node::Seq(_) | Node::Class(_) | Node::SeqAlt(_))) =>
        {
            runs.expansion(literal_items(body), |items| expand_runs(items, MAX_LOOK_RUNS).map(RunSet::new))
        }
        _ => None,
    }
}

/// Whether one of `set`'s runs ends at `pos` of `hay` (a look-behind over literal runs).
#[inline]
pub(crate) fn run_ends_at(set: &RunSet, hay: &[u8], pos: usize) -> bool {
    (pos > 0 && set.last.contains(hay[pos - 1])) && set.runs.iter().any(|run| run.len() <= pos && seq_matches_at(run, hay, pos - run.len()))
}

pub(crate) fn literal_items(node: &Node) -> &[Node] {
    match node {
        Node::Concat(items) => items,
        single => std::slice::from_ref(single),
    }
}

/// The literal runs a sequence of classes, runs and run-alternatives spells, in priority order,
/// if there are at most `limit` of them.
pub(crate) fn expand_runs(items: &[Node], limit: usize) -> Option<Vec<Vec<ByteSet>>> {
    let mut runs: Vec<Vec<ByteSet>> = vec![Vec::new()];
    for item in items {
        let options: Vec<Vec<ByteSet>> = match item {
            Node::Class(set) => vec![vec![*set]],
            Node::Seq(sets) => vec![sets.clone()],
            Node::SeqAlt(set) => set.runs.clone(),
            _ => return None,
        };
        if runs.len() * options.len() > limit {
            return None;
        }
        runs = runs
            .iter()
            .flat_map(|prefix| {
                options.iter().map(move |o| {
                    let mut r = prefix.clone();
                    r.extend_from_slice(o);
                    r
                })
            })
            .collect();
    }
    Some(runs)
}

type Scratch = (Vec<Frame>, Vec<usize>, Vec<Option<usize>>);

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

struct Vm<'p, 'h> {
    prog: &'p Program,
    hay: &'h [u8],
    /// Where consuming stops: `hay.len()`, or the end of the span a parameter's own regex is
    /// checked on ([`Matcher::confirm`]) — look-arounds and assertions still see all of `hay`,
    /// as they do inside the route's regex.
    limit: usize,
    steps: u64,
    budget: u64,
    regs: Vec<usize>,
}

#[inline]
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn assertion_holds(a: Assertion, hay: &[u8], pos: usize) -> bool {
    let len = hay.len();
    match a {
        Assertion::StartText => pos == 0,
        Assertion::EndText => pos == len,
        Assertion::EndTextOptionalNewline => pos == len || (pos + 1 == len && hay[pos] == b'\n'),
        Assertion::StartLine => pos == 0 || hay[pos - 1] == b'\n',
        Assertion::EndLine => pos == len || hay[pos] == b'\n',
        Assertion::WordBoundary | Assertion::NotWordBoundary => {
            let before = pos > 0 && is_word(hay[pos - 1]);
            let after = pos < len && is_word(hay[pos]);
            (before != after) == (a == Assertion::WordBoundary)
        }
    }
}

impl Vm<'_, '_> {
    /// Runs from `pc` at `pos` to the first `Match` (at `target`, if given). `Err` when the
    /// budget ran out. Captures are written into `caps` (and undone on backtracking).
    fn run(&mut self, pc: u32, pos: usize, caps: &mut [Option<usize>], target: Option<usize>) -> Result<Option<usize>, ()> {
        self.run_with(pc, pos, caps, target, &mut Vec::new())
    }

    /// The repeat count in `from..=to` to try first (greedy: the largest) after which the
    /// instruction at `pc` can start at `start + count`, per its static first-byte set; `None`
    /// when no count can be followed. Skipped counts would fail at their first step.
    #[inline]
    fn next_viable(&self, pc: usize, start: usize, from: usize, to: usize, greedy: bool) -> Option<usize> {
        if from > to {
            return None;
        }
        let Some(leads) = self.leads(pc) else {
            return Some(if greedy { to } else { from });
        };
        // Looked up once: a glob may try every count.
        // The consumable bytes only: a lead that needs a byte past the limit cannot start.
        let hay = &self.hay[..self.limit];
        let fits = |count: usize| leads.admit(hay, start + count);
        if greedy {
            (from..=to).rev().find(|&c| fits(c))
        } else {
            (from..=to).find(|&c| fits(c))
        }
    }

    /// Whether the path from instruction `pc` can start at `pos` (see [`Vm::leads`]).
    #[inline]
    fn can_start(&self, pc: usize, pos: usize) -> bool {
        self.leads(pc).is_none_or(|leads| leads.admit(&self.hay[..self.limit], pos))
    }

    /// What the path from instruction `pc` needs where it starts: its lead and, for a one-byte
    /// class, the lead of what follows it one byte on — a segment's last-byte class
    /// (`[a-zA-Z0-9_-]` in GitLab's namespace regex) admits nearly every byte, but what
    /// follows it wants a `/`. `None` when its lead is not known.
    #[inline]
    fn leads(&self, pc: usize) -> Option<Leads<'_>> {
        let lead = self.prog.first.get(pc)?;
        let then = if matches!(self.prog.insts[pc], Inst::Class(_)) { self.prog.first.get(pc + 1) } else { None };
        Some(Leads { lead, then })
    }

    fn run_with(&mut self, pc: u32, pos: usize, caps: &mut [Option<usize>], target: Option<usize>, stack: &mut Vec<Frame>) -> Result<Option<usize>, ()> {
        let insts = &self.prog.insts;
        let hay = self.hay;
        // What consuming instructions may take (assertions and look-arounds see all of `hay`).
        let span = &hay[..self.limit];
        let mut pc = pc as usize;
        let mut pos = pos;
        loop {
            self.steps += 1;
            if self.steps > self.budget {
                return Err(());
            }
            let ok = match &insts[pc] {
                Inst::Class(set) => {
                    if pos < span.len() && set.contains(span[pos]) {
                        pos += 1;
                        pc += 1;
                        true
                    } else {
                        false
                    }
                }
                Inst::Seq(sets) => {
                    if seq_matches_at(sets, span, pos) {
                        pos += sets.len();
                        pc += 1;
                        true
                    } else {
                        false
                    }
                }
                Inst::SeqAlt { set, next } => match next_run(set, span, pos, 0) {
                    Some((i, len)) => {
                        stack.push(Frame::Runs { pc: pc as u32, pos, index: i + 1 });
                        pos += len;
                        pc = *next as usize;
                        true
                    }
                    None => false,
                },
                Inst::ClassRepeat { set, min, max, greedy } => {
                    let limit = (*max as usize).min(span.len().saturating_sub(pos));
                    let run = span[pos..pos + limit].iter().take_while(|&&b| set.contains(b)).count();
                    let min = *min as usize;
                    // Only counts after which what follows can start are tried: a lazy glob
                    // followed by `/` stops at each `/` rather than at every byte.
                    let first = if run < min { None } else { self.next_viable(pc + 1, pos, min, run, *greedy) };
                    match first {
                        None => false,
                        Some(count) => {
                            let more = if *greedy { count > min } else { count < run };
                            if more {
                                stack.push(Frame::Repeat { pc: pc as u32 + 1, start: pos, count, min, limit: run, greedy: *greedy });
                            }
                            pos += count;
                            pc += 1;
                            true
                        }
                    }
                }
                Inst::Split { first, second } => {
                    let can = |target: u32| self.can_start(target as usize, pos);
                    match (can(*first), can(*second)) {
                        (true, true) => {
                            stack.push(Frame::Resume { pc: *second, pos });
                            pc = *first as usize;
                            true
                        }
                        (true, false) => {
                            pc = *first as usize;
                            true
                        }
                        (false, true) => {
                            pc = *second as usize;
                            true
                        }
                        (false, false) => false,
                    }
                }
                Inst::Jmp(to) => {
                    pc = *to as usize;
                    true
                }
                Inst::Save(slot) => {
                    stack.push(Frame::RestoreSlot { slot: *slot, old: caps[*slot as usize] });
                    caps[*slot as usize] = Some(pos);
                    pc += 1;
                    true
                }
                Inst::Assert(a) => {
                    if assertion_holds(*a, hay, pos) {
                        pc += 1;
                        true
                    } else {
                        false
                    }
                }
                Inst::BehindRuns { negate, set } => {
                    if run_ends_at(set, hay, pos) != *negate {
                        pc += 1;
                        true
                    } else {
                        false
                    }
                }
                Inst::AheadRuns { negate, set } => {
                    let found = next_run(set, hay, pos, 0).is_some();
                    if found != *negate {
                        pc += 1;
                        true
                    } else {
                        false
                    }
                }
                Inst::Look { negate, behind, progs } => {
                    let mut found = false;
                    for &(entry, len) in progs.iter() {
                        let (start, target) = if *behind {
                            if len > pos {
                                continue;
                            }
                            (pos - len, Some(pos))
                        } else {
                            (pos, None)
                        };
                        // A look-around sees past the span a parameter is checked on.
                        let limit = std::mem::replace(&mut self.limit, hay.len());
                        let seen = self.run(entry, start, &mut [], target);
                        self.limit = limit;
                        if seen?.is_some() {
                            found = true;
                            break;
                        }
                    }
                    if found != *negate {
                        pc += 1;
                        true
                    } else {
                        false
                    }
                }
                Inst::Atomic(entry) => match self.run(*entry, pos, &mut [], None)? {
                    Some(end) => {
                        pos = end;
                        pc += 1;
                        true
                    }
                    None => false,
                },
                Inst::LoopEnter { reg } => {
                    let r = *reg as usize;
                    stack.push(Frame::RestoreReg { reg: *reg, old: self.regs[r] });
                    self.regs[r] = 0;
                    pc += 1;
                    true
                }
                Inst::LoopHead { reg, min, max, greedy, exit } => {
                    let r = *reg as usize;
                    let count = self.regs[r] as u32;
                    // Remember where this iteration starts, for the empty-iteration check.
                    stack.push(Frame::RestoreReg { reg: *reg + 1, old: self.regs[r + 1] });
                    self.regs[r + 1] = pos;
                    if count < *min {
                        pc += 1;
                    } else if count >= *max {
                        pc = *exit as usize;
                    } else if *greedy {
                        if self.can_start(pc + 1, pos) {
                            stack.push(Frame::Resume { pc: *exit, pos });
                            pc += 1;
                        } else {
                            pc = *exit as usize;
                        }
                    } else {
                        stack.push(Frame::Resume { pc: pc as u32 + 1, pos });
                        pc = *exit as usize;
                    }
                    true
                }
                Inst::LoopTail { reg, head, exit } => {
                    let r = *reg as usize;
                    stack.push(Frame::RestoreReg { reg: *reg, old: self.regs[r] });
                    self.regs[r] += 1;
                    let empty = pos == self.regs[r + 1];
                    pc = if empty && self.regs[r] as u32 >= loop_min(&insts[*head as usize]) { *exit as usize } else { *head as usize };
                    true
                }
                Inst::Match => {
                    if target.is_none_or(|t| t == pos) {
                        return Ok(Some(pos));
                    }
                    false
                }
            };
            if ok {
                continue;
            }
            // Backtrack to the most recent choice point, undoing what came after it.
            loop {
                match stack.pop() {
                    None => return Ok(None),
                    Some(Frame::Resume { pc: p, pos: at }) => {
                        pc = p as usize;
                        pos = at;
                        break;
                    }
                    Some(Frame::RestoreSlot { slot, old }) => caps[slot as usize] = old,
                    Some(Frame::RestoreReg { reg, old }) => self.regs[reg as usize] = old,
                    Some(Frame::Repeat { pc: p, start, count, min, limit, greedy }) => {
                        let (from, to) = if greedy { (min, count - 1) } else { (count + 1, limit) };
                        if let Some(next) = self.next_viable(p as usize, start, from, to, greedy) {
                            let more = if greedy { next > min } else { next < limit };
                            if more {
                                stack.push(Frame::Repeat { pc: p, start, count: next, min, limit, greedy });
                            }
                            pc = p as usize;
                            pos = start + next;
                            break;
                        }
                    }
                    Some(Frame::Runs { pc: p, pos: at, index }) => {
                        let Inst::SeqAlt { set, next } = &insts[p as usize] else { unreachable!("Runs frames come from SeqAlt") };
                        if let Some((i, len)) = next_run(set, span, at, index) {
                            stack.push(Frame::Runs { pc: p, pos: at, index: i + 1 });
                            pc = *next as usize;
                            pos = at + len;
                            break;
                        }
                    }
                }
            }
            self.steps += 1;
        }
    }
}

fn loop_min(head: &Inst) -> u32 {
    match head {
        Inst::LoopHead { min, .. } => *min,
        _ => 0,
    }
}

/// The first run at or after priority `from` that matches at `pos`: (its priority, its length).
#[inline]
pub(crate) fn next_run(set: &RunSet, hay: &[u8], pos: usize, from: usize) -> Option<(usize, usize)> {
    if !set.has_empty_runs() {
        // The common case (word lists): walk the runs indexed under this byte.
        for &i in set.starting_with(*hay.get(pos)?) {
            let i = i as usize;
            if i >= from {
                let run = &set.runs[i];
                if seq_matches_at(run, hay, pos) {
                    return Some((i, run.len()));
                }
            }
        }
        return None;
    }
    set.candidates_from(hay, pos, from).find(|&(_, run)| seq_matches_at(run, hay, pos)).map(|(i, run)| (i, run.len()))
}

impl Program {
    /// Heap bytes of the instructions, entries and first sets, shared run sets already in
    /// `counted` excepted.
    fn heap_bytes(&self, counted: &mut Counted) -> usize {
        use std::mem::size_of;
        let insts: usize = self
            .insts
            .iter()
            .map(|i| match i {
                Inst::Seq(sets) => sets.len() * size_of::<ByteSet>(),
                Inst::SeqAlt { set, .. } | Inst::BehindRuns { set, .. } | Inst::AheadRuns { set, .. } => counted.heap_bytes(set),
                Inst::Look { progs, .. } => progs.len() * size_of::<(u32, usize)>(),
                _ => 0,
            })
            .sum();
        self.insts.capacity() * size_of::<Inst>() + insts + self.entries.capacity() * size_of::<u32>() + self.first.heap_bytes()
    }
}

impl Matcher {
    /// Heap bytes held by the program, the span plan and the parameters' programs (for
    /// `Classifier::memory_usage`), a run set or program shared with matchers already in
    /// `counted` excepted.
    pub(crate) fn heap_bytes(&self, counted: &mut Counted) -> usize {
        use std::mem::size_of;
        let params: usize = self
            .params
            .iter()
            .map(|(_, p)| {
                let shared = if counted.first_time(Arc::as_ptr(p) as usize) {
                    2 * size_of::<usize>() + size_of::<ParamProgram>() + p.program.heap_bytes(counted) + p.pieces.as_ref().map_or(0, |c| c.heap_bytes(counted))
                } else {
                    0
                };
                size_of::<(u32, Arc<ParamProgram>)>() + shared
            })
            .sum();
        self.program.heap_bytes(counted) + self.plan.as_ref().map_or(0, SpanPlan::heap_bytes) + params
    }
}

/// The parameters' captures of a route's regex (at its top level and in its `(.:format)`
/// group), with their regexes, in order.
fn collect_captures<'n>(node: &'n Node, out: &mut Vec<(u32, &'n Node)>) {
    match node {
        Node::Capture { slot, node } => out.push((*slot as u32, node)),
        Node::Concat(items) | Node::Alt(items) => items.iter().for_each(|n| collect_captures(n, out)),
        Node::Repeat { node, .. } => collect_captures(node, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruby_regex::parse::parse;

    fn capture_all(src: &str, hay: &str) -> Option<(usize, usize)> {
        let node = Node::Concat(vec![Node::Capture { slot: 0, node: Box::new(parse(src, 0).unwrap()) }, Node::Assert(Assertion::EndText)]);
        Matcher::new(node, 1).captures(hay.as_bytes()).unwrap().map(|c| c[0].unwrap())
    }

    #[test]
    fn look_around_sees_past_the_capture() {
        let ns = r"(?!(admin|api)/)[a-z]+(?:/[a-z]+)*";
        assert!(capture_all(ns, "admin/x").is_none());
        assert_eq!(capture_all(ns, "admin"), Some((0, 5)));
        assert_eq!(capture_all(ns, "admins/x"), Some((0, 8)));
        assert!(capture_all(r"[a-z.]+(?<!\.git|\.atom)", "foo.git").is_none());
        assert!(capture_all(r"[a-z.]+(?<!\.git|\.atom)", "foo.atom").is_none());
        assert!(capture_all(r"[a-z.]+(?<!\.git|\.atom)", "foo.gitx").is_some());
        assert!(capture_all(r"[a-z]+(?<=o|ab)", "foo").is_some());
        assert!(capture_all(r"[a-z]+(?<=o|ab)", "fox").is_none());
        assert!(capture_all(r"(?=[a-z]+\d)[a-z0-9]+", "abc1").is_some());
        assert!(capture_all(r"(?=[a-z]+\d)[a-z0-9]+", "abc").is_none());
    }

    #[test]
    fn greedy_lazy_atomic_and_counted_loops() {
        // Lazy glob before an optional format: the glob stops as early as the rest allows.
        let node = Node::Concat(vec![
            Node::Capture { slot: 0, node: Box::new(parse(r".+?", 0).unwrap()) },
            parse(r"(?:\.([a-z]+))?", 0).unwrap(),
            Node::Assert(Assertion::EndText),
        ]);
        let spans = Matcher::new(node, 1).captures(b"a/b.json").unwrap().unwrap();
        assert_eq!(spans[0], Some((0, 3)));
        assert!(capture_all(r"(?>a+)a", "aaa").is_none(), "atomic groups do not give back");
        assert!(capture_all(r"a++a", "aaa").is_none(), "possessive quantifiers do not give back");
        assert_eq!(capture_all(r"(?:ab){2,3}", "ababab"), Some((0, 6)));
        assert!(capture_all(r"(?:ab){2,3}", "ab").is_none());
        assert_eq!(capture_all(r"(?:a|ab)(?:c|bcd)", "abcd"), Some((0, 4)));
        assert_eq!(capture_all(r"(?:a*)*b", "aab"), Some((0, 3)), "empty iterations end the loop");
    }

    /// A route's regex: each `(source, captured)` in turn, then `\Z`.
    fn route(parts: &[(&str, bool)]) -> Matcher {
        let mut items = Vec::new();
        let mut slot = 0;
        for &(src, captured) in parts {
            let node = parse(src, 0).unwrap();
            items.push(if captured {
                slot += 1;
                Node::Capture { slot: slot - 1, node: Box::new(node) }
            } else {
                node
            });
        }
        items.push(Node::Assert(Assertion::EndTextOptionalNewline));
        Matcher::new(Node::Concat(items), slot)
    }

    /// The leads prune what cannot match, never what can: a lazy glob before `(.:format)\Z`
    /// stops only before a `.`, the end, or a final newline; a greedy namespace loop gives
    /// back whole segments only. A budget the search without leads exceeds (it took 4 to 7
    /// steps per byte given back) shows the pruning happens.
    #[test]
    fn leads_prune_only_what_cannot_match() {
        let glob = route(&[(r"/", false), (r".+?", true), (r"(?:\.([^/.]+))?", false)]);
        let spans = |m: &Matcher, hay: &str, budget: u64| m.captures_with_budget(hay.as_bytes(), budget).unwrap();
        assert_eq!(spans(&glob, "/a/b.c/d.json", 100), Some(vec![Some((1, 8))]));
        assert_eq!(spans(&glob, "/a/b\n", 100), Some(vec![Some((1, 4))]), "`\\Z` before a final newline");
        assert_eq!(spans(&glob, "/a.b\n", 100), Some(vec![Some((1, 2))]));
        assert_eq!(spans(&glob, "/a\n\n", 100), None);
        let long = format!("/{}.json", "x".repeat(300));
        assert_eq!(spans(&glob, &long, 40), Some(vec![Some((1, 301))]));

        let segment = r"[a-z.][a-z.\-]{0,254}[a-z\-]|[a-z]";
        let namespace = format!("(?:{segment})(?:/(?:{segment}))*");
        let ns = route(&[(r"/", false), (&namespace, true), (r"/", false), (r"[a-z]+", true), (r"/-/x", false)]);
        assert_eq!(spans(&ns, "/ab-c/d/e.f/p/-/x", 200), Some(vec![Some((1, 11)), Some((12, 13))]));
        assert_eq!(spans(&ns, "/a/p/-/x\n", 200), Some(vec![Some((1, 2)), Some((3, 4))]));
        assert_eq!(spans(&ns, "/a./p/-/x", 200), None, "a segment cannot end in `.`");
        let deep = format!("/{}p/-/x", "abcdefghij/".repeat(20));
        assert_eq!(spans(&ns, &deep, 600), Some(vec![Some((1, 220)), Some((221, 222))]));
    }

    #[test]
    fn catastrophic_backtracking_is_cut_off() {
        let node = parse(r"(?:a+)+b", 0).unwrap();
        let hay = "a".repeat(40);
        assert_eq!(Matcher::new(node, 0).captures(hay.as_bytes()), Err(BudgetExceeded { budget: DEFAULT_STEP_BUDGET }));
    }

    #[test]
    fn deep_repetition_does_not_overflow_the_stack() {
        let node = parse(r"(?:/[a-z])*\z", 0).unwrap();
        let hay = "/a".repeat(50_000);
        let handle =
            std::thread::Builder::new().stack_size(64 * 1024).spawn(move || Matcher::new(node, 0).captures(hay.as_bytes()).unwrap().is_some()).unwrap();
        assert!(handle.join().unwrap());
    }
}
