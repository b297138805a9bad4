#!/usr/bin/env bash
# Prepare this machine as a test bed: a running Docker engine and the local
# Debian base images (systemd as PID 1, sshd, python3) that Molecule and the
# demo lab start their "fresh VPS" containers from. No registry is needed.
# Idempotent: a second run finds everything in place and changes nothing.
#
#   scripts/testbed.sh            engine + every image in TESTBED_RELEASES
#   TESTBED_RELEASES="12" ...     only the Debian 12 image
set -euo pipefail

RELEASES=${TESTBED_RELEASES:-"12 13"}
MIRROR=${TESTBED_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${TESTBED_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
IMAGE_REPO=${TESTBED_IMAGE_REPO:-local/debian-systemd}
CA_BUNDLE=${TESTBED_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PACKAGES=systemd,systemd-sysv,python3,sudo,openssh-server,ca-certificates,iproute2,dbus

log() { printf '[testbed] %s\n' "$*" >&2; }

codename() {
  case "$1" in
    12) echo bookworm ;;
    13) echo trixie ;;
    *) log "unknown Debian release '$1' (expected 12 or 13)"; exit 2 ;;
  esac
}

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting the Docker engine"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker
  else
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/dockerd.log"; exit 1; }
fi

# Bump when the recipe below changes: images of an older recipe are rebuilt.
RECIPE=2

for rel in $RELEASES; do
  image="$IMAGE_REPO:$rel"
  if [ "$(docker image inspect -f '{{ index .Config.Labels "forum-stack.recipe" }}' "$image" 2>/dev/null)" = "$RECIPE" ]; then
    continue
  fi
  suite=$(codename "$rel")
  root=$(mktemp -d /var/tmp/testbed-rootfs.XXXXXX)
  trap 'umount "$root/proc" 2>/dev/null; rm -rf "$root"' EXIT
  log "building $image from $suite (debootstrap, about a minute)"
  debootstrap --variant=minbase --include="$PACKAGES" "$suite" "$root" "$MIRROR" >"$root.log" 2>&1 \
    || { tail -n 30 "$root.log" >&2; exit 1; }
  # The machine sits behind a TLS-inspecting proxy: trust its CA inside too,
  # so pip and git over https work in the containers.
  if [ -s "$CA_BUNDLE" ]; then
    install -m 0644 "$CA_BUNDLE" "$root/usr/local/share/ca-certificates/host-bundle.crt"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
  fi
  # Like a provider's current image: the security and point-release updates
  # published up to the build day are installed (the roles' first run then
  # has little left to upgrade). The sources stay as Debian's cloud images
  # ship them.
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $suite main
deb $MIRROR $suite-updates main
deb ${SECURITY_MIRROR} $suite-security main
SOURCES
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"   # start no services in the chroot
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc"
  chroot "$root" sh -ec 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade >/dev/null' \
    >>"$root.log" 2>&1 || { umount "$root/proc"; tail -n 30 "$root.log" >&2; exit 1; }
  umount "$root/proc"
  rm -f "$root/usr/sbin/policy-rc.d"
  # No host keys are baked in: each container makes its own at first boot,
  # as a provider's fresh VPS would have unique keys.
  rm -f "$root"/etc/ssh/ssh_host_*
  cat >"$root/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate missing SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/ssh-hostkeys.service "$root/etc/systemd/system/multi-user.target.wants/ssh-hostkeys.service"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  tar -C "$root" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' -c "LABEL forum-stack.recipe=$RECIPE" - "$image" >/dev/null
  rm -rf "$root" "$root.log"
  trap - EXIT
  log "built $image"
done
