//! The Ruby binding of `cells-learn-core`: `Gitlab::Cells::Learn::Native`.
//!
//! Deliberately thin. It converts arguments, releases the GVL while compiling (thousands of
//! routes take milliseconds to determinize, and Puma's other threads should keep serving),
//! maps core errors to the gem's exception classes (defined in Ruby before this library is
//! loaded), and catches panics so none ever unwinds into Ruby. Everything idiomatic — result
//! objects, matchers, the Rack endpoint — lives in `lib/`, except two hot paths defined here on
//! the gem's own classes: `Classifier#learn` (`classifier_learn`) and the readers of
//! `Result::FromNative` (`Answer`).

mod allocator;
mod answer;

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use answer::{allocate_empty_answer, reused_path, Answer, Flags};
use cells_learn::artifact;
use cells_learn::{
    BuildOptions, Classifier as CoreClassifier, CompiledRoute, EngineConfig, EngineKind, EntityKind, LearnResponse, Learned, Learner, Match, RegexHost, Rules,
    Source, Spans, Unrouted,
};

use magnus::value::{LazyId, Opaque, ReprValue};
use magnus::IntoValue;
use magnus::{function, method, prelude::*, Error, ExceptionClass, RArray, RHash, RModule, RString, Ruby, TypedData, Value};

/// `Gitlab::Cells::Learn::Result::FromNative`, looked up once at load: `learn` wraps its
/// answers ([`Answer`]) in it directly rather than calling back into Ruby to construct them.
static RESULT_CLASS: std::sync::OnceLock<magnus::value::Opaque<magnus::RClass>> = std::sync::OnceLock::new();

/// A compiled classifier with its rules; immutable, so one instance serves every Puma thread.
/// Each Ruby `Classifier` holds its own (`@native`): classifiers made by `with_constraints` share
/// the compiled routes ([`Classifier::share`]) but not what [`Classifier::bind`] records.
#[derive(magnus::TypedData)]
#[magnus(class = "Gitlab::Cells::Learn::Native::Classifier", free_immediately, size, mark)]
struct Classifier {
    learner: std::sync::Arc<Learner>,
    /// What the Ruby `Classifier` owning this handle keeps, bound once it is built, so that its
    /// native `learn` ([`classifier_learn`]) reads one instance variable (~150 instructions
    /// each in Ruby 3.1's `rb_ivar_get`) rather than four.
    owner: std::cell::OnceCell<Owner>,
}

/// The Ruby `Classifier`'s state the native `learn` needs ([`Classifier::bind`]).
struct Owner {
    /// It has `constraints:`, which Ruby code asks: `learn` without a block goes to Ruby too.
    constrained: bool,
    /// Its `@ruby_regexps`: the Regexp host for requirements only Ruby decides (None: none).
    ruby_regexps: Option<Opaque<Value>>,
    /// Its `@routes`, the frozen RouteInfo list answers look their route up in.
    routes: Opaque<Value>,
}

// The owner's values are stored after allocation: the type is not write-barrier protected, so
// the GC marks it again rather than relying on barriers.
impl magnus::DataTypeFunctions for Classifier {
    fn mark(&self, marker: &magnus::gc::Marker) {
        if let Some(owner) = self.owner.get() {
            if let Some(regexps) = owner.ruby_regexps {
                marker.mark(regexps);
            }
            marker.mark(owner.routes);
        }
    }
}

fn learn_module(ruby: &Ruby) -> Result<RModule, Error> {
    let gitlab: RModule = ruby.class_object().const_get("Gitlab")?;
    let cells: RModule = gitlab.const_get("Cells")?;
    cells.const_get("Learn")
}

fn exception(ruby: &Ruby, name: &str, message: String) -> Error {
    match learn_module(ruby).and_then(|m| m.const_get::<_, ExceptionClass>(name)) {
        Ok(class) => Error::new(class, message),
        Err(e) => e,
    }
}

/// `InvalidRouteError` carrying the route index, byte position and reason as attributes.
fn invalid_route(ruby: &Ruby, e: &cells_learn::CompileError) -> Error {
    let class = match learn_module(ruby).and_then(|m| m.const_get::<_, ExceptionClass>("InvalidRouteError")) {
        Ok(class) => class,
        Err(e) => return e,
    };
    let build = || -> Result<Error, Error> {
        let exc = class.new_instance((e.to_string(),))?;
        let set = |name: &str, value: Value| exc.funcall::<_, _, Value>("instance_variable_set", (name, value));
        set("@route_index", e.route_index().into_value_with(ruby))?;
        set("@position", e.position().into_value_with(ruby))?;
        let reason = match e {
            cells_learn::CompileError::Spec { source, .. } => source.reason.clone(),
            cells_learn::CompileError::Requirement { source, .. } => source.reason.clone(),
            other => other.to_string(),
        };
        set("@reason", reason.into_value_with(ruby))?;
        Ok(Error::from(exc))
    };
    build().unwrap_or_else(|err| err)
}

/// Runs `f`, turning a panic into `Gitlab::Cells::Learn::Error` instead of letting it cross into Ruby.
fn guarded<T>(ruby: &Ruby, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(exception(ruby, "Error", format!("internal error in the native classifier: {what}")))
        }
    }
}

/// Runs `f` without the GVL, so other Ruby threads run meanwhile. `f` must not touch Ruby.
fn without_gvl<F: FnOnce() -> R, R>(f: F) -> std::thread::Result<R> {
    struct Call<F, R> {
        f: Option<F>,
        result: Option<std::thread::Result<R>>,
    }
    unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(data: *mut c_void) -> *mut c_void {
        // SAFETY: `data` is the `&mut call` below, alive and not otherwise borrowed until
        // rb_thread_call_without_gvl returns.
        let call = unsafe { &mut *(data as *mut Call<F, R>) };
        let f = call.f.take().expect("called once");
        call.result = Some(catch_unwind(AssertUnwindSafe(f)));
        std::ptr::null_mut()
    }
    let mut call = Call { f: Some(f), result: None };
    unsafe {
        rb_sys::rb_thread_call_without_gvl(Some(trampoline::<F, R>), &mut call as *mut Call<F, R> as *mut c_void, None, std::ptr::null_mut());
    }
    call.result.expect("the trampoline ran")
}

/// The HTTP method as the core wants it, from a Ruby String or Symbol in any case. The common
/// verbs come from a static table, so the hot path allocates nothing.
fn verb_of(ruby: &Ruby, method: Value) -> Result<std::borrow::Cow<'static, str>, Error> {
    const VERBS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let upcased = |bytes: &[u8]| -> Result<std::borrow::Cow<'static, str>, Error> {
        // Rack's own spelling first, as one `match` (a jump on the length, then a compare of a
        // word: a search of the list was a slice comparison per verb, ~50 instructions more a
        // `learn`), before the search that ignores case.
        let exact = match bytes {
            b"GET" => Some("GET"),
            b"POST" => Some("POST"),
            b"HEAD" => Some("HEAD"),
            b"PUT" => Some("PUT"),
            b"PATCH" => Some("PATCH"),
            b"DELETE" => Some("DELETE"),
            b"OPTIONS" => Some("OPTIONS"),
            _ => None,
        };
        if let Some(v) = exact.or_else(|| VERBS.iter().find(|v| v.as_bytes().eq_ignore_ascii_case(bytes)).copied()) {
            return Ok(std::borrow::Cow::Borrowed(v));
        }
        // Anything else goes to the core as it is, upper-cased; the core says what is wrong with it.
        Ok(std::borrow::Cow::Owned(String::from_utf8_lossy(bytes).to_ascii_uppercase()))
    };
    if let Some(s) = RString::from_value(method) {
        // Copied out before anything else can run: `upcased` does not call into Ruby.
        return upcased(unsafe { s.as_slice() });
    }
    if let Some(sym) = magnus::Symbol::from_value(method) {
        return upcased(sym.name()?.as_bytes());
    }
    Err(exception(ruby, "InvalidRequestError", format!("method must be a String or Symbol, not {}", unsafe { method.classname() })))
}

/// The request path as a Ruby String, or `InvalidRequestError` naming what was given instead.
fn path_of(ruby: &Ruby, path: Value) -> Result<RString, Error> {
    RString::from_value(path).ok_or_else(|| exception(ruby, "InvalidRequestError", format!("path_info must be a String, not {}", unsafe { path.classname() })))
}

/// A classification error as the gem's exception: `PathTooLongError` for over-long paths (the
/// learn endpoint answers those 414), `InvalidRequestError` for everything else.
fn request_error(ruby: &Ruby, e: &cells_learn::ClassifyError) -> Error {
    let class = match e {
        cells_learn::ClassifyError::PathTooLong { .. } => "PathTooLongError",
        _ => "InvalidRequestError",
    };
    exception(ruby, class, e.to_string())
}

fn bytes_of(s: RString) -> Vec<u8> {
    // Copied at once: a callback into Ruby later could move or change the string.
    unsafe { s.as_slice() }.to_vec()
}

fn engine_kind(ruby: &Ruby, name: &str) -> Result<EngineKind, Error> {
    match name {
        "auto" => Ok(EngineKind::Auto),
        "dense" => Ok(EngineKind::Dense),
        "lazy" => Ok(EngineKind::Lazy),
        "segment_tree" => Ok(EngineKind::SegmentTree),
        other => Err(Error::new(ruby.exception_arg_error(), format!("engine must be auto, dense, lazy or segment_tree, not {other:?}"))),
    }
}

fn parse_rules(ruby: &Ruby, rules_json: Option<RString>) -> Result<Rules, Error> {
    match rules_json {
        None => Ok(Rules::gitlab_default()),
        Some(json) => Rules::from_json(&bytes_of(json)).map_err(|e| exception(ruby, "InvalidRulesError", e.to_string())),
    }
}

impl Classifier {
    fn new(learner: Learner) -> Self {
        Classifier { learner: std::sync::Arc::new(learner), owner: std::cell::OnceCell::new() }
    }

    /// `#share`: another handle on the same compiled routes, for another Ruby `Classifier`
    /// (`with_constraints`), to [`bind`](Self::bind) its own state to.
    fn share(&self) -> Self {
        Classifier { learner: self.learner.clone(), owner: std::cell::OnceCell::new() }
    }

    /// `#bind(constrained, ruby_regexps, routes)`: records, once, the state of the Ruby
    /// `Classifier` that owns this handle (see [`Owner`]); a second call raises `ArgumentError`.
    fn bind(ruby: &Ruby, rb_self: &Self, constrained: bool, ruby_regexps: Option<Value>, routes: RArray) -> Result<(), Error> {
        let owner = Owner { constrained, ruby_regexps: ruby_regexps.map(Opaque::from), routes: routes.as_value().into() };
        rb_self.owner.set(owner).map_err(|_| Error::new(ruby.exception_arg_error(), "this native classifier is bound to a Classifier already"))
    }

    /// `Native::Classifier.compile(routes_json, rules_json_or_nil, engine)`.
    fn compile(ruby: &Ruby, routes_json: RString, rules_json: Option<RString>, engine: String) -> Result<Self, Error> {
        guarded(ruby, || {
            let kind = engine_kind(ruby, &engine)?;
            let rules = parse_rules(ruby, rules_json)?;
            let routes_json = bytes_of(routes_json);
            let defs = cells_learn::routes::from_json(&routes_json).map_err(|e| exception(ruby, "InvalidRouteError", format!("route table JSON: {e}")))?;
            // Requirements only Ruby's Regexp can decide are widened and confirmed by the gem.
            let options = BuildOptions { engine: EngineConfig { kind, ..EngineConfig::default() }, host_regex: true, ..BuildOptions::default() };
            let built = without_gvl(move || allocator::in_bulk(|| CoreClassifier::build(defs, &options)))
                .map_err(|_| exception(ruby, "Error", "internal error while compiling routes".into()))?;
            let inner = built.map_err(|e| invalid_route(ruby, &e))?;
            Ok(Classifier::new(Learner::new(inner, rules)))
        })
    }

    /// `Native::Classifier.load(bytes)`.
    fn load(ruby: &Ruby, bytes: RString) -> Result<Self, Error> {
        guarded(ruby, || {
            let bytes = bytes_of(bytes);
            let (inner, rules) = without_gvl(move || allocator::in_bulk(|| artifact::read_with(&bytes, true)))
                .map_err(|_| exception(ruby, "Error", "internal error while loading".into()))?
                .map_err(|e| exception(ruby, "CorruptArtifactError", e.to_string()))?;
            Ok(Classifier::new(Learner::new(inner, rules.unwrap_or_else(Rules::gitlab_default))))
        })
    }

    fn dump(ruby: &Ruby, rb_self: &Self) -> Result<RString, Error> {
        guarded(ruby, || {
            let bytes = artifact::write(rb_self.learner.classifier(), Some(rb_self.learner.rules())).map_err(|e| exception(ruby, "Error", e.to_string()))?;
            Ok(ruby.str_from_slice(&bytes))
        })
    }

    /// Classifies with a host callback for dynamic constraints (`nil`: all hold) and one for the
    /// routes only Ruby's `Regexp` can decide (`nil`: the table has none). The constraint
    /// callback gets `(route_index, params)` (plus `true` when only the route's request
    /// conditions are asked, for HEAD), the regexp one `(route_index, normalized_path)`
    /// and answers nil or each parameter's `[start, end]` byte span (nil where it did not
    /// match); an exception either raises is re-raised after classification.
    fn with_constraint<'c, T>(
        ruby: &Ruby,
        rb_self: &'c Self,
        constraint: Option<Value>,
        regex_host: Option<Value>,
        run: impl FnOnce(&mut dyn FnMut(&Match<'c, '_>) -> bool, &mut RegexHost<'_>) -> Result<T, cells_learn::ClassifyError>,
    ) -> Result<T, Error> {
        let failure: std::cell::RefCell<Option<Error>> = std::cell::RefCell::new(None);
        let mut regex = |route: &CompiledRoute, path: &[u8]| -> Result<Option<Spans>, cells_learn::ClassifyError> {
            let Some(callable) = regex_host else {
                return Err(cells_learn::ClassifyError::NeedsRuby { route: route.index(), construct: "(no Regexp host given)".into() });
            };
            let call = || -> Result<Option<Spans>, Error> {
                let answer: Value = callable.funcall("call", (route.index(), ruby.str_from_slice(path)))?;
                if answer.is_nil() {
                    return Ok(None);
                }
                let spans: Vec<Option<(usize, usize)>> = magnus::TryConvert::try_convert(answer)?;
                Ok(Some(spans))
            };
            call().map_err(|e| {
                failure.borrow_mut().get_or_insert(e);
                cells_learn::ClassifyError::NeedsRuby { route: route.index(), construct: "(the Regexp host raised)".into() }
            })
        };
        let mut accept = |m: &Match<'c, '_>| -> bool {
            let Some(callable) = constraint else { return true };
            if failure.borrow().is_some() {
                return false;
            }
            let call = || -> Result<bool, Error> {
                let params = params_hash(ruby, m)?;
                // A third argument, true: only the route's request conditions are asked (HEAD).
                let answer: Value = if m.asks_request_conditions_only() {
                    callable.funcall("call", (m.route_index(), params, true))?
                } else {
                    callable.funcall("call", (m.route_index(), params))?
                };
                Ok(answer.to_bool())
            };
            match call() {
                Ok(b) => b,
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    false
                }
            }
        };
        let result = run(&mut accept, &mut regex);
        if let Some(e) = failure.into_inner() {
            return Err(e);
        }
        let _ = rb_self;
        result.map_err(|e| request_error(ruby, &e))
    }

    /// `#learn(method, path_info, constraint, regex_host, routes)` → a frozen `Result::FromNative`:
    /// one Ruby object holding the core's answer ([`Answer`]; `routes` is the Ruby classifier's
    /// RouteInfo list, to look the route up in).
    fn learn(
        ruby: &Ruby,
        rb_self: Value,
        method: Value,
        path: Value,
        constraint: Option<Value>,
        regex_host: Option<Value>,
        routes: Value,
    ) -> Result<Value, Error> {
        Self::answer(ruby, receiver::<Self>(ruby, rb_self)?, method, path, constraint, regex_host, routes)
    }

    /// [`learn`](Self::learn) once the receiver is known (the native `Classifier#learn` comes
    /// here directly).
    fn answer(
        ruby: &Ruby,
        rb_self: &Self,
        method: Value,
        path: Value,
        constraint: Option<Value>,
        regex_host: Option<Value>,
        routes: Value,
    ) -> Result<Value, Error> {
        guarded(ruby, || {
            let method = verb_of(ruby, method)?;
            let path_info = path_of(ruby, path)?;
            let learned = match constraint.or(regex_host) {
                // No callback: no Ruby code runs until the answer is built, so the String's bytes
                // can be borrowed rather than copied.
                None => rb_self.learner.learned(&method, unsafe { path_info.as_slice() }).map_err(|e| request_error(ruby, &e))?,
                Some(_) => {
                    let path = bytes_of(path_info);
                    Self::with_constraint(ruby, rb_self, constraint, regex_host, |accept, regex| {
                        rb_self.learner.learned_with_regex(&method, &path, accept, regex)
                    })?
                }
            };
            let flags = match &learned {
                Learned::Routable { exact, entity, route, .. } => {
                    Flags { source: Source::Routable, exact: *exact, cacheable: true, kind: entity.kind as u64 + 1, reason: 0, route: Some(*route) }
                }
                Learned::Fixed { exact, cacheable, route, .. } => {
                    Flags { source: Source::Fixed, exact: *exact, cacheable: *cacheable, kind: 0, reason: 0, route: *route }
                }
                Learned::Default { reason, route, .. } => {
                    Flags { source: Source::Default, exact: true, cacheable: false, kind: 0, reason: *reason as u64 + 1, route: *route }
                }
            };
            let path = reused_path(ruby, path_info, learned.path());
            Ok(Answer::into_ruby(ruby, flags.pack(), learned, path, routes))
        })
    }

    /// `#recognize(method, path_info, constraint)` → `[route_index, params]` or nil.
    fn recognize(
        ruby: &Ruby,
        rb_self: &Self,
        method: Value,
        path: Value,
        constraint: Option<Value>,
        regex_host: Option<Value>,
    ) -> Result<Option<RArray>, Error> {
        guarded(ruby, || {
            let method = verb_of(ruby, method)?;
            let path = bytes_of(path_of(ruby, path)?);
            let found = Self::with_constraint(ruby, rb_self, constraint, regex_host, |accept, regex| {
                rb_self.learner.classifier().recognize_with_regex(&method, &path, |m| accept(m), regex).map(|m| m.map(Match::into_owned))
            })?;
            match found {
                None => Ok(None),
                Some(m) => {
                    let pair = ruby.ary_new_capa(2);
                    pair.push(m.route_index())?;
                    pair.push(params_hash(ruby, &m)?)?;
                    Ok(Some(pair))
                }
            }
        })
    }

    /// `#matches(method, path_info)` → every matching route in Rails' order, as `[index, params]`.
    fn matches(ruby: &Ruby, rb_self: &Self, method: Value, path: Value, regex_host: Option<Value>) -> Result<RArray, Error> {
        guarded(ruby, || {
            let method = verb_of(ruby, method)?;
            let path = bytes_of(path_of(ruby, path)?);
            let all =
                Self::with_constraint(ruby, rb_self, None, regex_host, |_, regex| rb_self.learner.classifier().matches_with_regex(&method, &path, regex))?;
            let out = ruby.ary_new_capa(all.len());
            for m in &all {
                let pair = ruby.ary_new_capa(2);
                pair.push(m.route_index())?;
                pair.push(params_hash(ruby, m)?)?;
                out.push(pair)?;
            }
            Ok(out)
        })
    }

    /// `#routes_json`: each route's definition plus what the DFA widened (for coverage reports).
    fn routes_json(ruby: &Ruby, rb_self: &Self) -> Result<RString, Error> {
        guarded(ruby, || {
            // Megabytes of temporaries on GitLab's tables, read once after a build: purged at once.
            allocator::in_bulk(|| Ok(ruby.str_new(&Self::routes_json_text(rb_self))))
        })
    }

    fn routes_json_text(rb_self: &Self) -> String {
        let routes: Vec<serde_json::Value> = rb_self
            .learner
            .classifier()
            .routes()
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r.def()).unwrap_or_default();
                v["index"] = r.index().into();
                v["widenings"] = serde_json::to_value(r.widenings()).unwrap_or_default();
                v["params"] = serde_json::to_value(r.param_names()).unwrap_or_default();
                if let Some(host) = r.host_regex() {
                    v["host_regex"] = serde_json::to_value(host).unwrap_or_default();
                }
                v
            })
            .collect();
        serde_json::to_string(&routes).unwrap_or_default()
    }

    fn rules_json(&self) -> String {
        serde_json::to_string(self.learner.rules()).unwrap_or_default()
    }

    fn default_cell(&self) -> String {
        self.learner.rules().default_cell.clone()
    }

    fn engine(&self) -> &'static str {
        self.learner.classifier().engine_kind().as_str()
    }

    fn route_count(&self) -> usize {
        self.learner.classifier().routes().len()
    }

    fn memory_usage(&self) -> usize {
        self.learner.classifier().memory_usage()
    }
}

/// The Ruby `Classifier`'s instance variable holding its native handle, and the private method
/// its native `learn` hands a call with a block or constraints to.
static NATIVE: LazyId = LazyId::new("@native");
static LEARN_DECIDING: LazyId = LazyId::new("learn_deciding_constraints");

/// `Gitlab::Cells::Learn::Classifier#learn(method, path_info)` itself (documented in
/// classifier.rb). The common call, no block and no `constraints:`, goes from Ruby straight to
/// [`Classifier::answer`] with the state the classifier bound to its handle: a Ruby method in
/// between cost ~540 instructions a call (its frame, `defined?(yield)`, three instance variable
/// reads and a five-argument call). Anything else (the block as a Proc, or nil) goes to the
/// private `learn_deciding_constraints`, which decides dynamic constraints in Ruby as before.
fn classifier_learn(ruby: &Ruby, rb_self: Value, method: Value, path: Value) -> Result<Value, Error> {
    use magnus::rb_sys::{AsRawId, AsRawValue, FromRawValue};
    use magnus::value::IntoId;
    // SAFETY: called on a Ruby thread, within the method call Ruby made (its block, if any, is this call's).
    let block_given = unsafe { rb_sys::rb_block_given_p() } != 0;
    // SAFETY: `rb_self` is the live receiver; reading an instance variable calls no Ruby code
    // and never raises (an unset one, or a receiver that cannot have any, reads as nil).
    let native = unsafe { Value::from_raw(rb_sys::rb_ivar_get(rb_self.as_raw(), (*NATIVE).into_id_with(ruby).as_raw())) };
    if !block_given {
        if let Some(this) = data_of::<Classifier>(native) {
            if let Some(owner) = this.owner.get().filter(|owner| !owner.constrained) {
                let regex_host = owner.ruby_regexps.map(|r| ruby.get_inner(r));
                return Classifier::answer(ruby, this, method, path, None, regex_host, ruby.get_inner(owner.routes));
            }
        }
    }
    // SAFETY: as above; with a block given, `rb_block_proc` makes it a Proc and cannot fail.
    let block = if block_given { unsafe { Value::from_raw(rb_sys::rb_block_proc()) } } else { ruby.qnil().as_value() };
    rb_self.funcall(*LEARN_DECIDING, (method, path, block))
}

/// `rb_self` as the `T` it wraps, or `TypeError`; see [`data_of`].
fn receiver<'a, T: TypedData>(ruby: &Ruby, rb_self: Value) -> Result<&'a T, Error> {
    data_of(rb_self)
        .ok_or_else(|| Error::new(ruby.exception_type_error(), format!("no implicit conversion of {} into {}", unsafe { rb_self.classname() }, T::class(ruby))))
}

/// The `T` a typed-data object wraps, or None for anything else (or one wrapping nothing).
/// Magnus' own conversion runs `rb_check_typeddata` inside `rb_protect` (a few hundred
/// instructions a call); here `rb_typeddata_is_kind_of`, which never raises, checks the type,
/// and the data pointer is read off the object as `RTYPEDDATA_DATA` does.
/// `value` must stay alive while the result is used (a method's receiver, or an instance
/// variable of a frozen receiver, is: the data outlives the borrow).
fn data_of<'a, T: TypedData>(value: Value) -> Option<&'a T> {
    use magnus::rb_sys::AsRawValue;
    // `DataType` is `#[repr(transparent)]` over `rb_data_type_t`.
    let data_type = T::data_type() as *const magnus::DataType as *const rb_sys::rb_data_type_t;
    // SAFETY: `value` is a live VALUE; a `T_DATA` of this data type holds a `T`.
    unsafe {
        if rb_sys::rb_typeddata_is_kind_of(value.as_raw(), data_type) == 0 {
            return None;
        }
        (rb_sys::macros::RTYPEDDATA_GET_DATA(value.as_raw()) as *const T).as_ref()
    }
}

fn params_hash(ruby: &Ruby, m: &Match<'_, '_>) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    for (name, value) in m.params() {
        // Parameters are bytes: UTF-8 where they are, binary otherwise (as Rails gives them).
        let value = match std::str::from_utf8(&value) {
            Ok(s) => ruby.str_new(s),
            Err(_) => ruby.str_from_slice(&value),
        };
        hash.aset(name, value)?;
    }
    Ok(hash)
}

/// Rails' `normalize_path` (query string dropped), as the classifier applies it.
fn normalize_path(ruby: &Ruby, path: RString) -> RString {
    let bytes = bytes_of(path);
    let normalized = cells_learn::normalize::normalize_path(&bytes);
    match std::str::from_utf8(&normalized) {
        Ok(s) => ruby.str_new(s),
        Err(_) => ruby.str_from_slice(&normalized),
    }
}

/// `Native.answer_json(flags, path, cell, default_cell, routes_digest, routes_version)` → the
/// learn answer's JSON, decided by the core's [`LearnResponse::decide`] (the same rule the CLI
/// uses) from a Result's packed flags (source bits 0–1, exact 2, cacheable 3) and written by
/// serde, so the Endpoint's answer and the core's are one. `cell`: the resolver's or the fixed
/// rule's cell, or nil; the route table's digest and version (or nil) tag the answer for the
/// router's mixed-version rules ([`LearnResponse::with_table`]).
fn answer_json(
    ruby: &Ruby,
    flags: u64,
    path: RString,
    cell: Option<RString>,
    default_cell: RString,
    routes_digest: Option<RString>,
    routes_version: Option<u64>,
) -> Result<RString, Error> {
    let source = *Source::ALL.get((flags & 0b11) as usize).ok_or_else(|| Error::new(ruby.exception_arg_error(), format!("invalid flags {flags}")))?;
    let text = |s: RString, what: &str| s.to_string().map_err(|_| Error::new(ruby.exception_arg_error(), format!("the {what} must be UTF-8")));
    let (path, default_cell) = (text(path, "path")?, text(default_cell, "default cell")?);
    let cell = cell.map(|c| text(c, "cell")).transpose()?;
    let digest = routes_digest.map(|d| text(d, "routes digest")).transpose()?;
    let response = LearnResponse::decide(source, &path, flags & 0b100 != 0, flags & 0b1000 != 0, cell, &default_cell).with_table(digest, routes_version);
    let json = serde_json::to_string(&response).map_err(|e| exception(ruby, "Error", e.to_string()))?;
    Ok(ruby.str_new(&json))
}

/// `module::name = [nil?, :name, ...].freeze`: a packed field's decoding list, where position 0
/// is `nil` ("none") when `leading_nil`.
fn set_symbols<'a>(ruby: &Ruby, module: RModule, name: &str, leading_nil: bool, names: impl Iterator<Item = &'a str>) -> Result<(), Error> {
    let nil = leading_nil.then(|| ruby.qnil().as_value());
    let list = ruby.ary_from_iter(nil.into_iter().chain(names.map(|n| ruby.to_symbol(n).as_value())));
    list.freeze();
    module.const_set(name, list)
}

#[magnus::init(name = "gitlab_cells_learn")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let learn =
        learn_module(ruby).map_err(|_| Error::new(ruby.exception_load_error(), "require \"gitlab/cells/learn\" instead of the native library directly"))?;
    let native = learn.define_module("Native")?;
    native.define_singleton_method("normalize_path", function!(normalize_path, 1))?;
    native.define_singleton_method("answer_json", function!(answer_json, 6))?;
    let class = native.define_class("Classifier", ruby.class_object())?;
    class.define_singleton_method("compile", function!(Classifier::compile, 3))?;
    class.define_singleton_method("load", function!(Classifier::load, 1))?;
    class.define_method("dump", method!(Classifier::dump, 0))?;
    class.define_method("share", method!(Classifier::share, 0))?;
    class.define_method("bind", method!(Classifier::bind, 3))?;
    let result: magnus::RClass = learn
        .const_get::<_, magnus::RClass>("Result")?
        .const_get("FromNative")
        .map_err(|_| Error::new(ruby.exception_load_error(), "gitlab/cells/learn/result must be loaded before the native library"))?;
    magnus::gc::register_mark_object(result);
    // SAFETY: `result` is a class; the allocator makes objects of the type `learn` wraps.
    unsafe { rb_sys::rb_define_alloc_func(magnus::rb_sys::AsRawValue::as_raw(result), Some(allocate_empty_answer)) };
    let _ = RESULT_CLASS.set(result.into());
    // How `Result` decodes the packed flags (see `Flags`), in the core's own order.
    set_symbols(ruby, native, "SOURCES", false, Source::ALL.iter().map(|s| s.as_str()))?;
    set_symbols(ruby, native, "ENTITY_KINDS", true, EntityKind::ALL.iter().map(|k| k.as_str()))?;
    set_symbols(ruby, native, "REASONS", true, Unrouted::ALL.iter().map(|r| r.as_str()))?;
    result.define_method("path", method!(Answer::path, 0))?;
    result.define_method("route", method!(Answer::route, 0))?;
    result.define_private_method("flags", method!(Answer::flags, 0))?;
    result.define_private_method("extra", method!(Answer::extra, 0))?;
    class.define_method("learn", method!(Classifier::learn, 5))?;
    // The Ruby `Classifier` (classifier.rb reopens it) answers `learn` natively; see `classifier_learn`.
    let classifier = learn.define_class("Classifier", ruby.class_object())?;
    classifier.define_method("learn", method!(classifier_learn, 2))?;
    for id in [&NATIVE, &LEARN_DECIDING] {
        LazyId::force(id, ruby);
    }
    class.define_method("recognize", method!(Classifier::recognize, 4))?;
    class.define_method("matches", method!(Classifier::matches, 3))?;
    class.define_method("routes_json", method!(Classifier::routes_json, 0))?;
    class.define_method("rules_json", method!(Classifier::rules_json, 0))?;
    class.define_method("default_cell", method!(Classifier::default_cell, 0))?;
    class.define_method("engine", method!(Classifier::engine, 0))?;
    class.define_method("route_count", method!(Classifier::route_count, 0))?;
    class.define_method("memory_usage", method!(Classifier::memory_usage, 0))?;
    Ok(())
}
