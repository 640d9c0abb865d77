//! A compiled classifier as bytes, so a Rails boot loads it instead of recompiling.
//!
//! Layout (little-endian): magic `GLCLEARN`, format version (u32), reserved (u32), payload
//! length (u64), FNV-1a-64 of the payload (u64); payload: header length (u32), JSON header
//! (routes, rules, options), zero padding to a 4-byte boundary, then the dense DFA exactly as
//! `regex-automata` serializes it. Loading checks every one of these before trusting a byte,
//! and the DFA itself is validated by `DFA::from_bytes`; per-route matchers are rebuilt from
//! the route definitions (parsing is fast; determinization is what we avoid).

use serde::{Deserialize, Serialize};

use crate::classifier::{Automaton, BuildOptions, Classifier, Layout};
use crate::engine::{Engine, EngineConfig, EngineKind};
use crate::routes::RouteDef;
use crate::ruby_regex::translate::Widening;
use crate::rules::Rules;

const MAGIC: &[u8; 8] = b"GLCLEARN";
/// 2: mounted routes match as prefixes and simulator routes end in `\z`, so version-1 automata differ.
/// 3: routes split between automata by key segments (`layout`, `automata_keys`). Mounts' patterns
/// later gained a final `\z`; a version-3 automaton without it gives the same answers (only
/// the matches that end with the path are read), so the version stayed.
const FORMAT_VERSION: u32 = 3;
const PREAMBLE: usize = 8 + 4 + 4 + 8 + 8;

/// Bytes that are not a usable artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The bytes do not start with `GLCLEARN`.
    #[error("not a gitlab-cells-learn artifact (bad magic bytes)")]
    BadMagic,
    /// Written by another version of the format.
    #[error("artifact format version {found}, this library reads version {FORMAT_VERSION}")]
    Version {
        /// The version the bytes carry.
        found: u32,
    },
    /// Shorter than the preamble says; the text names the part missing.
    #[error("artifact truncated: {0}")]
    Truncated(String),
    /// The payload's checksum differs from the preamble's.
    #[error("artifact checksum mismatch: the bytes are corrupted")]
    Checksum,
    /// The JSON header does not parse, its routes or rules no longer compile, or its parts do not
    /// fit together; the text says which.
    #[error("artifact header: {0}")]
    Header(String),
    /// `regex-automata` refuses a serialized dense DFA.
    #[error("artifact automaton: {0}")]
    Automaton(#[from] regex_automata::util::wire::DeserializeError),
}

#[derive(Serialize, Deserialize)]
struct Header {
    crate_version: String,
    routes: Vec<RouteDef>,
    rules: Option<Rules>,
    max_path_len: usize,
    /// For each automaton, for each pattern, the routes it stands for.
    automata_routes: Vec<Vec<Vec<u32>>>,
    /// For each automaton, the path segments that select it (empty: every path).
    automata_keys: Vec<Vec<String>>,
    layout: Layout,
    /// For each route, what its DFA pattern widened (empty: the automaton decides it alone).
    widenings: Vec<Vec<Widening>>,
    /// Byte length of each automaton, in order, each starting on a 4-byte boundary; empty
    /// when the classifier uses the lazy DFA, which `regex-automata` cannot serialize: such an
    /// artifact is rebuilt from the routes on load (the NFA build, a fraction of a second).
    dfa_lens: Vec<usize>,
    /// What searches the table when `dfa_lens` is empty: the segment tree alone, or lazy DFAs
    /// (absent in artifacts written before the segment tree, which were all lazy then).
    #[serde(default)]
    engine: Option<EngineKind>,
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Serializes a classifier, with optional rules: its dense DFAs as built; a table searched by
/// lazy DFAs or by its segment tree alone is rebuilt from its routes on load.
pub fn write(classifier: &Classifier, rules: Option<&Rules>) -> Result<Vec<u8>, ArtifactError> {
    let dfas: Vec<Vec<u8>> = classifier.engines().map(|e| e.dense_bytes()).collect::<Option<_>>().unwrap_or_default();
    let header = Header {
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        routes: classifier.routes.iter().map(|r| r.def.clone()).collect(),
        rules: rules.cloned(),
        max_path_len: classifier.max_path_len,
        automata_routes: classifier.automata.iter().map(|a| a.pattern_routes.clone()).collect(),
        automata_keys: classifier.automata.iter().map(|a| a.keys.clone()).collect(),
        layout: classifier.layout,
        widenings: classifier.routes.iter().map(|r| r.widenings.clone()).collect(),
        dfa_lens: dfas.iter().map(Vec::len).collect(),
        engine: Some(classifier.engine_kind()),
    };
    let header = serde_json::to_vec(&header).map_err(|e| ArtifactError::Header(e.to_string()))?;
    let mut payload = Vec::with_capacity(4 + header.len() + dfas.iter().map(|d| d.len() + 4).sum::<usize>());
    payload.extend_from_slice(&(header.len() as u32).to_le_bytes());
    payload.extend_from_slice(&header);
    for dfa in &dfas {
        while (PREAMBLE + payload.len()) % 4 != 0 {
            payload.push(0);
        }
        payload.extend_from_slice(dfa);
    }
    let mut out = Vec::with_capacity(PREAMBLE + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a64(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Loads what [`write()`] wrote; a route only Ruby's `Regexp` can decide is refused (see [`read_with`]).
///
/// ```
/// use cells_learn::{artifact, Classifier, RouteDef, Rules};
///
/// let classifier = Classifier::new(vec![RouteDef::new("GET", "/*namespace_id/:project_id(.:format)")]).unwrap();
/// let bytes = artifact::write(&classifier, Some(&Rules::gitlab_default())).unwrap();
/// let (loaded, rules) = artifact::read(&bytes).unwrap();
/// assert_eq!(loaded.recognize("GET", b"/gitlab-org/gitlab").unwrap().map(|m| m.route_index()), Some(0));
/// assert_eq!(rules, Some(Rules::gitlab_default()));
/// // Foreign, truncated or corrupted bytes are refused, never trusted.
/// assert!(matches!(artifact::read(&bytes[..bytes.len() - 1]), Err(artifact::ArtifactError::Truncated(_))));
/// ```
pub fn read(bytes: &[u8]) -> Result<(Classifier, Option<Rules>), ArtifactError> {
    read_with(bytes, false)
}

/// [`read()`]; with `host_regex` (the gem), routes only Ruby's `Regexp` can decide are loaded
/// for a [`crate::classifier::RegexHost`] (see [`BuildOptions::host_regex`]).
pub fn read_with(bytes: &[u8], host_regex: bool) -> Result<(Classifier, Option<Rules>), ArtifactError> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(ArtifactError::BadMagic);
    }
    if bytes.len() < PREAMBLE {
        return Err(ArtifactError::Truncated(format!("{} bytes, the preamble alone is {PREAMBLE}", bytes.len())));
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(ArtifactError::Version { found: version });
    }
    let payload_len = u64_at(16);
    let payload = &bytes[PREAMBLE..];
    if payload.len() as u64 != payload_len {
        return Err(ArtifactError::Truncated(format!("payload is {} bytes, the preamble says {payload_len}", payload.len())));
    }
    if fnv1a64(payload) != u64_at(24) {
        return Err(ArtifactError::Checksum);
    }
    if payload.len() < 4 {
        return Err(ArtifactError::Truncated("no header length".into()));
    }
    let header_len = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
    let header_bytes = payload.get(4..4 + header_len).ok_or_else(|| ArtifactError::Truncated("header".into()))?;
    let header: Header = serde_json::from_slice(header_bytes).map_err(|e| ArtifactError::Header(e.to_string()))?;
    let mut offset = 4 + header_len;
    let mut engines = Vec::with_capacity(header.dfa_lens.len());
    for &len in &header.dfa_lens {
        while (PREAMBLE + offset) % 4 != 0 {
            offset += 1;
        }
        let dfa = payload.get(offset..offset.saturating_add(len)).ok_or_else(|| ArtifactError::Truncated("automaton".into()))?;
        engines.push(Engine::from_dense_bytes(dfa)?);
        offset += len;
    }
    if offset != payload.len() {
        return Err(ArtifactError::Header("the automata do not fill the payload".into()));
    }
    let options = BuildOptions {
        engine: EngineConfig { kind: EngineKind::Dense, ..EngineConfig::default() },
        max_path_len: header.max_path_len,
        host_regex,
        ..BuildOptions::default()
    };
    if engines.is_empty() {
        let kind = match header.engine {
            Some(EngineKind::SegmentTree) => EngineKind::SegmentTree,
            _ => EngineKind::Lazy,
        };
        let options =
            BuildOptions { engine: EngineConfig { kind, ..EngineConfig::default() }, max_path_len: header.max_path_len, host_regex, ..BuildOptions::default() };
        let classifier = Classifier::build(header.routes, &options).map_err(|e| ArtifactError::Header(format!("routes no longer compile: {e}")))?;
        return Ok((classifier, header.rules));
    }
    if engines.len() != header.automata_routes.len() || engines.len() != header.automata_keys.len() {
        return Err(ArtifactError::Header("automaton count differs from the header".into()));
    }
    let automata = engines
        .into_iter()
        .zip(header.automata_routes)
        .zip(header.automata_keys)
        .map(|((engine, pattern_routes), keys)| Automaton { engine, pattern_routes, keys })
        .collect();
    let classifier = Classifier::from_parts(header.routes, &options, automata, header.layout, header.widenings)
        .map_err(|e| ArtifactError::Header(format!("routes no longer compile: {e}")))?;
    if let Some(rules) = &header.rules {
        rules.validate().map_err(|e| ArtifactError::Header(e.to_string()))?;
    }
    Ok((classifier, header.rules))
}
