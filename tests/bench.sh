#!/usr/bin/env bash
# The failover benchmark and the false-failover check (issue 8): `sudo bash tests/bench.sh [ARGS]`.
#
# Builds the daemons and the ha-bench example in the RELEASE profile (HA_BENCH_PROFILE=debug for
# a debug build) into the same target directory, so the lab fixture finds ha-agent, ha-monitor
# and ha-control next to ha-bench, then runs it. Arguments go to ha-bench:
#
#   bash tests/bench.sh                       # 5 runs, mmm + fast settings, 60 s idle
#   bash tests/bench.sh --runs 3 --out tests/bench-latest.txt
#   bash tests/bench.sh --quick               # smoke: 1 run, fast settings, 10 s idle
#   bash tests/bench.sh --false-failover      # 5 min of 10 % loss at the fast settings
#   bash tests/bench.sh --takeover [RUNS]     # redundant monitors: kill -9 the leader RUNS
#                                             # times (default 5), time the takeover
#   bash tests/bench.sh --help
#
# Progress goes to stderr, the table to stdout (and --out FILE). See tests/BENCH.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tests/bench.sh: run as root (the lab creates network namespaces): sudo bash tests/bench.sh" >&2
  exit 1
fi

profile=${HA_BENCH_PROFILE:-release}
case "$profile" in
  release) flags=(--release); dir=release ;;
  debug) flags=(); dir=debug ;;
  *) echo "tests/bench.sh: HA_BENCH_PROFILE must be release or debug" >&2; exit 2 ;;
esac
target=${CARGO_TARGET_DIR:-target}

cargo build "${flags[@]}" --workspace --bins
if [ "${1:-}" = "--takeover" ]; then
  # Redundant monitors (issue 18): three etcd members, two monitors, lease_ttl 2 s. Two tables
  # go to stdout: leader killed -> first agent obeying the new leader's term; and the write
  # outage when the leader is killed right after it trapped a writer failure.
  HA_TAKEOVER_RUNS=${2:-5} exec cargo test "${flags[@]}" -p ha-acceptance --test redundant_monitors \
    benchmark -- --ignored --nocapture --test-threads 1
fi
cargo build "${flags[@]}" -p ha-acceptance --example ha-bench
exec "$target/$dir/examples/ha-bench" "$@"
