# shellcheck shell=sh
# Helpers for domU fragments; the harness copies this file to /root (run.sh passes it with -f).
say() { echo "domU: $*"; }
report() { xenstore-write "e2e/$1" "$2"; }
# await NAME [SECS]: wait until dom0 writes e2e/NAME
await() {
  _n=$((${2:-120} * 10))
  while ! xenstore-read "e2e/$1" >/dev/null 2>&1; do
    _n=$((_n - 1)); [ $_n -gt 0 ] || { say "timeout waiting for e2e/$1"; return 1; }
    sleep 0.1
  done
}
# wait_log FILE PATTERN [SECS]: until FILE has a line matching PATTERN
wait_log() {
  _n=$((${3:-30} * 10))
  while ! grep -q "$2" "$1" 2>/dev/null; do
    _n=$((_n - 1)); [ $_n -gt 0 ] || { say "timeout waiting for '$2' in $1"; return 1; }
    sleep 0.1
  done
}
