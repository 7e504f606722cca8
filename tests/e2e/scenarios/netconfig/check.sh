# shellcheck shell=sh
S=$H/xenserver/device/vif/0/static-ip-setting
cd /tmp && zcat /boot/domU.cpio.gz | cpio -id bin/agent 2>/dev/null
XB=/tmp/bin/agent
[ -x $XB ] || fail "no bin/agent in /boot/domU.cpio.gz"
# has_addr FAMILY ADDR: some attr/vif/0/<family>/<n> is ADDR
has_addr() {
  for _i in $(xenstore-list "$H/attr/vif/0/$1" 2>/dev/null); do
    [ "$(value "attr/vif/0/$1/$_i")" = "$2" ] && return 0
  done
  return 1
}
# wait_addr FAMILY ADDR [SECS] / wait_no_addr FAMILY ADDR [SECS]
wait_addr() { _n=$((${3:-30} * 5)); until has_addr "$1" "$2"; do _n=$((_n - 1)); [ $_n -gt 0 ] || return 1; sleep 0.2; done; }
wait_no_addr() { _n=$((${3:-30} * 5)); while has_addr "$1" "$2"; do _n=$((_n - 1)); [ $_n -gt 0 ] || return 1; sleep 0.2; done; }
# no_ipv4: vif 0 reports no IPv4 address
no_ipv4() {
  _l=$(xenstore-list "$H/attr/vif/0/ipv4" 2>/dev/null) && [ -n "$_l" ] && fail "attr/vif/0/ipv4 still has $_l"
  ok "attr/vif/0/ipv4 has no address"
}
# ping N [last]: the domU pings 10.0.0.1 and reports its default route
ping_from_domu() {
  go "ping$1" "${2:-1}"; await "pong$1" 30
  [ "$(value "e2e/pong$1")" = ok ] || fail "the domU cannot ping dom0's bridge (step $1)"
  ok "domU pings dom0's bridge ($([ "${2:-}" = v6 ] && echo 2001:db8:e2e::1 || echo 10.0.0.1)); default route: $(value "e2e/route$1") / IPv6: $(value "e2e/route6-$1")"
}

await started
# 1. Ansible's vm-data/networks, seeded before the domU started, applied at start
wait_for control/feature-static-ip-setting 1 60 || fail "control/feature-static-ip-setting not announced"
ok "control/feature-static-ip-setting = 1"
wait_addr ipv4 10.0.0.42 60 || fail "Ansible's 10.0.0.42 never reached attr/vif/0/ipv4"
ping_from_domu 1
case $(value e2e/route1) in "default via 10.0.0.1 dev eth0 proto 181"*) ok "default route via 10.0.0.1, proto 181" ;; *) fail "route: $(value e2e/route1)" ;; esac

# 2. XAPI's VIF.configure_ipv4 as xenopsd writes it (one transaction; error-code untouched)
xenstore-write "$S/enabled" 1 "$S/address" 10.0.0.50/24 "$S/gateway" 10.0.0.1
wait_addr ipv4 10.0.0.50 30 || fail "10.0.0.50 never reached attr/vif/0/ipv4"
wait_no_addr ipv4 10.0.0.42 10 || fail "Ansible's address stayed next to XAPI's"
expect xenserver/device/vif/0/static-ip-setting/error-code 0
expect xenserver/device/vif/0/static-ip-setting/error-msg ""
expect attr/vif/0/ipv4/0 10.0.0.50
expect attr/vif/0/ipv4/0/prefix 24
ping_from_domu 2
case $(value e2e/route2) in "default via 10.0.0.1 dev eth0 proto 181"*) ok "default route via 10.0.0.1, proto 181" ;; *) fail "route: $(value e2e/route2)" ;; esac

# 3. back to DHCP (set_ip_unspecified_or_autoconf: enabled 2, address and gateway removed)
xenstore-write "$S/enabled" 2 && xenstore-rm "$S/address" && xenstore-rm "$S/gateway"
wait_no_addr ipv4 10.0.0.50 30 || fail "DHCP did not remove 10.0.0.50"
no_ipv4
ok "DHCP: the agent's address is gone, Ansible's is not back"

# 4. IPv6 static
xenstore-write "$S/enabled6" 1 "$S/address6" 2001:db8:e2e::50/64 "$S/gateway6" 2001:db8:e2e::1
wait_addr ipv6 2001:db8:e2e::50 30 || fail "2001:db8:e2e::50 never reached attr/vif/0/ipv6"
expect attr/vif/0/ipv6/0/prefix 64
expect xenserver/device/vif/0/static-ip-setting/error-code 0
ip -6 addr add 2001:db8:e2e::1/64 dev xenbr0 || fail "cannot give dom0's bridge an IPv6 address"
ping_from_domu 3 v6
case $(value e2e/route6-3) in "default via 2001:db8:e2e::1 dev eth0 proto 181"*) ok "IPv6 default route via 2001:db8:e2e::1, proto 181" ;; *) fail "IPv6 route: $(value e2e/route6-3)" ;; esac

# 5. a bad CIDR: a non-zero error-code and no change
xenstore-write "$S/enabled" 1 "$S/address" 10.0.0.300/24
wait_change xenserver/device/vif/0/static-ip-setting/error-code 0 30 || fail "a bad CIDR answered error-code 0"
code=$(value xenserver/device/vif/0/static-ip-setting/error-code)
[ "$code" != 0 ] || fail "a bad CIDR answered error-code 0"
ok "bad CIDR: error-code $code, error-msg '$(value xenserver/device/vif/0/static-ip-setting/error-msg)'"
no_ipv4
expect attr/vif/0/ipv6/0 2001:db8:e2e::50

# 6. the same through xenbeacon set-ip
echo "dom0: \$ xenbeacon set-ip agent --vif 0 --ipv4 10.0.0.60/24 --gateway 10.0.0.1"
out=$($XB set-ip agent --vif 0 --ipv4 10.0.0.60/24 --gateway 10.0.0.1 --autoconf6 --timeout 30 2>&1) || fail "set-ip failed ($?): $out"
echo "dom0: | $out"
[ "$out" = "vif 0: applied: 10.0.0.60/24 via 10.0.0.1, IPv6 autoconf" ] || fail "set-ip printed '$out'"
wait_addr ipv4 10.0.0.60 10 || fail "10.0.0.60 never reached attr/vif/0/ipv4"
wait_no_addr ipv6 2001:db8:e2e::50 10 || fail "autoconf6 did not remove 2001:db8:e2e::50"
ping_from_domu 4
out=$($XB set-ip agent --vif 0 --ipv4 10.0.0.70/24 --gateway 10.9.0.1 2>&1); rc=$?
[ $rc = 2 ] || fail "set-ip with a gateway outside the subnet: status $rc: $out"
ok "set-ip refuses a gateway outside the subnet before writing: $out"
out=$($XB set-ip agent --vif 0 --dhcp --timeout 30 2>&1) || fail "set-ip --dhcp failed: $out"
echo "dom0: | $out"
wait_no_addr ipv4 10.0.0.60 10 || fail "set-ip --dhcp did not remove 10.0.0.60"
ok "set-ip: static, then DHCP"
go ping5 last
await done 30
# the whole home, for ../shared/tools/xapi-view (docs/consumers.md)
xenstore-ls -f "$H" | grep -v "^$H/e2e" | sed 's/^/dom0: home: /'
