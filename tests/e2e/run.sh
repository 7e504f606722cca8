#!/bin/bash
# End-to-end tests on real Xen: builds the static musl agent, boots Xen 4.17 (Debian 12
# packages) in QEMU with software emulation, runs each scenario's domU fragment with the agent
# in a PV domU, and checks XenStore from dom0.
#
# Usage: tests/e2e/run.sh [SCENARIO...]     (default: every scenario for E2E_ARCH)
# Env:   E2E_ARCH=x86_64 (default) | arm64   E2E_WORK=DIR (cache, default /tmp/xenbeacon-e2e-ARCH)
#        E2E_TIMEOUT=SECS per boot (default 300)
#        E2E_FILES="FILE..." more files for the domU's /root (tests/bench/xen.sh passes the
#        size build and other agents this way)
# Each scenario directory holds domu.sh (domU fragment), check.sh (dom0 checks), optionally
# pre.sh (dom0, domU paused), host.sh (run on the host after a pass, with E2E_LOG = the
# console log and ROOT), args (extra harness options), arches (default x86_64; a
# scenario listed nowhere runs only when named), examples (cargo examples built for the domU)
# and files passed to the domU.
# Needs root (apt-get for QEMU and friends on first use). Exit status 0 iff all pass.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/support/errtrap.sh
. "$HERE/../support/errtrap.sh"; errtrap tests/e2e/run.sh
ROOT=$(cd "$HERE/../.." && pwd)
ARCH=${E2E_ARCH:-x86_64}
case $ARCH in
  x86_64) TARGET=x86_64-unknown-linux-musl; HARG=() ;;
  arm64) TARGET=aarch64-unknown-linux-musl; HARG=(-M arm64) ;;
  *) echo "E2E_ARCH must be x86_64 or arm64" >&2; exit 2 ;;
esac
WORK=${E2E_WORK:-/tmp/xenbeacon-e2e-$ARCH}
mkdir -p "$WORK"

rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || rustup target add "$TARGET"
flags=()
[ "$TARGET" = aarch64-unknown-linux-musl ] && export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
(cd "$ROOT" && cargo build --release --locked --target "$TARGET" "${flags[@]}")
BIN=$ROOT/target/$TARGET/release/xenbeacon
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  # every scenario whose `arches` file (default: x86_64) names this architecture
  for d in "$HERE"/scenarios/*/; do
    arches=x86_64; [ -f "$d/arches" ] && arches=$(cat "$d/arches")
    case " $arches " in *" $ARCH "*) scenarios+=("$(basename "$d")") ;; esac
  done
fi

# the work dir's setup once, up front: a package no mirror version of which can be had stops the
# run here with one line naming it, instead of failing every scenario
"$HERE/xen-qemu-test.sh" "${HARG[@]}" -w "$WORK" -a "$BIN" -S ||
  { echo "=== e2e $ARCH: setup of $WORK failed (see above)" >&2; exit 1; }

pass=(); failed=()
for s in "${scenarios[@]}"; do
  dir=$HERE/scenarios/$s
  if [ ! -f "$dir/domu.sh" ] || [ ! -f "$dir/check.sh" ]; then echo "no scenario $s" >&2; exit 2; fi
  tmp=$(mktemp -d)
  { echo "XB_VERSION=$VERSION"; cat "$HERE/lib/dom0.sh" "$dir/check.sh"; } > "$tmp/check.sh"
  cat "$HERE/lib/pre.sh" > "$tmp/pre.sh"; [ -f "$dir/pre.sh" ] && cat "$dir/pre.sh" >> "$tmp/pre.sh"
  files=(-f "$HERE/lib/domu.sh")
  for f in "$dir"/*; do
    case $(basename "$f") in domu.sh|check.sh|pre.sh|host.sh|args|arches|examples|README) ;; *) files+=(-f "$f") ;; esac
  done
  # cargo examples the scenario runs in the domU (static, for the domU's architecture)
  if [ -f "$dir/examples" ]; then
    read -r -a exs < "$dir/examples"
    for ex in "${exs[@]}"; do
      (cd "$ROOT" && cargo build --release --locked --target "$TARGET" --example "$ex")
      files+=(-f "$ROOT/target/$TARGET/release/examples/$ex")
    done
  fi
  for f in ${E2E_FILES:-}; do files+=(-f "$f"); done
  extra=()
  [ -f "$dir/args" ] && read -r -a extra < "$dir/args"
  log=$WORK/$s.log
  for attempt in 1 2; do
    echo "=== e2e $ARCH/$s (attempt $attempt)"
    if "$HERE/xen-qemu-test.sh" "${HARG[@]}" -w "$WORK" -l "$log" -t "${E2E_TIMEOUT:-300}" -W 120 \
        -a "$BIN" -u "$dir/domu.sh" -p "$tmp/pre.sh" -c "$tmp/check.sh" -k e2e ${files[@]+"${files[@]}"} \
        ${extra[@]+"${extra[@]}"}; then
      # host.sh: checks on the host, of what dom0 printed (E2E_LOG), with the host's tools
      if [ -f "$dir/host.sh" ] && ! E2E_LOG=$log ROOT=$ROOT "$dir/host.sh"; then
        failed+=("$s"); break
      fi
      pass+=("$s"); break
    fi
    # A check that ran and failed is a real failure; a boot that never got to a verdict
    # (TCG hang, see HARNESS.md "Known limits") is retried once, and so is a domU whose init
    # died before the scenario ran (busybox killed by an invalid opcode in a PVH domU under
    # TCG, seen once): a real failure fails twice.
    if { grep -q 'XENTEST:' "$log" && ! grep -q 'Attempted to kill init' "$log"; } ||
        [ $attempt = 2 ]; then
      failed+=("$s"); break
    fi
    echo "=== e2e $ARCH/$s: no verdict (hung boot?), retrying"
  done
  rm -rf "$tmp"
done
echo "=== e2e $ARCH: passed: ${pass[*]:-none}; failed: ${failed[*]:-none} (logs in $WORK)"
[ ${#failed[@]} -eq 0 ] || exit 1
