#!/usr/bin/env bash
# Installs, on Debian as root, every server the tests need, and starts the Docker engine.
# Idempotent: packages already present are not installed again, a running engine is left alone.
set -euo pipefail

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  echo "provision: needs Debian and root; skipping (install consul, nginx, syslog-ng, nats-server, docker yourself)" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
need=()
command -v consul >/dev/null || need+=(consul)
command -v nginx >/dev/null || need+=(nginx-light)
# HAProxy (bookworm: 2.6) is a peer the benchmark compares the balancer with (bench/README.md).
command -v haproxy >/dev/null || need+=(haproxy)
command -v syslog-ng >/dev/null || need+=(syslog-ng-core)
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v taskset >/dev/null || need+=(util-linux)
# The evidence page's browser test drives it with puppeteer-core (which never downloads a browser).
command -v chromium >/dev/null || need+=(chromium)
# ssh and ssh-keygen: the multi-VM test reaches its VMs over ssh, as the docker provider does.
command -v ssh-keygen >/dev/null || need+=(openssh-client)
# The events' broker (NATS with JetStream, bookworm: 2.9): the events tests start their own.
command -v nats-server >/dev/null || need+=(nats-server)
# openssl: the VM stack's Consul CA and certificates (infra/consul-tls.sh), the HTTPS tests' certificates (harness/tls.ts).
command -v openssl >/dev/null || need+=(openssl)
# tcpdump: the multi-VM test captures the VMs' private network and looks for what must not cross it in clear.
command -v tcpdump >/dev/null || need+=(tcpdump)

if [ ${#need[@]} -gt 0 ]; then
  # Consul is not in Debian 12; Debian 11 ships it. Pin bullseye low so nothing else comes from it.
  if [[ " ${need[*]} " == *" consul "* ]] && [ ! -f /etc/apt/sources.list.d/bullseye.list ]; then
    echo "deb http://deb.debian.org/debian bullseye main" > /etc/apt/sources.list.d/bullseye.list
    printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n' > /etc/apt/preferences.d/bullseye-low
  fi
  apt-get update -qq
  for pkg in "${need[@]}"; do
    if [ "$pkg" = consul ]; then
      apt-get install -y -qq -t bullseye consul >/dev/null
    else
      apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
    fi
    echo "provision: installed $pkg"
  done
fi

# Debian's nginx, syslog-ng, haproxy and nats-server packages start system services; the tests run their own.
for svc in nginx syslog-ng haproxy nats-server; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done


if ! docker info >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "provision: dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
  echo "provision: started dockerd"
fi

echo "provision: consul $(consul version | head -1 | awk '{print $2}'), $(nginx -v 2>&1 | sed 's/.*: //'), haproxy $(haproxy -v | head -1 | awk '{print $3}'), syslog-ng $(syslog-ng --version | head -1 | sed 's/.*(\(.*\))/\1/'), docker engine $(docker version -f '{{.Server.Version}}'), nats-server $(nats-server --version | sed 's/.*v//'), $(chromium --version 2>/dev/null | awk '{print $1, $2}')"
