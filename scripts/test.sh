#!/usr/bin/env bash
# Every test (`npm test`, after the build): the system test files one after another, each deploying a whole
# stack, and beside them the other files one at a time; two test processes at once on a two-core machine.
# One ava run of both at concurrency 2 would start the system files only after the integration ones, and
# keep a slot waiting while one system file waits for another (test/helpers/system-lock.ts).
set -uo pipefail
cd "$(dirname "$0")/.."
# Given files or ava options (`npm test -- FILE`), ava runs just those.
ava=node_modules/.bin/ava
if (($# > 0)); then exec "$ava" "$@"; fi
mapfile -t system < <(find test/system -name '*.test.ts' | sort)
mapfile -t others < <(find test -name '*.test.ts' -not -path 'test/system/*' | sort)
"$ava" --concurrency 1 "${system[@]}" &
system_pid=$!
# A background job of a script ignores Ctrl-C: an interrupt or stop of this script is passed on to it.
trap 'kill -INT "$system_pid" 2>/dev/null' INT TERM
"$ava" --concurrency 1 "${others[@]}"
others_status=$?
wait "$system_pid"
system_status=$?
echo "test: system files exit ${system_status}, other files exit ${others_status}"
exit $(( system_status != 0 || others_status != 0 ))
