#!/bin/bash
# Start-up and idle footprint in a real Xen PV domU (Xen 4.17 under QEMU TCG; x86_64, or arm64
# with E2E_ARCH=arm64, where only xenbeacon's own builds are measured): the
# e2e scenario bench-xen runs each agent under exec-to-key (fork to first key, fork to the
# end of the first burst of writes), then reads its RSS and threads and counts wakeups and CPU
# over 60 s. Measured: the plain static build and the guest-image size build of xenbeacon
# (cross/build.sh --size), and every other agent binary named in XENBEACON_PEERS (built
# outside this repository; see docs/benchmarks.md), e.g.
#   XENBEACON_PEERS="/tmp/peers/bin/xen-guest-agent /tmp/peers/bin/xe-daemon" tests/bench/xen.sh
# A peer is recognised by its file name: xen-guest-agent and xe-daemon are measured under
# those names. XENBEACON_BASELINE=<binary> adds an older xenbeacon build as
# "xenbeacon-baseline", to compare two builds in the same boot (boots differ by up to 2x).
# One boot, about 7 minutes. Prints one line per agent and ratios to xenbeacon.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ARCH=${E2E_ARCH:-x86_64}
case $ARCH in
x86_64) TRIPLE=x86_64-unknown-linux-musl ;;
arm64) TRIPLE=aarch64-unknown-linux-musl
	[ -z "${XENBEACON_PEERS:-}" ] || { echo "tests/bench/xen.sh: peers are x86_64 builds" >&2; exit 1; } ;;
*) echo "tests/bench/xen.sh: E2E_ARCH must be x86_64 or arm64" >&2; exit 1 ;;
esac
SIZEBIN=target/cross/$TRIPLE-size/xenbeacon
cross/build.sh --size --targets "$TRIPLE" >&2   # up to date with the tree
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cp "$SIZEBIN" "$T/xenbeacon-size"
files="$T/xenbeacon-size"
# the floor for start-up: the harness's 60-line C client writing one key
case $ARCH in x86_64) cc=gcc ;; arm64) cc=aarch64-linux-gnu-gcc ;; esac
if command -v "$cc" >/dev/null; then
	"$cc" -O2 -static -o "$T/xsagent" tests/e2e/xsagent.c && files="$files $T/xsagent"
fi
if [ -n "${XENBEACON_BASELINE:-}" ]; then
	cp "$XENBEACON_BASELINE" "$T/xenbeacon-baseline" && files="$files $T/xenbeacon-baseline"
fi
for p in ${XENBEACON_PEERS:-}; do
	case $(basename "$p") in
	xen-guest-agent | xe-daemon) cp "$p" "$T/"; files="$files $T/$(basename "$p")" ;;
	*) echo "tests/bench/xen.sh: unknown peer $p (xen-guest-agent or xe-daemon)" >&2; exit 1 ;;
	esac
done
WORK=${E2E_WORK:-/tmp/xenbeacon-e2e-$ARCH}
E2E_FILES=$files E2E_TIMEOUT=1200 tests/e2e/run.sh bench-xen
echo "== real Xen $ARCH PV domU (QEMU TCG), $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ)"
grep -a '^dom0: BENCH ' "$WORK/bench-xen.log" | sed 's/^dom0: BENCH //' | tee "$T/lines"
# ratios of each agent to the plain xenbeacon build
awk '
	{ name = $1; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[name, kv[1]] = kv[2] } names[++n] = name }
	END {
		split("first_key_ms complete_ms rss_kib wakeups_60s bytes", ks, " ")
		printf "ratios to xenbeacon (plain build):\n"
		for (j = 1; j <= n; j++) {
			nm = names[j]; if (nm == "xenbeacon") continue
			printf "  %-16s", nm
			for (k = 1; k <= 5; k++) {
				a = v[nm, ks[k]]; b = v["xenbeacon", ks[k]]
				if (b + 0 > 0) printf " %s x%.1f", ks[k], a / b; else printf " %s %s/%s", ks[k], a, b
			}
			printf "\n"
		}
	}' "$T/lines"
