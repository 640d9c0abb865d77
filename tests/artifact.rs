//! A compiled classifier written to bytes and loaded again answers exactly as the original;
//! foreign, truncated, corrupted or version-skewed bytes are refused with a clear error.

use cells_learn::artifact::{self, ArtifactError};
use cells_learn::{routes, vectors, Classifier, Rules};

fn corpus() -> (Vec<cells_learn::RouteDef>, Vec<vectors::Vector>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let defs = routes::from_json(&std::fs::read(dir.join("gitlabish-routes.json")).unwrap()).unwrap();
    let vs = vectors::from_jsonl(&std::fs::read_to_string(dir.join("gitlabish-requests.jsonl")).unwrap()).unwrap();
    (defs, vs)
}

#[test]
fn round_trip_answers_like_the_original() {
    let (defs, vs) = corpus();
    let original = Classifier::new(defs).unwrap();
    let rules = Rules::gitlab_default();
    let bytes = artifact::write(&original, Some(&rules)).unwrap();
    let (loaded, loaded_rules) = artifact::read(&bytes).unwrap();
    assert_eq!(loaded_rules.as_ref(), Some(&rules));
    assert!(vectors::check(&loaded, &vs).is_empty());
    for v in &vs {
        let a = original.recognize(&v.method, v.path.as_bytes()).unwrap().map(|m| m.route_index());
        let b = loaded.recognize(&v.method, v.path.as_bytes()).unwrap().map(|m| m.route_index());
        assert_eq!(a, b, "{} {}", v.method, v.path);
    }
    // Unaligned input is accepted too (copied to aligned memory).
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&bytes);
    assert!(artifact::read(&shifted[1..]).is_ok());
}

#[test]
fn refuses_bad_bytes() {
    let (defs, _) = corpus();
    let bytes = artifact::write(&Classifier::new(defs).unwrap(), None).unwrap();

    assert!(matches!(artifact::read(b"not an artifact"), Err(ArtifactError::BadMagic)));
    assert!(matches!(artifact::read(&bytes[..20]), Err(ArtifactError::Truncated(_))));
    assert!(matches!(artifact::read(&bytes[..bytes.len() - 1]), Err(ArtifactError::Truncated(_))));

    let mut flipped = bytes.clone();
    let last = flipped.len() - 100;
    flipped[last] ^= 0x40;
    assert!(matches!(artifact::read(&flipped), Err(ArtifactError::Checksum)));

    let mut version = bytes.clone();
    version[8] = 99;
    let err = artifact::read(&version).unwrap_err();
    assert!(matches!(err, ArtifactError::Version { found: 99 }));
    assert!(err.to_string().contains("version 99"), "{err}");

    // Every single-byte corruption of the preamble and header is refused, never a panic.
    for i in (0..bytes.len()).step_by(bytes.len() / 500 + 1) {
        let mut b = bytes.clone();
        b[i] = b[i].wrapping_add(1);
        assert!(artifact::read(&b).is_err(), "byte {i} corrupted but accepted");
    }
}

#[test]
fn lazy_engine_artifacts_rebuild_on_load() {
    let (defs, _) = corpus();
    let options =
        cells_learn::BuildOptions { engine: cells_learn::EngineConfig { kind: cells_learn::EngineKind::Lazy, ..Default::default() }, ..Default::default() };
    let lazy = Classifier::build(defs, &options).unwrap();
    let (loaded, _) = artifact::read(&artifact::write(&lazy, None).unwrap()).unwrap();
    assert_eq!(loaded.engine_kind(), cells_learn::EngineKind::Lazy);
    let m = loaded.recognize("GET", b"/gitlab-org/gitlab/-/issues").unwrap().unwrap();
    assert_eq!(m.route().def().path, "/*namespace_id/:project_id/-/issues(.:format)");
}

/// A loaded table builds its exact matchers on first use; routes repeating one reserved-word
/// look-ahead (GitLab's `namespace_id` and `project_id` requirements) share one copy of its
/// word list there, as in a fresh build, instead of holding one each.
#[test]
fn matchers_built_after_a_load_share_reserved_word_lists() {
    let words: Vec<String> = (0..40).map(|i| format!("reserved{i:02}word")).collect();
    let requirement = format!("(?!({})/)[a-zA-Z0-9_.-]+", words.join("|"));
    let count = 20;
    let defs: Vec<cells_learn::RouteDef> = (0..count)
        .map(|i| cells_learn::RouteDef::new("GET", format!("/area{i}/:id/edit")).regex_requirement("id", requirement.as_str(), 0).to("areas", "edit"))
        .collect();
    let built = Classifier::new(defs).unwrap();
    let (loaded, _) = artifact::read(&artifact::write(&built, None).unwrap()).unwrap();
    let classify = |i: usize| {
        let path = format!("/area{i}/x/edit");
        assert_eq!(loaded.recognize("GET", path.as_bytes()).unwrap().map(|m| m.route_index()), Some(i));
        assert!(loaded.recognize("GET", format!("/area{i}/reserved07word/edit").as_bytes()).unwrap().is_none());
    };
    classify(0);
    let one = loaded.memory_usage();
    (1..count).for_each(classify);
    let per_route = (loaded.memory_usage() - one) / (count - 1);
    // One copy of the list is 40 runs of 14 one-byte classes (32 bytes each): ~18 KiB.
    assert!(per_route < 4096, "each further route's matcher holds {per_route} bytes: the word list is not shared");
}
