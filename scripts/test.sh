#!/usr/bin/env bash
# Every test (`npm test`, after the build): the system test files one after another, each deploying a whole
# stack, and beside them the other files one at a time; two test processes at once on a two-core machine.
# One ava run of both at concurrency 2 would start the system files only after the integration ones, and
# keep a slot waiting while one system file waits for another (test/helpers/system-lock.ts).
set -uo pipefail
cd "$(dirname "$0")/.."
ava=node_modules/.bin/ava
# Given files or ava options (`npm test -- FILE`), ava runs just those.
if (($# > 0)); then exec "$ava" "$@"; fi
mapfile -t system < <(find test/system -name '*.test.ts' | sort)
mapfile -t others < <(find test -name '*.test.ts' -not -path 'test/system/*' | sort)
if ((${#system[@]} == 0 || ${#others[@]} == 0)); then
  echo "test: no test files found under test/ (system: ${#system[@]}, others: ${#others[@]})" >&2
  exit 2
fi
"$ava" --concurrency 1 "${system[@]}" &
system_pid=$!
"$ava" --concurrency 1 "${others[@]}" &
others_pid=$!
# Both runs are background jobs, which a script's Ctrl-C does not reach, and `wait` returns at once on a
# trapped signal: an interrupt or stop of this script is passed on to both, which then clean up and exit.
interrupted=0
trap 'interrupted=1; kill -INT "$system_pid" "$others_pid" 2>/dev/null' INT TERM
wait "$others_pid"
others_status=$?
wait "$system_pid"
system_status=$?
if ((interrupted)); then
  wait "$others_pid" "$system_pid" 2>/dev/null
  echo "test: interrupted" >&2
  exit 130
fi
echo "test: system files exit ${system_status}, other files exit ${others_status}"
exit $((system_status != 0 || others_status != 0))
