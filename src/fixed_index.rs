//! The fixed rules by first segment, so a learn answer tries only the rules that could cover
//! its path instead of every rule in turn.
//!
//! A rule applies to a path ([`applies`]) when it covers it (the same path, or one below it on
//! a `/` boundary; `/` not exact covers every path) or when the path is one of its format
//! variants (`/help.json` under `/help`). Either way the path starts with the rule's path and,
//! right after it, has a `/`, a `.` or nothing; so the first segment up to a `/`, `.` or newline
//! ([`split_first_segment`], the one the first-segment dispatch uses) is the same for both —
//! except for rules whose path is `/`, which stay candidates for every path. The rules filed
//! under the path's first segment, and the `/` rules, are all that can apply, and the first of
//! them in rule order is the first of all rules that applies: the answer
//! [`Rules::fixed_for`](crate::Rules::fixed_for) gives by trying them all (the test below holds
//! the two to the same answer on every path of a generated set).

use rustc_hash::FxHashMap;

use crate::first_segment::split_first_segment;
use crate::learn::covers_prefix;
use crate::rules::FixedRule;

/// Whether `rule` applies to `path`: `Some(false)` it covers it, `Some(true)` the path is a
/// format variant of the rule's path (so only the exact path may be cached), `None` neither.
#[inline]
pub(crate) fn applies(rule: &FixedRule, path: &str) -> Option<bool> {
    let covered = if rule.exact { rule.path == path } else { covers_prefix(&rule.path, path) };
    if covered {
        Some(false)
    } else if rule.path != "/" && is_format_variant(&rule.path, path) {
        Some(true)
    } else {
        None
    }
}

/// `path` is `base.<format>`, the format a single segment without `/` or `.`.
pub(crate) fn is_format_variant(base: &str, path: &str) -> bool {
    match path.strip_prefix(base).and_then(|rest| rest.strip_prefix('.')) {
        Some(format) => !format.is_empty() && !format.contains(['/', '.']),
        None => false,
    }
}

/// The positions of a rule list's rules, filed by first segment.
#[derive(Debug, Default)]
pub(crate) struct FixedIndex {
    /// Rule positions by the rule path's first segment ([`split_first_segment`]), each list in
    /// rule order.
    by_segment: FxHashMap<Box<[u8]>, Vec<usize>>,
    /// The positions of rules tried for every path, in rule order: those whose path is `/` (and
    /// any not starting with `/`, which only an unvalidated list built in code can hold).
    root: Vec<usize>,
}

impl FixedIndex {
    /// Files `rules` (validated: each path starts with `/`).
    pub(crate) fn new(rules: &[FixedRule]) -> FixedIndex {
        let mut index = FixedIndex::default();
        for (i, rule) in rules.iter().enumerate() {
            match split_first_segment(rule.path.as_bytes()) {
                Some((segment, _)) if rule.path != "/" => index.by_segment.entry(segment.into()).or_default().push(i),
                _ => index.root.push(i),
            }
        }
        index
    }

    /// The first rule of `rules` (the list this index was built from) that applies to `path`,
    /// and whether as a format variant: [`Rules::fixed_for`](crate::Rules::fixed_for)'s answer.
    pub(crate) fn first<'r>(&self, rules: &'r [FixedRule], path: &str) -> Option<(&'r FixedRule, bool)> {
        let filed = split_first_segment(path.as_bytes()).and_then(|(segment, _)| self.by_segment.get(segment));
        [filed, Some(&self.root)]
            .into_iter()
            .flatten()
            .filter_map(|list| list.iter().find_map(|&i| applies(&rules[i], path).map(|variant| (i, variant))))
            .min_by_key(|&(i, _)| i)
            .map(|(i, variant)| (&rules[i], variant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rules;

    fn rule(path: &str, exact: bool) -> FixedRule {
        FixedRule { path: path.into(), exact, cell: None, cacheable: true }
    }

    /// Every path over a small alphabet of segments (with formats, dots in segments, the root),
    /// against GitLab's shipped rules and a list built to overlap: the index gives the linear
    /// scan's answer (the same rule, the same variant flag) on each.
    #[test]
    fn the_index_answers_as_trying_every_rule() {
        let overlapping = vec![
            rule("/help", false),
            rule("/help.json", true),
            rule("/-/profile", true),
            rule("/-", false),
            rule("/a.b", false),
            rule("/a", true),
            rule("/", false),
            rule("/a/b", false),
            rule("/", true),
            rule("/x/y.z", true),
            rule("/.well-known", false),
        ];
        let gitlab = Rules::gitlab_default().fixed;
        let segments =
            ["help", "help.json", "help.json.gz", "-", "profile", "profile.json", "a", "a.b", "a.b.c", "b", "x", "y.z", "y", "api", "graphql", ".json", ""];
        let mut paths = vec!["/".to_string()];
        for a in segments {
            paths.push(format!("/{a}"));
            for b in segments {
                paths.push(format!("/{a}/{b}"));
                for c in ["", "c", "c.json"] {
                    paths.push(format!("/{a}/{b}/{c}"));
                }
            }
        }
        let mut applied = 0;
        for rules in [&overlapping, &gitlab, &overlapping[..6].to_vec(), &overlapping[6..].to_vec()] {
            let index = FixedIndex::new(rules);
            let linear = Rules { default_cell: "cell_0".into(), fixed: rules.to_vec(), routable: vec![] };
            for path in &paths {
                // Which rule (its position) and whether as a variant.
                let expected = linear.fixed_for(path).map(|(r, v)| (linear.fixed.iter().position(|x| std::ptr::eq(x, r)), v));
                applied += expected.is_some() as usize;
                let got = index.first(rules, path).map(|(r, v)| (rules.iter().position(|x| std::ptr::eq(x, r)), v));
                assert_eq!(got, expected, "{path} under {rules:?}");
            }
        }
        // The set exercises rules applying (covered and as variants) and not.
        assert!(applied > paths.len(), "{applied}");
        let index = FixedIndex::new(&overlapping);
        assert_eq!(index.first(&overlapping, "/help.json").map(|(r, v)| (r.path.as_str(), v)), Some(("/help", true)));
        assert_eq!(index.first(&overlapping, "/a.b.json").map(|(r, v)| (r.path.as_str(), v)), Some(("/a.b", true)));
        assert_eq!(index.first(&overlapping, "/zz").map(|(r, v)| (r.path.as_str(), v)), Some(("/", false)));
    }
}
