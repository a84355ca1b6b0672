#!/usr/bin/env bash
# One-command demo of ha on a lab cluster (run as root on Debian 12):
#
#   sudo bash tests/demo.sh up       install what is missing, build, bring up db1..db3 (MariaDB in
#                                    network namespaces, db1 <-> db2 masters, db3 replica),
#                                    ha-agent on each, ha-monitor in its own namespace, and print
#                                    `ha-control show` plus a guide to try a failover
#   sudo bash tests/demo.sh down     tear everything down (namespaces, bridge, processes, files)
#   sudo bash tests/demo.sh status   the lab description (JSON)
#
# The lab lives on a private bridge with addresses from one 10.x.y.0/24, no default route and no
# address in the root namespace: nothing it does leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PREFIX=hldemo
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/debug
LAB_BIN=$TARGET/ha-lab
DIR=/tmp/ha-lab-$PREFIX

die() { echo "demo.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root: sudo bash tests/demo.sh ${1:-up}"

# cargo may live in the invoking user's home when run through sudo.
if ! command -v cargo >/dev/null 2>&1; then
  for d in "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin}" /root/.cargo/bin; do
    [ -n "$d" ] && [ -x "$d/cargo" ] && export PATH="$d:$PATH" && break
  done
fi

build_lab() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) first"
  echo "== building (debug) …"
  if cargo build --workspace --bins; then
    WORKSPACE_BUILT=1
  else
    WORKSPACE_BUILT=0
    echo "demo.sh: the workspace does not build yet; building the lab alone" >&2
    cargo build -p ha-lab --bin ha-lab
  fi
}

case "${1:-}" in
  up)
    bash tests/install-deps.sh
    build_lab
    if [ -e /run/ha-lab/$PREFIX.json ] || ip netns list | grep -q "^$PREFIX-"; then
      echo "== a demo lab is already up: replacing it"
      "$LAB_BIN" down --prefix $PREFIX
    fi
    echo "== bringing up the lab"
    args=(up --prefix $PREFIX --hosts 3)
    [ -x "$TARGET/ha-agent" ] && args+=(--agent-bin "$TARGET/ha-agent")
    [ -x "$TARGET/ha-monitor" ] && args+=(--monitor-bin "$TARGET/ha-monitor")
    "$LAB_BIN" "${args[@]}" > /dev/null 2> "$DIR.up.log" || { cat "$DIR.up.log" >&2; die "lab did not come up"; }
    cat "$DIR.up.log"
    rm -f "$DIR.up.log"

    ns() { echo "$PREFIX-$1"; }
    ip_of() { ip -n "$(ns "$1")" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | head -1; }
    MON_CFG=$DIR/files/monitor.yaml
    SUBNET=$(ip_of db1 | cut -d. -f1-3)

    echo
    echo "== lab $PREFIX: $SUBNET.0/24"
    for h in db1 db2 db3; do echo "   $h  $(ip_of "$h")  namespace $(ns "$h")  socket $DIR/$h/mysql.sock"; done
    echo "   monitor $SUBNET.2 (namespace $(ns mon)), client $SUBNET.3 (namespace $(ns cli))"
    echo "   role IPs: writer $SUBNET.160, readers $SUBNET.161-163"

    missing=()
    agents=$(ip netns pids "$(ns db1)" | xargs -r ps -o comm= -p 2>/dev/null | grep -c '^ha-agent' || true)
    monitors=$(ip netns pids "$(ns mon)" | xargs -r ps -o comm= -p 2>/dev/null | grep -c '^ha-monitor' || true)
    [ "${WORKSPACE_BUILT:-0}" = 1 ] || missing+=("the workspace does not build yet (see cargo output above)")
    [ "$agents" -ge 1 ] || missing+=("ha-agent is not running (not built, a stub, or it rejects the lab config: see above)")
    [ "$monitors" -ge 1 ] || missing+=("ha-monitor is not running (not built, a stub, or it rejects the lab config: see above)")
    [ -x "$TARGET/ha-control" ] || missing+=("ha-control is not built")

    # Mutual TLS: the lab's CA and an admin operator certificate (tests/lab/src/tls.rs).
    CONTROL="ip netns exec $(ns mon) $TARGET/ha-control -c $MON_CFG --control-config $DIR/files/control-operator.yaml"
    if [ "${#missing[@]}" -eq 0 ]; then
      echo
      echo "== ha-control show (waiting for the monitor to settle)"
      ok=0
      for _ in $(seq 1 20); do
        if out=$($CONTROL show 2>&1) && grep -q 'db1(' <<<"$out"; then ok=1; break; fi
        sleep 1
      done
      echo "$out"
      if [ $ok = 1 ] && grep -q AWAITING_RECOVERY <<<"$out"; then
        # A fresh monitor has no history for the other hosts; bring them online as an operator
        # would, so a failover has somewhere to go.
        for h in $(grep -o '[a-z0-9]*([0-9.]*) [a-z]*/AWAITING_RECOVERY' <<<"$out" | cut -d'(' -f1); do
          echo "\$ ha-control set_online $h"
          $CONTROL set_online "$h" || true
        done
        sleep 3
        echo
        $CONTROL show || true
      fi
      [ $ok = 1 ] || missing+=("ha-control show did not answer within 20 s (monitor log: $DIR/logs/)")
    fi

    if [ "${#missing[@]}" -gt 0 ]; then
      echo
      echo "== the lab is up, but the ha demo is incomplete:"
      for m in "${missing[@]}"; do echo "   - $m"; done
      echo "   The MariaDB cluster itself works; try:"
      echo "     mariadb --no-defaults -uroot -S $DIR/db1/mysql.sock -e 'SHOW SLAVE STATUS\\G'"
      echo "   Tear down with: sudo bash tests/demo.sh down"
      exit 0
    fi

    cat <<GUIDE

== try a failover
  show the cluster:            $CONTROL show
  write through the writer IP: ip netns exec $(ns cli) mariadb --no-defaults -h $SUBNET.160 -u app -plab-app-pw hatest -e "INSERT INTO t (v) VALUES ('hello')"
  stop MariaDB on the writer:  mariadb --no-defaults -uroot -S $DIR/db1/mysql.sock -e SHUTDOWN   (if db1 holds the writer role)
  watch the writer move:       watch -n1 $CONTROL show
  start it again:              ip netns exec $(ns db1) setsid mariadbd --defaults-file=$DIR/db1/my.cnf >/dev/null 2>&1 &
  bring it back online:        $CONTROL set_online db1
  pull a cable instead:        ip link set $(ns db1)-h down     (and: ip link set $(ns db1)-h up)
  logs:                        $DIR/logs/   (MariaDB: $DIR/db1/error.log)
  tear down:                   sudo bash tests/demo.sh down
GUIDE
    ;;
  down)
    if [ ! -x "$LAB_BIN" ]; then build_lab; fi
    "$LAB_BIN" down --prefix $PREFIX
    left=$( (ip netns list; ip -o link show) | grep -c "$PREFIX-" || true)
    [ "$left" = 0 ] || die "leftovers remain: $( (ip netns list; ip -o link show) | grep "$PREFIX-")"
    echo "demo.sh: everything removed"
    ;;
  status)
    [ -x "$LAB_BIN" ] || die "not built; run: sudo bash tests/demo.sh up"
    "$LAB_BIN" status --prefix $PREFIX
    ;;
  *)
    echo "usage: sudo bash tests/demo.sh up|down|status" >&2
    exit 2
    ;;
esac
