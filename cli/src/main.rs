//! `cells-learn`: the core classifier from the command line.
//!
//! GitLab engineers use it to ask how one request is classified, to check a route table
//! against request vectors recorded from Rails (or from production logs), to compile a table
//! into the artifact a Rails boot loads, and to see which routes needed an exact check.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use cells_learn::{artifact, routes, templates, vectors, BuildOptions, Classifier, EngineConfig, EngineKind, Learner, RouteDef, Rules};
use clap::{Parser, Subcommand, ValueEnum};

mod log_replay;

#[derive(Parser)]
#[command(name = "cells-learn", version, about = "Classify requests against Rails route tables exactly as Rails' router would")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Engine {
    Auto,
    Dense,
    Lazy,
    /// No automaton: every route must be plain (`/literal` and `/:param` segments only)
    SegmentTree,
}

#[derive(Clone, Copy, ValueEnum)]
enum HostArg {
    AcceptAll,
    Ideal,
}

#[derive(clap::Args)]
struct Table {
    /// Route table: a corpus `*-routes.json`, GitLab's `gitlab_routes.json` template snapshot, or a compiled artifact
    #[arg(long, value_name = "FILE")]
    routes: PathBuf,
    /// Which automaton to build (auto: a segment tree for a table of plain routes, else dense
    /// DFAs for small tables and lazy ones for large)
    #[arg(long, value_enum, default_value = "auto")]
    engine: Engine,
}

/// Which route table the answers say they come from, as a cell's learn endpoint says it (the
/// router's mixed-version rules: cells of the newest table are asked first, and an older table's
/// answer never replaces a newer one's).
#[derive(clap::Args)]
struct TableIdentity {
    /// The deploy's route table version, as the cells get it (`Endpoint.new(routes_version: ...)`,
    /// e.g. `ENV["CELLS_ROUTES_VERSION"]`): an integer from 0 to 2^63-1, larger for newer code
    #[arg(long, value_name = "N", value_parser = routes_version)]
    routes_version: Option<u64>,
    /// The route table's digest (`RailsClassifier#digest`); read from the artifact when --routes is
    /// one `rake cells:compile` wrote
    #[arg(long, value_name = "DIGEST", value_parser = routes_digest)]
    routes_digest: Option<String>,
}

/// The largest version, as the gem's `RouteTable::MAX_VERSION` (the router's versions are u64,
/// the gem's Integers are kept to what every side represents).
const MAX_ROUTES_VERSION: u64 = i64::MAX as u64;

fn routes_version(s: &str) -> Result<u64, String> {
    let bad = || format!("the routes version must be an integer from 0 to {MAX_ROUTES_VERSION} (the deploy's build time or pipeline number), not {s:?}");
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse::<u64>().ok().filter(|&v| v <= MAX_ROUTES_VERSION).ok_or_else(bad)
}

fn routes_digest(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("the routes digest must be 1 to 128 visible ASCII characters (the gem's is 64 hex digits), not {s:?}"));
    }
    Ok(s.to_string())
}

#[derive(Subcommand)]
enum Command {
    /// Print the learn answer (and the route Rails would recognize) for one request as JSON
    Learn {
        #[command(flatten)]
        table: Table,
        #[command(flatten)]
        identity: TableIdentity,
        /// Learn rules (JSON); GitLab's defaults when absent
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Resolve routable entities whose key is KEY or starts with KEY/ to CELL (repeatable), e.g. gitlab-org=cell_us0
        #[arg(long, value_name = "KEY=CELL")]
        resolve: Vec<String>,
        method: String,
        path: String,
    },
    /// Check request vectors (JSON lines of {"method","path","route_index","params"}) against the
    /// table, or replay GitLab's request logs (--log production_json.log / api_json.log): does the
    /// classifier name the controller#action or Grape route that served each logged request?
    Verify {
        #[command(flatten)]
        table: Table,
        #[arg(long, value_name = "FILE.jsonl", required_unless_present = "log", conflicts_with = "log")]
        requests: Option<PathBuf>,
        /// GitLab's structured request log (repeatable): production_json.log lines
        /// (method, path, controller, action) or api_json.log lines (method, path, route)
        #[arg(long, value_name = "FILE")]
        log: Vec<PathBuf>,
        /// With --log: show at most this many differences per file
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// How routes with dynamic constraints and mounted apps are decided: `accept-all` (they
        /// hold), or `ideal` (they hold exactly when they are the recorded route, for vectors
        /// recorded with GitLab's constrainers, e.g. gitlab-ce.recorded.jsonl; with --log, exactly
        /// when it is the route the log says served)
        #[arg(long, value_enum, default_value = "accept-all")]
        host: HostArg,
    },
    /// Compile a route table (and rules) into an artifact that loads without recompiling
    Compile {
        #[command(flatten)]
        table: Table,
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// List the routes whose requirements the DFA widens, and what is done about each
    Report {
        #[command(flatten)]
        table: Table,
    },
    /// Time recognize (and learn) over request vectors (or template examples) and print JSON figures
    Bench {
        #[command(flatten)]
        table: Table,
        /// Vectors to time; for a template snapshot, its examples are used when absent
        #[arg(long, value_name = "FILE.jsonl")]
        requests: Option<PathBuf>,
        /// Timed rounds over all requests
        #[arg(long, default_value_t = 200)]
        rounds: usize,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("cells-learn: {message}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A loaded table: the classifier, rules from an artifact, and template examples if any.
struct Loaded {
    classifier: Classifier,
    rules: Option<Rules>,
    /// The digest a Rails artifact names its routes by (its first line).
    digest: Option<String>,
    /// (template index, example URL, whether it is the dotted example)
    examples: Vec<(usize, String, bool)>,
    compile_ms: f64,
}

/// The first line of the artifact `rake cells:compile` writes (`RailsClassifier::MAGIC`), then a
/// space, the routes' digest (64 hex digits) and a newline; the rest is an artifact as `compile`
/// writes it.
const RAILS_ARTIFACT_MAGIC: &[u8] = b"gitlab-cells-learn-rails-artifact/1 ";

/// Splits a Rails artifact into its digest and its artifact bytes.
fn rails_artifact(bytes: &[u8]) -> Result<(String, &[u8]), String> {
    let rest = &bytes[RAILS_ARTIFACT_MAGIC.len()..];
    let newline = rest.iter().position(|&b| b == b'\n').ok_or("a Rails artifact without its header line")?;
    let digest = std::str::from_utf8(&rest[..newline]).ok().filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()));
    let digest = digest.ok_or("a Rails artifact whose header line does not end in a 64-hex-digit digest")?;
    Ok((digest.to_string(), &rest[newline + 1..]))
}

fn load(table: &Table) -> Result<Loaded, String> {
    let bytes = read(&table.routes)?;
    let started = Instant::now();
    // What `artifact::read` takes: the file, or a Rails artifact's body.
    let (digest, dump) = if bytes.starts_with(RAILS_ARTIFACT_MAGIC) {
        let (digest, body) = rails_artifact(&bytes).map_err(|e| format!("{}: {e}", table.routes.display()))?;
        (Some(digest), body)
    } else {
        (None, &bytes[..])
    };
    if dump.starts_with(b"GLCLEARN") || digest.is_some() {
        let (classifier, rules) = artifact::read(dump).map_err(|e| format!("{}: {e}", table.routes.display()))?;
        return Ok(Loaded { classifier, rules, digest, examples: Vec::new(), compile_ms: started.elapsed().as_secs_f64() * 1e3 });
    }
    let kind = match table.engine {
        Engine::Auto => EngineKind::Auto,
        Engine::Dense => EngineKind::Dense,
        Engine::Lazy => EngineKind::Lazy,
        Engine::SegmentTree => EngineKind::SegmentTree,
    };
    let options = BuildOptions { engine: EngineConfig { kind, ..EngineConfig::default() }, ..BuildOptions::default() };
    let (defs, examples): (Vec<RouteDef>, Vec<(usize, String, bool)>) = if templates::looks_like_templates(&bytes) {
        let ts = templates::from_json(&bytes).map_err(|e| format!("{}: {e}", table.routes.display()))?;
        let examples = ts
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                let plain = t.example.iter().map(move |e| (i, e.clone(), false));
                plain.chain(t.dotted_example.iter().map(move |e| (i, e.clone(), true)))
            })
            .collect();
        (ts.iter().enumerate().map(|(i, t)| t.to_route(i)).collect(), examples)
    } else {
        (routes::from_json(&bytes).map_err(|e| format!("{}: {e}", table.routes.display()))?, Vec::new())
    };
    let started = Instant::now();
    let classifier = Classifier::build(defs, &options).map_err(|e| format!("{}: {e}", table.routes.display()))?;
    Ok(Loaded { classifier, rules: None, digest: None, examples, compile_ms: started.elapsed().as_secs_f64() * 1e3 })
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Learn { table, identity, rules, resolve, method, path } => {
            let loaded = load(&table)?;
            let digest = match (identity.routes_digest, loaded.digest.clone()) {
                (Some(given), Some(own)) if given != own => {
                    return Err(format!("--routes-digest {given} is not the digest of {} ({own})", table.routes.display()));
                }
                (given, own) => given.or(own),
            };
            let rules = match rules {
                Some(p) => Rules::from_json(&read(&p)?).map_err(|e| format!("{}: {e}", p.display()))?,
                None => loaded.rules.clone().unwrap_or_else(Rules::gitlab_default),
            };
            let map: Vec<(String, String)> = resolve
                .iter()
                .map(|s| s.split_once('=').map(|(k, c)| (k.to_string(), c.to_string())).ok_or_else(|| format!("--resolve {s:?}: expected KEY=CELL")))
                .collect::<Result<_, _>>()?;
            let learner = Learner::new(loaded.classifier, rules);
            let learned = learner.learned(&method, path.as_bytes()).map_err(|e| e.to_string())?;
            // Tagged with the table as a cell's learn endpoint tags it (`LearnResponse::with_table`).
            let response = learned
                .respond(&learner.rules().default_cell, |entity| {
                    map.iter().find(|(k, _)| entity.key == *k || entity.key.starts_with(&format!("{k}/"))).map(|(_, c)| c.clone())
                })
                .with_table(digest, identity.routes_version);
            let matched = learner.classifier().recognize(&method, path.as_bytes()).map_err(|e| e.to_string())?;
            let route = matched.as_ref().map(|m| {
                let params: serde_json::Map<String, serde_json::Value> =
                    m.params().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(&v).into_owned().into())).collect();
                serde_json::json!({
                    "index": m.route_index(),
                    "verb": m.route().def().verb,
                    "spec": m.route().def().path,
                    "endpoint": m.route().def().endpoint(),
                    "params": params,
                })
            });
            let out = serde_json::json!({ "response": response, "learned": learned, "route": route });
            println!("{}", serde_json::to_string_pretty(&out).unwrap());
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { table, requests, log, limit, host } => {
            let loaded = load(&table)?;
            if !log.is_empty() {
                let mut differing = 0;
                for file in &log {
                    let text = String::from_utf8(read(file)?).map_err(|_| format!("{}: not UTF-8", file.display()))?;
                    let source = file.display().to_string();
                    let report = log_replay::replay(&loaded.classifier, &text, matches!(host, HostArg::Ideal), &source)?;
                    let agreed = report.entries.iter().filter(|e| e.agrees()).count();
                    let total = report.entries.len();
                    let ratio = if total == 0 { 100.0 } else { agreed as f64 * 100.0 / total as f64 };
                    println!("{source}: {agreed}/{total} requests name the route that served ({ratio:.2}%), {} lines skipped", report.skipped);
                    let diffs: Vec<_> = report.entries.iter().filter(|e| !e.agrees()).collect();
                    for d in diffs.iter().take(limit.unwrap_or(usize::MAX)) {
                        println!("differs: {d}");
                    }
                    if let Some(n) = limit.filter(|n| diffs.len() > *n) {
                        println!("... {} more differences", diffs.len() - n);
                    }
                    differing += diffs.len();
                }
                return Ok(if differing == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            let requests = requests.ok_or("give --requests FILE.jsonl or --log FILE")?;
            let text = String::from_utf8(read(&requests)?).map_err(|_| format!("{}: not UTF-8", requests.display()))?;
            let vs = vectors::from_jsonl(&text).map_err(|e| format!("{}: {e}", requests.display()))?;
            let host = match host {
                HostArg::AcceptAll => vectors::Host::AcceptAll,
                HostArg::Ideal => vectors::Host::Ideal,
            };
            let disagreements = vectors::check_with(&loaded.classifier, &vs, host);
            for d in &disagreements {
                println!("disagree: {d}");
            }
            println!("agreement: {}/{}", vs.len() - disagreements.len(), vs.len());
            Ok(if disagreements.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Compile { table, rules, output } => {
            let loaded = load(&table)?;
            let rules = match rules {
                Some(p) => Some(Rules::from_json(&read(&p)?).map_err(|e| format!("{}: {e}", p.display()))?),
                None => loaded.rules.clone(),
            };
            let bytes = artifact::write(&loaded.classifier, rules.as_ref()).map_err(|e| e.to_string())?;
            std::fs::write(&output, &bytes).map_err(|e| format!("cannot write {}: {e}", output.display()))?;
            let started = Instant::now();
            artifact::read(&bytes).map_err(|e| format!("the artifact does not load back: {e}"))?;
            println!(
                "{}",
                serde_json::json!({
                    "routes": loaded.classifier.routes().len(),
                    "patterns": loaded.classifier.pattern_count(),
                    "engine": loaded.classifier.engine_kind().as_str(),
                    "compile_ms": loaded.compile_ms,
                    "artifact_bytes": bytes.len(),
                    "load_ms": started.elapsed().as_secs_f64() * 1e3,
                    "output": output.display().to_string(),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { table } => {
            let loaded = load(&table)?;
            let mut widened = 0;
            for r in loaded.classifier.routes() {
                if r.is_exact_in_dfa() {
                    continue;
                }
                widened += 1;
                let what: Vec<String> = r.widenings().iter().map(|w| format!("{} ({})", w.construct, w.action)).collect();
                println!("route {} {} {}: {}", r.index(), r.def().verb, r.def().path, what.join("; "));
            }
            println!(
                "routes: {}, exact in the DFA: {}, widened and checked exactly: {widened}, engine: {}, patterns: {}",
                loaded.classifier.routes().len(),
                loaded.classifier.routes().len() - widened,
                loaded.classifier.engine_kind(),
                loaded.classifier.pattern_count()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { table, requests, rounds } => {
            let loaded = load(&table)?;
            let reqs: Vec<(String, String)> = match &requests {
                Some(p) => {
                    let text = String::from_utf8(read(p)?).map_err(|_| format!("{}: not UTF-8", p.display()))?;
                    vectors::from_jsonl(&text)?.into_iter().map(|v| (v.method, v.path)).collect()
                }
                None => loaded.examples.iter().map(|(_, e, _)| ("GET".to_string(), e.clone())).collect(),
            };
            if reqs.is_empty() {
                return Err("no requests to time: pass --requests".into());
            }
            let learner = Learner::new(loaded.classifier, loaded.rules.unwrap_or_else(Rules::gitlab_default));
            let c = learner.classifier();
            // Memory (issue 17): what the classifier retains once built, before any request...
            let retained = c.memory_usage();
            let rss_after_build = rss_bytes();
            let matched = reqs.iter().filter(|(m, p)| matches!(c.recognize(m, p.as_bytes()), Ok(Some(_)))).count();
            let rounds = rounds.max(1);
            // Cycling through every request in turn, as real traffic does: the figure that shows
            // whether the lazy DFA's cache holds the working set of states.
            let cycles = (rounds / 10).max(1);
            // The route decision: the route's index, its parameters found lazily and not asked for.
            let classify = |m: &str, p: &[u8]| c.recognize(m, p).ok().flatten().map(|f| f.route_index());
            // Each request is timed on its own (rounds calls in a row), so the median is the
            // median request, not a mean that a few hostile 300-byte paths dominate.
            let mut per_request = bench_per_request(&reqs, rounds, classify);
            // ...its lazy DFAs' caches once every request went through (`rounds` times each)...
            let caches_after_one_pass = lazy_cache_bytes(c);
            let cycling_mean = bench_cycling(&reqs, cycles, classify);
            // The same, listing every matching route: recognize stops at the first route that
            // certainly answers, and on a table whose early routes catch most paths (GitLab's
            // template snapshot starts with `(/-/jira)/*namespace_id/:project_id`) that skips
            // most of the walks this still does.
            let matches_cycling_mean = bench_cycling(&reqs, cycles, |m, p| c.matches(m, p).map(|all| all.len()).ok());
            // The route with its parameters as owned strings: what the gem's `Classifier#recognize`
            // answers (a route and a Hash of its parameters), for the Ruby ÷ Rust ratio.
            let recognize = |m: &str, p: &[u8]| {
                c.recognize(m, p).ok().flatten().map(|f| (f.route_index(), f.params().map(|(n, v)| (n.to_owned(), v.into_owned())).collect::<Vec<_>>()))
            };
            let mut per_recognize = bench_per_request(&reqs, rounds, recognize);
            let recognize_cycling_mean = bench_cycling(&reqs, cycles, recognize);
            // The learn answer also needs the route's parameters (found lazily, by the exact
            // matcher for widened routes) and the rules: timed apart so both figures are honest.
            let learn = |m: &str, p: &[u8]| learner.learned(m, p).ok();
            let mut per_learn = bench_per_request(&reqs, rounds, learn);
            let learn_cycling_mean = bench_cycling(&reqs, cycles, learn);
            // ...and after all the cycling above (every request through recognize, matches, the
            // route with its parameters and the learn answer, `cycles` times each, and `rounds`
            // times each on its own): steady when the caches stay within their capacities.
            let memory_after = c.memory_usage();
            let caches = c.lazy_caches();
            let caches_after = caches.iter().map(|k| k.bytes).sum::<usize>();
            let rss_after = rss_bytes();
            let learn_median = median(&mut per_learn);
            let learn_p90 = per_learn[((per_learn.len() - 1) as f64 * 0.9).round() as usize];
            let recognize_median = median(&mut per_recognize);
            let mean = per_request.iter().sum::<f64>() / per_request.len() as f64;
            per_request.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let pct = |q: f64| per_request[((per_request.len() - 1) as f64 * q).round() as usize];
            // Does each example match its own template (among all templates that match it)?
            let own = |dotted: bool| {
                let of_kind: Vec<_> = loaded.examples.iter().filter(|(_, _, d)| *d == dotted).collect();
                let hits =
                    of_kind.iter().filter(|(i, e, _)| c.path_matches(e.as_bytes()).map(|ms| ms.iter().any(|m| m.route_index() == *i)).unwrap_or(false)).count();
                serde_json::json!({ "examples": of_kind.len(), "match_own_template": hits })
            };
            println!(
                "{}",
                serde_json::json!({
                    "requests": reqs.len(),
                    "matched": matched,
                    "rounds": rounds,
                    "ns_per_classify_median": pct(0.5),
                    "ns_per_classify_p90": pct(0.9),
                    "ns_per_classify_p99": pct(0.99),
                    "ns_per_classify_max": pct(1.0),
                    "ns_per_classify_mean": mean,
                    "ns_per_classify_cycling_mean": cycling_mean,
                    "ns_per_matches_cycling_mean": matches_cycling_mean,
                    "ns_per_learn_median": learn_median,
                    "ns_per_learn_p90": learn_p90,
                    "ns_per_learn_cycling_mean": learn_cycling_mean,
                    "ns_per_recognize_params_median": recognize_median,
                    "ns_per_recognize_params_cycling_mean": recognize_cycling_mean,
                    "cycles": cycles,
                    "compile_ms": loaded.compile_ms,
                    "engine": c.engine_kind().as_str(),
                    "memory_bytes": retained,
                    "memory_bytes_after_cycling": memory_after,
                    "lazy_cache_bytes_after_one_pass": caches_after_one_pass,
                    "lazy_cache_bytes_after_cycling": caches_after,
                    "lazy_cache_capacity_bytes": caches.iter().map(|k| k.capacity).sum::<usize>(),
                    "lazy_cache_clears": caches.iter().map(|k| k.clears).sum::<usize>(),
                    // The classifier's heap after cycling (its retained heap and its caches) over
                    // what it retained once built: issue 17's "≤ 1.5× retained".
                    "memory_after_cycling_ratio": (memory_after + caches_after) as f64 / retained as f64,
                    // The whole process (binary, requests, allocator's free lists included).
                    "rss_bytes_after_build": rss_after_build,
                    "rss_bytes_after_cycling": rss_after,
                    "lazy_caches": caches.iter().filter(|k| k.bytes >= LISTED_CACHE_BYTES).map(|k| serde_json::json!({
                        "automaton": k.automaton, "bytes": k.bytes, "capacity": k.capacity, "clears": k.clears, "nfa_states": k.nfa_states,
                    })).collect::<Vec<_>>(),
                    "template_examples": own(false),
                    "template_dotted_examples": own(true),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `cells-learn bench` lists each lazy DFA's cache from this size on (GitLab CE has ~100 small ones).
const LISTED_CACHE_BYTES: usize = 64 << 10;

/// The bytes of the lazy DFAs' caches the calling thread holds.
fn lazy_cache_bytes(c: &cells_learn::Classifier) -> usize {
    c.lazy_caches().iter().map(|k| k.bytes).sum()
}

/// The process's resident set (`VmRSS` in `/proc/self/status`), where Linux gives it.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kib * 1024)
}

/// ns per call of `f` for each request, timed alone over `rounds` calls in a row (unsorted).
fn bench_per_request<T>(reqs: &[(String, String)], rounds: usize, f: impl Fn(&str, &[u8]) -> T) -> Vec<f64> {
    reqs.iter()
        .map(|(m, p)| {
            let started = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(f(m, std::hint::black_box(p.as_bytes())));
            }
            started.elapsed().as_nanos() as f64 / rounds as f64
        })
        .collect()
}

/// Mean ns per call of `f` over `cycles` passes through all the requests in turn.
fn bench_cycling<T>(reqs: &[(String, String)], cycles: usize, f: impl Fn(&str, &[u8]) -> T) -> f64 {
    let started = Instant::now();
    for _ in 0..cycles {
        for (m, p) in reqs {
            std::hint::black_box(f(m, std::hint::black_box(p.as_bytes())));
        }
    }
    started.elapsed().as_nanos() as f64 / (cycles * reqs.len()) as f64
}

/// Sorts the timings and returns their median (the lower middle one for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[(values.len() - 1) / 2]
}
