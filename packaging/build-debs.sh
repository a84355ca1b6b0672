#!/usr/bin/env bash
# Builds the Debian packages of ha and lints them:
#
#   bash packaging/build-debs.sh            # -> target/debian/ha-agent_*.deb, ha-monitor_*.deb
#
# ha-agent   for every MySQL/MariaDB host: ha-agent, its unit, /etc/ha/agent.yaml.
# ha-monitor for the monitor host: ha-monitor and ha-control, the unit, /etc/ha/monitor.yaml and
#            control.yaml, ha-control's bash/zsh/fish completions.
# Both: stripped release binaries, man pages (binaries and config files), docs, the `ha` system
# user (sysusers.d), the config files that hold passwords as root:ha 0640 (dpkg-statoverride),
# units installed but never enabled or started.
#
# Needs cargo-deb (installed with `cargo install` if missing), lintian, gzip, python3, and
# protoc with its well-known types (protobuf-compiler, libprotobuf-dev: the etcd-client crate's
# build script; tests/install-deps.sh installs them). The
# packages are built with cargo-deb from [package.metadata.deb] in agent/ and monitor/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version >/dev/null 2>&1; then
  echo "build-debs: installing cargo-deb $CARGO_DEB_VERSION (crates.io)"
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi

echo "build-debs: release build"
cargo build --release --locked -p ha-agent -p ha-monitor -p ha-control

# Man pages and completions, generated from the binaries themselves (clap) and from the config
# references (docs/*.yaml.md), so they cannot disagree with the code.
pkg=target/release/pkg
rm -rf "$pkg"
mkdir -p "$pkg/man" "$pkg/completions"
bin=target/release
"$bin/ha-agent" --generate-man | gzip -9n > "$pkg/man/ha-agent.8.gz"
"$bin/ha-monitor" --generate-man | gzip -9n > "$pkg/man/ha-monitor.8.gz"
"$bin/ha-control" generate-man | gzip -9n > "$pkg/man/ha-control.1.gz"
for f in agent.yaml monitor.yaml control.yaml; do
  python3 packaging/md2man.py "docs/$f.md" | gzip -9n > "$pkg/man/$f.5.gz"
done
"$bin/ha-control" generate-completions bash > "$pkg/completions/ha-control"
"$bin/ha-control" generate-completions zsh > "$pkg/completions/_ha-control"
"$bin/ha-control" generate-completions fish > "$pkg/completions/ha-control.fish"

mkdir -p target/debian
rm -f target/debian/ha-agent_*.deb target/debian/ha-monitor_*.deb
for p in ha-agent ha-monitor; do
  cargo deb --no-build --strip --locked -p "$p" --output target/debian/
done

if command -v lintian >/dev/null 2>&1; then
  echo "build-debs: lintian"
  # Overrides ship in the packages (usr/share/lintian/overrides), each with its reason:
  # packaging/lintian/<package>.
  lintian --fail-on error,warning --tag-display-limit 0 \
    target/debian/ha-agent_*.deb target/debian/ha-monitor_*.deb
else
  echo "build-debs: lintian not installed: packages not linted" >&2
fi
ls -l target/debian/*.deb
