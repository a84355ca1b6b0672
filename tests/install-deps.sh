#!/usr/bin/env bash
# Installs the Debian packages the ha lab and its tests need, only when something is missing.
# Idempotent and non-interactive; `apt-get update` runs only if a package has to be installed.
#
#   sudo bash tests/install-deps.sh
#
# mariadb-server  the lab's MariaDB 10.11 (mariadbd, mariadb-install-db; pulls mariadb-client)
# iproute2        ip netns / ip link / ip addr / tc
# nftables        nft: the lab's "cut" and loss faults
# iputils-ping    ping: reachability observers
# arping          gratuitous ARP from the lab (and handy for debugging role IPs)
# tcpdump         debugging the lab network
# procps          ps / pgrep for diagnostics
# gcc, libc6-dev  the linker Rust needs to build the workspace
# protobuf-compiler, libprotobuf-dev  protoc and its well-known types for the etcd-client
#                crate's build script (the monitor's etcd
#                coordination); ha's own protos use the protoc vendored as a crate
# python3-minimal tests/lint/module-cycles.py, packaging/md2man.py
# lintian        lints the Debian packages (packaging/build-debs.sh)
# debootstrap, systemd-container  a clean Debian root booted with systemd as PID 1
#                (tests/systemd-proof.sh)
# faketime        libfaketime: the chaos schedules' wall-clock step on one agent
#                (tests/acceptance/src/chaos)
# etcd-server, etcd-client  etcd v3 members and etcdctl for the redundant-monitor lab
#                (tests/lab/src/etcd.rs); the package's own etcd service is kept from
#                starting: the lab runs its members inside its namespaces
set -euo pipefail

PACKAGES=(mariadb-server mariadb-client iproute2 nftables iputils-ping arping tcpdump procps gcc libc6-dev protobuf-compiler libprotobuf-dev python3-minimal lintian debootstrap systemd-container faketime etcd-server etcd-client)

if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: run as root (sudo bash tests/install-deps.sh)" >&2
  exit 1
fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps.sh: not a Debian/Ubuntu system; install by hand: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps.sh: all lab packages present"
else
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # etcd-server's postinst would start a system-wide etcd on localhost:2379. While this
  # install runs, a policy-rc.d (Debian's switch for maintainer scripts) refuses every service
  # start; it is removed afterwards, and left alone if the machine already has one.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps.sh: note: cargo (Rust >= 1.94) is not on PATH; install it with rustup" \
       "(https://rustup.rs) to build ha" >&2
fi
