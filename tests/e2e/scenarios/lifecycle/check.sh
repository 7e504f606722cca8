# shellcheck shell=sh
await started
wait_for data/xenbeacon/balloon/state reached 30 || fail "balloon state never reached"
expect data/xenbeacon/balloon/target_kb 131072
expect data/xenbeacon/balloon/current_kb 131072
expect data/xenbeacon/layout 2
expect data/xenbeacon/stage initramfs
wait_for attr/vif/0/ipv4/0 10.0.0.2 20 || fail "vif address missing"
expect_absent control/feature-balloon    # libxl: control/ is read-only to the guest

total=$(value data/meminfo_total)
xenstore-watch "$H" > /tmp/w 2>&1 &
w=$!
wait_line /tmp/w "^$H\$" 30 || fail "xenstore-watch $H never fired (its first event marks it set)"
xl mem-set agent 96 || fail "xl mem-set failed"
wait_for data/xenbeacon/balloon/target_kb 98304 10 || fail "balloon target did not follow xl mem-set"
wait_for data/xenbeacon/balloon/current_kb 98304 20 || fail "balloon current did not reach the target"
wait_for data/xenbeacon/balloon/state reached 10 || fail "balloon state not reached after mem-set"
wait_change data/meminfo_total "$total" 10 || fail "meminfo_total did not follow the balloon"
ok "balloon followed xl mem-set: target/current 98304, meminfo_total $total -> $(value data/meminfo_total)"
# The watch stream is ordered: once dom0's own mark is in it, so is every write before it.
go total-mark
n=50; until grep -q -x "$H/e2e/total-mark" /tmp/w; do
  n=$((n - 1)); [ $n -gt 0 ] || fail "dom0's mark never reached its own watch"; sleep 0.2
done
kill $w
writes=$(grep -c -x "$H/data/meminfo_total" /tmp/w)
[ "$writes" = 1 ] || fail "data/meminfo_total written $writes times during one xl mem-set (xapi pays for each)"
ok "data/meminfo_total written once during the mem-set (balloon/current_kb: $(grep -c -x "$H/data/xenbeacon/balloon/current_kb" /tmp/w) writes)"

go go-log
await feature-balloon-lines
expect e2e/feature-balloon-lines 1
echo "dom0: the one log line: $(value e2e/feature-balloon-log)"

old=$DOMID
rm -f /tmp/agent.save
t0=$(cut -d' ' -f1 /proc/uptime)
xl save agent /tmp/agent.save >/dev/null 2>&1 || fail "xl save failed"
xl restore /tmp/agent.save >/dev/null 2>&1 || fail "xl restore failed"
DOMID=$(xl domid agent); H=/local/domain/$DOMID
[ "$DOMID" != "$old" ] || fail "restore kept domid $old"
ok "restored as domain $DOMID (was $old)"
wait_for data/xenbeacon/layout 2 30 || fail "nothing republished in the new home"
t1=$(cut -d' ' -f1 /proc/uptime)
for k in data/os_name data/os_uname data/meminfo_total data/updated attr/PVAddons/MajorVersion data/xenbeacon/balloon/state; do
  value $k >/dev/null || fail "$k missing after restore"
done
wait_for attr/vif/0/ipv4/0 10.0.0.2 20 || fail "vif address not republished after restore"
expect data/xenbeacon/balloon/target_kb 98304
expect data/xenbeacon/stage initramfs
echo "dom0: republished in the new home $(awk "BEGIN {print $t1 - $t0}") s after xl save started"
