//! The piece check against the backtracking matcher, on GitLab's own requirements and on
//! shapes at the edges of what it accepts.

use crate::matcher::ParamProgram;
use crate::ruby_regex::parse::parse;

/// GitLab's `PathRegex.full_namespace_route_regex` and `project_route_regex`, as GitLab CE's
/// route table (`../shared/corpus/gitlab-ce.routes.json`) holds them.
const NAMESPACE: &str = r"(?-mix:(?!((?i-mx:\-|\.well\-known|404\.html|422\.html|500\.html|502\.html|503\.html|admin|api|apple\-touch\-icon\.png|assets|dashboard|deploy\.html|explore|favicon\.ico|favicon\.png|files|groups|health_check|help|import|jwt|login|oauth|profile|projects|public|robots\.txt|s|search|sitemap|sitemap\.xml|sitemap\.xml\.gz|slash\-command\-logo\.png|snippets|unsubscribes|uploads|users|v2))\/)(?-mix:(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]{0,254}[a-zA-Z0-9_\-]|[a-zA-Z0-9_])(?-mix:(?<!\.git|\.atom))))(?:/(?!(?i-mx:\-|badges|blame|blob|builds|commits|create|create_dir|edit|environments\/folders|files|find_file|gitlab\-lfs\/objects|info\/lfs\/objects|new|preview|raw|refs|tree|update|wikis)/)(?-mix:(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]{0,254}[a-zA-Z0-9_\-]|[a-zA-Z0-9_])(?-mix:(?<!\.git|\.atom))))*";
const PROJECT: &str = r"(?!((?i-mx:\-|badges|blame|blob|builds|commits|create|create_dir|edit|environments\/folders|files|find_file|gitlab\-lfs\/objects|info\/lfs\/objects|new|preview|raw|refs|tree|update|wikis))/)(?-mix:(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]{0,254})(?-mix:(?<!\.git|\.atom)))";

fn program(source: &str) -> (ParamProgram, bool) {
    ParamProgram::for_tests(&parse(source, 0).unwrap_or_else(|e| panic!("{source}: {e}")))
}

/// Pieces the generated paths are made of: reserved words in both cases, `.git`/`.atom`
/// endings, the characters at the classes' edges, a newline and non-ASCII bytes.
const PARTS: &[&str] = &[
    "a",
    "Z",
    "0",
    "_",
    "-",
    ".",
    "/",
    "gitlab-org",
    "gitlab",
    "admin",
    "Admin",
    "api",
    "s",
    "-",
    "new",
    "NEW",
    "tree",
    "environments",
    "folders",
    "info",
    "lfs",
    "objects",
    ".git",
    ".atom",
    "git",
    "atom",
    "x.json",
    "\n",
    "é",
    "%2F",
    "?",
    "sitemap.xml",
    "v2",
];

/// Deterministic paths: every span of each is checked, with what surrounds it visible to the
/// look-arounds.
fn paths() -> Vec<Vec<u8>> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut out = Vec::new();
    for _ in 0..1500 {
        let mut path = Vec::new();
        for _ in 0..1 + next(6) {
            path.extend_from_slice(PARTS[next(PARTS.len())].as_bytes());
        }
        out.push(path);
    }
    // At the repeat's bound: 1 + 254 + 1 bytes fit the namespace's first alternative, 257 do not.
    for len in [255, 256, 257] {
        out.push(vec![b'a'; len]);
        out.push([vec![b'a'; len], b"/b".to_vec()].concat());
    }
    out
}

fn agree(source: &str) -> usize {
    let (program, checked) = program(source);
    assert!(checked, "{source} should have a piece check");
    let mut matched = 0;
    for path in paths() {
        for start in 0..=path.len() {
            for end in start..=path.len() {
                let (by_program, by_pieces) = program.both_ways(&path, start, end);
                assert_eq!(Some(by_program), by_pieces, "{source} on {:?} [{start}..{end}]", String::from_utf8_lossy(&path));
                matched += by_program as usize;
            }
        }
    }
    matched
}

/// `segment_counts` from every start of every generated path (joined with `/`s, so they have
/// segments to count) holds exactly the numbers of whole segments the backtracking matcher
/// matches; checked to fail with its range one longer.
#[test]
fn segment_counts_are_the_prefixes_the_matcher_matches() {
    let mut counted = 0;
    for source in [NAMESPACE, PROJECT, r"[a-z]+(?:/[a-z]+){1,2}", r"g(?:/i)*", r"(?:[a-z][a-z.]*(?<!\.git))(?:/(?!new/|tree/)[a-z.]+)*?"] {
        let (program, checked) = program(source);
        assert!(checked, "{source}");
        let mut all = paths();
        // Long runs of plain segments, for the loops' upper bounds.
        all.extend([&b"a/b/c"[..], b"d/e", b"g/i/i", b"i/i/i", b"ab/cd", b"ef/gh"].map(<[u8]>::to_vec));
        for pair in all.chunks(2) {
            let path = pair.join(&b'/');
            for start in 0..=path.len() {
                // Where the first, second... segment from `start` ends.
                let mut ends: Vec<usize> = path[start..].iter().enumerate().filter(|(_, &b)| b == b'/').map(|(i, _)| start + i).collect();
                ends.push(path.len());
                let counts = program.segment_counts(&path, start).expect("a piece check");
                for (i, &end) in ends.iter().enumerate() {
                    let (by_program, _) = program.both_ways(&path, start, end);
                    assert_eq!(by_program, counts.contains(&(i + 1)), "{source} on {:?} from {start}, {} segments", String::from_utf8_lossy(&path), i + 1);
                    counted += by_program as usize;
                }
            }
        }
    }
    assert!(counted > 10_000, "{counted}");
}

#[test]
fn agrees_with_the_matcher_on_gitlabs_namespace_regex() {
    // Not vacuous: many spans match, many do not.
    assert!(agree(NAMESPACE) > 10_000);
}

#[test]
fn agrees_with_the_matcher_on_gitlabs_project_regex() {
    assert!(agree(PROJECT) > 10_000);
}

#[test]
fn agrees_on_other_accepted_shapes() {
    for source in [
        r"[a-z]+(?:/[a-z]+){1,2}",
        r"(?=ab)[a-z]{2,4}",
        r"(?<=/)[a-z0-9]x?",
        r"(?:abc|[0-9]{3,}|)(?!/)",
        r"(?:[a-z][a-z.]*(?<!\.git))(?:/(?!new/|tree/)[a-z.]+)*?",
        r"g(?:/i)*",
    ] {
        assert!(agree(source) > 0, "{source} never matched");
    }
}

#[test]
fn refuses_shapes_it_cannot_decide_piece_by_piece() {
    for source in [
        // A consuming class that takes a `/`: the pieces are no longer the bytes between `/`s.
        r"[a-z/]+",
        r".+",
        // Two repeats in one alternative, a look-around between consuming items, anchors.
        r"[a-z]+[0-9]+",
        r"[a-z](?=b)[a-z]",
        r"\A[a-z]+",
        // A look-around whose body is not literal runs.
        r"(?![a-z]+/)[a-z]+",
        // A loop not led by `/`.
        r"[a-z]+(?:-[a-z]+)*",
    ] {
        assert!(!program(source).1, "{source} should get no piece check");
    }
}
