# Sourced by script/bench-router, script/router-instructions, script/build-router-pgo and
# script/redis-kill-figure: renders the templates of benches/router (the upstream nginx that plays
# the cell, nginx as a proxy, the router's configuration) into a run directory.
#
# `render_template TEMPLATE OUT NAME=VALUE...` writes TEMPLATE to OUT with every `@NAME@` replaced
# by VALUE, taken literally (a `&`, `|` or `\` in it means nothing to sed). A placeholder left
# unfilled (a template gained one its caller does not know) stops the caller with a one-line
# reason rather than starting nginx or the router on a broken file.
render_template() {
  local template=$1 out=$2 kv value left
  local args=()
  shift 2
  for kv in "$@"; do
    value=${kv#*=}
    value=${value//\\/\\\\}; value=${value//|/\\|}; value=${value//&/\\&}
    args+=(-e "s|@${kv%%=*}@|${value}|g")
  done
  sed "${args[@]}" "$template" > "$out" || { echo "render_template: cannot render $template into $out" >&2; exit 1; }
  left=$(grep -o '@[A-Z_]*@' "$out" | head -n1 || true)
  [ -z "$left" ] || { echo "render_template: $template: $left is not filled in (the caller gave ${*%%=*})" >&2; exit 1; }
}
