#!/usr/bin/env bash
# `npm run up` / `npm run destroy`: runs the Pulumi CLI on the `dev` stack with Pulumi's local file
# backend kept inside the project (.pulumi/, git-ignored), so no Pulumi account is needed and the
# user's own `pulumi login` is left untouched. Extra arguments go to `pulumi up` / `pulumi destroy`.
set -euo pipefail
cd "$(dirname "$0")/.."

action="${1:-}"
case "$action" in
  up | destroy) shift ;;
  *)
    echo "usage: scripts/stack.sh up|destroy [pulumi arguments...]   (npm run up / npm run destroy -- --yes)" >&2
    exit 2
    ;;
esac

if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<'MSG'
stack: the Pulumi CLI (`pulumi`) is not on PATH; it is a separate program, not an npm package.
Install it, then run this again:
  curl -fsSL https://get.pulumi.com | sh      # then add ~/.pulumi/bin to PATH (or open a new shell)
  # or: brew install pulumi/tap/pulumi  |  choco install pulumi  |  see https://www.pulumi.com/docs/install/
MSG
  exit 127
fi
if [ ! -d node_modules/@pulumi/pulumi ]; then
  echo "stack: installing the npm dependencies first (npm ci)" >&2
  npm ci --no-audit --no-fund
fi

mkdir -p .pulumi
export PULUMI_BACKEND_URL="file://$PWD/.pulumi"
# An empty passphrase by default (the stack holds no secrets); a passphrase or passphrase file the
# user has set is kept.
if [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-}"
fi

stack=dev
pulumi stack select --create "$stack" >/dev/null
pulumi "$action" --stack "$stack" "$@"
