#!/usr/bin/env bash
# The whole test suite of ha, lab tests included: `bash tests/run.sh` as root.
#
# Installs what the tests need (Debian packages: MariaDB 10.11, iproute2, nftables, …), checks
# formatting, lints, verifies the systemd units, then runs every test of the workspace. Lab tests
# build real MariaDB clusters in network namespaces, hence root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root (the lab tests create network namespaces): sudo bash tests/run.sh" >&2
  exit 1
fi

bash tests/install-deps.sh

export CARGO_INCREMENTAL=0
export CARGO_TERM_COLOR=never
# Leftovers of an earlier, killed run would only waste addresses; remove them by prefix.
step() { printf '\n=== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo build"
cargo build --workspace --all-targets --locked

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "no import cycle between modules"
python3 tests/lint/module-cycles.py
echo "none"

step "systemd units"
if command -v systemd-analyze >/dev/null 2>&1; then
  units=$(mktemp -d)
  trap 'rm -rf "$units"' EXIT
  for u in systemd/*.service systemd/*.socket; do
    sed "s#/usr/bin/#$PWD/target/debug/#g" "$u" > "$units/$(basename "$u")"
  done
  # --man=no: the Documentation= man pages exist only once the packages are installed (the
  # systemd proof below checks they are).
  systemd-analyze verify --man=no "$units"/*.service "$units"/*.socket
  echo "systemd units verified"
else
  echo "systemd-analyze not available: unit verification skipped"
fi

step "config samples"
# Installed as the packages install them: 0640 (they hold passwords; a world-readable one is refused).
samples=$(mktemp -d)
install -m 0640 etc/monitor.yaml etc/agent.yaml "$samples/"
./target/debug/ha-monitor --check-config "$samples/monitor.yaml"
./target/debug/ha-agent --check-config "$samples/agent.yaml"
rm -rf "$samples"

step "cargo test (unit, lab and acceptance tests)"
cargo test --workspace --locked --no-fail-fast

step "Debian packages (cargo-deb, lintian)"
bash packaging/build-debs.sh

step "systemd proof (packages installed with dpkg, systemd as PID 1, driven by systemctl)"
bash tests/systemd-proof.sh
