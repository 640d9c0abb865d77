//! Journey path specs as the flat shapes a path router holds, and each peer's syntax for them.
//!
//! A path router has no optional groups, so `/:id(.:format)` becomes two shapes, `/:id` and
//! `/:id.:format`, both answering the same route. What a peer cannot express (a glob before the
//! end for matchit, two parameters in one segment for matchit, characters its syntax reserves)
//! renders as `None`: the peer skips that route, and the benchmark reports it.
//! Requirements are not part of a shape: a peer holds the route as if its parameters took
//! Journey's defaults, and the per-request agreement check shows where that changes the route.

use cells_learn::internals::{parse_spec, SpecNode};

/// One piece of an expanded path spec.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Piece {
    Lit(String),
    Param(String),
    Glob(String),
}

/// More variants than this (nested optional groups) and the route is not expanded.
const MAX_VARIANTS: usize = 64;

/// Every shape a Journey spec can take, optional groups taken or not (taken first).
pub fn expand(spec: &str) -> Result<Vec<Vec<Piece>>, String> {
    let nodes = parse_spec(spec).map_err(|e| format!("{spec}: {e}"))?;
    let variants = expand_nodes(&nodes)?;
    Ok(variants.into_iter().map(merge_literals).collect())
}

fn expand_nodes(nodes: &[SpecNode]) -> Result<Vec<Vec<Piece>>, String> {
    let mut out: Vec<Vec<Piece>> = vec![Vec::new()];
    for node in nodes {
        let alternatives: Vec<Vec<Piece>> = match node {
            SpecNode::Slash => vec![vec![Piece::Lit("/".into())]],
            SpecNode::Dot => vec![vec![Piece::Lit(".".into())]],
            SpecNode::Literal(text) => vec![vec![Piece::Lit(text.clone())]],
            SpecNode::Symbol(name) => vec![vec![Piece::Param(name.clone())]],
            SpecNode::Star(name) => vec![vec![Piece::Glob(name.clone())]],
            SpecNode::Group(inner) => {
                let mut taken = expand_nodes(inner)?;
                taken.push(Vec::new());
                taken
            }
            SpecNode::Or(choices) => {
                let mut all = Vec::new();
                for choice in choices {
                    all.extend(expand_nodes(std::slice::from_ref(choice))?);
                }
                all
            }
        };
        out = out.iter().flat_map(|head| alternatives.iter().map(move |tail| head.iter().chain(tail).cloned().collect())).collect();
        if out.len() > MAX_VARIANTS {
            return Err(format!("more than {MAX_VARIANTS} optional variants"));
        }
    }
    Ok(out)
}

fn merge_literals(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match (out.last_mut(), piece) {
            (Some(Piece::Lit(acc)), Piece::Lit(more)) => acc.push_str(&more),
            (_, piece) => out.push(piece),
        }
    }
    if out.is_empty() {
        out.push(Piece::Lit("/".into()));
    }
    out
}

/// The shape with parameter names erased: two routes with the same key are the same to a
/// path router, and the first one (Rails' pick) is the one it keeps.
pub fn conflict_key(shape: &[Piece]) -> String {
    let mut key = String::new();
    for piece in shape {
        match piece {
            Piece::Lit(text) => key.push_str(text),
            Piece::Param(_) => key.push('\u{1}'),
            Piece::Glob(_) => key.push('\u{2}'),
        }
    }
    key
}

fn has_repeated_name(shape: &[Piece]) -> bool {
    let names: Vec<&str> = shape
        .iter()
        .filter_map(|p| match p {
            Piece::Param(n) | Piece::Glob(n) => Some(n.as_str()),
            Piece::Lit(_) => None,
        })
        .collect();
    names.iter().enumerate().any(|(i, n)| names[..i].contains(n))
}

/// matchit 0.9: `{name}`, `{*name}` only as the last segment, one parameter per segment,
/// `{`/`}` escaped by doubling.
pub fn matchit(shape: &[Piece]) -> Option<String> {
    if has_repeated_name(shape) {
        return None;
    }
    let mut out = String::new();
    let mut params_in_segment = 0;
    for (i, piece) in shape.iter().enumerate() {
        match piece {
            Piece::Lit(text) => {
                if text.contains('/') {
                    params_in_segment = 0;
                }
                out.push_str(&text.replace('{', "{{").replace('}', "}}"));
            }
            Piece::Param(name) => {
                params_in_segment += 1;
                if params_in_segment > 1 {
                    return None;
                }
                out.push_str(&format!("{{{name}}}"));
            }
            Piece::Glob(name) => {
                if i + 1 != shape.len() || !out.ends_with('/') || params_in_segment > 0 {
                    return None;
                }
                out.push_str(&format!("{{*{name}}}"));
            }
        }
    }
    Some(out)
}

/// wayfind 1.1: `<name>`, `<*name>` anywhere (mid-route wildcards, several parameters per
/// segment when a literal separates them); `<` and `>` cannot appear in a literal.
pub fn wayfind(shape: &[Piece]) -> Option<String> {
    let mut out = String::new();
    for piece in shape {
        match piece {
            Piece::Lit(text) if text.contains(['<', '>']) => return None,
            Piece::Lit(text) => out.push_str(text),
            Piece::Param(name) => out.push_str(&format!("<{name}>")),
            Piece::Glob(name) => out.push_str(&format!("<*{name}>")),
        }
    }
    Some(out)
}

/// path-tree 0.8: `:name`, `:name+` (one or more characters, `/` included) anywhere; a name
/// ends at `-`, `.`, `~`, `/`, `\` or `:`, and `:`, `*`, `+`, `?`, `\` are syntax.
pub fn path_tree(shape: &[Piece]) -> Option<String> {
    if has_repeated_name(shape) {
        return None;
    }
    let mut out = String::new();
    for (i, piece) in shape.iter().enumerate() {
        match piece {
            Piece::Lit(text) => {
                if text.contains([':', '*', '+', '?', '\\']) {
                    return None;
                }
                let after_name = i > 0 && matches!(shape[i - 1], Piece::Param(_) | Piece::Glob(_));
                if after_name && !text.starts_with(['-', '.', '~', '/']) {
                    return None;
                }
                out.push_str(text);
            }
            Piece::Param(name) => out.push_str(&format!(":{name}")),
            Piece::Glob(name) => out.push_str(&format!(":{name}+")),
        }
    }
    Some(out)
}
