#!/usr/bin/env bash
# Installs what vditui and its lab need on a Debian/Ubuntu machine, then a local virtualenv.
# Idempotent: packages already present are not reinstalled; the venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v libvirtd >/dev/null 2>&1 || need+=(libvirt-daemon)
command -v virsh >/dev/null 2>&1 || need+=(libvirt-clients)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists libvirt 2>/dev/null || need+=(libvirt-dev)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
# The lab's SSH-only hosts: a private sshd per host, ssh/ssh-keygen, and `nc -U` on the far end.
{ command -v sshd || [ -x /usr/sbin/sshd ]; } >/dev/null 2>&1 || need+=(openssh-server)
{ command -v ssh && command -v ssh-keygen; } >/dev/null 2>&1 || need+=(openssh-client)
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
# The lab's TLS-only hosts: certtool makes their CA, server and client certificates.
command -v certtool >/dev/null 2>&1 || need+=(gnutls-bin)
# The lab's qemu hosts: real QEMU/KVM guests under a privileged libvirtd with the QEMU driver.
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 \
  || need+=(libvirt-daemon-driver-qemu)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
# vditui serve's tests scrape it with a real Prometheus and check its alert rules with promtool.
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  2>/dev/null || need+=(python3-dev)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root or sudo to install: ${need[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup: installing system packages: ${need[*]}"
  # Only the binaries are wanted: no package may start its service (prometheus would hold port
  # 9090; the lab and the tests start their own daemons on ports of their own). policy-rc.d
  # answering 101 forbids it, for this install only, unless the machine has one of its own.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    trap '$sudo rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if [ -n "$policy" ]; then $sudo rm -f "$policy"; trap - EXIT; fi
fi

# libvirt's QEMU driver refuses to start without this user and these groups (the lab's qemu
# hosts run guests as root, but the driver checks they exist). Only root can add them; without
# them the lab serves its qemu hosts with the test driver and says so.
if [ "$(id -u)" -eq 0 ]; then
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent group kvm >/dev/null || groupadd --system kvm
  getent passwd libvirt-qemu >/dev/null || useradd --system --no-create-home \
    --home-dir /var/lib/libvirt --shell /usr/sbin/nologin -g libvirt-qemu -G kvm libvirt-qemu
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.vditui-installed
# The versions tested (requirements.lock, refreshed by `make lock`), not whatever is newest today.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null || true
  .venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".[test]"
  touch "$stamp"
fi
