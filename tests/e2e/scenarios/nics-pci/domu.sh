# shellcheck shell=sh
. /root/domu.sh
/bin/agent --once --log-level debug 2>&1 | sed 's/^/domU: agent: /'
report done 1

# An active-backup bond over the vif and the e1000, the vif enslaved first: the bond takes the
# vif's MAC and gives it to the e1000 too. The e1000 must stay under its own (permanent) MAC.
await go-bond
by_mac() { for i in /sys/class/net/*; do [ "$(cat "$i/address")" = "$1" ] && basename "$i"; done; }
pci=$(by_mac 52:54:00:12:34:05)
vif=$(by_mac 00:16:3e:00:00:00)
insmod /lib/modules/bonding.ko max_bonds=0
ip link add bond0 type bond mode active-backup
for l in $vif $pci; do
  ip addr flush dev "$l" && ip link set "$l" down && ip link set "$l" master bond0
done
ip link set bond0 up && ip addr add 10.0.7.2/24 dev bond0
ip -br link
report pci-name "$pci"
report pci-mac "$(cat "/sys/class/net/$pci/address")"
/bin/agent --once --log-level debug 2>&1 | sed 's/^/domU: agent: /'
report bonded 1
