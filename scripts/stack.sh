#!/usr/bin/env bash
# `npm run up` / `npm run destroy`: runs the Pulumi CLI on the `dev` stack with Pulumi's local file
# backend kept inside the project (.pulumi/, git-ignored), so no Pulumi account is needed and the
# user's own `pulumi login` is left untouched. Extra arguments go to `pulumi up` / `pulumi destroy`.
# `npm run pulumi -- ARGS` runs any other pulumi command the same way (config, stack output, ...).
#
# Which CLI: a `pulumi` the user installed wins. Otherwise the project's pinned npm package `pulumi`
# (Pulumi's official CLI wrapper) runs the CLI of its own version, downloading it on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

action="${1:-}"
case "$action" in
  up | destroy | pulumi) shift ;;
  *)
    echo "usage: scripts/stack.sh up|destroy|pulumi [pulumi arguments...]   (npm run up / npm run destroy -- --yes / npm run pulumi -- config set replicas 3)" >&2
    exit 2
    ;;
esac

# `npm run` puts node_modules/.bin (this project's and every parent folder's) first on PATH, and ours
# holds the npm wrapper's `pulumi`: look for the user's own CLI without those entries.
user_path=""
IFS=: read -r -a path_entries <<<"$PATH"
for entry in "${path_entries[@]}"; do
  case "$entry" in
    */node_modules/.bin | */node_modules/.bin/) ;;
    *) user_path="${user_path:+$user_path:}$entry" ;;
  esac
done
user_cli="$(PATH="$user_path"; command -v pulumi || true)"

if [ ! -d node_modules/@pulumi/pulumi ] || [ ! -f node_modules/pulumi/package.json ]; then
  echo "stack: installing the npm dependencies first (npm ci)" >&2
  # Its report goes to stderr: stdout is the pulumi command's answer (npm run evidence reads an output).
  npm ci --no-audit --no-fund >&2
fi

if [ -n "$user_cli" ]; then
  pulumi_cmd=("$user_cli")
else
  # Where the wrapper keeps the CLI it runs (node_modules/pulumi/run.js, lib/resolve.js, lib/cache.js;
  # pulumi/pulumi, npm/): <cacheDir(version)>/bin/pulumi, i.e. ${PULUMI_HOME:-~/.pulumi}/versions/<version>,
  # version = PULUMI_VERSION or the package's own; used when executable and not empty, else installed
  # there first by get.pulumi.com's install.sh (lib/download.js). Checked here so that a failed download
  # gets one clear line instead of the wrapper's output.
  root="$(node -e 'const version = process.env.PULUMI_VERSION || require("./node_modules/pulumi/package.json").version;
    console.log(require("./node_modules/pulumi/lib/cache.js").cacheDir(version));')"
  version="${root##*/}"
  cached="$root/bin/pulumi"
  if [ ! -x "$cached" ] || [ ! -s "$cached" ]; then
    printf 'stack: no pulumi on PATH; downloading the Pulumi CLI %s into %s (first use, via the npm package pulumi) ... ' \
      "$version" "$root" >&2
    log="$(mktemp "${TMPDIR:-/tmp}/pulumi-cli-download.XXXXXX")"
    if node node_modules/pulumi/run.js version >"$log" 2>&1 && [ -x "$cached" ] && [ -s "$cached" ]; then
      rm -f "$log"
      echo "done" >&2
    else
      reason="unknown error"
      while IFS= read -r line; do [ -n "$line" ] && reason="$line"; done <"$log"
      echo "failed: the Pulumi CLI could not be downloaded (${reason#pulumi: }; full output in $log)." \
        "Install it by hand, then run this again: curl -fsSL https://get.pulumi.com | sh" \
        "(or brew install pulumi/tap/pulumi; see https://www.pulumi.com/docs/install/)" >&2
      exit 1
    fi
  fi
  # Then run that CLI as run.js does (its folder first on PATH, where its language hosts are), but
  # without run.js's node process in between: having no signal handler, it dies at the first Ctrl-C
  # and returns the prompt while pulumi is still cancelling the update.
  export PATH="$root/bin:$PATH"
  pulumi_cmd=("$cached")
fi

mkdir -p .pulumi
export PULUMI_BACKEND_URL="file://$PWD/.pulumi"
# An empty passphrase by default (the stack holds no secrets); a passphrase or passphrase file the
# user has set is kept.
if [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-}"
fi

stack=dev
# `npm run pulumi -- ... --stack NAME` names its own stack: the project's `dev` is then neither created nor selected.
names_stack=false
if [ "$action" = pulumi ]; then
  for arg in "$@"; do
    case "$arg" in --stack | --stack=* | -s) names_stack=true ;; esac
  done
fi
$names_stack || "${pulumi_cmd[@]}" stack select --create "$stack" >/dev/null
if [ "$action" = pulumi ]; then
  exec "${pulumi_cmd[@]}" "$@"
fi
exec "${pulumi_cmd[@]}" "$action" --stack "$stack" "$@"
