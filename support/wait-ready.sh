# Sourced by script/bench-router, script/build-router-pgo, script/redis-kill-figure and
# script/router-instructions: waits for a server each has just started (nginx playing the cell, a
# router, the hyper floor) to answer before any load is sent to it.
#
# `wait_ready URL [PID]` returns 0 once URL answers with a 2xx status, asking every 0.1 s for at
# most WAIT_READY_SECONDS (default 10). It returns 1 when PID (if given) exits first or the time
# runs out, with the reason in WAIT_READY_WHY, which the caller puts in its own one-line failure
# (a process that died at start is told apart from one that never answered, and a server that
# answers but not with a 2xx names its last status).
wait_ready() {
  local url=$1 pid=${2:-} seconds=${WAIT_READY_SECONDS:-10} status=000 i
  WAIT_READY_WHY=
  case "$seconds" in '' | *[!0-9]* | 0)
    WAIT_READY_WHY="WAIT_READY_SECONDS must be a whole number of seconds >= 1, not '$seconds'"
    return 1 ;;
  esac
  for ((i = 0; i < seconds * 10; i++)); do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      WAIT_READY_WHY="the process for $url (pid $pid) exited before it answered"
      return 1
    fi
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    case "$status" in 2??) return 0 ;; esac
    sleep 0.1
  done
  # curl's 000: no answer at all (refused, or none within its 2 s).
  [ "$status" = 000 ] && status=none
  WAIT_READY_WHY="$url did not answer with a 2xx within $seconds s (last status: $status)"
  return 1
}
