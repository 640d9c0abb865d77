use cells_learn::{routes, Classifier, BuildOptions, EngineConfig, EngineKind};
fn main() {
    let defs = routes::from_json(&std::fs::read("../shared/corpus/gitlabish-routes.json").unwrap()).unwrap();
    let groups: Vec<(&str, Box<dyn Fn(&str) -> bool>)> = vec![
        ("all", Box::new(|_| true)),
        ("ns", Box::new(|p: &str| p.starts_with("/*namespace_id"))),
        ("non-ns", Box::new(|p: &str| !p.starts_with("/*namespace_id"))),
        ("groups", Box::new(|p: &str| p.starts_with("/groups"))),
        ("ns-dash", Box::new(|p: &str| p.starts_with("/*namespace_id/:project_id/-/"))),
        ("ns-nodash", Box::new(|p: &str| p.starts_with("/*namespace_id") && !p.starts_with("/*namespace_id/:project_id/-/"))),
        ("non-ns-non-user", Box::new(|p: &str| !p.starts_with("/*namespace_id") && !p.starts_with("/:username"))),
        ("dynamic-first", Box::new(|p: &str| p.starts_with("/*") || p.starts_with("/:"))),
    ];
    for (name, f) in groups {
        let sub: Vec<_> = defs.iter().filter(|d| f(&d.path)).cloned().map(|mut d| { d.index = None; d }).collect();
        let t = std::time::Instant::now();
        let c = Classifier::build(sub.clone(), &BuildOptions { engine: EngineConfig { kind: EngineKind::Dense, ..Default::default() }, ..Default::default() }).unwrap();
        println!("{name}: {} routes {} patterns, build {:?}, mem {} KiB", sub.len(), c.pattern_count(), t.elapsed(), c.memory_usage() / 1024);
    }
}
