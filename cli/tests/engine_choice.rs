//! `--engine`: a table of plain routes compiles to its segment tree alone (`auto` picks it,
//! `segment-tree` asks for it), and asking for the tree on a table that is not plain exits 2
//! with one line naming the route, as every refused table does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("engine_choice-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cells_learn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cells-learn")).args(args).output().unwrap()
}

fn compile(dir: &Path, routes: &str, engine: &str) -> Output {
    let table = dir.join("routes.json");
    std::fs::write(&table, routes).unwrap();
    let out = dir.join("table.art");
    cells_learn(&["compile", "--routes", table.to_str().unwrap(), "--engine", engine, "-o", out.to_str().unwrap()])
}

#[test]
fn a_plain_table_compiles_to_its_segment_tree() {
    let dir = scratch("plain");
    let plain = r#"[{"verb":"GET","path":"/projects/:id(.:format)"},{"verb":"POST","path":"/projects"}]"#;
    for (engine, expected) in [("auto", "segment_tree"), ("segment-tree", "segment_tree"), ("dense", "dense")] {
        let out = compile(&dir, plain, engine);
        assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
        let figures: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(figures["engine"], expected, "{engine}: {figures}");
        assert_eq!(figures["patterns"].as_u64() == Some(0), expected == "segment_tree", "{engine}: {figures}");
    }
}

#[test]
fn the_segment_tree_by_name_refuses_a_table_that_is_not_plain() {
    let dir = scratch("refused");
    let globbed = r#"[{"verb":"GET","path":"/projects/:id(.:format)"},{"verb":"GET","path":"/files/*path"}]"#;
    let out = compile(&dir, globbed, "segment-tree");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("route #1 (/files/*path) is not plain"), "{stderr}");
    // `auto` compiles the same table with its automata.
    let out = compile(&dir, globbed, "auto");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(figures["engine"], "dense", "{figures}");
}
