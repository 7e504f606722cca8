# shellcheck shell=sh
await stage1
expect data/xenbeacon/stage initramfs
U=$(value data/os_uname)
expect data/os_name "Linux $U"
wait_for attr/vif/0/ipv4/0 10.0.0.2 10 || fail "network-boot address missing in the initramfs stage"
# from here on, anything written under attr/vif or to the versions is a needless rewrite
xenstore-watch "$H/attr/vif" > /tmp/w-vif 2>&1 &
w1=$!
xenstore-watch "$H/attr/PVAddons/MajorVersion" > /tmp/w-ver 2>&1 &
w2=$!
sleep 2
go go-switch
await stage2
expect data/xenbeacon/stage rootfs
expect data/os_name "Xenbeacon Test OS 12.4 (e2e)"
expect data/os_majorver 12
expect_absent data/xenbeacon/booted
kill $w1 $w2
echo "dom0: watch events across the hand-over: attr/vif=$(wc -l < /tmp/w-vif) MajorVersion=$(wc -l < /tmp/w-ver)"
[ "$(wc -l < /tmp/w-vif)" -eq 1 ] && [ "$(wc -l < /tmp/w-ver)" -eq 1 ] || fail "unchanged keys were rewritten"
ok "the root-filesystem instance rewrote no unchanged key"
go go-booted
await booted-rc
expect e2e/booted-rc 0
expect data/xenbeacon/booted 1
