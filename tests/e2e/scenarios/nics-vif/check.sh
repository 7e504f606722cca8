# shellcheck shell=sh
await started
wait_for attr/vif/0/ipv4/0 10.0.0.2 30 || fail "the bridge's address never reached vif 0"
expect attr/vif/0/bridge br0
expect attr/vif/0/name eth0
expect attr/vif/0/mac/0 00:16:3e:00:00:00
expect attr/vif/0/ipv4/0/prefix 24
expect attr/vif/0/carrier 1
expect_absent attr/vif/0/ipv6/0          # only link-local fe80:: there: left out
wait_for attr/vif/1/vlan/100/ipv4/0 10.0.100.2 10 || fail "VLAN address missing"
expect attr/vif/1/ipv4/0 10.0.0.3
expect attr/vif/1/mac/0 00:16:3e:00:00:01
expect attr/vif/1/vlan/100/name eth1.100
expect_absent attr/vif/1/bridge
expect_absent attr/net                   # the bridge and the VLAN are not NICs of their own
# XAPI parses every child of ipv4/ as an integer
for v in 0 1; do
  for n in $(xenstore-list "$H/attr/vif/$v/ipv4"); do
    case $n in ''|*[!0-9]*) fail "attr/vif/$v/ipv4/$n is not an integer index" ;; esac
  done
done
ok "every ipv4/<n> index is an integer"

go go-add; await added
wait_for attr/vif/1/ipv4/1 10.0.1.5 10 || fail "added address not published"
wait_for attr/vif/1/ipv6/0 2001:db8:1::5 10 || fail "added IPv6 address not published"
expect attr/vif/1/ipv6/0/prefix 64

go go-del; await deleted
n=0; while value attr/vif/1/ipv4/1 >/dev/null; do n=$((n + 1)); [ $n -gt 50 ] && fail "removed address still published"; sleep 0.2; done
expect attr/vif/1/ipv4/0 10.0.0.3
ok "removed address gone, the other kept its index"

go go-rename; await renamed
wait_for attr/vif/1/name enX1 10 || fail "rename not followed"
expect attr/vif/1/ipv4/0 10.0.0.3
expect attr/vif/1/vlan/100/ipv4/0 10.0.100.2

go go-bond; await bonded
wait_for attr/vif/1/bond bond0 10 || fail "bond membership not published"
wait_for attr/vif/1/ipv4/0 10.0.7.2 10 || fail "the bond's address never reached vif 1"
expect_absent attr/vif/1/vlan
expect_absent attr/net                   # dummy0 is virtual: not reported
expect attr/vif/0/ipv4/0 10.0.0.2

go go-ipvlan; await ipvl1
i0=$(value e2e/ipvl0); i1=$(value e2e/ipvl1)
wait_for "attr/vif/0/ipvlan/$i1/ipv4/0" 10.0.8.2 10 || fail "ipvl1's address never reached vif 0"
wait_for "attr/vif/0/ipvlan/$i0/ipv4/0" 10.0.8.1 10 || fail "ipvl0's address never reached vif 0"
expect "attr/vif/0/ipvlan/$i0/name" ipvl0
expect "attr/vif/0/ipvlan/$i1/name" ipvl1
expect "attr/vif/0/ipvlan/$i1/mac" 00:16:3e:00:00:00
expect_absent attr/vif/0/macvlan
go go-ipvlan-del; await ipvlan-deleted
wait_until_absent "attr/vif/0/ipvlan/$i0" 10 || fail "deleted ipvl0 still published"
expect "attr/vif/0/ipvlan/$i1/ipv4/0" 10.0.8.2
ok "two ipvlans with one MAC each under ipvlan/<ifindex>; a deleted one goes"

go go-lat
await latency-ms 120
echo "dom0: latency ip addr add -> XenStore, measured in the domU (ms, 10 ms resolution):$(value e2e/latency-ms)"
