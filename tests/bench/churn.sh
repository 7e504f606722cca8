#!/bin/bash
# Memory and XenStore traffic under churn: the agent (static musl build) runs in a network
# namespace against the fake xenstored for SECONDS (default 3600) while addresses come and go
# every 200 ms and free memory moves every tick. Prints VmRSS/VmHWM at start and end, the
# agent's CPU time, and checks that the final XenStore state matches the namespace exactly.
# Usage: tests/bench/churn.sh [SECONDS]   (root; ip netns)
# XENBEACON_BENCH_BIN=<binary> churns that build (e.g. the guest-image size build) instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SECS=${1:-3600}
cargo build -q --release --locked --target x86_64-unknown-linux-musl
cargo build -q --release --locked --example fake-xenstored
BIN=${XENBEACON_BENCH_BIN:-$PWD/target/x86_64-unknown-linux-musl/release/xenbeacon}
W=$(mktemp -d); NS=xbchurn$$
cleanup() { kill "$XS" "$AG" 2>/dev/null || true; ip netns del "$NS" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
target/release/examples/fake-xenstored "$W/xs" 5 > "$W/socks" & XS=$!
while [ "$(wc -l < "$W/socks" 2>/dev/null)" -lt 2 ]; do sleep 0.05; done
ip netns add "$NS"; ip -n "$NS" link add eth0 type veth peer name eth0p
ip -n "$NS" link set eth0 up; ip -n "$NS" link set eth0p up
R=$W/root; mkdir -p "$R/etc" "$R/proc/sys/kernel" "$R/sys/class/net" "$R/sys/devices/vif-0/net/eth0"
cp /etc/os-release "$R/etc/"; cp /proc/sys/kernel/osrelease "$R/proc/sys/kernel/"
echo vif > "$R/sys/devices/vif-0/devtype"; echo device/vif/0 > "$R/sys/devices/vif-0/nodename"
ln -s ../../../vif-0 "$R/sys/devices/vif-0/net/eth0/device"
ln -s ../../devices/vif-0/net/eth0 "$R/sys/class/net/eth0"
mem() { printf 'MemTotal: 8000000 kB\nMemFree: 1000 kB\nMemAvailable: %s kB\n' "$1" > "$R/proc/meminfo"; }
mem 4000000
ip netns exec "$NS" "$BIN" --xenstore "$W/xs/dom5.sock" --root "$R" --memory-interval 1 \
  --memory-threshold 0 --max-addresses 64 --log-level warn 2> "$W/agent.log" & AG=$!
sleep 1
st() { awk -v k="$1:" '$1 == k {print $2}' /proc/$AG/status; }
echo "start: VmRSS $(st VmRSS) KiB, VmHWM $(st VmHWM) KiB"
end=$((SECONDS + SECS)); i=0; changes=0
while [ $SECONDS -lt $end ]; do
  i=$((i + 1))
  ip -n "$NS" addr add "10.77.$((i % 50)).$((i % 250 + 1))/24" dev eth0 2>/dev/null || true
  [ $i -gt 20 ] && ip -n "$NS" addr del "10.77.$(((i - 20) % 50)).$(((i - 20) % 250 + 1))/24" dev eth0 2>/dev/null || true
  changes=$((changes + 2))
  [ $((i % 5)) = 0 ] && mem $((4000000 + i % 7000))
  sleep 0.2
done
sleep 2
echo "end after ${SECS}s and $changes address changes: VmRSS $(st VmRSS) KiB, VmHWM $(st VmHWM) KiB"
echo "agent CPU: $(awk '{printf "%.2f s", ($14 + $15) / 100}' /proc/$AG/stat)"
want=$(ip -n "$NS" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | sort)
echo "warnings logged: $(grep -c WARN "$W/agent.log" || true)"
grep WARN "$W/agent.log" | sort | uniq -c | sed 's/^/  /' || true
echo "addresses in the namespace: $(echo "$want" | grep -c . || true)"
# what the agent published, read from the fake xenstored's dom0 socket (raw wire protocol)
got=$(python3 - "$W/xs/dom0.sock" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
def req(t, payload, rid=[0]):
    rid[0] += 1
    s.sendall(struct.pack("=IIII", t, rid[0], 0, len(payload)) + payload)
    hdr = b""
    while len(hdr) < 16: hdr += s.recv(16 - len(hdr))
    ty, _, _, n = struct.unpack("=IIII", hdr)
    body = b""
    while len(body) < n: body += s.recv(n - len(body))
    return ty, body
d = "/local/domain/5/attr/vif/0/ipv4"
ty, body = req(1, d.encode() + b"\0")
for n in [c for c in body.decode().split("\0") if c.isdigit()]:
    print(req(2, f"{d}/{n}".encode() + b"\0")[1].decode())
PY
)
got=$(echo "$got" | sort)
if [ "$got" = "$want" ]; then echo "final state: exact ($(echo "$got" | grep -c .) addresses)"; else
  echo "final state: WRONG"; diff <(echo "$want") <(echo "$got") || true; exit 1; fi
