#!/bin/bash
# Idle cost of the agent against the fake xenstored: RSS, context switches (wakeups), syscalls
# and XenStore requests while nothing changes. The memory timer is set to 1 s to amplify 60x
# what the default 60 s interval costs.
# Usage: tests/bench/idle.sh [SECONDS]   (default 30; needs strace)
# XENBEACON_BENCH_BIN=<binary> measures that build instead of the plain static musl one
# (tests/bench/run.sh does it for the guest-image size build of cross/build.sh --size).
# The last line, `BENCH idle ...`, sums it up for tests/bench/run.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SECS=${1:-30}
if ! command -v strace >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "tests/bench/idle.sh: strace missing (apt-get install strace)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }
fi
cargo build -q --release --locked --target x86_64-unknown-linux-musl
cargo build -q --release --locked --example fake-xenstored
BIN=${XENBEACON_BENCH_BIN:-target/x86_64-unknown-linux-musl/release/xenbeacon}
echo "binary: $BIN ($(stat -c %s "$BIN") bytes)"
W=$(mktemp -d); trap 'kill $XS $AG 2>/dev/null; rm -rf "$W"' EXIT
target/release/examples/fake-xenstored "$W/xs" 5 > "$W/socks" & XS=$!
while [ "$(wc -l < "$W/socks" 2>/dev/null)" -lt 2 ]; do sleep 0.05; done
mkdir -p "$W/root/etc" "$W/root/proc/sys/kernel"
cp /etc/os-release "$W/root/etc/"; cp /proc/sys/kernel/osrelease "$W/root/proc/sys/kernel/"
printf 'MemTotal: 8000000 kB\nMemFree: 1000 kB\nMemAvailable: 4000000 kB\n' > "$W/root/proc/meminfo"
"$BIN" --xenstore "$W/xs/dom5.sock" --root "$W/root" --memory-interval 1 --log-level warn & AG=$!
sleep 1
status() { grep -E "^$1:" /proc/$AG/status | awk '{print $2}'; }
rss0=$(status VmRSS); hwm0=$(status VmHWM)
echo "after start: VmRSS $rss0 KiB, VmHWM $hwm0 KiB, threads $(status Threads)"
ctx() { echo $(($(status voluntary_ctxt_switches) + $(status nonvoluntary_ctxt_switches))); }
c0=$(ctx); t0=$(awk '{print $14 + $15}' /proc/$AG/stat); sleep "$SECS"
c1=$(ctx); t1=$(awk '{print $14 + $15}' /proc/$AG/stat)
echo "over ${SECS}s idle at a 1 s memory interval: $((c1 - c0)) wakeups (context switches), $((t1 - t0)) clock ticks of CPU"
# The agent's xenstore connection: its one unix socket (the other socket is rtnetlink).
XSFD=
for fd in "/proc/$AG/fd"/*; do
	l=$(readlink "$fd" 2>/dev/null) || continue
	case $l in socket:\[*\]) ino=${l#socket:[}; ino=${ino%]}
		awk -v i="$ino" '$7 == i {f = 1} END {exit !f}' /proc/net/unix && XSFD=${fd##*/} ;;
	esac
done
# -C: the trace (to count writes on the xenstore socket) and the summary table.
timeout "$SECS" strace -C -p $AG -o "$W/strace" 2>/dev/null || true
echo "after: VmRSS $(status VmRSS) KiB, VmHWM $(status VmHWM) KiB"
echo "syscalls:"; sed -n '/^% time/,$p' "$W/strace"
writes=$(awk '$NF=="write" {n=$4} END {print n+0}' "$W/strace")
reqs=$(grep -cE "^write\(${XSFD:-x}," "$W/strace" || true)
echo "XenStore requests in the strace window (write calls): $writes (on the xenstore socket, fd ${XSFD:-?}: $reqs)"
echo "BENCH idle window_s=$SECS wakeups=$((c1 - c0)) cpu_ticks=$((t1 - t0)) rss_kib=$(status VmRSS) hwm_kib=$(status VmHWM) xenstore_requests=$reqs"
