//! What the query side asks of every candidate route — which verbs it takes, whether the
//! automaton decides it alone, whether a host may turn it down — packed in two bytes per route,
//! one array for the table.
//!
//! Why: a request weighs ~10 candidates on GitLab CE (the glob-led routes match most paths) and
//! asked each of its [`CompiledRoute`]: a cache line of its own, and its verbs a list of boxed
//! strings compared with the method. The array holds 32 routes per cache line and a verb is a
//! bit; the route itself is read only for the one that answers.

use super::CompiledRoute;
use crate::routes::Verbs;

/// The methods with a bit of their own, bit `i` for `METHODS[i]` (every verb GitLab's tables
/// name; [`Method::new`] spells them out); a route naming any other is marked [`OTHER`], and
/// such a method is asked of its [`Verbs`].
#[cfg(test)]
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
/// HEAD's bit (its place in [`METHODS`]).
const HEAD: u16 = 1 << 5;
/// `Verbs::Any`.
const ANY: u16 = 1 << 7;
/// Names a verb outside [`METHODS`].
const OTHER: u16 = 1 << 8;
/// [`CompiledRoute::is_exact_in_dfa`].
const EXACT: u16 = 1 << 9;
/// [`RouteDef::asks_host`](crate::RouteDef::asks_host).
const ASKS_HOST: u16 = 1 << 10;

/// One route's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteBits(u16);

/// A request's method, with its bit among [`METHODS`] (none for another method).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Method<'m> {
    pub name: &'m str,
    bit: u16,
}

impl<'m> Method<'m> {
    #[inline]
    pub fn new(name: &'m str) -> Method<'m> {
        // A `match` (length, then bytes) rather than a search of METHODS: this runs per request.
        let bit = match name {
            "GET" => 1,
            "POST" => 1 << 1,
            "PUT" => 1 << 2,
            "PATCH" => 1 << 3,
            "DELETE" => 1 << 4,
            "HEAD" => HEAD,
            "OPTIONS" => 1 << 6,
            _ => 0,
        };
        Method { name, bit }
    }

    /// Whether this is HEAD.
    #[inline]
    pub fn is_head(self) -> bool {
        self.bit == HEAD
    }

    /// GET, which HEAD is taken as when no route names HEAD.
    pub const GET: Method<'static> = Method { name: "GET", bit: 1 };
}

impl RouteBits {
    /// No verb, no flag.
    pub const NONE: RouteBits = RouteBits(0);

    /// The verbs and flags of both.
    pub fn with(self, other: RouteBits) -> RouteBits {
        RouteBits(self.0 | other.0)
    }

    /// Whether the routes whose bits these are together may take `method`: [`RouteBits::allows`]
    /// without a route to ask about methods outside [`METHODS`] (true for those if any route
    /// names one).
    #[inline]
    pub fn may_allow(self, method: Method<'_>) -> bool {
        self.0 & (ANY | method.bit) != 0 || (method.bit == 0 && self.0 & OTHER != 0)
    }

    pub fn of(route: &CompiledRoute) -> RouteBits {
        let verbs = match &route.verbs {
            Verbs::Any => ANY,
            Verbs::Only(names) => names.iter().map(|name| Method::new(name).bit).fold(0, |bits, bit| bits | if bit == 0 { OTHER } else { bit }),
        };
        let exact = if route.is_exact_in_dfa() { EXACT } else { 0 };
        let asks_host = if route.def.asks_host() { ASKS_HOST } else { 0 };
        RouteBits(verbs | exact | asks_host)
    }

    /// Whether a request with `method` may take the route (`route`: the route, asked only for a
    /// method outside [`METHODS`]); [`Verbs::allows`].
    #[inline]
    pub fn allows(self, method: Method<'_>, route: &CompiledRoute) -> bool {
        self.0 & (ANY | method.bit) != 0 || (method.bit == 0 && self.0 & OTHER != 0 && route.verbs.allows(method.name))
    }

    /// Journey's HEAD routes: those that name HEAD.
    #[inline]
    pub fn names_head(self) -> bool {
        self.0 & ANY == 0 && self.0 & HEAD != 0
    }

    #[inline]
    pub fn is_exact_in_dfa(self) -> bool {
        self.0 & EXACT != 0
    }

    #[inline]
    pub fn asks_host(self) -> bool {
        self.0 & ASKS_HOST != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Classifier, RouteDef};

    /// The bits answer as the routes' own verb lists do, for every verb and method.
    #[test]
    fn bits_answer_as_the_verbs_do() {
        for (i, name) in METHODS.iter().enumerate() {
            assert_eq!(Method::new(name).bit, 1 << i, "{name}");
        }
        assert_eq!(Method::new("GETS").bit, 0);
        let verbs = ["", "GET", "HEAD", "GET|HEAD", "POST|PUT|PATCH", "DELETE", "OPTIONS", "PROPFIND", "GET|PROPFIND", "PURGE|MKCOL"];
        let defs: Vec<RouteDef> = verbs.iter().enumerate().map(|(i, v)| RouteDef::new(*v, format!("/r{i}"))).collect();
        let classifier = Classifier::new(defs).unwrap();
        for route in classifier.routes() {
            let bits = RouteBits::of(route);
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND", "PURGE", "MKCOL", "TRACE"] {
                assert_eq!(bits.allows(Method::new(method), route), route.verbs().allows(method), "{} {method}", route.def().verb);
            }
            assert_eq!(bits.names_head(), route.verbs().is_specific() && route.verbs().allows("HEAD"), "{}", route.def().verb);
            assert_eq!(bits.is_exact_in_dfa(), route.is_exact_in_dfa());
            assert_eq!(bits.asks_host(), route.def().asks_host());
        }
    }
}
