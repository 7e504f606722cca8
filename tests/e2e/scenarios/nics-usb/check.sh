# shellcheck shell=sh
await done 450
N=attr/net/52540012340b
expect $N/bus usb
expect $N/mac 52:54:00:12:34:0b
expect $N/vendor 0525
expect $N/product a4a2
expect $N/driver cdc_ether
expect $N/ipv4/0 10.0.2.15
case $(value $N/location) in *1-1*) ok "location $(value $N/location)" ;; *) fail "USB location $(value $N/location)" ;; esac
