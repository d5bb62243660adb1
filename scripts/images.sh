#!/usr/bin/env bash
# Builds, offline and cached, the local base images the system test runs the stack on (no registry here):
#   cnp-base:bookworm  debootstrap bookworm minbase + nginx-light, syslog-ng-core, ca-certificates + host Node 20
#   cnp-consul:1.8.7   debootstrap bookworm minbase + Debian bullseye's consul package at /usr/bin/consul
# Each image carries the label cnp.inputs=<hash of its inputs>; an image whose label matches is not rebuilt.
# Needs root, debootstrap and a Docker engine (scripts/provision.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK="${CNP_IMAGES_DIR:-$PWD/build/images}"   # git-ignored (build/)
BASE_TAG=cnp-base:bookworm
CONSUL_TAG=cnp-consul:1.8.7
BASE_PACKAGES=nginx-light,syslog-ng-core,ca-certificates
NODE_BIN=/usr/bin/node

for tool in debootstrap docker dpkg-deb sha256sum flock; do
  command -v "$tool" >/dev/null || { echo "images: '$tool' is missing; run scripts/provision.sh (Debian, root)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "images: debootstrap needs root" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "images: no Docker engine answers; start dockerd (scripts/provision.sh does)" >&2; exit 1; }
[ -x "$NODE_BIN" ] || { echo "images: $NODE_BIN not found (the host's Node 20 is copied into cnp-base)" >&2; exit 1; }
node_major="$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || { echo "images: $NODE_BIN is Node $node_major; need 20 or newer" >&2; exit 1; }

mkdir -p "$WORK/debs"
# Test files may ask for the images at the same time: one build at a time, the others then find them current.
exec 9>"$WORK/.lock"
flock 9
script_hash="$(sha256sum "$0" | cut -c1-64)"

# The consul .deb: apt's cache from provisioning, or fetched from the bullseye suite provision.sh adds.
consul_deb="$(ls /var/cache/apt/archives/consul_1.8.7*_amd64.deb "$WORK"/debs/consul_1.8.7*_amd64.deb 2>/dev/null | head -1 || true)"
if [ -z "$consul_deb" ]; then
  (cd "$WORK/debs" && apt-get download -qq 'consul=1.8.7*') || {
    echo "images: cannot get Debian's consul 1.8.7 package; run scripts/provision.sh (adds the bullseye suite)" >&2; exit 1; }
  consul_deb="$(ls "$WORK"/debs/consul_1.8.7*_amd64.deb | head -1)"
fi

base_hash="$(printf '%s\n' "$script_hash" "$BASE_PACKAGES" "$MIRROR" "$(sha256sum "$NODE_BIN" | cut -c1-64)" | sha256sum | cut -c1-16)"
consul_hash="$(printf '%s\n' "$script_hash" "$MIRROR" "$(sha256sum "$consul_deb" | cut -c1-64)" | sha256sum | cut -c1-16)"

# True when TAG exists and was built from inputs with hash HASH.
is_current() {
  [ "$(docker image inspect -f '{{index .Config.Labels "cnp.inputs"}}' "$1" 2>/dev/null || true)" = "$2" ]
}

# debootstrap into a fresh dir; downloaded .debs are kept in $WORK/debs for the next cold build.
bootstrap() {
  local dir="$1" include="$2"
  rm -rf "$dir"
  debootstrap --variant=minbase ${include:+--include="$include"} --cache-dir="$WORK/debs" \
    bookworm "$dir" "$MIRROR" >"$dir.debootstrap.log" 2>&1 || {
    echo "images: debootstrap failed; last lines of $dir.debootstrap.log:" >&2; tail -20 "$dir.debootstrap.log" >&2; exit 1; }
  # Smaller images: no apt lists or package cache inside.
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
}

# Imports DIR as TAG with the inputs label and a default command.
import_rootfs() {
  local dir="$1" tag="$2" hash="$3" cmd="$4" previous
  previous="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
  tar --numeric-owner -C "$dir" -c . | docker import \
    -c "LABEL cnp.inputs=$hash" -c "LABEL cnp.image=${tag%%:*}" \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c "CMD $cmd" - "$tag" >/dev/null
  # The outdated copy would linger untagged; it stays only while some container still uses it.
  [ -z "$previous" ] || docker image rm "$previous" >/dev/null 2>&1 || true
}

build_base() {
  if is_current "$BASE_TAG" "$base_hash"; then echo "images: $BASE_TAG is current (inputs $base_hash)"; return; fi
  local started=$SECONDS dir="$WORK/rootfs-base"
  echo "images: building $BASE_TAG (inputs $base_hash)..."
  bootstrap "$dir" "$BASE_PACKAGES"
  install -m 0755 "$NODE_BIN" "$dir/usr/local/bin/node"
  # The stock nginx/syslog-ng services are not used; the images' own processes run them.
  import_rootfs "$dir" "$BASE_TAG" "$base_hash" '["/bin/bash"]'
  rm -rf "$dir"
  # Check that the copied Node, nginx and syslog-ng really run inside the image (no network needed).
  docker run --rm --network none "$BASE_TAG" sh -c \
    'node -e "console.log(\"node \" + process.version)" && nginx -v 2>&1 && syslog-ng --version | head -1' \
    | sed 's/^/images:   /'
  echo "images: $BASE_TAG built in $((SECONDS - started)) s"
}

build_consul() {
  if is_current "$CONSUL_TAG" "$consul_hash"; then echo "images: $CONSUL_TAG is current (inputs $consul_hash)"; return; fi
  local started=$SECONDS dir="$WORK/rootfs-consul"
  echo "images: building $CONSUL_TAG from $(basename "$consul_deb") (inputs $consul_hash)..."
  bootstrap "$dir" ""
  local unpacked="$WORK/consul-deb"
  rm -rf "$unpacked" && dpkg-deb -x "$consul_deb" "$unpacked"
  install -m 0755 "$unpacked/usr/bin/consul" "$dir/usr/bin/consul"
  mkdir -p "$dir/consul/data"
  rm -rf "$unpacked"
  import_rootfs "$dir" "$CONSUL_TAG" "$consul_hash" '["consul", "agent", "-dev", "-client", "0.0.0.0"]'
  rm -rf "$dir"
  # Captured, not piped into head: a closed pipe would fail `docker run` under pipefail.
  local version
  version="$(docker run --rm --network none "$CONSUL_TAG" consul version)"
  echo "images:   ${version%%$'\n'*}"
  echo "images: $CONSUL_TAG built in $((SECONDS - started)) s"
}

build_base
build_consul
