#!/usr/bin/env bash
# Builds, offline and cached, the image of the test "VMs" (test/helpers/vms.ts):
#   cnp-vm:bookworm  debootstrap bookworm minbase + openssh-server, docker.io (dockerd 20.10, the docker CLI,
#                    docker-proxy), containerd, runc, iptables, tini; scripts/vm/ holds its boot script, its
#                    engine's daemon.json and its sshd settings.
# Kept apart from images.sh: that script's own hash is part of the shared base images' labels, and every
# checkout must agree on it. Same cache (build/images/debs), same lock, same label scheme (cnp.inputs).
# Needs root, debootstrap and a running engine (scripts/provision.sh provides them).
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK="${CNP_IMAGES_DIR:-$PWD/build/images}"   # git-ignored (build/)
VM_TAG=cnp-vm:bookworm
# tini reaps as PID 1; sudo and procps for bootstrap scripts that use them; iproute2 to read addresses.
VM_PACKAGES=openssh-server,docker.io,containerd,runc,iptables,tini,ca-certificates,procps,iproute2,sudo
VM_FILES=(scripts/vm/init.sh scripts/vm/daemon.json scripts/vm/sshd.conf)

for tool in debootstrap docker sha256sum flock; do
  command -v "$tool" >/dev/null || { echo "vm-image: '$tool' is missing; run scripts/provision.sh (Debian, root)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "vm-image: debootstrap needs root" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "vm-image: no Docker engine answers; start dockerd (scripts/provision.sh does)" >&2; exit 1; }

mkdir -p "$WORK/debs"
exec 9>"$WORK/.lock"
flock 9

hash="$(printf '%s\n' "$(sha256sum "$0" | cut -c1-64)" "$VM_PACKAGES" "$MIRROR" "$(cat "${VM_FILES[@]}" | sha256sum | cut -c1-64)" | sha256sum | cut -c1-16)"
if [ "$(docker image inspect -f '{{index .Config.Labels "cnp.inputs"}}' "$VM_TAG" 2>/dev/null || true)" = "$hash" ]; then
  echo "vm-image: $VM_TAG is current (inputs $hash)"
  exit 0
fi

started=$SECONDS
dir="$WORK/rootfs-vm"
echo "vm-image: building $VM_TAG (inputs $hash)..."
rm -rf "$dir"
# debootstrap diverts start-stop-daemon while it installs: docker.io's init script starts nothing here.
debootstrap --variant=minbase --include="$VM_PACKAGES" --cache-dir="$WORK/debs" bookworm "$dir" "$MIRROR" >"$dir.debootstrap.log" 2>&1 || {
  echo "vm-image: debootstrap failed; last lines of $dir.debootstrap.log:" >&2; tail -20 "$dir.debootstrap.log" >&2; exit 1; }
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
install -m 0755 scripts/vm/init.sh "$dir/usr/local/sbin/vm-init"
install -D -m 0644 scripts/vm/daemon.json "$dir/etc/docker/daemon.json"
install -D -m 0644 scripts/vm/sshd.conf "$dir/etc/ssh/sshd_config.d/cnp-vm.conf"
# Host keys are made per VM at its start (vm-init), never shared through the image.
rm -f "$dir"/etc/ssh/ssh_host_*

previous="$(docker image inspect -f '{{.Id}}' "$VM_TAG" 2>/dev/null || true)"
tar --numeric-owner -C "$dir" -c . | docker import \
  -c "LABEL cnp.inputs=$hash" -c "LABEL cnp.image=cnp-vm" \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["/usr/bin/tini", "--", "/usr/local/sbin/vm-init"]' - "$VM_TAG" >/dev/null
[ -z "$previous" ] || docker image rm "$previous" >/dev/null 2>&1 || true
rm -rf "$dir"
versions="$(docker run --rm --network none --entrypoint sh "$VM_TAG" -c 'dockerd --version; sshd -V 2>&1 | head -1; true')"
printf '%s\n' "$versions" | sed 's/^/vm-image:   /'
echo "vm-image: $VM_TAG built in $((SECONDS - started)) s"
