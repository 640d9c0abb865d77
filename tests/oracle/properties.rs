//! Properties: the crate's classifier agrees with the oracle on generated paths and random tables.

use std::collections::BTreeMap;

use cells_learn::{Classifier, Requirement, RouteDef};
use proptest::prelude::*;
use proptest::sample::select;

use crate::corpus::*;
use crate::oracle::*;
use crate::oracle_checks::*;
use crate::paths::*;

pub(crate) fn gitlabish_generated(cases: u32, force_newline: bool) {
    let defs = gitlabish_routes();
    let words = spec_words(&defs);
    let specs: Vec<Vec<Spec>> = defs.iter().map(|d| parse_spec(&d.path).unwrap()).collect();
    let oracle = Oracle::new(&defs).unwrap();
    let layouts = both_layouts(&defs).unwrap();
    let strategy = request_gen(words.clone()).prop_map(move |g| {
        let mut r = g.request(&defs, &specs, &words);
        if force_newline {
            r.path.push(b'\n');
        }
        r
    });
    check("gitlabish table, generated paths", cases, strategy, |r| layouts.iter().try_for_each(|classifier| compare(classifier, &oracle, r.method, &r.path)));
}

/// The table built both ways routes are split between automata: by first segment into dense
/// DFAs (small tables, `auto`), and by any literal segment into lazy DFAs (large tables, `lazy`).
pub(crate) fn both_layouts(defs: &[RouteDef]) -> Result<[Classifier; 2], String> {
    let lazy =
        cells_learn::BuildOptions { engine: cells_learn::EngineConfig { kind: cells_learn::EngineKind::Lazy, ..Default::default() }, ..Default::default() };
    Ok([Classifier::new(defs.to_vec()).map_err(|e| e.to_string())?, Classifier::build(defs.to_vec(), &lazy).map_err(|e| e.to_string())?])
}

/// GitLab-ish paths and paths filled in from the corpus' own routes, under every common verb.
#[test]
fn gitlabish_table_agrees_with_oracle_on_generated_paths() {
    gitlabish_generated(5_000, false);
}

/// The same, each path ending in a newline (Ruby's `\Z` and Journey's simulator differ there).
#[test]
fn gitlabish_table_agrees_with_oracle_on_paths_ending_in_newline() {
    gitlabish_generated(2_000, true);
}

/// Short byte strings starting with `/`: all bytes, and bytes from a path-ish alphabet.
#[test]
fn gitlabish_table_agrees_with_oracle_on_random_bytes() {
    let defs = gitlabish_routes();
    let oracle = Oracle::new(&defs).unwrap();
    let layouts = both_layouts(&defs).unwrap();
    let bytes = prop_oneof![prop::collection::vec(any::<u8>(), 0..16), prop::collection::vec(select(b"/.-_~%?\nagitA2F0 ".to_vec()), 0..24),];
    let strategy = (select(METHODS), bytes).prop_map(|(method, b)| Req { method, path: [b"/".as_slice(), &b].concat() });
    check("gitlabish table, random bytes", 5_000, strategy, |r| layouts.iter().try_for_each(|classifier| compare(classifier, &oracle, r.method, &r.path)));
}

/// One entry of the route pool for random tables: spec, requirements, mounted.
pub(crate) struct PoolRoute {
    pub(crate) path: String,
    pub(crate) requirements: BTreeMap<String, Requirement>,
    pub(crate) mounted: bool,
}

pub(crate) fn extra_pool() -> Vec<PoolRoute> {
    let r = |path: &str, list: &[(&str, Requirement)], mounted: bool| PoolRoute { path: path.into(), requirements: reqs(list), mounted };
    vec![
        r("/a(/:b(/:c))", &[], false),
        r("/a(/:b(/:c(.:format)))", &[("c", regex(r"\d+", 0))], false),
        r("/x/:id(.:format)", &[("format", regex("(html|json)", 0))], false),
        r("/*path/raw/:sha", &[], false),
        r("/*path/raw/:sha(.:format)", &[("sha", regex(r"\h{7,40}", 0))], false),
        r("/files/*path(.:format)", &[], false),
        r("/files/*path(.:format)", &[("path", regex(".+", 0))], false),
        r("/x/(rss|atom)/:id", &[], false),
        r("/d/:a-:b", &[], false),
        r("/f/foo:id", &[], false),
        r("/search(.:format)", &[("format", regex("json|html", 0))], false),
        r("/u/:id/:x(.:format)", &[("id", regex("(a|b)(c)?", 0))], false),
        r("/u/:id/:x(.:format)", &[("id", regex("(?:x)(y)", 0)), ("x", regex("(z)", 0))], false),
        r("/v/:version/*rest", &[("version", Requirement::Literal { literal: "v4.x".into() })], false),
        r("(/:locale)/help", &[], false),
        r("/issues/:id", &[("id", regex(r"(?<=issues/)\d+", 0))], false),
        r("/:a/:b", &[("a", regex("[a-z]+(?!/edit)", 0))], false),
        r("/:a/edit", &[], false),
        r("/compare/:from...:to", &[("from", regex(".+", 0)), ("to", regex(".+", 0))], false),
        r("/-/ide/*path", &[], true),
        r("/api/v4", &[], true),
        r("/", &[], true),
        r("/:org/api", &[], true),
    ]
}

/// Requirements a random table may put on a parameter: the corpus' own, and other shapes.
pub(crate) fn requirement_pool(corpus: &[RouteDef]) -> Vec<Requirement> {
    let mut pool = vec![
        regex("[a-z]+", 0),
        regex("(html|json)", 0),
        regex(r"\A[a-z]+\z", 0),
        regex("^[a-z0-9]+$", 0),
        regex(r"\A[^/]+\Z", 0),
        regex("admin|foo_bar", 1),
        regex("[a-z]+", 1),
        regex(r"(?<=/)[a-z.]+", 0),
        regex(r"(?<!\.)[a-z]+", 0),
        regex(r"(?<=-/)[a-z_]+", 0),
        regex(r"[a-z0-9]+(?!/edit)", 0),
        regex(r"[^/]+(?!\.json)", 0),
        regex(r"[a-z]+(?=/)", 0),
        regex(r"(?!admin|api)[a-z-]+", 0),
        regex(r"\d+", 0),
        regex(r"v\d+", 0),
        regex("[^/]+?", 0),
        regex(".*", 0),
        regex("a*", 0),
        regex(".+", 4),
        regex("[a-z] + (?# spaced )", 2),
        regex("(a|b)(c)?", 0),
        regex("(?:x)(y)", 0),
        regex("(?>[a-z]+)[a-z]", 0),
        regex("[a-z]++", 0),
        regex("[[:alpha:]][[:alnum:]_.-]*", 0),
        regex(r"\w+\.\w+", 0),
        Requirement::Literal { literal: "v4".into() },
        Requirement::Literal { literal: "a.b".into() },
    ];
    for d in corpus {
        for r in d.requirements.values() {
            if !pool.contains(r) {
                pool.push(r.clone());
            }
        }
    }
    pool
}

pub(crate) const VERBS: &[&str] = &["GET", "GET", "POST", "GET|POST", "", "HEAD", "GET|HEAD", "PUT", "DELETE", "PATCH"];

/// One route of a random table: which pool route, which verb, how its requirements change.
#[derive(Clone, Debug)]
pub(crate) struct TableRoute {
    pub(crate) from_extras: bool,
    pub(crate) pick: usize,
    pub(crate) verb: usize,
    pub(crate) mutate: u32,
}

/// A cheap hash, to derive one decision per parameter from one number.
pub(crate) fn mix(a: u32, b: u32) -> u32 {
    let mut x = a ^ b.wrapping_mul(0x9e37_79b9);
    x ^= x >> 15;
    x = x.wrapping_mul(0x2c1b_3c6d);
    x ^ (x >> 12)
}

/// What random tables are made of.
pub(crate) struct Pools {
    pub(crate) words: Vec<String>,
    pub(crate) corpus: Vec<PoolRoute>,
    pub(crate) extras: Vec<PoolRoute>,
    pub(crate) requirements: Vec<Requirement>,
}

impl Pools {
    pub(crate) fn new() -> Pools {
        let corpus = gitlabish_routes();
        Pools {
            words: spec_words(&corpus),
            extras: extra_pool(),
            requirements: requirement_pool(&corpus),
            corpus: corpus.into_iter().map(|d| PoolRoute { path: d.path, requirements: d.requirements, mounted: d.mounted }).collect(),
        }
    }

    /// A table: each route's requirements kept, dropped or replaced from the pool.
    pub(crate) fn table(&self, table: &[TableRoute]) -> Vec<RouteDef> {
        let mut defs = Vec::new();
        for (index, t) in table.iter().enumerate() {
            let pool = if t.from_extras { &self.extras } else { &self.corpus };
            let base = &pool[t.pick % pool.len()];
            let mut names = Vec::new();
            spec_names(&parse_spec(&base.path).unwrap(), &mut names);
            let mut requirements = BTreeMap::new();
            for (j, name) in names.iter().enumerate() {
                let r = mix(t.mutate, j as u32);
                let chosen = match r % 5 {
                    0 => Some(self.requirements[(r / 5) as usize % self.requirements.len()].clone()),
                    1 => None,
                    _ => base.requirements.get(name).cloned(),
                };
                if let Some(req) = chosen {
                    requirements.insert(name.clone(), req);
                }
            }
            let mut def = RouteDef::new(VERBS[t.verb], base.path.clone());
            def.index = Some(index);
            def.requirements = requirements;
            def.mounted = base.mounted;
            defs.push(def);
        }
        defs
    }
}

/// 3 to 12 routes.
pub(crate) fn table_gen() -> impl Strategy<Value = Vec<TableRoute>> {
    prop::collection::vec(
        (any::<bool>(), any::<usize>(), 0..VERBS.len(), any::<u32>()).prop_map(|(from_extras, pick, verb, mutate)| TableRoute {
            from_extras,
            pick,
            verb,
            mutate,
        }),
        3..=12,
    )
}

pub(crate) fn describe(defs: &[RouteDef]) -> String {
    defs.iter()
        .map(|d| format!("\n  {} {:?} {:?} {:?}{}", d.index.unwrap_or(0), d.verb, d.path, d.requirements, if d.mounted { " mounted" } else { "" }))
        .collect()
}

/// Small random route tables (3 to 12 routes) from the corpus and the extra shapes, with each
/// parameter's requirement kept, dropped or replaced from the pool; each table is checked on
/// 50 generated requests.
pub(crate) fn random_tables(tables: u32, force_newline: bool) {
    let pools = Pools::new();
    let requests = prop::collection::vec(request_gen(pools.words.clone()), 50);
    check("random tables", tables, (table_gen(), requests), |(table, requests)| {
        let defs = pools.table(&table);
        let oracle = Oracle::new(&defs).map_err(|e| format!("oracle: {e}{}", describe(&defs)))?;
        let layouts = both_layouts(&defs).map_err(|e| format!("the crate refuses the table: {e}{}", describe(&defs)))?;
        let specs: Vec<Vec<Spec>> = defs.iter().map(|d| parse_spec(&d.path).unwrap()).collect();
        for g in &requests {
            let mut r = g.request(&defs, &specs, &pools.words);
            if force_newline {
                r.path.push(b'\n');
            }
            for classifier in &layouts {
                compare(classifier, &oracle, r.method, &r.path).map_err(|e| format!("{e}\n  table:{}", describe(&defs)))?;
            }
        }
        Ok(())
    });
}

#[test]
fn random_tables_agree_with_oracle() {
    random_tables(300, false);
}

#[test]
fn random_tables_agree_with_oracle_on_paths_ending_in_newline() {
    random_tables(200, true);
}

/// The leading `/literal` and `/:param` segments of a spec, up to its first group or any other
/// construct (`/groups/:id/-/edit(.:format)` gives `/groups/:id/-/edit`): a plain spec, as the
/// crate's segment tree takes; `None` when none leads it. Read here with string operations, not
/// the crate's parser.
fn plain_prefix(spec: &str) -> Option<String> {
    let spec = &spec[..spec.find('(').unwrap_or(spec.len())];
    let mut out = String::new();
    for piece in spec.split('/').skip(1) {
        let name = piece.strip_prefix(':').unwrap_or(piece);
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~')) {
            break;
        }
        out.push('/');
        out.push_str(piece);
    }
    (!out.is_empty()).then_some(out)
}

/// Random tables of plain routes (the corpus' and the extra shapes' plain prefixes, with and
/// without `(.:format)`, no requirements, every verb), which the crate searches by its segment
/// tree instead of its automata: the same answers as the oracle on 50 generated requests each.
#[test]
fn plain_tables_agree_with_oracle() {
    let pools = Pools::new();
    let plain: Vec<String> = pools
        .corpus
        .iter()
        .chain(&pools.extras)
        .filter(|r| !r.mounted)
        .filter_map(|r| plain_prefix(&r.path))
        // Each also with Rails' `(.:format)`, the one group the tree takes.
        .flat_map(|p| [format!("{p}(.:format)"), p])
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(plain.len() > 50, "only {} plain specs", plain.len());
    let requests = prop::collection::vec(request_gen(pools.words.clone()), 50);
    check("plain tables", 200, (table_gen(), requests), |(table, requests)| {
        let defs: Vec<RouteDef> = table
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let mut def = RouteDef::new(VERBS[t.verb], plain[t.pick % plain.len()].clone());
                def.index = Some(index);
                def
            })
            .collect();
        let oracle = Oracle::new(&defs).map_err(|e| format!("oracle: {e}{}", describe(&defs)))?;
        let layouts = both_layouts(&defs).map_err(|e| format!("the crate refuses the table: {e}{}", describe(&defs)))?;
        if !layouts.iter().all(Classifier::has_segment_tree) {
            return Err(format!("a plain table without its segment tree:{}", describe(&defs)));
        }
        let specs: Vec<Vec<Spec>> = defs.iter().map(|d| parse_spec(&d.path).unwrap()).collect();
        for g in &requests {
            let r = g.request(&defs, &specs, &pools.words);
            for classifier in &layouts {
                compare(classifier, &oracle, r.method, &r.path).map_err(|e| format!("{e}\n  table:{}", describe(&defs)))?;
            }
        }
        Ok(())
    });
}
