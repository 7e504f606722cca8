# shellcheck shell=sh
await done 450
V=attr/vif/0
expect device/vif/0/mac 00:16:3e:00:00:00
expect $V/mac/0 00:16:3e:00:00:00
expect $V/ipv4/0 10.0.0.2
expect $V/ipv4/0/prefix 24
expect $V/bus pci
expect $V/driver e1000
expect $V/carrier 1
value $V/name >/dev/null || fail "$V/name missing"
ok "$V/name = $(value $V/name)"
# nothing of the twin under attr/net, which xapi never reads
if xenstore-ls "$H/attr/net" >/dev/null 2>&1 && [ -n "$(xenstore-ls "$H/attr/net" 2>/dev/null)" ]; then
  fail "the emulated NIC is also under attr/net"
fi
ok "attr/net empty"
# what xapi shows as the VM's IP (xapi_guest_agent.ml: attr/vif/<id>/ipv4/<lowest> -> <id>/ip)
[ "$(xapi_vif_ip 0)" = 10.0.0.2 ] || fail "xapi would show no IP for vif 0"
ok "xapi networks: 0/ip = 10.0.0.2"
