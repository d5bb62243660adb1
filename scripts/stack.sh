#!/usr/bin/env bash
# `npm run up` / `npm run destroy`: runs the Pulumi CLI on the `dev` stack with Pulumi's local file
# backend kept inside the project (.pulumi/, git-ignored), so no Pulumi account is needed and the
# user's own `pulumi login` is left untouched. Extra arguments go to `pulumi up` / `pulumi destroy`.
# `npm run pulumi -- ARGS` runs any other pulumi command the same way (config, stack output, ...).
# `scripts/stack.sh rekey [--stack NAME]` moves a stack made with the old empty passphrase to a generated one.
# `npm run tls:renew` (scripts/stack.sh renew-tls): `pulumi up` that makes new server certificates (the edge's,
# and on VMs the replicas', the admin listener's and the brokers') by replacing their steps; the balancer hands
# over, the replicas roll to ones serving them, and each broker restarts (the outbox keeps what it misses).
#
# Secrets in the stack's config and state are encrypted with a passphrase: a random one generated on first
# use into .pulumi/passphrase (mode 0600, git-ignored, like the state beside it) and handed to the CLI as
# PULUMI_CONFIG_PASSPHRASE_FILE, unless the user set PULUMI_CONFIG_PASSPHRASE (even empty) or
# PULUMI_CONFIG_PASSPHRASE_FILE. A stack made before that file existed (its Pulumi.<stack>.yaml has an
# encryptionsalt, or its state exists) was made with the empty passphrase: it keeps that, with a notice.
#
# Which CLI: a `pulumi` the user installed wins. Then the one the project built from Go modules
# (`npm run tools`: .tools/pulumi/bin, with its language host beside it). Otherwise the project's pinned npm
# package `pulumi` (Pulumi's official CLI wrapper) runs the CLI of its own version, downloading it on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

action="${1:-}"
case "$action" in
  up | destroy | pulumi | rekey | renew-tls) shift ;;
  *)
    echo "usage: scripts/stack.sh up|destroy|pulumi|rekey|renew-tls [pulumi arguments...]   (npm run up / npm run destroy -- --yes / npm run pulumi -- config set replicas 3)" >&2
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

built_cli="$PWD/.tools/pulumi/bin/pulumi"
if [ -n "$user_cli" ]; then
  pulumi_cmd=("$user_cli")
elif [ -x "$built_cli" ]; then
  # Its folder first on PATH, as for the wrapper's CLI below: the language host beside it is the one to run.
  export PATH="${built_cli%/*}:$PATH"
  pulumi_cmd=("$built_cli")
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

stack=dev
# `npm run pulumi -- ... --stack NAME` names its own stack: the project's `dev` is then neither created nor selected.
names_stack=false
if [ "$action" = pulumi ] || [ "$action" = rekey ]; then
  previous=""
  for arg in "$@"; do
    case "$previous" in --stack | -s) stack="$arg" ;; esac
    case "$arg" in
      --stack | -s) names_stack=true ;;
      --stack=*) names_stack=true stack="${arg#--stack=}" ;;
    esac
    previous="$arg"
  done
fi

passphrase_file="$PWD/.pulumi/passphrase"

# True when STACK was made before this project generated passphrases, i.e. with the empty one: its
# config file holds the salt of the passphrase it was made with, and its state lies in the backend
# (stacks/<project>/<stack>.json, or stacks/<stack>.json from older CLIs; .gz and .bak copies too).
made_with_empty_passphrase() {
  local stack="$1" config="Pulumi.$1.yaml" state
  [ -f "$passphrase_file" ] && return 1
  if [ -f "$config" ] && [[ "$(<"$config")" == *$'\n'encryptionsalt:* || "$(<"$config")" == encryptionsalt:* ]]; then return 0; fi
  for state in .pulumi/.pulumi/stacks/"$stack".json* .pulumi/.pulumi/stacks/*/"$stack".json*; do
    [ -e "$state" ] && return 0
  done
  return 1
}

# Writes a new random passphrase to FILE (mode 0600) unless FILE exists; never a half-written file: it is
# written aside, then linked into place (two first runs at once both end with the same file).
generate_passphrase() {
  node -e '
    const fs = require("fs"), crypto = require("crypto");
    const file = process.argv[1], aside = `${file}.${process.pid}`;
    fs.writeFileSync(aside, crypto.randomBytes(32).toString("base64") + "\n", { mode: 0o600 });
    try { fs.linkSync(aside, file); } catch (error) { if (error.code !== "EEXIST") throw error; }
    finally { fs.unlinkSync(aside); }' "$1"
}

if [ "$action" = rekey ]; then
  # pulumi stack change-secrets-provider passphrase: the old passphrase from the environment (empty), and,
  # with stdin not a terminal, the new one from stdin's first line (pulumi/pulumi
  # pkg/secrets/passphrase/manager.go, promptForNewPassphrase). The file is kept only once that worked.
  if ! made_with_empty_passphrase "$stack"; then
    echo "stack: nothing to rekey: the $stack stack already uses ${PULUMI_CONFIG_PASSPHRASE_FILE:-$passphrase_file}, or does not exist yet" >&2
    exit 1
  fi
  new_file="$passphrase_file.new"
  rm -f "$new_file"
  generate_passphrase "$new_file"
  unset PULUMI_CONFIG_PASSPHRASE_FILE
  PULUMI_CONFIG_PASSPHRASE="" "${pulumi_cmd[@]}" stack change-secrets-provider --stack "$stack" passphrase <"$new_file" >&2 || {
    rm -f "$new_file"
    echo "stack: rekey failed; the $stack stack keeps the empty passphrase" >&2
    exit 1
  }
  mv "$new_file" "$passphrase_file"
  echo "stack: the $stack stack now uses the passphrase in $passphrase_file" >&2
  exit 0
fi

if [ -n "${PULUMI_CONFIG_PASSPHRASE+set}" ] || [ -n "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  : # the user's own passphrase or file
elif made_with_empty_passphrase "$stack"; then
  echo "stack: the $stack stack was made with the empty passphrase and keeps it; 'scripts/stack.sh rekey' moves it to a generated one (infra/README.md)" >&2
  export PULUMI_CONFIG_PASSPHRASE=""
else
  generate_passphrase "$passphrase_file"
  export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase_file"
fi

$names_stack || "${pulumi_cmd[@]}" stack select --create "$stack" >/dev/null
if [ "$action" = pulumi ]; then
  exec "${pulumi_cmd[@]}" "$@"
fi
if [ "$action" = renew-tls ]; then
  # The certificate steps the stack holds (top-level local commands): the edge's (`public-tls`,
  # infra/public-tls.ts) and, on VMs, each replicas VM's (`<vm>-replica-tls`), the admin listener's
  # (`<vm>-admin-tls`, infra/consul-tls.ts) and each broker's (`<vm>-broker-tls`). Their CAs, Consul's agent
  # certificates and the syslog stream's are kept.
  urns="$("${pulumi_cmd[@]}" stack export --stack "$stack" |
    grep -oE '"urn": *"urn:pulumi:[^"]*::command:local:Command::(public-tls|[a-z0-9-]+-(replica|admin|broker)-tls)"' |
    sed -E 's/^"urn": *"//; s/"$//' | sort -u)"
  if [ -z "$urns" ]; then
    echo "stack: the $stack stack has no certificate to renew: publicTls is off (or its certificate is yours) and it runs on one host" >&2
    exit 1
  fi
  replace=()
  while IFS= read -r urn; do replace+=(--replace "$urn"); done <<<"$urns"
  echo "stack: renewing the certificates of ${urns//$'\n'/, }" >&2
  set -- "${replace[@]}" "$@"
  action=up
fi
exec "${pulumi_cmd[@]}" "$action" --stack "$stack" "$@"
