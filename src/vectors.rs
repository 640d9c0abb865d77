//! Request vectors (`shared/corpus/*-requests.jsonl`): what Rails decided for a method and
//! path, and the check that a classifier decides the same.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::classifier::Classifier;

/// One recorded decision of Rails' router.
#[derive(Clone, Debug, Deserialize)]
pub struct Vector {
    pub method: String,
    pub path: String,
    /// The route Rails picked, or `None` for no route.
    pub route_index: Option<usize>,
    /// The path parameters Rails extracted, when recorded.
    #[serde(default)]
    pub params: Option<BTreeMap<String, String>>,
}

/// Reads JSON lines; blank lines are skipped, a bad line is an error naming its number.
pub fn from_jsonl(text: &str) -> Result<Vec<Vector>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// A vector on which the classifier and Rails differ.
#[derive(Clone, Debug)]
pub struct Disagreement {
    pub vector: Vector,
    pub ours: Option<usize>,
    pub our_params: BTreeMap<String, String>,
    pub error: Option<String>,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.vector;
        write!(f, "{} {}: rails route {:?}", v.method, v.path, v.route_index)?;
        if let Some(p) = &v.params {
            write!(f, " params {p:?}")?;
        }
        match &self.error {
            Some(e) => write!(f, "; ours: error {e}"),
            None => write!(f, "; ours route {:?} params {:?}", self.ours, self.our_params),
        }
    }
}

/// Classifies each vector and collects disagreements (route, and params where recorded).
pub fn check(classifier: &Classifier, vectors: &[Vector]) -> Vec<Disagreement> {
    let mut out = Vec::new();
    for v in vectors {
        match classifier.classify(&v.method, v.path.as_bytes()) {
            Err(e) => out.push(Disagreement { vector: v.clone(), ours: None, our_params: BTreeMap::new(), error: Some(e.to_string()) }),
            Ok(found) => {
                let ours = found.as_ref().map(|m| m.route_index());
                let our_params: BTreeMap<String, String> = found
                    .as_ref()
                    .map(|m| m.params().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(&v).into_owned())).collect())
                    .unwrap_or_default();
                let params_agree = match (&v.params, v.route_index) {
                    (Some(p), Some(_)) => *p == our_params,
                    _ => true,
                };
                if ours != v.route_index || !params_agree {
                    out.push(Disagreement { vector: v.clone(), ours, our_params, error: None });
                }
            }
        }
    }
    out
}
