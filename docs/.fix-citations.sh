#!/usr/bin/env bash
# Makes every citation of the two out-of-repo spec files (../shared/spec/product.md and
# ../shared/spec/mmm-reference.md) point at their in-repo restatements, docs/product.md and
# docs/mmm-behaviour.md (issue 13, item 6).
#
#   bash docs/.fix-citations.sh          # from anywhere; works on the repository root
#
# Safe to run twice: every substitution's result no longer matches its own pattern (no
# "docs/docs/"). Only comments and markdown are touched: every matched line in a .rs/.proto file
# was checked to be a `//` comment; Cargo files are never listed (tests/acceptance/Cargo.toml's
# description "Acceptance scenarios of product.md §5" is left as it is). Note: the `///` line
# on `scenarios` in tests/acceptance/examples/ha-bench.rs is also clap's --help text of
# ha-bench (no test compares it).
#
# Bare citations need no edit: "F9", "I1", "S13" resolve in docs/product.md; a bare "§x.y" and the
# rule ids O1…R5 resolve in docs/mmm-behaviour.md (both files say so in their first lines, and the
# note added to README.md / ARCHITECTURE.md below says it too).
set -euo pipefail
cd "$(dirname "$0")/.."

present() { # prints the files of "$@" that exist, warns about the others
  for f in "$@"; do
    if [ -f "$f" ]; then printf '%s\n' "$f"; else echo "fix-citations: skipped, not found: $f" >&2; fi
  done
}

# 1. Code comments: "mmm-reference §x.y" -> "docs/mmm-behaviour.md §x.y".
mapfile -t MMM_CODE < <(present \
  control/src/render/checks.rs \
  control/src/render/show.rs \
  monitor/core/src/commands.rs \
  monitor/core/src/core.rs \
  monitor/core/src/flap.rs \
  monitor/core/src/lib.rs \
  monitor/core/src/machine.rs \
  monitor/core/src/roles.rs \
  monitor/core/src/spec.rs \
  monitor/core/src/startup.rs \
  monitor/core/src/tests_commands.rs \
  monitor/core/src/tests_machine.rs \
  monitor/core/src/traps.rs \
  monitor/core/src/views.rs \
  monitor/src/checks/judge.rs \
  monitor/src/checks/probe.rs \
  monitor/src/checks/schedule.rs \
  monitor/src/control.rs \
  monitor/src/daemon.rs \
  monitor/src/kill.rs \
  monitor/src/netcheck.rs \
  monitor/src/status_file.rs \
  proto/config/src/monitor.rs \
  proto/ha.proto \
  tests/acceptance/tests/control_golden/main.rs)
[ ${#MMM_CODE[@]} -gt 0 ] && sed -i 's#mmm-reference §#docs/mmm-behaviour.md §#g' "${MMM_CODE[@]}"

# 2. Code comments: "product.md" -> "docs/product.md" (only where not already preceded by a path).
mapfile -t PRODUCT_CODE < <(present \
  agent/src/arp.rs \
  agent/src/converge/promotion.rs \
  agent/src/plan/mod.rs \
  control/src/client.rs \
  control/src/render/checks.rs \
  monitor/core/src/spec.rs \
  monitor/src/agents.rs \
  monitor/src/checks/mod.rs \
  proto/config/src/lib.rs \
  proto/config/src/ordered.rs \
  tests/acceptance/examples/ha-bench.rs \
  tests/acceptance/src/converge.rs \
  tests/acceptance/src/invariants.rs \
  tests/acceptance/src/lib.rs \
  tests/acceptance/tests/net_common/mod.rs \
  tests/acceptance/tests/ops_common/mod.rs \
  tests/acceptance/tests/s14_monitor_down.rs \
  tests/lab/src/mariadb.rs)
[ ${#PRODUCT_CODE[@]} -gt 0 ] && sed -i 's#\(^\|[^/A-Za-z0-9_.-]\)product\.md#\1docs/product.md#g' "${PRODUCT_CODE[@]}"

# 3. Code comments: "product F9" -> "docs/product.md F9".
mapfile -t PRODUCT_F_CODE < <(present \
  agent/src/lease/mod.rs \
  monitor/core/src/exposure.rs \
  monitor/core/src/failover.rs \
  monitor/core/src/lib.rs)
[ ${#PRODUCT_F_CODE[@]} -gt 0 ] && sed -i 's#\bproduct \(F[0-9]\)#docs/product.md \1#g' "${PRODUCT_F_CODE[@]}"

# 4. Markdown: the same, as links relative to each file.
if [ -f ARCHITECTURE.md ]; then
  # line "one test file per product.md §5 scenario" and heading "## The writer lease (product F9)"
  sed -i -e 's#\(^\|[^/A-Za-z0-9_.-]\)product\.md §#\1[docs/product.md](docs/product.md) §#g' \
         -e 's#\bproduct \(F[0-9]\)#docs/product.md \1#g' ARCHITECTURE.md
fi
if [ -f control/README.md ]; then
  # "Text output is byte-identical to mmm_control (mmm-reference §6.2)"
  sed -i 's#mmm-reference §#[docs/mmm-behaviour.md](../docs/mmm-behaviour.md) §#g' control/README.md
fi
if [ -f tests/lab/README.md ]; then
  # "(product.md I2)"
  sed -i 's#\(^\|[^/A-Za-z0-9_.-]\)product\.md#\1[docs/product.md](../../docs/product.md)#g' tests/lab/README.md
fi

# 5. Say once, where readers start, how citations resolve (guarded: added only once).
note=$(mktemp)
trap 'rm -f "$note"' EXIT
if [ -f README.md ] && ! grep -q '(docs/mmm-behaviour.md)' README.md; then
  cat > "$note" <<'EOF'

The rules the code and tests cite by number — fixes F1–F14, invariants I1–I4, scenarios S1–S14 —
are in [docs/product.md](docs/product.md); how mysql-mmm 2.2.1 behaves, cited as "§x.y" or by
state-machine rule id (O1…R5), is in [docs/mmm-behaviour.md](docs/mmm-behaviour.md).
EOF
  anchor='^them): \[ARCHITECTURE\.md\](ARCHITECTURE\.md)\.$'
  if grep -q "$anchor" README.md; then
    sed -i "/$anchor/r $note" README.md
  else
    echo "fix-citations: README.md: anchor line not found; add the citations note by hand:" >&2
    cat "$note" >&2
  fi
fi
if [ -f ARCHITECTURE.md ] && ! grep -q '^## Citations$' ARCHITECTURE.md; then
  cat >> ARCHITECTURE.md <<'EOF'

## Citations

Numbers in comments resolve inside the repository. F1–F14 (fixes), I1–I4 (invariants), S1–S14
(scenarios) and "docs/product.md §n" are in [docs/product.md](docs/product.md). A "§x.y" —
alone or as "docs/mmm-behaviour.md §x.y" — and the rule ids O1…R5 are in
[docs/mmm-behaviour.md](docs/mmm-behaviour.md), which restates mysql-mmm 2.2.1's behaviour.
EOF
fi

# 6. Report what is left (files added since this script was written, or missed).
left=$(git ls-files --cached --others --exclude-standard -- ':!:docs/' ':!:*Cargo.toml' ':!:Cargo.lock' \
  | xargs grep -nIE 'mmm-reference|\.\./shared|(^|[^/A-Za-z0-9_.-])product\.md|\bproduct F[0-9]' || true)
if [ -n "$left" ]; then
  echo "fix-citations: citations still pointing outside the repository:" >&2
  printf '%s\n' "$left" >&2
  exit 1
fi
echo "fix-citations: every citation points into docs/"
