# shellcheck shell=sh
. /root/domu.sh
/bin/agent --log-level debug > /tmp/agent.log 2>&1 &
report started 1

await go-add
ip addr add 10.0.1.5/24 dev eth1
ip -6 addr add 2001:db8:1::5/64 dev eth1   # tentative until DAD is done: not reported before
report added 1

await go-del
ip addr del 10.0.1.5/24 dev eth1
report deleted 1

await go-rename
ip link set eth1 down && ip link set eth1 name enX1 && ip link set enX1 up
report renamed 1

await go-bond
insmod /lib/modules/dummy.ko numdummies=0
insmod /lib/modules/bonding.ko max_bonds=0
ip link add dummy0 type dummy && ip addr add 10.0.5.1/24 dev dummy0 && ip link set dummy0 up
ip link del eth1.100
ip addr flush dev enX1
ip link add bond0 type bond mode active-backup
ip link set enX1 down && ip link set enX1 master bond0 && ip link set bond0 up
ip addr add 10.0.7.2/24 dev bond0
ip -br link; ip -br addr
report bonded 1

# two ipvlans on the bridge: both carry br0's (= eth0's) MAC
await go-ipvlan
ip link add ipvl0 link br0 type ipvlan mode l2 && ip link add ipvl1 link br0 type ipvlan mode l2
ip addr add 10.0.8.1/24 dev ipvl0 && ip addr add 10.0.8.2/24 dev ipvl1
ip link set ipvl0 up && ip link set ipvl1 up
report ipvl0 "$(cat /sys/class/net/ipvl0/ifindex)"
report ipvl1 "$(cat /sys/class/net/ipvl1/ifindex)"
await go-ipvlan-del
ip link del ipvl0
report ipvlan-deleted 1

# latency, measured in the domU: ip addr add -> the key readable from XenStore
await go-lat
lat=""
i=1
while [ $i -le 20 ]; do
  a=10.0.9.$i
  t0=$(cut -d' ' -f1 /proc/uptime)
  ip addr add $a/32 dev br0
  while [ "$(xenstore-read attr/vif/0/ipv4/1 2>/dev/null)" != "$a" ]; do :; done
  t1=$(cut -d' ' -f1 /proc/uptime)
  lat="$lat $(awk "BEGIN {printf \"%d\", ($t1 - $t0) * 1000}")"
  ip addr del $a/32 dev br0
  while xenstore-read attr/vif/0/ipv4/1 >/dev/null 2>&1; do :; done
  i=$((i + 1))
done
report latency-ms "$lat"
sed 's/^/domU: agent: /' /tmp/agent.log | grep -v DEBUG
