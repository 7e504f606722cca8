# shellcheck shell=sh
await done
N=attr/net/525400123405
expect $N/bus pci
expect $N/name "$(value $N/name)"
expect $N/mac 52:54:00:12:34:05
expect $N/location 0000:00:00.0
expect $N/vendor 0x8086
expect $N/product 0x100e
expect $N/driver e1000
expect $N/ipv4/0 10.0.2.15
expect $N/ipv4/0/prefix 24
expect $N/host-location 0000:00:05.0
expect attr/vif/0/ipv4/0 10.0.0.2

go go-bond; await bonded
expect e2e/pci-mac 00:16:3e:00:00:00     # the bond gave the e1000 the vif's MAC...
expect $N/name "$(value e2e/pci-name)"   # ...and it is still reported under its own
expect $N/mac 00:16:3e:00:00:00
expect $N/bond bond0
expect $N/ipv4/0 10.0.7.2
expect $N/location 0000:00:00.0
expect_absent attr/net/00163e000000
expect attr/vif/0/bond bond0
expect attr/vif/0/ipv4/0 10.0.7.2
