#!/usr/bin/env bash
# Proof under a real systemd (issue 16): the Debian packages, installed with dpkg into a clean
# Debian 12 root, run under systemd as PID 1 and are driven only through systemctl.
#
#   bash tests/systemd-proof.sh        as root; builds the packages if target/debian has none
#
# The test machine's own PID 1 is not systemd, so every lab node gets a container
# (systemd-nspawn --boot) with systemd as its PID 1, joined to that node's network namespace of a
# lab (MariaDB keeps running in the namespace, outside the container; the agent reaches it at
# 127.0.0.1:3306 as in the lab). One base root (debootstrap, cached in target/systemd-proof/base)
# gets both packages with `dpkg -i`; each node runs a copy of it. Then:
#
#  1. the packages installed the units disabled, the `ha` user, root:ha 0640 config files;
#  2. `systemctl start ha-agent` on db1..db3 and `systemctl start ha-monitor` return only when
#     the daemons are READY (Type=notify), and `ha-control show` converges to all ONLINE with a
#     writer that really is one (its IP on its interface, read_only=0);
#  3. a SIGSTOPped ha-agent and a SIGSTOPped ha-monitor are restarted by the watchdog;
#  4. fencing goes through the helper: ha-fence.socket listens, reachable by group ha only, and
#     when db3 drops off the network the monitor (user ha, sandboxed) has `kill_host_bin` run as
#     root by ha-fence@.service;
#  5. `systemctl stop` stops both cleanly (Result=success).
#
# Everything it starts is stopped by PID and removed on exit, also after a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

[ "$(id -u)" = 0 ] || { echo "systemd-proof: run as root" >&2; exit 1; }
for c in debootstrap systemd-nspawn nsenter; do
  command -v "$c" >/dev/null || { echo "systemd-proof: $c missing (bash tests/install-deps.sh)" >&2; exit 1; }
done

WORK=$ROOT/target/systemd-proof
BASE=$WORK/base
LAB_BIN=$ROOT/target/debug/ha-lab
PREFIX=hlsd$(printf '%02d' $((RANDOM % 100)))
LABDIR=/tmp/ha-lab-$PREFIX
NODES=(db1 db2 db3 mon)
declare -A NSPAWN_PID=()
T0=$(date +%s)

# The machine has no systemd to register containers with or to put them in a scope.
nspawn() { systemd-nspawn -q --keep-unit --register=no "$@"; }

say() { printf '[systemd-proof %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() {
  say "FAIL: $*"
  # What the daemons said, from every container still up.
  local n u p
  for n in "${!NSPAWN_PID[@]}"; do
    p=$(pid1 "$n" 2>/dev/null) || continue
    for u in ha-agent ha-monitor; do
      echo "--- $n: journalctl -u $u (last 25 lines)"
      nsenter -t "$p" -m -u -i -n -p -C -- journalctl -u "$u" --no-pager -n 25 2>/dev/null | grep -v "^-- No entries" || true
    done
  done
  exit 1
}

cleanup() {
  set +e
  for n in "${!NSPAWN_PID[@]}"; do
    kill -TERM "${NSPAWN_PID[$n]}" 2>/dev/null
  done
  for n in "${!NSPAWN_PID[@]}"; do
    for _ in $(seq 1 30); do kill -0 "${NSPAWN_PID[$n]}" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "${NSPAWN_PID[$n]}" 2>/dev/null
  done
  [ -x "$LAB_BIN" ] && "$LAB_BIN" down --prefix "$PREFIX" >/dev/null 2>&1
  "$LAB_BIN" cleanup --prefix "$PREFIX" >/dev/null 2>&1
  for n in "${NODES[@]}"; do rm -rf "${WORK:?}/$PREFIX-$n"; done
}
trap cleanup EXIT

# --- packages -----------------------------------------------------------------------------------
if ! ls target/debian/ha-agent_*.deb target/debian/ha-monitor_*.deb >/dev/null 2>&1; then
  bash packaging/build-debs.sh
fi
[ -x "$LAB_BIN" ] || cargo build -p ha-lab --bin ha-lab

# --- a clean Debian 12 root with systemd, cached --------------------------------------------------
if [ ! -e "$BASE/.ready" ]; then
  # The machine's own Debian mirror (the only place packages may come from).
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  say "debootstrap bookworm from $mirror (cached afterwards)"
  rm -rf "$BASE"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,iproute2 \
    bookworm "$BASE" "$mirror" > "$WORK.debootstrap.log" 2>&1 \
    || { tail -20 "$WORK.debootstrap.log"; fail "debootstrap"; }
  touch "$BASE/.ready"
fi
rm -rf "$WORK/installed"
cp -a "$BASE" "$WORK/installed"
ROOTFS=$WORK/installed
say "dpkg -i the packages into a clean root"
nspawn -D "$ROOTFS" --pipe --bind-ro="$ROOT/target/debian:/debs" \
  -- sh -c 'dpkg -i /debs/ha-agent_*.deb /debs/ha-monitor_*.deb' > "$WORK.dpkg.log" 2>&1 \
  || { cat "$WORK.dpkg.log"; fail "dpkg -i"; }
grep -q "systemctl enable --now ha-agent" "$WORK.dpkg.log" || fail "postinst did not print the next step"

# 1. What the packages installed.
in_root() { nspawn -D "$ROOTFS" --pipe -- "$@"; }
[ "$(in_root stat -c '%U:%G %a' /etc/ha/agent.yaml)" = "root:ha 640" ] || fail "agent.yaml is not root:ha 0640"
[ "$(in_root stat -c '%U:%G %a' /etc/ha/monitor.yaml)" = "root:ha 640" ] || fail "monitor.yaml is not root:ha 0640"
in_root getent passwd ha >/dev/null || fail "no user ha"
for u in ha-agent ha-monitor; do
  state=$(systemctl --root="$ROOTFS" is-enabled "$u.service" 2>/dev/null || true)
  [ "$state" = disabled ] || fail "$u.service is '$state' after install, want disabled"
done
for f in /usr/share/man/man8/ha-agent.8.gz /usr/share/man/man8/ha-monitor.8.gz \
  /usr/share/man/man1/ha-control.1.gz /usr/share/man/man5/monitor.yaml.5.gz \
  /usr/share/man/man5/agent.yaml.5.gz /usr/share/bash-completion/completions/ha-control; do
  [ -e "$ROOTFS$f" ] || fail "$f not installed"
done
say "packages: units disabled, user ha, root:ha 0640 configs, man pages, completions"

# --- the lab: MariaDB in namespaces, configs and certificates ----------------------------------
say "lab $PREFIX up"
"$LAB_BIN" up --prefix "$PREFIX" --hosts 3 --configs-only > "$WORK.lab.log" 2>&1 \
  || { cat "$WORK.lab.log"; fail "lab up"; }

gid_ha=$(awk -F: '$1 == "ha" {print $3}' "$ROOTFS/etc/group")
# Installs a lab file into a node's root as root:ha 0640, its lab paths rewritten: certificates
# under /etc/ha/tls, state under /var/lib/ha (the only writable place the units allow).
install_conf() { # node src dest
  local dir=$WORK/$PREFIX-$1
  sed -e "s#$LABDIR/[^ ]*/\\([^/ ]*\\.\\(crt\\|key\\)\\)#/etc/ha/tls/\\1#" \
      -e "s#^state_dir: .*#state_dir: /var/lib/ha#" \
      -e "s#^  status_path: .*#  status_path: /var/lib/ha/status.json#" "$2" > "$dir$3"
  chown "0:$gid_ha" "$dir$3"
  chmod 0640 "$dir$3"
}

boot() { # node
  local n=$1 dir=$WORK/$PREFIX-$1
  rm -rf "$dir"
  cp -a "$ROOTFS" "$dir"
  mkdir -p "$dir/etc/ha/tls"
  for f in $(find "$LABDIR" -name '*.crt' -o -name '*.key' | grep -v foreign); do
    install -m 0640 -o 0 -g "$gid_ha" "$f" "$dir/etc/ha/tls/"
  done
  case $n in
    mon)
      install_conf mon "$LABDIR/files/monitor.yaml" /etc/ha/monitor.yaml
      # A fencing hook that only records who ran it for which host (step 4), run through the
      # packaged helper socket.
      sed -i -e "s#^  kill_host_bin: .*#  kill_host_bin: /usr/local/sbin/ha-fence-proof\\n  kill_host_socket: /run/ha/fence.sock#" \
        "$dir/etc/ha/monitor.yaml"
      printf '#!/bin/sh\necho "$(id -un) $*" >> /var/lib/ha-fence-proof.log\necho "fenced $1"\n' \
        > "$dir/usr/local/sbin/ha-fence-proof"
      chmod 0755 "$dir/usr/local/sbin/ha-fence-proof"
      install_conf mon "$LABDIR/files/control-operator.yaml" /etc/ha/control.yaml
      ;;
    *) install_conf "$n" "$LABDIR/files/agent-$n.yaml" /etc/ha/agent.yaml ;;
  esac
  # Not through the nspawn function: $! must be systemd-nspawn itself (PID 1 is its child, and
  # SIGTERM to it shuts the container down).
  # CAP_NET_ADMIN/CAP_NET_RAW stay in the container's bounding set: ha-agent's unit grants them
  # (role IPs, gratuitous ARP), as on a real host.
  systemd-nspawn -q --keep-unit --register=no -D "$dir" --boot -M "$PREFIX$n" \
    --capability=CAP_NET_ADMIN,CAP_NET_RAW \
    --network-namespace-path="/run/netns/$PREFIX-$n" > "$WORK/$PREFIX-$n.console" 2>&1 &
  NSPAWN_PID[$n]=$!
}

# The container's PID 1 (systemd), found among the children of its nspawn.
pid1() {
  local p
  for p in $(pgrep -P "${NSPAWN_PID[$1]}" 2>/dev/null); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && { echo "$p"; return; }
  done
  return 1
}
in_ct() { # node cmd…: runs cmd inside the container (all its namespaces)
  local n=$1 p
  shift
  p=$(pid1 "$n") || fail "container $n has no PID 1"
  nsenter -t "$p" -m -u -i -n -p -C -- "$@"
}

for n in "${NODES[@]}"; do boot "$n"; done
for n in "${NODES[@]}"; do
  for _ in $(seq 1 120); do
    if pid1 "$n" >/dev/null; then
      s=$(in_ct "$n" systemctl is-system-running 2>/dev/null || true)
      case $s in running | degraded) break ;; esac
    fi
    sleep 0.5
  done
  case $(in_ct "$n" systemctl is-system-running 2>/dev/null || true) in
    running | degraded) ;;
    *) tail -30 "$WORK/$PREFIX-$n.console"; fail "systemd did not boot in $n" ;;
  esac
done
say "systemd is PID 1 in ${NODES[*]}"

# 2. Start through systemctl; Type=notify: it returns once READY.
for n in db1 db2 db3; do
  in_ct "$n" systemctl start ha-agent || { in_ct "$n" journalctl -u ha-agent --no-pager | tail -30; fail "start ha-agent on $n"; }
  [ "$(in_ct "$n" systemctl is-active ha-agent)" = active ] || fail "ha-agent not active on $n"
done
in_ct mon systemctl start ha-monitor || { in_ct mon journalctl -u ha-monitor --no-pager | tail -30; fail "start ha-monitor"; }
say "systemctl start: ha-agent on db1..db3, ha-monitor: active"
# The fencing helper's socket (monitor.yaml kill_host_socket): only group ha may connect.
in_ct mon systemctl start ha-fence.socket || fail "start ha-fence.socket"
[ "$(in_ct mon stat -c '%U:%G %a %F' /run/ha/fence.sock)" = "root:ha 660 socket" ] \
  || fail "/run/ha/fence.sock is not a root:ha 0660 socket"
say "ha-fence.socket listening on /run/ha/fence.sock (root:ha 0660)"

# All ONLINE with a writer; hosts waiting in AWAITING_RECOVERY are set online, as an operator
# does after a first start (the lab's monitor.yaml has no auto_set_online).
converged() {
  local out h
  out=$(in_ct mon ha-control show 2>&1) || return 1
  for h in $(sed -n 's/^  \([a-z0-9]*\)(.*\/AWAITING_RECOVERY\..*/\1/p' <<<"$out"); do
    in_ct mon ha-control set_online "$h" >/dev/null 2>&1 || true
  done
  [ "$(grep -c '/ONLINE\.' <<<"$out")" = 3 ] && grep -q 'writer(' <<<"$out"
}
for _ in $(seq 1 120); do converged && break; sleep 1; done
converged || { in_ct mon ha-control show; fail "cluster did not converge under systemd"; }
in_ct mon ha-control show
say "ha-control show: all ONLINE, one writer"
# The writer is real, not only in the role table: its agent (under systemd, with the unit's
# capabilities) added the writer IP and set read_only=0.
writer_is_live() {
  local line w vip
  line=$(in_ct mon ha-control show 2>/dev/null | grep 'writer(') || return 1
  w=$(sed -n 's/^  \([a-z0-9]*\)(.*/\1/p' <<<"$line")
  vip=$(sed -n 's/.*writer(\([0-9.]*\)).*/\1/p' <<<"$line")
  [ -n "$w" ] && [ -n "$vip" ] || return 1
  grep -q "inet $vip/" <<<"$(ip -n "$PREFIX-$w" -4 addr show dev eth0)" || return 1
  [ "$(mariadb -S "$LABDIR/$w/mysql.sock" -uroot -N -e 'SELECT @@read_only' 2>/dev/null)" = 0 ] || return 1
  WRITER=$w WRITER_VIP=$vip
}
for _ in $(seq 1 60); do writer_is_live && break; sleep 1; done
writer_is_live || { in_ct mon ha-control show; fail "the writer in show is not writable with its IP"; }
say "writer $WRITER: $WRITER_VIP on its eth0, read_only=0"

# 3. The watchdog restarts a SIGSTOPped daemon (WatchdogSec=10s, TimeoutAbortSec=5s).
watchdog_restarts() { # node unit
  local n=$1 u=$2 pid restarts
  pid=$(in_ct "$n" systemctl show -p MainPID --value "$u")
  restarts=$(in_ct "$n" systemctl show -p NRestarts --value "$u")
  in_ct "$n" systemctl kill --kill-whom=main --signal=SIGSTOP "$u"
  for _ in $(seq 1 60); do
    sleep 1
    [ "$(in_ct "$n" systemctl show -p NRestarts --value "$u")" -gt "$restarts" ] \
      && [ "$(in_ct "$n" systemctl is-active "$u")" = active ] \
      && [ "$(in_ct "$n" systemctl show -p MainPID --value "$u")" != "$pid" ] && break
  done
  [ "$(in_ct "$n" systemctl show -p NRestarts --value "$u")" -gt "$restarts" ] \
    || { in_ct "$n" journalctl -u "$u" --no-pager | tail -20; fail "$u on $n was not restarted after SIGSTOP"; }
  # Read the journal first, then grep it: `journalctl | grep -q` fails under pipefail when grep
  # exits at its match while journalctl is still writing (SIGPIPE). journald may also write
  # systemd's line a moment after the restart is visible.
  local journal=
  for _ in $(seq 1 20); do
    journal=$(in_ct "$n" journalctl -u "$u" --no-pager)
    grep -q "Watchdog timeout" <<<"$journal" && break
    sleep 0.5
  done
  grep -q "Watchdog timeout" <<<"$journal" || fail "$u on $n: restarted, but not by the watchdog"
  say "$u on $n: SIGSTOPped, watchdog timeout, restarted (pid $pid -> $(in_ct "$n" systemctl show -p MainPID --value "$u"))"
}
watchdog_restarts db2 ha-agent
watchdog_restarts mon ha-monitor
for _ in $(seq 1 120); do converged && break; sleep 1; done
converged || { in_ct mon ha-control show; fail "cluster did not converge again after the restarts"; }

# 4. Fencing through the helper: db3's link goes down; after trap_period the monitor strips
#    its roles and asks ha-fence.socket to run kill_host_bin (as root). The helper's last
#    argument is whether ping still answered: 0 or 1, whichever check's trap_period ends first
#    (under load the mysql check's can, and then ping still counts as OK).
ip -n "$PREFIX-db3" link set eth0 down
FENCE_LOG=$WORK/$PREFIX-mon/var/lib/ha-fence-proof.log
for _ in $(seq 1 90); do
  grep -q "^root db3 [01]$" "$FENCE_LOG" 2>/dev/null && break
  sleep 1
done
grep -q "^root db3 [01]$" "$FENCE_LOG" 2>/dev/null || {
  in_ct mon journalctl -u 'ha-fence@*' --no-pager | tail -20
  fail "kill_host_bin did not run as root for db3 through ha-fence.socket"
}
monitor_journal=$(in_ct mon journalctl -u ha-monitor --no-pager)
grep -q "Killed host 'db3': .*fenced db3" <<<"$monitor_journal" \
  || fail "the monitor did not log the helper's reply for db3"
[ "$(in_ct mon systemctl show -p User --value ha-monitor)" = ha ] || fail "ha-monitor does not run as ha"
ip -n "$PREFIX-db3" link set eth0 up
say "db3 off the network: kill_host_bin ran as root through ha-fence.socket, ha-monitor logged \"Killed host 'db3': … fenced db3\""

# 5. systemctl stop: clean.
for nu in db3:ha-agent mon:ha-monitor; do
  n=${nu%%:*} u=${nu#*:}
  in_ct "$n" systemctl stop "$u"
  [ "$(in_ct "$n" systemctl show -p Result --value "$u")" = success ] \
    || { in_ct "$n" journalctl -u "$u" --no-pager | tail -20; fail "$u on $n did not stop cleanly"; }
  [ "$(in_ct "$n" systemctl is-active "$u" || true)" = inactive ] || fail "$u on $n still running"
done
say "systemctl stop: ha-agent and ha-monitor stopped cleanly (Result=success)"
rm -f "$WORK/$PREFIX"-*.console
say "PASS"
