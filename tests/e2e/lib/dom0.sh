# shellcheck shell=sh
# Helpers for dom0 check fragments (busybox sh in the harness's dom0). run.sh prepends this
# file to each scenario's check.sh. $DOMID is the domU; H is its home.
H=/local/domain/$DOMID
fail() { echo "dom0: FAIL: $*"; xenstore-ls -f "$H" | sed 's/^/dom0:   /'; exit 1; }
ok() { echo "dom0: ok: $*"; }
# wait_for KEY [VALUE] [SECS]: until KEY (relative to H) exists, and equals VALUE if given
wait_for() {
  _k=$1; _want=${2-}; _n=$((${3:-30} * 5))
  while [ $_n -gt 0 ]; do
    if _v=$(xenstore-read "$H/$_k" 2>/dev/null) && { [ -z "$_want" ] || [ "$_v" = "$_want" ]; }; then
      return 0
    fi
    _n=$((_n - 1)); sleep 0.2
  done
  return 1
}
# wait_change KEY OLD [SECS]: until KEY exists with a value other than OLD
wait_change() {
  _n=$((${3:-30} * 5))
  while [ $_n -gt 0 ]; do
    _v=$(xenstore-read "$H/$1" 2>/dev/null) && [ "$_v" != "$2" ] && return 0
    _n=$((_n - 1)); sleep 0.2
  done
  return 1
}
value() { xenstore-read "$H/$1" 2>/dev/null; }
expect() { _v=$(value "$1") || fail "$1 missing (expected '$2')"; [ "$_v" = "$2" ] || fail "$1 = '$_v', expected '$2'"; ok "$1 = $_v"; }
expect_absent() { if _v=$(value "$1"); then fail "$1 = '$_v', expected no such key"; fi; ok "$1 absent"; }
expect_uint() {
  _v=$(value "$1") || fail "$1 missing"
  case $_v in ''|*[!0-9]*) fail "$1 = '$_v' is not a decimal integer" ;; esac
  ok "$1 = $_v"
}
# go NAME: tell the domU to go on (the domU awaits e2e/NAME)
go() { xenstore-write "$H/e2e/$1" "${2:-1}"; }
# await NAME [SECS]: wait for the domU to report e2e/NAME
await() { wait_for "e2e/$1" "" "${2:-60}" || fail "domU never reported e2e/$1"; }
