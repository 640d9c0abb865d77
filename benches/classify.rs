//! criterion benchmarks: recognize over every corpus vector, the automaton pass alone, the
//! learn answer, compile time, artifact load time; and at GitLab's real scale, the template
//! snapshot (build, and recognize of its examples).
//!
//! `cargo bench --bench classify`; memory figures are printed once per table.

use std::path::PathBuf;

use cells_learn::{artifact, routes, templates, vectors, BuildOptions, Classifier, Learner, Rules};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus").join(name)
}

fn tables() -> Vec<(String, Vec<cells_learn::RouteDef>, Vec<vectors::Vector>)> {
    let mut out = Vec::new();
    let dir = corpus("");
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix("-routes.json") else { continue };
        let requests = path.with_file_name(format!("{stem}-requests.jsonl"));
        let defs = routes::from_json(&std::fs::read(&path).unwrap()).unwrap();
        let vs = vectors::from_jsonl(&std::fs::read_to_string(requests).unwrap()).unwrap();
        out.push((stem.to_string(), defs, vs));
    }
    out
}

fn bench_corpus(c: &mut Criterion) {
    for (stem, defs, vs) in tables() {
        let learner = Learner::new(Classifier::new(defs.clone()).unwrap(), Rules::gitlab_default());
        let classifier = learner.classifier();
        eprintln!(
            "{stem}: {} routes, {} patterns, engine {}, ~{} KiB",
            classifier.routes().len(),
            classifier.pattern_count(),
            classifier.engine_kind(),
            classifier.memory_usage() / 1024
        );
        let mut g = c.benchmark_group(stem.to_string());
        g.throughput(criterion::Throughput::Elements(vs.len() as u64));
        g.bench_function("classify_all_vectors", |b| {
            b.iter(|| {
                for v in &vs {
                    black_box(classifier.recognize(&v.method, v.path.as_bytes()).ok().flatten().map(|m| m.route_index()));
                }
            })
        });
        g.bench_function("automaton_pass_all_vectors", |b| {
            b.iter(|| {
                for v in &vs {
                    black_box(classifier.candidate_count(v.path.as_bytes()).ok());
                }
            })
        });
        g.bench_function("learn_all_vectors", |b| {
            b.iter(|| {
                for v in &vs {
                    black_box(learner.learned(&v.method, v.path.as_bytes()).ok());
                }
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("{stem}_build"));
        g.sample_size(10);
        g.bench_function("compile", |b| b.iter(|| Classifier::new(black_box(defs.clone())).unwrap()));
        let bytes = artifact::write(classifier, Some(learner.rules())).unwrap();
        eprintln!("{stem}: artifact {} KiB", bytes.len() / 1024);
        g.bench_function("load_artifact", |b| b.iter(|| artifact::read(black_box(&bytes)).unwrap()));
        g.finish();
    }
}

fn bench_templates(c: &mut Criterion) {
    let bytes = std::fs::read(corpus("gitlab-route-templates.json")).unwrap();
    let ts = templates::from_json(&bytes).unwrap();
    let defs: Vec<_> = ts.iter().enumerate().map(|(i, t)| t.to_route(i)).collect();
    let examples: Vec<(usize, String)> =
        ts.iter().enumerate().flat_map(|(i, t)| t.example.iter().chain(t.dotted_example.iter()).map(move |e| (i, e.clone()))).collect();
    let started = std::time::Instant::now();
    let classifier = Classifier::build(defs.clone(), &BuildOptions::default()).unwrap();
    eprintln!(
        "templates: {} routes, {} patterns, engine {}, build {:?}, ~{} KiB",
        classifier.routes().len(),
        classifier.pattern_count(),
        classifier.engine_kind(),
        started.elapsed(),
        classifier.memory_usage() / 1024
    );
    let mut g = c.benchmark_group("gitlab_templates");
    g.throughput(criterion::Throughput::Elements(examples.len() as u64));
    g.sample_size(10);
    g.bench_function("classify_all_examples", |b| {
        b.iter(|| {
            for (_, e) in &examples {
                black_box(classifier.recognize("GET", e.as_bytes()).ok().flatten().map(|m| m.route_index()));
            }
        })
    });
    g.bench_function("build", |b| b.iter(|| Classifier::build(black_box(defs.clone()), &BuildOptions::default()).unwrap()));
    g.finish();
}

criterion_group!(benches, bench_corpus, bench_templates);
criterion_main!(benches);
