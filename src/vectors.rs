//! Request vectors (`shared/corpus/*-requests.jsonl`): what Rails decided for a method and
//! path, and the check that a classifier decides the same.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::classifier::Classifier;

/// One recorded decision of Rails' router.
#[derive(Clone, Debug, Deserialize)]
pub struct Vector {
    /// The HTTP method.
    pub method: String,
    /// The request path (`PATH_INFO`).
    pub path: String,
    /// The route Rails picked, or `None` for no route.
    pub route_index: Option<usize>,
    /// The path parameters Rails extracted, when recorded.
    #[serde(default)]
    pub params: Option<BTreeMap<String, String>>,
}

/// Reads JSON lines; blank lines are skipped, a bad line is an error naming its number.
pub fn from_jsonl(text: &str) -> Result<Vec<Vector>, String> {
    text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1))).collect()
}

/// A vector on which the classifier and Rails differ.
#[derive(Clone, Debug)]
pub struct Disagreement {
    /// Rails' decision.
    pub vector: Vector,
    /// The route the classifier picked.
    pub ours: Option<usize>,
    /// The parameters it extracted (compared where the vector records Rails').
    pub our_params: BTreeMap<String, String>,
    /// The classifier's error, if it refused the request.
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

/// How the routes that ask the host at request time ([`crate::RouteDef::asks_host`]: dynamic
/// constraints, mounted applications) are decided while checking vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Host {
    /// Every such route holds: right for tables recorded without constraint objects (the
    /// `*-requests.jsonl` corpora).
    #[default]
    AcceptAll,
    /// Such a route holds exactly when it is the recorded route: the host GitLab's constrainers
    /// stand for when the database answers as it did while recording
    /// (`gitlab-ce.recorded.jsonl`). Any other pick means the structural match or Rails' order
    /// is wrong, since the host cannot make a route match that does not match structurally.
    Ideal,
}

/// Classifies each vector and collects disagreements (route, and params where recorded).
pub fn check(classifier: &Classifier, vectors: &[Vector]) -> Vec<Disagreement> {
    check_with(classifier, vectors, Host::AcceptAll)
}

/// [`check`] with the routes that ask the host decided by `host`. Recorded `params` hold
/// Rails' whole `path_parameters`, defaults (`controller`, `action`) included; only the route's
/// own spec parameters are compared.
pub fn check_with(classifier: &Classifier, vectors: &[Vector], host: Host) -> Vec<Disagreement> {
    let mut out = Vec::new();
    for v in vectors {
        let decided = classifier.recognize_with(&v.method, v.path.as_bytes(), |m| host == Host::AcceptAll || Some(m.route_index()) == v.route_index);
        match decided {
            Err(e) => out.push(Disagreement { vector: v.clone(), ours: None, our_params: BTreeMap::new(), error: Some(e.to_string()) }),
            Ok(found) => {
                let ours = found.as_ref().map(|m| m.route_index());
                let our_params: BTreeMap<String, String> =
                    found.as_ref().map(|m| m.params().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(&v).into_owned())).collect()).unwrap_or_default();
                let params_agree = match (&v.params, found.as_ref()) {
                    (Some(p), Some(m)) if host == Host::Ideal => {
                        let (names, defaults) = (m.route().param_names(), &m.route().def().defaults);
                        // A spec parameter absent from the path takes the route's default
                        // (`(.:format)` with `defaults: { format: :json }`).
                        let defaulted = |k: &String, v: &String| !our_params.contains_key(k) && defaults.get(k).and_then(|d| d.as_str()) == Some(v.as_str());
                        let recorded: BTreeMap<String, String> =
                            p.iter().filter(|(k, v)| names.contains(k) && !defaulted(k, v)).map(|(k, v)| (k.clone(), v.clone())).collect();
                        recorded == our_params
                    }
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
