# Sourced by script/bench-router and script/router-instructions: which cells-router and hyper floor
# (router/examples/bare_proxy.rs) binaries they measure. Both sides always come from one build:
#   BENCH_BUILD=pgo (default)  the profile-guided build the router ships as (script/build-router-pgo,
#                              run when target/pgo has no binaries yet)
#   BENCH_BUILD=release        cargo's plain release build (built when missing)
# CELLS_ROUTER=PATH / BARE_PROXY=PATH name binaries outright (then nothing is built).
# `router_binaries NAME` sets ROUTER, FLOOR and BUILD (pgo, release, or custom when CELLS_ROUTER or
# BARE_PROXY is set), or exits with a one-line reason (NAME: the caller).
router_binaries() {
  local me=$1 build=${BENCH_BUILD:-pgo} dir
  case "$build" in
    pgo) dir="$ROOT/target/pgo/release" ;;
    release) dir="$ROOT/target/release" ;;
    *) echo "$me: BENCH_BUILD must be pgo or release, not ${build@Q}" >&2; exit 2 ;;
  esac
  BUILD=$build
  [ -z "${CELLS_ROUTER:-}${BARE_PROXY:-}" ] || BUILD=custom
  ROUTER=${CELLS_ROUTER:-$dir/cells-router}
  FLOOR=${BARE_PROXY:-$dir/examples/bare_proxy}
  [ -x "$ROUTER" ] && [ -x "$FLOOR" ] && return 0
  if [ -n "${CELLS_ROUTER:-}${BARE_PROXY:-}" ]; then
    local missing=$ROUTER
    [ -x "$ROUTER" ] && missing=$FLOOR
    echo "$me: $missing is not an executable (CELLS_ROUTER / BARE_PROXY)" >&2
    exit 1
  fi
  echo "$me: no $build build of the router and the floor in $dir yet; building it" >&2
  if [ "$build" = pgo ]; then
    "$ROOT/script/build-router-pgo" >&2 || exit 1
  else
    cargo build --release --locked -p cells-router --bin cells-router --example bare_proxy >&2 || exit 1
  fi
}
