#!/bin/sh
# Prepares a VM for the stack, run over SSH as the VM's ssh user by the bootstrap remote.Command
# (infra/vm-host.ts) before that VM's docker provider connects: the Docker engine and CLI installed when
# missing (apt on Debian/Ubuntu, dnf or yum on the RHEL family, told apart by /etc/os-release), the engine
# started, and `docker info` answering for the ssh user (the docker provider runs `docker system dial-stdio`
# as that user); it ends by printing the VM's architecture (`uname -m`). Idempotent: what is there already is left alone, so a second run changes nothing.
#
#   sh vm-bootstrap.sh          bootstrap (what the stack runs)
#   sh vm-bootstrap.sh detect   print the OS family (debian, rhel or unsupported) and exit; changes nothing
#
# CNP_OS_RELEASE names another os-release file, CNP_DOCKERD_LOG another log file for a dockerd started
# without an init system (tests, which must not touch the machine's own files).
set -eu

log() { echo "vm-bootstrap: $*"; }
fail() {
  echo "vm-bootstrap: $*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    fail "'$*' needs root: connect as root, or give $(id -un) passwordless sudo"
  fi
}

# debian, rhel or unsupported, from ID and ID_LIKE (e.g. ID=centos ID_LIKE="rhel fedora").
os_family() {
  file=${CNP_OS_RELEASE:-/etc/os-release}
  [ -r "$file" ] || {
    echo unsupported
    return
  }
  ids=$(. "$file" && echo " ${ID:-} ${ID_LIKE:-} ")
  case "$ids" in
  *" debian "* | *" ubuntu "*) echo debian ;;
  *" rhel "* | *" centos "* | *" fedora "* | *" rocky "* | *" almalinux "*) echo rhel ;;
  *) echo unsupported ;;
  esac
}

install_docker() {
  family=$(os_family)
  # A fresh cloud VM may still be running cloud-init, which holds the package manager's lock.
  if command -v cloud-init >/dev/null 2>&1; then cloud-init status --wait >/dev/null 2>&1 || true; fi
  case "$family" in
  debian)
    log "installing docker.io with apt"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io
    ;;
  rhel)
    # RHEL and CentOS ship no Docker engine (podman instead): Docker's own repository provides it.
    id=$(. "${CNP_OS_RELEASE:-/etc/os-release}" && echo "${ID:-}")
    repo=https://download.docker.com/linux/centos/docker-ce.repo
    [ "$id" = fedora ] && repo=https://download.docker.com/linux/fedora/docker-ce.repo
    if command -v dnf >/dev/null 2>&1; then
      log "installing docker-ce with dnf"
      as_root dnf -y -q install dnf-plugins-core
      as_root dnf config-manager --add-repo "$repo"
      as_root dnf -y -q install docker-ce docker-ce-cli containerd.io
    else
      log "installing docker-ce with yum"
      as_root yum -y -q install yum-utils
      as_root yum-config-manager --add-repo "$repo"
      as_root yum -y -q install docker-ce docker-ce-cli containerd.io
    fi
    ;;
  *) fail "cannot install Docker on this OS ($(. "${CNP_OS_RELEASE:-/etc/os-release}" 2>/dev/null && echo "${PRETTY_NAME:-unknown}")): install the Docker engine and CLI yourself, then run pulumi up again" ;;
  esac
}

start_engine() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    log "starting the engine with systemctl"
    as_root systemctl enable --now docker
  elif command -v service >/dev/null 2>&1 && [ -e /etc/init.d/docker ]; then
    log "starting the engine with service"
    as_root service docker start
  else
    dockerd_log=${CNP_DOCKERD_LOG:-/var/log/dockerd.log}
    log "starting dockerd in the background (no init system), logging to $dockerd_log"
    as_root sh -c 'nohup dockerd >>"$1" 2>&1 &' sh "$dockerd_log"
  fi
}

engine_answers() { as_root docker info >/dev/null 2>&1; }

if [ "${1:-}" = detect ]; then
  os_family
  exit 0
fi

if command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1; then
  log "docker present: $(docker --version)"
else
  install_docker
fi

if engine_answers; then
  log "engine running"
else
  start_engine
  tries=0
  until engine_answers; do
    tries=$((tries + 1))
    [ "$tries" -le 60 ] || fail "the Docker engine did not answer within 60 s of its start"
    sleep 1
  done
  log "engine running"
fi

# The docker provider talks to the engine as the ssh user: it needs the socket, through the docker group.
if [ "$(id -u)" != 0 ] && ! docker info >/dev/null 2>&1; then
  user=$(id -un)
  log "adding $user to the docker group (effective for new ssh sessions, which the provider opens)"
  as_root usermod -aG docker "$user"
  sg docker -c 'docker info >/dev/null' || fail "$user cannot use the Docker engine even in the docker group"
fi

log "docker info answers: server $(as_root docker info --format '{{.ServerVersion}}'), $(as_root docker info --format '{{.OSType}}/{{.Architecture}}')"
# The last line, read by the program (infra/vm-host.ts, imagePlatform): every image for this VM is built for this CPU.
log "architecture $(uname -m)"
