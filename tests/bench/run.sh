#!/bin/bash
# Every footprint and latency measurement this machine can make, and a report with the
# targets of issue 7 (docs/benchmarks.md explains each number):
#
#   1. binary sizes per target (cross/build.sh --size: every cross target, plus the x86_64 and
#      aarch64 guest-image builds with std rebuilt for size; aarch64 is the product target:
#      < 400 KiB), and the plain x86_64 musl build;
#   2. idle cost (tests/bench/idle.sh: RSS, wakeups, CPU, syscalls, XenStore requests) of the
#      plain build and of the x86_64 guest-image build (target: VmRSS < 400 KiB);
#   3. latency from `ip addr add` to the key in the fake xenstored, p50/p99 over 200 changes
#      (tests/nics.rs address_latency; target p99 < 20 ms);
#   4. scale and XenStore traffic (tests/scale.rs, all #[ignore]d benchmarks): 1,000 addresses
#      on one NIC, 64 NICs, 10,000 address changes in 10 s, requests per hour idle / memory
#      moving / addresses churning, and 130 s at default settings (`side-by-side`; with
#      XENBEACON_PEER=<binary> in the environment another agent is measured beside it, see
#      docs/benchmarks.md); run against the static musl build.
#
# Usage: tests/bench/run.sh [--quick] [--no-cross] [--idle SECONDS] [--churn SECONDS]
#   --quick      cross/build.sh only for x86_64 and aarch64 (+ --size), idle 10 s
#   --no-cross   skip cross/build.sh (sizes of the plain musl build only)
#   --idle N     idle window (default 30 s)
#   --churn N    also run tests/bench/churn.sh N (one hour for the documented numbers)
# Needs root (network namespaces). Output: the report on stdout and in
# target/bench/report-<UTC date>.txt, every tool's full output beside it. Exit status 0 when
# every target is met, 2 when a measurement missed its target, 1 when one could not be made.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
QUICK=0 CROSS=1 IDLE=30 CHURN=0
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 IDLE=10 ;;
	--no-cross) CROSS=0 ;;
	--idle) shift; IDLE=${1:?--idle needs seconds} ;;
	--churn) shift; CHURN=${1:?--churn needs seconds} ;;
	-h | --help) sed -n '2,23s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "tests/bench/run.sh: unknown argument $1" >&2; exit 1 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "tests/bench/run.sh: needs root (ip netns)" >&2; exit 1; }
# tests/scale.rs list_500_guests measures `xenbeacon list` with GNU time
[ -x /usr/bin/time ] || { echo "tests/bench/run.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

STAMP=$(date -u +%Y-%m-%dT%H%MZ)
OUT=target/bench/$STAMP
mkdir -p "$OUT"
REPORT=target/bench/report-$STAMP.txt
MISSED=0
lines=()
say() { lines+=("$*"); printf '%s\n' "$*"; }
step() { printf '\n==> %s\n' "$*" >&2; }
check() { # check <what> <ok?> <detail>
	if [ "$2" = 1 ]; then say "  target met: $1 ($3)"; else say "  TARGET MISSED: $1 ($3)"; MISSED=1; fi
}

say "xenbeacon benchmark report, $STAMP"
# shellcheck disable=SC1091
say "machine: $(nproc) CPUs, $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME"), $(rustc -V)"
say "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' (src modified)')"

# ---------------------------------------------------------------- 1. sizes
step "binary sizes"
cargo build -q --release --locked --target x86_64-unknown-linux-musl
MUSL=$PWD/target/x86_64-unknown-linux-musl/release/xenbeacon
say ""
say "1. binary size (release profile of Cargo.toml, stripped)"
say "  cargo build --release --target x86_64-unknown-linux-musl: $(stat -c %s "$MUSL") bytes"
if [ "$CROSS" = 1 ]; then
	args=(--size)
	[ "$QUICK" = 1 ] && args+=(--targets "x86_64-unknown-linux-musl aarch64-unknown-linux-musl")
	if cross/build.sh "${args[@]}" >"$OUT/cross.log" 2>&1; then
		while IFS= read -r l; do say "  $l"; done < target/cross/sizes.txt
		b=$(awk '$1 == "aarch64-unknown-linux-musl-size" {print $2}' target/cross/sizes.txt)
		check "aarch64 --size build < 400 KiB" "$([ "${b:-999999999}" -lt 409600 ] && echo 1 || echo 0)" \
			"$b bytes = $(awk -v b="${b:-0}" 'BEGIN {printf "%.1f", b / 1024}') KiB"
	else
		say "  cross/build.sh failed: see $OUT/cross.log"; tail -5 "$OUT/cross.log" >&2; exit 1
	fi
fi

# ---------------------------------------------------------------- 2. idle
step "idle cost ($IDLE s)"
tests/bench/idle.sh "$IDLE" >"$OUT/idle.log" 2>&1 || { tail "$OUT/idle.log" >&2; exit 1; }
say ""
say "2. idle (tests/bench/idle.sh $IDLE, memory tick 1 s)"
while IFS= read -r l; do say "  $l"; done < <(grep -E '^(after start|over|after:|XenStore)' "$OUT/idle.log")
reqs=$(sed -n 's/^BENCH idle .*xenstore_requests=\([0-9]*\).*/\1/p' "$OUT/idle.log")
check "no XenStore request while idle" "$([ "${reqs:-1}" = 0 ] && echo 1 || echo 0)" "${reqs:-?} requests in ${IDLE} s"

# The guest-image build (no dom0 commands, std rebuilt for size) is what embedded images run.
SIZEBIN=target/cross/x86_64-unknown-linux-musl-size/xenbeacon
if [ "$CROSS" = 1 ] && [ -x "$SIZEBIN" ]; then
	step "idle cost of the guest-image size build ($IDLE s)"
	XENBEACON_BENCH_BIN=$SIZEBIN tests/bench/idle.sh "$IDLE" >"$OUT/idle-size.log" 2>&1 ||
		{ tail "$OUT/idle-size.log" >&2; exit 1; }
	say "  guest-image build ($SIZEBIN, cross/build.sh --size):"
	while IFS= read -r l; do say "    $l"; done < <(grep -E '^(after start|after:)' "$OUT/idle-size.log")
	rss=$(sed -n 's/^BENCH idle .*rss_kib=\([0-9]*\).*/\1/p' "$OUT/idle-size.log")
	check "VmRSS < 400 KiB (x86_64 guest-image build, idle)" \
		"$([ "${rss:-999999}" -lt 400 ] && echo 1 || echo 0)" "${rss:-?} KiB"
fi

# ---------------------------------------------------------------- 3. latency
step "address latency (200 changes)"
cargo test -q --release --locked --test nics -- --ignored --nocapture address_latency \
	>"$OUT/latency.log" 2>&1 || { tail -20 "$OUT/latency.log" >&2; exit 1; }
say ""
say "3. latency, ip addr add -> key in the fake xenstored (tests/nics.rs address_latency)"
while IFS= read -r l; do say "  ${l#address add -> key in fake xenstored, }"; done < <(grep '^address add' "$OUT/latency.log")
p99=$(grep 'upper bound' "$OUT/latency.log" | sed -n 's/.* p99 \([0-9.]*\)\(ms\|µs\|us\|ns\|s\) .*/\1 \2/p')
p99_ms=$(echo "$p99" | awk '{v = $1; if ($2 == "s") v *= 1000; else if ($2 == "ns") v /= 1e6; else if ($2 != "ms") v /= 1000; printf "%.2f", v}')
check "p99 < 20 ms (upper bound: from the start of ip(8))" \
	"$(awk -v v="${p99_ms:-999}" 'BEGIN {print (v < 20) ? 1 : 0}')" "p99 ${p99_ms:-?} ms"

# ---------------------------------------------------------------- 4. scale, traffic
step "scale and XenStore traffic (tests/scale.rs, about 4 minutes)"
XENBEACON_BENCH_BIN=$MUSL cargo test -q --release --locked --test scale -- --ignored --nocapture \
	--test-threads 1 >"$OUT/scale.log" 2>&1 || { grep -v '^fake-xenstored' "$OUT/scale.log" | tail -30 >&2; exit 1; }
say ""
say "4. scale and XenStore requests (tests/scale.rs, static musl build)"
while IFS= read -r l; do say "  ${l#BENCH }"; done < <(grep -oE 'BENCH .*' "$OUT/scale.log")

# ---------------------------------------------------------------- 5. churn
if [ "$CHURN" != 0 ]; then
	step "churn ($CHURN s)"
	tests/bench/churn.sh "$CHURN" >"$OUT/churn.log" 2>&1 || { tail "$OUT/churn.log" >&2; exit 1; }
	say ""
	say "5. churn (tests/bench/churn.sh $CHURN)"
	while IFS= read -r l; do say "  $l"; done < "$OUT/churn.log"
fi

printf '%s\n' "${lines[@]}" >"$REPORT"
say ""
say "report: $REPORT (logs in $OUT/)"
exit $((MISSED * 2))
