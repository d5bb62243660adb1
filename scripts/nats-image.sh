#!/usr/bin/env bash
# Builds, offline and cached, the base of the stack's broker image (broker/Dockerfile's BASE_IMAGE offline):
#   cnp-nats:2.9  debootstrap bookworm minbase + wget (the health check's client) + /usr/sbin/nats-server
#                 from Debian's nats-server 2.9 package (the .deb from apt's cache, or `apt-get download`)
# Kept apart from images.sh, as vm-image.sh is: that script's own hash is part of the shared base images'
# labels, and every checkout must agree on it. Same cache (build/images/debs), same lock, same label scheme.
# Needs root, debootstrap and a running engine (scripts/provision.sh provides them).
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK="${CNP_IMAGES_DIR:-$PWD/build/images}"   # git-ignored (build/)
NATS_TAG=cnp-nats:2.9
NATS_PACKAGES=wget

for tool in debootstrap docker dpkg-deb sha256sum flock; do
  command -v "$tool" >/dev/null || { echo "nats-image: '$tool' is missing; run scripts/provision.sh (Debian, root)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "nats-image: debootstrap needs root" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "nats-image: no Docker engine answers; start dockerd (scripts/provision.sh does)" >&2; exit 1; }

mkdir -p "$WORK/debs"
exec 9>"$WORK/.lock"
flock 9

nats_deb="$(ls /var/cache/apt/archives/nats-server_2.9*_amd64.deb "$WORK"/debs/nats-server_2.9*_amd64.deb 2>/dev/null | head -1 || true)"
if [ -z "$nats_deb" ]; then
  (cd "$WORK/debs" && apt-get download -qq 'nats-server=2.9*') || {
    echo "nats-image: cannot get Debian's nats-server 2.9 package; run apt-get update (scripts/provision.sh does)" >&2; exit 1; }
  nats_deb="$(ls "$WORK"/debs/nats-server_2.9*_amd64.deb | head -1)"
fi

hash="$(printf '%s\n' "$(sha256sum "$0" | cut -c1-64)" "$NATS_PACKAGES" "$MIRROR" "$(sha256sum "$nats_deb" | cut -c1-64)" | sha256sum | cut -c1-16)"
if [ "$(docker image inspect -f '{{index .Config.Labels "cnp.inputs"}}' "$NATS_TAG" 2>/dev/null || true)" = "$hash" ]; then
  echo "nats-image: $NATS_TAG is current (inputs $hash)"
  exit 0
fi

started=$SECONDS
dir="$WORK/rootfs-nats"
echo "nats-image: building $NATS_TAG from $(basename "$nats_deb") (inputs $hash)..."
rm -rf "$dir"
debootstrap --variant=minbase --include="$NATS_PACKAGES" --cache-dir="$WORK/debs" bookworm "$dir" "$MIRROR" >"$dir.debootstrap.log" 2>&1 || {
  echo "nats-image: debootstrap failed; last lines of $dir.debootstrap.log:" >&2; tail -20 "$dir.debootstrap.log" >&2; exit 1; }
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
# Only the binary (it needs only libc): the package's systemd unit and /etc config are not used, the stack
# passes its own flags (infra/broker.ts).
unpacked="$WORK/nats-deb"
rm -rf "$unpacked" && dpkg-deb -x "$nats_deb" "$unpacked"
install -m 0755 "$unpacked/usr/sbin/nats-server" "$dir/usr/sbin/nats-server"
rm -rf "$unpacked"

previous="$(docker image inspect -f '{{.Id}}' "$NATS_TAG" 2>/dev/null || true)"
tar --numeric-owner -C "$dir" -c . | docker import \
  -c "LABEL cnp.inputs=$hash" -c "LABEL cnp.image=cnp-nats" \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["nats-server", "--jetstream"]' - "$NATS_TAG" >/dev/null
[ -z "$previous" ] || docker image rm "$previous" >/dev/null 2>&1 || true
rm -rf "$dir"
# Captured, not piped into head: a closed pipe would fail `docker run` under pipefail.
versions="$(docker run --rm --network none "$NATS_TAG" sh -c 'nats-server --version; wget --version | head -1')"
printf '%s\n' "$versions" | sed 's/^/nats-image:   /'
echo "nats-image: $NATS_TAG built in $((SECONDS - started)) s"
