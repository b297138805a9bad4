#!/usr/bin/env bash
# The local lab: fresh Debian "VPS" containers on their own network, each
# handed over like a provider does it: sshd running, only a root SSH key.
#
#   scripts/lab.sh up      create what is missing (idempotent)
#   scripts/lab.sh down    remove the containers, network and lab keys
#   scripts/lab.sh status  list the lab containers
#
# Everything can be overridden from the environment, so other tools (the
# stack benchmark) can run a lab of their own beside the demo one:
#   LAB_DIR, LAB_NETWORK, LAB_SUBNET, LAB_IMAGE, LAB_PREFIX (container name
#   prefix), and LAB_HOSTS: the hosts as "name address [docker run options]"
#   entries separated by ';', e.g. LAB_HOSTS="web1 10.9.0.11;db1 10.9.0.12".
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
LAB_DIR=${LAB_DIR:-$here/.lab}
LAB_NETWORK=${LAB_NETWORK:-forum-lab}
LAB_SUBNET=${LAB_SUBNET:-172.30.0.0/24}
LAB_IMAGE=${LAB_IMAGE:-local/debian-systemd:12}
LAB_HTTP_PORT=${LAB_HTTP_PORT:-8080}
LAB_HTTPS_PORT=${LAB_HTTPS_PORT:-8443}
LAB_PREFIX=${LAB_PREFIX:-forum-lab-}
# name address [docker publish options...]
if [ -n "${LAB_HOSTS:-}" ]; then
  IFS=';' read -r -a LAB_HOSTS <<<"$LAB_HOSTS"
else
  LAB_HOSTS=(
    "web1 172.30.0.11 -p 127.0.0.1:$LAB_HTTP_PORT:80 -p 127.0.0.1:$LAB_HTTPS_PORT:443"
    "db1 172.30.0.12"
  )
fi

log() { printf '[lab] %s\n' "$*" >&2; }

start_host() {
  local name=$1 addr=$2; shift 2
  local container="$LAB_PREFIX$name"
  if docker container inspect "$container" >/dev/null 2>&1; then
    docker start "$container" >/dev/null
    return
  fi
  log "creating $name ($addr)"
  docker run -d --name "$container" --hostname "$name" \
    --network "$LAB_NETWORK" --ip "$addr" "$@" \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    "$LAB_IMAGE" /lib/systemd/systemd >/dev/null
  # A new container has new host keys and facts: forget the old ones.
  ssh-keygen -R "$addr" -f "$LAB_DIR/known_hosts" >/dev/null 2>&1 || true
  rm -f "$here"/.cache/facts/*"$name"
  docker exec -i "$container" sh -ec '
    umask 077; mkdir -p /root/.ssh; cat >/root/.ssh/authorized_keys' <"$LAB_DIR/id_ed25519.pub"
}

wait_ssh() {
  local name=$1 addr=$2
  for _ in $(seq 1 60); do
    if ssh -i "$LAB_DIR/id_ed25519" -o BatchMode=yes -o ConnectTimeout=2 \
         -o UserKnownHostsFile="$LAB_DIR/known_hosts" -o StrictHostKeyChecking=accept-new \
         "root@$addr" true 2>/dev/null \
       || ssh -i "$LAB_DIR/id_ed25519" -o BatchMode=yes -o ConnectTimeout=2 \
         -o UserKnownHostsFile="$LAB_DIR/known_hosts" -o StrictHostKeyChecking=accept-new \
         "deploy@$addr" true 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  log "$name ($addr) does not answer on SSH"; return 1
}

up() {
  # The lab needs only the image it starts (the tests also build Debian 13's).
  local release=${LAB_IMAGE##*:}
  case "$release" in 12|13) ;; *) release=12 ;; esac
  TESTBED_RELEASES=$release "$here/scripts/testbed.sh"
  mkdir -p "$LAB_DIR"
  chmod 700 "$LAB_DIR"
  [ -f "$LAB_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C forum-lab -f "$LAB_DIR/id_ed25519"
  docker network inspect "$LAB_NETWORK" >/dev/null 2>&1 \
    || docker network create --subnet "$LAB_SUBNET" "$LAB_NETWORK" >/dev/null
  local spec
  for spec in "${LAB_HOSTS[@]}"; do
    # shellcheck disable=SC2086
    start_host $spec
  done
  for spec in "${LAB_HOSTS[@]}"; do
    # shellcheck disable=SC2086
    wait_ssh $spec
  done
}

down() {
  local spec name
  for spec in "${LAB_HOSTS[@]}"; do
    read -r name _ <<<"$spec"
    docker rm -f "$LAB_PREFIX$name" >/dev/null 2>&1 || true
  done
  docker network rm "$LAB_NETWORK" >/dev/null 2>&1 || true
  rm -rf "$LAB_DIR"
  log "lab removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) docker ps -a --filter "name=$LAB_PREFIX" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
