//! The classifier beside the fastest Rust path routers (matchit, wayfind, path-tree), in one
//! process and one run, on four route sets (`sets.rs`): the GitHub API set of path-tree's own
//! benchmark, the corpus table, GitLab CE's web routes, and GitLab's template snapshot ordered
//! specific-first.
//!
//! A peer *holds* a route when it can insert every optional-group variant of it (`routers.rs`);
//! it is timed on a set only when it holds at least 99% of the set's routes, and its coverage is
//! printed either way. Before any timing every request is looked up once on every side: the
//! classifier's route is the reference (Rails' pick; on the CE table with the ideal host), and
//! the share of requests on which each peer returns that same route is printed with the first
//! mismatches. Peers get requirements dropped and paths already normalized (their best case), so
//! they disagree where Rails' semantics need more than a path router has: `:id` never holds a
//! `.`, requirements, first-match order, constraint objects. Every side is timed on all of the
//! set's requests.
//!
//! Timed per lookup (criterion `iter_custom`), for each side: `classify` (the route decision)
//! and `params` (the route and its parameters read), each `repeated` (one URL in a loop) and
//! `cycling` (every request of the set in a shuffled order, fixed seed). The run ends with a
//! table of medians and the ratio classifier ÷ fastest peer that holds the set.
//!
//! `cargo bench --bench peers` (full), `cargo bench --bench peers -- --quick` or `PEERS_QUICK=1`
//! (about a minute), `PEERS_SETS=github,gitlabish,gitlab-ce,snapshot` to choose sets,
//! `PEERS_SEGMENT_TREE=0` to search a plain table (the GitHub set) by its automata instead.
//! `cargo test --bench peers` (test mode, `cargo test --release --benches` in `script/test`)
//! runs the agreement checks only and fails when the sides are not set up as they should be.

mod order;
mod routers;
mod sets;
mod shapes;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use cells_learn::{BuildOptions, Classifier, EngineConfig};
use criterion::Criterion;

use routers::{Peer, PeerKind};
use sets::{Request, Set};

/// A peer is timed on a set only when it holds this share of the set's routes.
const MIN_COVERAGE: f64 = 0.99;

/// The fixed seed of the cycling order.
const SHUFFLE_SEED: u64 = 0x5eed_ce11_0017;

/// One lookup mode.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Mode {
    ClassifyRepeated,
    ClassifyCycling,
    ParamsRepeated,
    ParamsCycling,
}

impl Mode {
    const ALL: [Mode; 4] = [Mode::ClassifyRepeated, Mode::ClassifyCycling, Mode::ParamsRepeated, Mode::ParamsCycling];

    fn name(self) -> &'static str {
        match self {
            Mode::ClassifyRepeated => "classify repeated",
            Mode::ClassifyCycling => "classify cycling",
            Mode::ParamsRepeated => "params repeated",
            Mode::ParamsCycling => "params cycling",
        }
    }

    fn with_params(self) -> bool {
        matches!(self, Mode::ParamsRepeated | Mode::ParamsCycling)
    }

    fn cycling(self) -> bool {
        matches!(self, Mode::ClassifyCycling | Mode::ParamsCycling)
    }
}

/// A set with its classifier, its peers and the reference answers.
struct Prepared {
    set: Set,
    classifier: Classifier,
    /// The classifier's route per request (the reference).
    reference: Vec<Option<usize>>,
    /// Peers holding at least [`MIN_COVERAGE`] of the routes.
    timed: Vec<Peer>,
    /// The requests in the cycling order.
    shuffled: Vec<usize>,
    /// The request of the repeated lookups.
    repeated: usize,
}

/// Classifier's route for a request; on the ideal-host sets the host accepts exactly the
/// recorded route.
#[inline]
fn recognize(classifier: &Classifier, ideal_host: bool, r: &Request, with_params: bool) -> Option<(usize, usize)> {
    let m = classifier.recognize_with(&r.method, r.path.as_bytes(), |m| !ideal_host || Some(m.route_index()) == r.recorded).ok()??;
    let params = if with_params { m.params().map(|(k, v)| k.len() + v.len()).sum() } else { 0 };
    Some((m.route_index(), params))
}

/// The classifier's parameters for a request as (name, raw value) pairs, sorted by name; `None`
/// when its route has requirements, which the peers do without (`id: .+` holds `123.html` whole
/// where a peer splits off a format), or two globs, whose split is each router's own choice
/// (Journey's first glob is lazy: `*package_name/*package_version` of `/foo/bar/baz` is `foo`
/// and `bar/baz`).
fn raw_params(classifier: &Classifier, ideal_host: bool, r: &Request) -> Option<Vec<(String, String)>> {
    let m = classifier.recognize_with(&r.method, r.path.as_bytes(), |m| !ideal_host || Some(m.route_index()) == r.recorded).ok()??;
    let def = m.route().def();
    if !def.requirements.is_empty() || def.path.matches('*').count() > 1 {
        return None;
    }
    let mut params: Vec<(String, String)> =
        m.params().map(|(name, _)| (name.to_string(), String::from_utf8_lossy(m.raw_param(name).unwrap_or_default()).into_owned())).collect();
    params.sort();
    Some(params)
}

#[inline]
fn lookup(peer: &Peer, r: &Request, with_params: bool) -> Option<(usize, usize)> {
    if with_params {
        peer.route_with_params(&r.method, &r.path)
    } else {
        peer.route(&r.method, &r.path).map(|i| (i, 0))
    }
}

/// Fisher–Yates with xorshift64*: the same order on every run and machine.
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = SHUFFLE_SEED;
    for i in (1..n).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let j = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

fn prepare(set: Set, test_mode: bool) -> Result<Prepared, String> {
    let started = Instant::now();
    // `PEERS_SEGMENT_TREE=0`: a plain table searched by its automata, as before its segment tree.
    let segment_tree = std::env::var("PEERS_SEGMENT_TREE").map_or(true, |v| v != "0");
    let options = BuildOptions { engine: EngineConfig { segment_tree, ..EngineConfig::default() }, ..BuildOptions::default() };
    let classifier = Classifier::build(set.defs.clone(), &options).map_err(|e| format!("{}: {e}", set.name))?;
    let build = started.elapsed();
    let reference: Vec<Option<usize>> = set.requests.iter().map(|r| recognize(&classifier, set.ideal_host, r, false).map(|(i, _)| i)).collect();
    let routed = reference.iter().filter(|r| r.is_some()).count();
    println!(
        "peers: {:<10} {} routes, {} requests ({} routed); classifier built in {:.1} ms ({} engine, memory_usage {} KiB)",
        set.name,
        set.defs.len(),
        set.requests.len(),
        routed,
        build.as_secs_f64() * 1e3,
        classifier.engine_kind(),
        classifier.memory_usage() / 1024
    );
    let recorded_disagree = set.requests.iter().zip(&reference).filter(|(r, ours)| r.recorded.is_some() && r.recorded != **ours).count();
    let has_recorded = set.requests.iter().any(|r| r.recorded.is_some());
    if has_recorded && recorded_disagree > 0 {
        let message = format!("{}: the classifier disagrees with Rails' recorded route on {recorded_disagree} requests", set.name);
        if test_mode {
            return Err(message);
        }
        println!("peers: {:<10} WARNING {message}", set.name);
    }

    let methods = set.methods();
    let mut timed = Vec::new();
    for kind in PeerKind::ALL {
        let started = Instant::now();
        let peer = Peer::build(kind, &set.defs, &methods);
        let build = started.elapsed();
        let mut mismatches = Vec::new();
        for (r, want) in set.requests.iter().zip(&reference) {
            let got = peer.route(&r.method, &r.path);
            if got != *want {
                mismatches.push((r, *want, got));
            }
        }
        let agree = set.requests.len() - mismatches.len();
        let agreement = agree as f64 / set.requests.len().max(1) as f64;
        let coverage = peer.routes_held as f64 / peer.routes_total.max(1) as f64;
        let verdict = if coverage >= MIN_COVERAGE { "timed" } else { "not timed (holds < 99% of the routes)" };
        println!(
            "peers: {:<10} {:<9} holds {}/{} routes, agrees on {}/{} requests ({:.1}%), built in {:.2} ms: {verdict}",
            set.name,
            kind.name(),
            peer.routes_held,
            peer.routes_total,
            agree,
            set.requests.len(),
            agreement * 100.0,
            build.as_secs_f64() * 1e3
        );
        for (r, want, got) in mismatches.iter().take(3) {
            let name = |i: &Option<usize>| i.map_or("none".to_string(), |i| format!("#{i} {}", set.defs[i].path));
            println!("peers: {:<10} {:<9}   {} {}: classifier {}, {} {}", set.name, kind.name(), r.method, r.path, name(want), kind.name(), name(got));
        }
        // path-tree's own fixture is what every peer is built for: all of it held, and the
        // same routes as Rails but for the 3 URLs whose parameter holds a `.`.
        if test_mode && set.name == "github" && (coverage < 1.0 || agreement < MIN_COVERAGE) {
            return Err(format!("github: {} should hold every route and agree on >= 99% of the URLs (a conversion is broken)", kind.name()));
        }
        if coverage >= MIN_COVERAGE {
            timed.push(peer);
        }
    }
    let shuffled = shuffled(set.requests.len());
    // Repeated: the first routed request (in the cycling order) that every timed peer agrees on.
    let agreed = |i: usize| timed.iter().all(|p| p.route(&set.requests[i].method, &set.requests[i].path) == reference[i]);
    let repeated = shuffled
        .iter()
        .copied()
        .find(|&i| reference[i].is_some() && agreed(i))
        .or_else(|| shuffled.iter().copied().find(|&i| reference[i].is_some()))
        .ok_or_else(|| format!("{}: no request routes", set.name))?;
    let r = &set.requests[repeated];
    println!("peers: {:<10} repeated lookups: {} {}", set.name, r.method, r.path);
    Ok(Prepared { set, classifier, reference, timed, shuffled, repeated })
}

/// Nanoseconds per lookup of each criterion sample, by (set, mode, side).
type Samples = RefCell<BTreeMap<(String, Mode, String), Vec<f64>>>;

/// Times `f` per lookup through criterion, recording every sample's ns/lookup.
fn time_side(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    samples: &Samples,
    key: (String, Mode, String),
    order: &[&Request],
    f: impl Fn(&Request) -> Option<(usize, usize)>,
) {
    let id = format!("{}/{}", key.1.name().replace(' ', "_"), key.2);
    let mut k = 0;
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                black_box(f(black_box(order[k])));
                k += 1;
                if k == order.len() {
                    k = 0;
                }
            }
            let took = started.elapsed();
            samples.borrow_mut().entry(key.clone()).or_default().push(took.as_nanos() as f64 / iters.max(1) as f64);
            took
        })
    });
}

fn bench_set(c: &mut Criterion, p: &Prepared, samples: &Samples) {
    let mut group = c.benchmark_group(format!("peers/{}", p.set.name));
    for mode in Mode::ALL {
        let order: Vec<&Request> = if mode.cycling() { p.shuffled.iter().map(|&i| &p.set.requests[i]).collect() } else { vec![&p.set.requests[p.repeated]] };
        let with_params = mode.with_params();
        let key = |side: &str| (p.set.name.clone(), mode, side.to_string());
        time_side(&mut group, samples, key("classifier"), &order, |r| recognize(&p.classifier, p.set.ideal_host, r, with_params));
        for peer in &p.timed {
            time_side(&mut group, samples, key(peer.kind.name()), &order, |r| lookup(peer, r, with_params));
        }
    }
    group.finish();
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print_table(prepared: &[Prepared], samples: &Samples) {
    let samples = samples.borrow();
    println!("\npeers: median ns per lookup, one run (release, one thread); ratio = classifier / fastest peer holding >= 99% of the set's routes");
    println!("| set | mode | classifier | fastest peer | ratio | other peers |");
    println!("|---|---|---|---|---|---|");
    for p in prepared {
        for mode in Mode::ALL {
            let get = |side: &str| samples.get(&(p.set.name.clone(), mode, side.to_string())).map(|v| median(v));
            let Some(ours) = get("classifier") else { continue };
            let mut peers: Vec<(&str, f64)> = p.timed.iter().filter_map(|peer| Some((peer.kind.name(), get(peer.kind.name())?))).collect();
            peers.sort_by(|a, b| a.1.total_cmp(&b.1));
            let (fastest, ratio) = match peers.first() {
                Some((name, ns)) => (format!("{name} {ns:.0} ns"), format!("{:.2}×", ours / ns)),
                None => ("none holds the set".to_string(), "–".to_string()),
            };
            let others: Vec<String> = peers.iter().skip(1).map(|(name, ns)| format!("{name} {ns:.0} ns")).collect();
            println!("| {} | {} | {ours:.0} ns | {fastest} | {ratio} | {} |", p.set.name, mode.name(), others.join(", "));
        }
    }
}

/// In test mode, every side answers once per request of the cycling order (so the timed
/// closures are exercised) and nothing is timed.
fn exercise(p: &Prepared) {
    // Per peer, the requests whose parameters were compared with the classifier's.
    let mut compared = vec![0usize; p.timed.len()];
    for &i in &p.shuffled {
        let r = &p.set.requests[i];
        let ours = recognize(&p.classifier, p.set.ideal_host, r, true).map(|(route, _)| route);
        assert_eq!(ours, p.reference[i], "{}: classify with and without params differ on {} {}", p.set.name, r.method, r.path);
        // Read once: the same for every peer.
        let our_params = ours.and_then(|_| raw_params(&p.classifier, p.set.ideal_host, r));
        for (peer, compared) in p.timed.iter().zip(&mut compared) {
            assert_eq!(
                lookup(peer, r, true).map(|(route, _)| route),
                peer.route(&r.method, &r.path),
                "{}: {} params lookup differs",
                p.set.name,
                peer.kind.name()
            );
            // Where the peer picks the classifier's route, it reads the same parameters off the
            // path: names and raw (still escaped) values, a router written elsewhere as the check.
            if let (Some(route), Some((theirs, their_params))) = (ours, peer.route_and_params(&r.method, &r.path)) {
                if let Some(our_params) = our_params.as_ref().filter(|_| route == theirs) {
                    assert_eq!(
                        our_params,
                        &their_params,
                        "{}: {} reads other parameters of route #{route} from {} {}",
                        p.set.name,
                        peer.kind.name(),
                        r.method,
                        r.path
                    );
                    *compared += 1;
                }
            }
        }
    }
    for (peer, compared) in p.timed.iter().zip(&compared) {
        println!("peers: {:<10} {:<9} reads the classifier's parameters on all {compared} requests compared", p.set.name, peer.kind.name());
    }
    // The GitHub set has neither requirements nor two globs: every request the peers route alike is compared.
    if p.set.name == "github" {
        assert!(compared.iter().all(|&n| n >= 300), "github: parameters compared on too few requests: {compared:?}");
    }
}

fn load_sets(wanted: Option<Vec<String>>, test_mode: bool) -> Result<Vec<Set>, String> {
    let mut all = vec![sets::github()?];
    all.extend(sets::corpus_tables()?);
    // The two large tables take seconds to compile without optimizations.
    if !(test_mode && cfg!(debug_assertions)) {
        all.push(sets::gitlab_ce()?);
        all.push(sets::snapshot()?);
    } else {
        println!("peers: debug test build: gitlab-ce and snapshot skipped (cargo test --release --bench peers checks them)");
    }
    Ok(match wanted {
        Some(names) => all.into_iter().filter(|s| names.contains(&s.name)).collect(),
        None => all,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let test_mode = !args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick") || std::env::var("PEERS_QUICK").is_ok_and(|v| v == "1");
    let wanted = std::env::var("PEERS_SETS").ok().map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    let prepared: Result<Vec<Prepared>, String> = load_sets(wanted, test_mode).and_then(|sets| sets.into_iter().map(|s| prepare(s, test_mode)).collect());
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("peers: {e}");
            std::process::exit(1);
        }
    };
    if test_mode {
        prepared.iter().for_each(exercise);
        println!("peers: test mode: sides checked, nothing timed (cargo bench --bench peers times them)");
        return;
    }
    let mut c = Criterion::default().without_plots();
    if quick {
        c = c.warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_millis(300)).sample_size(10);
    } else {
        c = c.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
    }
    let mut c = c.configure_from_args();
    let samples: Samples = RefCell::new(BTreeMap::new());
    for p in &prepared {
        bench_set(&mut c, p, &samples);
    }
    c.final_summary();
    print_table(&prepared, &samples);
}
