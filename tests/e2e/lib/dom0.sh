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
# wait_line FILE REGEX [SECS]: until FILE has a line matching REGEX (grep -E)
wait_line() {
  _n=$((${3:-30} * 5))
  while ! grep -qE "$2" "$1" 2>/dev/null; do
    _n=$((_n - 1)); [ $_n -gt 0 ] || return 1
    sleep 0.2
  done
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
# wait_until_absent KEY [SECS]: until KEY does not exist
wait_until_absent() {
  _n=$((${2:-30} * 5))
  while [ $_n -gt 0 ]; do
    xenstore-read "$H/$1" >/dev/null 2>&1 || return 0
    _n=$((_n - 1)); sleep 0.2
  done
  return 1
}
# The consumers' rules, from their source (docs/consumers.md cites each line).
# xo_tools_version: the guest tools version Xen Orchestra shows, or status 1 when it shows
# none: xo-server joins PV_drivers_version as major.minor.micro-build
# (packages/xo-server/src/xapi-object-to-xo.mjs) and xo-web shows it only when
# version.split('.')[0] > 0 (packages/xo-web/src/xo-app/vm/tab-general.js).
xo_tools_version() {
  _ma=$(value attr/PVAddons/MajorVersion) && _mi=$(value attr/PVAddons/MinorVersion) &&
    _mc=$(value attr/PVAddons/MicroVersion) && _b=$(value attr/PVAddons/BuildVersion) || return 1
  case $_ma in ''|*[!0-9]*) return 1 ;; esac
  [ "$_ma" -gt 0 ] || return 1
  echo "$_ma.$_mi.$_mc-$_b"
}
# xapi_netbios_name: VM_guest_metrics.netbios_name's host_name entry: data/host_name_dns,
# with "." and data/domain appended when that exists (ocaml/xapi/xapi_guest_agent.ml).
xapi_netbios_name() {
  _h=$(value data/host_name_dns) || return 1
  if _d=$(value data/domain); then echo "$_h.$_d"; else echo "$_h"; fi
}
# xapi_vif_ip DEVID: what xapi puts in VM_guest_metrics.networks as <devid>/ip: the address at
# the lowest integer index under attr/vif/<devid>/ipv4 (ocaml/xapi/xapi_guest_agent.ml)
xapi_vif_ip() {
  _lo=""
  for _i in $(xenstore-list "$H/attr/vif/$1/ipv4" 2>/dev/null); do
    case $_i in ''|*[!0-9]*) return 1 ;; esac
    if [ -z "$_lo" ] || [ "$_i" -lt "$_lo" ]; then _lo=$_i; fi
  done
  [ -n "$_lo" ] && value "attr/vif/$1/ipv4/$_lo"
}
