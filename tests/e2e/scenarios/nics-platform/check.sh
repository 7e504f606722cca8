# shellcheck shell=sh
await done
N=attr/net/525400123407
expect $N/bus platform
expect $N/mac 52:54:00:12:34:07
expect $N/location /passthrough/virtio_mmio@a003e00
expect $N/compatible virtio,mmio
expect $N/driver virtio_net
expect $N/ipv4/0 10.0.2.15
expect attr/vif/0/ipv4/0 10.0.0.2
