#!/usr/bin/env bash
# The chaos soak (issue 15): `sudo bash tests/chaos.sh [ARGS]`.
#
# Builds the daemons and the ha-chaos example (debug profile, the test suite's) and runs it.
# Every schedule starts a fresh lab cluster, injects 2–6 overlapping random faults, heals
# everything as an operator would and checks I1–I4 (docs/product.md §4). Arguments:
#
#   bash tests/chaos.sh --schedules 200 --out tests/chaos-latest.txt
#   bash tests/chaos.sh --seed 17            # replay one schedule with its full report
#   bash tests/chaos.sh --help
#
# Progress and violation reports go to stderr, the table to stdout (and --out FILE). Exit 1
# when any schedule broke an invariant. The README test command runs seeds 1-5
# (tests/acceptance/tests/chaos.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tests/chaos.sh: run as root (the lab creates network namespaces): sudo bash tests/chaos.sh" >&2
  exit 1
fi
target=${CARGO_TARGET_DIR:-target}
cargo build --workspace --bins
cargo build -p ha-acceptance --example ha-chaos
exec "$target/debug/examples/ha-chaos" "$@"
