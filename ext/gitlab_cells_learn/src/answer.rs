//! A learn answer as Ruby sees it: `Gitlab::Cells::Learn::Result::FromNative`, one typed-data
//! object per `learn` whose readers are native ([`Answer`]).
//!
//! An answer's Rust side is one box that takes over the core's two Strings (the path and the
//! entity key or cell) as they are: one allocation a `learn` besides the core's own, and no copy.
//! Ruby frees a dead answer when its GC sweeps it, thousands at a time, long after the `learn`
//! that made it; the extension's allocator (mimalloc, see `allocator.rs`) takes such bursts on
//! its fast path. (With glibc's malloc a pool of up to 8,192 swept boxes was kept here instead,
//! their Strings refilled by copying. With mimalloc the plain box is ~115 instructions a `learn`
//! cheaper under callgrind, and a Ruby process that made 400,000 answers on GitLab CE's table
//! holds 52.6 MiB instead of the pool's 60.8.)

use std::cell::Cell;
use std::ffi::c_void;

use cells_learn::{Learned, Source};
use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::value::{Opaque, ReprValue};
use magnus::{Error, RArray, RString, Ruby, TypedData, Value};

use crate::{receiver, RESULT_CLASS};

/// The small fields of a learn answer, packed into one Integer (decoded by `Result`).
pub(crate) struct Flags {
    pub(crate) source: Source,
    pub(crate) exact: bool,
    pub(crate) cacheable: bool,
    /// 0 none, else 1 + the entity kind's position in `EntityKind`.
    pub(crate) kind: u64,
    /// 0 none, else 1 + the `Unrouted` reason's position.
    pub(crate) reason: u64,
    pub(crate) route: Option<usize>,
}

/// Where [`Flags::pack`] puts the route index + 1.
const ROUTE_SHIFT: u32 = 9;

impl Flags {
    /// Bits 0–1 source (its position in `Source`), 2 exact, 3 cacheable, 4–6 kind, 7–8 reason,
    /// 9+ route index + 1 (0: none).
    pub(crate) fn pack(&self) -> u64 {
        self.source as u64
            | (self.exact as u64) << 2
            | (self.cacheable as u64) << 3
            | self.kind << 4
            | self.reason << 7
            | self.route.map_or(0, |r| r as u64 + 1) << ROUTE_SHIFT
    }
}

/// The Rust side of a `Result::FromNative`. It keeps what the readers need of the core's
/// [`Learned`] (its Strings moved, not copied) and makes the Ruby Strings a reader asks for once,
/// on first use: a caller that reads only the path pays for no entity key.
pub(crate) struct Answer {
    /// [`Flags::pack`].
    flags: u64,
    /// The path the router may cache.
    path_text: String,
    /// The entity key (routable) or the rule's cell (fixed).
    extra_text: Option<String>,
    /// The frozen path String once made; the request's own String from the start when it serves.
    path: Cell<Option<Opaque<RString>>>,
    /// The entity key (routable) or the rule's cell (fixed) as a frozen String, once asked for.
    extra: Cell<Option<Opaque<RString>>>,
    /// The Ruby classifier's RouteInfo list (frozen).
    routes: Opaque<Value>,
}

impl Answer {
    /// A frozen `Result::FromNative` holding `learned`: `flags` packed from it, `path` the
    /// request's own String when it can serve as the answer's path ([`reused_path`]), `routes`
    /// the Ruby classifier's RouteInfo list.
    pub(crate) fn into_ruby(ruby: &Ruby, flags: u64, learned: Learned, path: Option<RString>, routes: Value) -> Value {
        let (path_text, extra_text) = match learned {
            Learned::Routable { path, entity, .. } => (path, Some(entity.key)),
            Learned::Fixed { path, cell, .. } => (path, cell),
            Learned::Default { path, .. } => (path, None),
        };
        let answer = Box::new(Answer { flags, path_text, extra_text, path: Cell::new(path.map(Opaque::from)), extra: Cell::new(None), routes: routes.into() });
        let class = <Self as TypedData>::class(ruby);
        let data_type = Self::data_type() as *const magnus::DataType as *const rb_sys::rb_data_type_t;
        // SAFETY: `class` is `Result::FromNative`, whose data type this is; Ruby owns the box
        // from here and hands it back to `free` (as magnus' own `wrap` does).
        let obj = unsafe { Value::from_raw(rb_sys::rb_data_typed_object_wrap(class.as_raw(), Box::into_raw(answer) as *mut c_void, data_type)) };
        // The type is write-barrier protected: the references it holds from the start are
        // announced like any later one (a young object may be allocated already marked, during
        // an incremental major GC).
        // SAFETY: `obj` is the live answer holding both references.
        unsafe {
            rb_sys::rb_gc_writebarrier(obj.as_raw(), routes.as_raw());
            if let Some(path) = path {
                rb_sys::rb_gc_writebarrier(obj.as_raw(), path.as_raw());
            }
        }
        freeze_new(obj);
        obj
    }

    fn extra_str(&self) -> Option<&str> {
        self.extra_text.as_deref()
    }

    fn route_index(&self) -> Option<usize> {
        (self.flags >> ROUTE_SHIFT).checked_sub(1).map(|r| r as usize)
    }

    /// `#path`: the path the router may cache, a frozen UTF-8 String (the same one each time).
    pub(crate) fn path(ruby: &Ruby, rb_self: Value) -> Result<RString, Error> {
        let this = receiver::<Self>(ruby, rb_self)?;
        Ok(cached_string(ruby, rb_self, &this.path, &this.path_text))
    }

    /// `#flags` (private): the packed small fields, see [`Flags`].
    pub(crate) fn flags(ruby: &Ruby, rb_self: Value) -> Result<u64, Error> {
        Ok(receiver::<Self>(ruby, rb_self)?.flags)
    }

    /// `#extra` (private): the entity key of a routable answer, the cell of a fixed one, else nil.
    pub(crate) fn extra(ruby: &Ruby, rb_self: Value) -> Result<Option<RString>, Error> {
        let this = receiver::<Self>(ruby, rb_self)?;
        Ok(this.extra_str().map(|extra| cached_string(ruby, rb_self, &this.extra, extra)))
    }

    /// `#route`: the RouteInfo of the route that matched, or nil.
    pub(crate) fn route(ruby: &Ruby, rb_self: Value) -> Result<Value, Error> {
        let this = receiver::<Self>(ruby, rb_self)?;
        match this.route_index() {
            None => Ok(ruby.qnil().as_value()),
            Some(index) => RArray::from_value(ruby.get_inner(this.routes))
                .ok_or_else(|| Error::new(ruby.exception_type_error(), "the routes are not an Array"))?
                .entry(index as isize),
        }
    }
}

// Write-barrier protected: every reference is announced when stored (`Answer::into_ruby`,
// `cached_string`), so a minor GC need not mark an old answer again, and Ruby allocates the
// object on its fast path (an unprotected object takes the slow one, under the VM lock: ~190
// instructions more a `learn`, ~115 net of the barriers).
impl magnus::DataTypeFunctions for Answer {
    fn mark(&self, marker: &magnus::gc::Marker) {
        if let Some(path) = self.path.get() {
            marker.mark(path);
        }
        if let Some(extra) = self.extra.get() {
            marker.mark(extra);
        }
        marker.mark(self.routes);
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.path_text.capacity() + self.extra_text.as_ref().map_or(0, String::capacity)
    }
}

// SAFETY: `class` is `Result::FromNative` (a subclass of Result, looked up in init) and
// `data_type` describes this type with the functions above.
unsafe impl TypedData for Answer {
    fn class(ruby: &Ruby) -> magnus::RClass {
        ruby.get_inner(*RESULT_CLASS.get().expect("the Result class is looked up in init"))
    }

    fn data_type() -> &'static magnus::DataType {
        static DATA_TYPE: magnus::DataType =
            magnus::data_type_builder!(Answer, "Gitlab::Cells::Learn::Result::FromNative").mark().size().free_immediately().wb_protected().build();
        &DATA_TYPE
    }
}

/// `Result::FromNative`'s allocator: an object wrapping nothing, so `FromNative.new` reaches
/// its `initialize` (which says only the native classifier builds one) and the readers of such an
/// object raise `TypeError` ([`receiver`] finds no data). Without an allocator of its own, Ruby
/// undefines the class' inherited one at the first wrap.
pub(crate) unsafe extern "C" fn allocate_empty_answer(class: rb_sys::VALUE) -> rb_sys::VALUE {
    let data_type = Answer::data_type() as *const magnus::DataType as *const rb_sys::rb_data_type_t;
    // SAFETY: Ruby skips the mark, free and size functions of an object whose data is NULL.
    unsafe { rb_sys::rb_data_typed_object_wrap(class, std::ptr::null_mut(), data_type) }
}

/// Freezes the new answer. On Ruby 3.0 and 3.1 freezing an object whose class is not a
/// singleton class is setting its `FL_FREEZE` flag and nothing else (`rb_obj_freeze_inline`:
/// `rb_freeze_singleton_class` then changes nothing for an ordinary class), and the answer's
/// class is `Result::FromNative`: the flag is set here, ~130 instructions a `learn` less than the
/// call (callgrind, GitLab CE's requests). From Ruby 3.2 on freezing also moves the object to a
/// frozen shape, which only Ruby's own `rb_obj_freeze` does: a flag set by hand would leave the
/// two disagreeing, so those Rubies call it (the gem supports >= 3.0; the version is the one the
/// extension was built against, which is the one that loads it).
fn freeze_new(obj: Value) {
    const FLAG_IS_FREEZING: bool = rb_sys::RUBY_API_VERSION_MAJOR == 3 && rb_sys::RUBY_API_VERSION_MINOR < 2;
    if FLAG_IS_FREEZING {
        // SAFETY: `obj` is a live heap object (a typed-data object just allocated, of an
        // ordinary class): its `RBasic` header is ours to flag as Ruby's own freeze would.
        unsafe { (*(obj.as_raw() as *mut rb_sys::RBasic)).flags |= rb_sys::ruby_fl_type::RUBY_FL_FREEZE as rb_sys::VALUE };
    } else {
        // SAFETY: `obj` is a live heap object; freezing it calls no Ruby code and cannot raise.
        unsafe { rb_sys::rb_obj_freeze(obj.as_raw()) };
    }
}

/// The request's own String as the answer's path when it is that path, UTF-8 and frozen
/// already (Rack's `PATH_INFO` is often binary: the answer's encoding must not depend on it).
/// The lengths first: a routable answer's path is a prefix of the request's, shorter in most
/// requests, and the length is a field read where the encoding is a call into Ruby (~150
/// instructions a `learn` on GitLab CE's requests when the checks ran in the other order).
pub(crate) fn reused_path(ruby: &Ruby, path_info: RString, path: &str) -> Option<RString> {
    use magnus::encoding::EncodingCapable;
    // SAFETY: the bytes are compared at once; nothing runs in between.
    let bytes = unsafe { path_info.as_slice() };
    (bytes.len() == path.len() && bytes == path.as_bytes() && path_info.is_frozen() && path_info.enc_get() == ruby.utf8_encindex()).then_some(path_info)
}

/// A frozen UTF-8 String of `s`, made once into `cache`, a field of the answer `owner`.
fn cached_string(ruby: &Ruby, owner: Value, cache: &Cell<Option<Opaque<RString>>>, s: &str) -> RString {
    if let Some(made) = cache.get() {
        return ruby.get_inner(made);
    }
    let made = ruby.str_new(s);
    made.freeze();
    cache.set(Some(made.into()));
    // SAFETY: `owner` is the live answer that now references `made` (its type is write-barrier protected).
    unsafe { rb_sys::rb_gc_writebarrier(owner.as_raw(), made.as_raw()) };
    made
}
