#!/bin/sh
# PID 1's child in a test "VM" (cnp-vm image, started by test/helpers/vms.ts): what a cloud VM with Docker
# runs at boot, without systemd: its own Docker engine and sshd. tini (the image's entrypoint) reaps.
# VM_AUTHORIZED_KEY: the public key root accepts (a per-run key the test generated).
set -eu
[ -n "${VM_AUTHORIZED_KEY:-}" ] || { echo "vm-init: VM_AUTHORIZED_KEY is empty; root would accept no key" >&2; exit 1; }
install -d -m 0700 /root/.ssh
printf '%s\n' "$VM_AUTHORIZED_KEY" >/root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
# Host keys of this VM only (the image carries none): the test reads the public one into its known_hosts.
ssh-keygen -A >/dev/null
install -d -m 0755 /run/sshd
# A reboot empties /run; a restarted container keeps it (`docker kill`, then start: the test's VM crash),
# and dockerd refuses to start over its own stale pid file. Empty what a reboot would.
rm -rf /run/docker.pid /run/docker.sock /run/docker /run/containerd /var/run/docker.pid
# The engine's settings are /etc/docker/daemon.json (inner subnets that cannot overlap the VMs' network).
dockerd >/var/log/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -e
