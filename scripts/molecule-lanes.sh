#!/usr/bin/env bash
# Run `molecule test` for every scenario given, in LANES parallel lanes that
# take the next scenario from one shared queue as they finish. Each
# scenario's output goes to .cache/molecule/<scenario>.log and is printed
# whole when it ends, so logs never interleave. Exits 1 if any scenario
# failed, after all of them ran.
#
#   scripts/molecule-lanes.sh [-j LANES] scenario...
set -uo pipefail

lanes=1
if [ "${1:-}" = "-j" ]; then lanes=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-j LANES] scenario..." >&2; exit 2; }
molecule=${MOLECULE:-molecule}
here=$(cd "$(dirname "$0")/.." && pwd)
logs=$here/.cache/molecule
mkdir -p "$logs"
queue=$logs/queue.$$
printf '%s\n' "$@" >"$queue"
: >"$queue.failed"
trap 'rm -f "$queue" "$queue.failed" "$queue.lock"' EXIT

# Take the first line of the queue under a lock; empty when none is left.
next_scenario() {
  (
    flock 9
    head -n 1 "$queue"
    sed -i 1d "$queue"
  ) 9>"$queue.lock"
}

lane() {
  local s start status
  while s=$(next_scenario) && [ -n "$s" ]; do
    start=$(date +%s)
    echo "===== [lane $1] molecule test -s $s: started $(date -u +%H:%M:%S)"
    (cd "$here" && "$molecule" test -s "$s") >"$logs/$s.log" 2>&1
    status=$?
    (
      flock 9
      echo "===== molecule test -s $s (lane $1, $(( $(date +%s) - start ))s, exit $status)"
      cat "$logs/$s.log"
      echo "===== end of $s: exit $status"
      [ "$status" -eq 0 ] || echo "$s" >>"$queue.failed"
    ) 9>"$queue.lock"
  done
}

for i in $(seq 1 "$lanes"); do
  lane "$i" &
  sleep 5   # stagger the starts: both lanes create containers at once otherwise
done
wait

if [ -s "$queue.failed" ]; then
  echo "Failed scenarios: $(tr '\n' ' ' <"$queue.failed")"
  exit 1
fi
echo "All scenarios passed: $*"
