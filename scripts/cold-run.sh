#!/usr/bin/env bash
# `npm run test:cold [-- RUNS]`: the README's test command as a newcomer's first run meets it, RUNS times
# in a row (default 1): each run takes a fresh clone of the committed HEAD (no node_modules, no bundles,
# no build/ cache), removes the offline base images so scripts/images.sh builds them again from
# debootstrap, then runs `npm run test:ci` there. Prints one line per run (exit code, time, counts) and
# exits non-zero if any run failed. The servers stay installed (provision.sh is idempotent);
# the images it removes are rebuilt by the run itself.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-1}"
[[ "$runs" =~ ^[1-9][0-9]?$ ]] || { echo "cold-run: RUNS must be a whole number from 1 to 99; got '$runs'" >&2; exit 2; }
command -v docker >/dev/null || { echo "cold-run: needs the docker client and engine (scripts/provision.sh)" >&2; exit 1; }
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
  echo "cold-run: note: uncommitted changes are not part of the clone; it tests HEAD $(git rev-parse --short HEAD)" >&2

# The offline bases, named as scripts/images.sh names them.
mapfile -t base_images < <(sed -n 's/^\(BASE\|CONSUL\)_TAG=//p' scripts/images.sh)
[ "${#base_images[@]}" = 2 ] || { echo "cold-run: cannot read BASE_TAG and CONSUL_TAG from scripts/images.sh" >&2; exit 1; }
# The broker's base (scripts/nats-image.sh) and the multi-VM test's VM image (scripts/vm-image.sh).
mapfile -t -O 2 base_images < <(sed -n 's/^NATS_TAG=//p' scripts/nats-image.sh)
[ "${#base_images[@]}" = 3 ] || { echo "cold-run: cannot read NATS_TAG from scripts/nats-image.sh" >&2; exit 1; }
mapfile -t -O 3 base_images < <(sed -n 's/^VM_TAG=//p' scripts/vm-image.sh)
[ "${#base_images[@]}" = 4 ] || { echo "cold-run: cannot read VM_TAG from scripts/vm-image.sh" >&2; exit 1; }

logs="$PWD/build/cold-runs"
mkdir -p "$logs"
failed=0
clone=""
trap '[ -z "$clone" ] || rm -rf "$clone"' EXIT
for n in $(seq 1 "$runs"); do
  clone="$(mktemp -d /tmp/cnp-cold-XXXXXX)"
  git clone -q "$PWD" "$clone"
  # The offline bases every run shares are removed only here, on purpose, and only when no container
  # uses them (another run would): `docker image rm` without -f refuses then, and this run stops.
  for image in "${base_images[@]}"; do
    if docker image inspect "$image" >/dev/null 2>&1; then
      docker image rm "$image" >/dev/null || {
        echo "cold-run: $image is in use by: $(docker ps -a --filter "ancestor=$image" --format '{{.Names}}' | tr '\n' ' ')" >&2
        exit 1
      }
    fi
  done
  log="$logs/run-$n.log"
  started=$SECONDS
  code=0
  (cd "$clone" && CI=true npm run test:ci) >"$log" 2>&1 </dev/null || code=$?
  counts="$(grep -E '^\s+[0-9]+ (tests? (passed|failed)|known failures?|tests? skipped|tests? todo)' "$log" | tr -s ' \n' ' ' || true)"
  echo "cold-run $n/$runs: exit $code in $((SECONDS - started)) s:${counts:- no test counts (see $log)} log: $log"
  [ "$code" = 0 ] || failed=1
  rm -rf "$clone"
done
exit "$failed"
