# shellcheck shell=sh
await stage1
expect data/xenbeacon/stage initramfs
U=$(value data/os_uname)
expect data/os_name "Linux $U"
wait_for attr/vif/0/ipv4/0 10.0.0.2 10 || fail "network-boot address missing in the initramfs stage"
# from here on, anything written under attr/vif or to the versions is a needless rewrite
xenstore-watch "$H" > /tmp/w 2>&1 &
w=$!
wait_line /tmp/w "^$H\$" 30 || fail "xenstore-watch $H never fired (its first event marks it set)"
go go-switch
await stage2
expect data/xenbeacon/stage rootfs
expect data/os_name "Xenbeacon Test OS 12.4 (e2e)"
expect data/os_majorver 12
expect_absent data/xenbeacon/booted
# the watch stream is ordered: once dom0's own mark is in it, so is every write of the hand-over
go switch-mark
wait_line /tmp/w "^$H/e2e/switch-mark\$" 30 || fail "dom0's mark never reached its own watch"
kill $w
vif=$(grep -cE "^$H/attr/vif(/|\$)" /tmp/w || true); ver=$(grep -cx "$H/attr/PVAddons/MajorVersion" /tmp/w || true)
echo "dom0: watch events across the hand-over: attr/vif=$vif MajorVersion=$ver"
[ "$vif" -eq 0 ] && [ "$ver" -eq 0 ] || fail "unchanged keys were rewritten"
ok "the root-filesystem instance rewrote no unchanged key"
go go-booted
await booted-rc
expect e2e/booted-rc 0
expect data/xenbeacon/booted 1
