#!/usr/bin/env bash
# Builds the real Pulumi CLI and its Node.js language host from Go modules (tools/*/go.mod, pinned with their
# go.sum) into .tools/pulumi/bin/ (git-ignored), the language host beside `pulumi` where the CLI looks first.
# Reuses Go's module and build caches; skips the build when the binaries were made from the same pins.
# Only the Go module proxy is reached, and only on a cold module cache: a warm build works with GOPROXY=off.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$PWD/.tools/pulumi/bin"
# Go's own install puts it in /usr/local/go, which a non-interactive shell may not have on PATH.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || {
  echo "pulumi-tools: needs Go 1.25 or newer on PATH to build the Pulumi CLI (or install pulumi yourself: https://www.pulumi.com/docs/install/)" >&2
  exit 1
}
stamp="$bin/.inputs"
inputs="$(cat tools/pulumi/go.mod tools/pulumi/go.sum tools/language-host/go.mod tools/language-host/go.sum "$0" | sha256sum | cut -d' ' -f1) $(go env GOVERSION)"
if [ -x "$bin/pulumi" ] && [ -x "$bin/pulumi-language-nodejs" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
  exit 0
fi

mkdir -p "$bin"
rm -f "$stamp"
# Release builds' settings (pulumi/pulumi .goreleaser.yml): static, the os/user package in pure Go, no gRPC tracing.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
build() { # module dir, package, version stamped, output name
  local started=$SECONDS
  (cd "tools/$1" && go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$3" -o "$bin/$4" "$2")
  echo "pulumi-tools: built $4 $3 in $((SECONDS - started)) s" >&2
}
build pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi v3.248.0 pulumi
build language-host github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs v3.68.0 pulumi-language-nodejs
echo "$inputs" >"$stamp"
