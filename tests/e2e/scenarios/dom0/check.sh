# shellcheck shell=sh
up() { cut -d' ' -f1 /proc/uptime; }
# squeeze runs of spaces to two, so table rows compare independently of column widths
cols() { sed 's/   */  /g'; }
show_out() { sed "s/^/dom0: | /"; }
# wait_file FILE SECS: until FILE exists
wait_file() { _n=$(($2 * 10)); while [ ! -e "$1" ]; do _n=$((_n - 1)); [ $_n -gt 0 ] || return 1; sleep 0.1; done; }

cd /tmp && zcat /boot/domU.cpio.gz | cpio -id bin/agent 2>/dev/null
XB=/tmp/bin/agent
[ -x $XB ] || fail "no bin/agent in /boot/domU.cpio.gz"
ok "agent extracted from the domU initramfs: $($XB --version)"
await ready

# --- 1. before the guest runs an agent
echo "dom0: \$ xenbeacon list   (before the guest's agent starts)"
out=$($XB list) || fail "list failed: $out"
echo "$out" | show_out
echo "$out" | cols | grep -q "^0  Domain-0  none  " || fail "Domain-0 is not listed as 'none'"
echo "$out" | cols | grep -q "^$DOMID  agent  none  " || fail "the guest without an agent is not 'none'"
echo "$out" | cols | grep -q "^$DOMID  agent  vif 0  -  00:16:3e:00:00:00  -  (not reported by the guest)$" ||
  fail "the vif configured by xl is not listed"
ok "list before the agent: Domain-0 and agent listed as 'none', vif 0 from the toolstack"

# --- 2. wait --ip blocks until the agent publishes the address
rm -f /tmp/wait.*
( $XB wait agent --ip --timeout 20 > /tmp/wait.out 2> /tmp/wait.err; echo $? > /tmp/wait.rc; up > /tmp/wait.t ) &
( xenstore-watch -n 2 "$H/attr/vif/0/ipv4/0" > /dev/null 2>&1; up > /tmp/key.t ) &
sleep 2
[ -e /tmp/wait.rc ] && fail "wait returned before the agent started: $(cat /tmp/wait.out /tmp/wait.err)"
ok "wait agent --ip is blocked (no address published yet)"
go go-agent
wait_file /tmp/wait.t 30 || fail "wait --ip never returned"
wait_file /tmp/key.t 5 || fail "xenstore-watch never saw attr/vif/0/ipv4/0"
echo "dom0: \$ xenbeacon wait agent --ip --timeout 20"
show_out < /tmp/wait.out
[ "$(cat /tmp/wait.rc)" = 0 ] || fail "wait --ip exited $(cat /tmp/wait.rc): $(cat /tmp/wait.err)"
[ "$(cat /tmp/wait.out)" = 10.0.0.2 ] || fail "wait --ip printed '$(cat /tmp/wait.out)'"
tk=$(cat /tmp/key.t); tw=$(cat /tmp/wait.t)
lat=$(awk "BEGIN { printf \"%.2f\", $tw - $tk }")
echo "dom0: key appeared at uptime $tk, wait returned at $tw: ${lat} s"
# A measurement, not a limit: under TCG on shared cores a wake-up can take seconds. That wait
# blocks on a watch rather than polling is tests/dom0.rs's (no request while nothing changes).
ok "wait --ip printed 10.0.0.2, ${lat} s after attr/vif/0/ipv4/0 appeared"

# --- 3. list and show, checked against what the guest wrote
wait_for data/xenbeacon/layout "" 10 || fail "no data/xenbeacon/layout"
layout=$(value data/xenbeacon/layout); os=$(value data/os_name); kernel=$(value data/os_uname)
stage=$(value data/xenbeacon/stage)
echo "dom0: \$ xenbeacon list"
out=$($XB list) || fail "list failed"
echo "$out" | show_out
row=$(echo "$out" | cols | grep "^$DOMID  agent  ") || fail "no row for the guest"
case "$row" in
  "$DOMID  agent  xenbeacon layout $layout  $os  $kernel  $stage  no  "*) ;;
  *) fail "guest row is '$row'" ;;
esac
echo "$out" | cols | grep -q "^0  Domain-0  none  " || fail "Domain-0 is not 'none'"
echo "$out" | cols | grep -q "^$DOMID  agent  vif 0  eth0  00:16:3e:00:00:00  -  10.0.0.2/24$" ||
  fail "vif 0 row missing or wrong"
ok "list: agent = xenbeacon layout $layout, os, kernel, stage $stage, not booted yet, vif 0 eth0 10.0.0.2/24"

echo "dom0: \$ xenbeacon show agent --json"
json=$($XB show agent --json) || fail "show --json failed"
echo "$json" | show_out
for want in "\"domid\":$DOMID,\"name\":\"agent\"" \
    "\"agent\":{\"kind\":\"xenbeacon\",\"layout\":\"$layout\"" \
    "\"kernel\":\"$kernel\"" "\"stage\":\"$stage\"" "\"booted\":false" \
    "\"kind\":\"vif\",\"id\":\"0\",\"path\":\"attr/vif/0\",\"reported\":true,\"name\":\"eth0\",\"mac\":\"00:16:3e:00:00:00\"" \
    "\"ipv4\":[{\"index\":0,\"address\":\"10.0.0.2\",\"prefix\":24}]"; do
  case "$json" in *"$want"*) ;; *) fail "show --json lacks $want" ;; esac
done
ok "show --json: identity, stage, vif 0 with 10.0.0.2/24"

echo "dom0: \$ xenbeacon show $DOMID"
out=$($XB show "$DOMID"); echo "$out" | show_out
# under xl the guest's control/feature-balloon is refused: squeezed could not balloon it
echo "$out" | grep -q -x "  may balloon  no (no control/feature-balloon)" || fail "show: 'may balloon' is not 'no'"
case "$json" in *'"feature_balloon":false}'*) ;; *) fail "show --json: feature_balloon is not false" ;; esac
# as under XAPI, where control/ is guest-writable and the agent wrote it
xenstore-write "$H/control/feature-balloon" 1
$XB show "$DOMID" | grep -q -x "  may balloon  yes (control/feature-balloon)" || fail "show: 'may balloon' is not 'yes'"
$XB show "$DOMID" --json | grep -q '"feature_balloon":true}' || fail "show --json: feature_balloon is not true"
xenstore-rm "$H/control/feature-balloon"
ok "show: may balloon = no under xl, yes once control/feature-balloon exists"

# --- 3b. the same guest for Prometheus: list --format prometheus, and the export's textfile
total=$(value data/meminfo_total)
[ -n "$total" ] || fail "no data/meminfo_total"
echo "dom0: \$ xenbeacon list --format prometheus"
out=$($XB list --format prometheus) || fail "list --format prometheus failed"
echo "$out" | show_out
for want in \
    "xenbeacon_guest_info{domid=\"$DOMID\",name=\"agent\",uuid=\"*\",agent=\"xenbeacon\",*,kernel=\"$kernel\",stage=\"$stage\"} 1" \
    "xenbeacon_guest_memory_total_bytes{domid=\"$DOMID\",name=\"agent\"} $((total * 1024))" \
    "xenbeacon_nic_address_info{domid=\"$DOMID\",name=\"agent\",nic=\"eth0\",mac=\"00:16:3e:00:00:00\",family=\"ipv4\",address=\"10.0.0.2\",prefix=\"24\"} 1" \
    "xenbeacon_guest_info{domid=\"0\",name=\"Domain-0\",uuid=\"*\",agent=\"none\",*} 1"; do
  found=0
  while IFS= read -r line; do
    # shellcheck disable=SC2254 # $want is a pattern on purpose
    case "$line" in $want) found=1; break ;; esac
  done <<EOF_P
$out
EOF_P
  [ $found = 1 ] || fail "list --format prometheus lacks a line like: $want"
done
ok "list --format prometheus: guest_info, memory_total_bytes $((total * 1024)), 10.0.0.2/24 on eth0, Domain-0 agent none"
# The export follows the guest from here; section 7 renames it.
mkdir -p /tmp/tf
$XB export --textfile-dir /tmp/tf --timeout 5 --min-interval 0.1 2> /tmp/export.err &
EXPORT_PID=$!
wait_file /tmp/tf/xenbeacon.prom 10 || fail "export wrote no /tmp/tf/xenbeacon.prom: $(cat /tmp/export.err)"
grep -q "^xenbeacon_nic_address_info{domid=\"$DOMID\",name=\"agent\",nic=\"eth0\",.*address=\"10.0.0.2\"" /tmp/tf/xenbeacon.prom ||
  fail "the export's file lacks 10.0.0.2: $(cat /tmp/tf/xenbeacon.prom)"
ok "export: /tmp/tf/xenbeacon.prom has the guest's 10.0.0.2"

# --- 4. wait --booted returns on `xenbeacon booted` in the guest
rm -f /tmp/wb.*
( $XB wait agent --booted --timeout 20 > /tmp/wb.out 2> /tmp/wb.err; echo $? > /tmp/wb.rc ) &
sleep 1
[ -e /tmp/wb.rc ] && fail "wait --booted returned before the guest said so: $(cat /tmp/wb.out /tmp/wb.err)"
go go-booted
wait_file /tmp/wb.rc 30 || fail "wait --booted never returned"
[ "$(cat /tmp/wb.rc)" = 0 ] && [ "$(cat /tmp/wb.out)" = booted ] ||
  fail "wait --booted: status $(cat /tmp/wb.rc), '$(cat /tmp/wb.out)' $(cat /tmp/wb.err)"
await booted-rc
expect e2e/booted-rc 0
ok "wait --booted returned after 'xenbeacon booted' in the guest"
echo "dom0: \$ xenbeacon list   (after 'xenbeacon booted' in the guest)"
out=$($XB list); echo "$out" | show_out
echo "$out" | cols | grep -q "^$DOMID  agent  xenbeacon layout $layout  .*  $stage  yes  " || fail "list does not say booted"
ok "list: booted = yes"

# --- 4b. the guests as an Ansible inventory: list --format ansible, and the packaged inventory
# script (from the domU's initramfs, like the agent) run by dom0's busybox sh. The inventory is
# printed on one XB-ANSIBLE-INVENTORY line for host.sh, which gives it to the real
# ansible-inventory on the host (dom0 has no Python).
cd /tmp && zcat /boot/domU.cpio.gz | cpio -id root/xenbeacon-ansible-inventory 2>/dev/null
INV=/tmp/root/xenbeacon-ansible-inventory
[ -x $INV ] || fail "no root/xenbeacon-ansible-inventory in the domU initramfs"
total=$(value data/meminfo_total) || fail "no data/meminfo_total"
echo "dom0: \$ xenbeacon list --format ansible --timeout 10"
inv=$($XB list --format ansible --timeout 10) || fail "list --format ansible failed"
echo "$inv" | show_out
for want in "{\"_meta\":{\"hostvars\":{\"agent\":{\"ansible_host\":\"10.0.0.2\",\"xenbeacon_domid\":$DOMID," \
    "\"xenbeacon_agent\":\"xenbeacon\"" "\"xenbeacon_os_name\":{\"__ansible_unsafe\":\"$os\"}" \
    "\"xenbeacon_kernel\":{\"__ansible_unsafe\":\"$kernel\"}" "\"xenbeacon_booted\":true" \
    "\"xenbeacon_memory_total_kb\":$total," "\"xenbeacon_ipv4\":[\"10.0.0.2\"]" \
    "\"xenbeacon_booted\":{\"hosts\":[\"agent\"]}" "\"xenbeacon_agent_xenbeacon\":{\"hosts\":[\"agent\"]}" \
    "\"xenbeacon_stage_$stage\":{\"hosts\":[\"agent\"]}"; do
  case "$inv" in *"$want"*) ;; *) fail "list --format ansible lacks $want" ;; esac
done
case "$inv" in *Domain-0*) fail "list --format ansible lists Domain-0" ;; esac
ok "list --format ansible: host agent, ansible_host 10.0.0.2, memory_total_kb $total, booted, groups"
out=$(XENBEACON=$XB $INV --list) || fail "xenbeacon-ansible-inventory --list failed"
case "$out" in "{\"_meta\":{\"hostvars\":{\"agent\":{\"ansible_host\":\"10.0.0.2\","*) ;;
  *) fail "xenbeacon-ansible-inventory --list printed '$out'" ;; esac
out=$(XENBEACON=$XB $INV --host agent) || fail "xenbeacon-ansible-inventory --host agent failed"
case "$out" in "{\"ansible_host\":\"10.0.0.2\",\"xenbeacon_domid\":$DOMID,"*) ;;
  *) fail "xenbeacon-ansible-inventory --host agent printed '$out'" ;; esac
[ "$(XENBEACON=$XB $INV --host Domain-0)" = "{}" ] || fail "--host Domain-0 is not {}"
ok "xenbeacon-ansible-inventory in dom0: --list, --host agent (ansible_host 10.0.0.2), --host Domain-0 = {}"
echo "XB-ANSIBLE-INVENTORY: $inv"

# --- 5. from inside the domU (its xenbus device): another domain is "no access", not empty
go go-domu-read
await domu-show0
expect e2e/domu-list-rc 0
expect e2e/domu-show0-rc 3
case "$(value e2e/domu-show0)" in
  *"no access"*) ;;
  *) fail "show 0 in the domU did not say 'no access': $(value e2e/domu-show0)" ;;
esac
ok "in the domU: list works (status 0), show 0 says no access (status 3)"

# --- 6. a wait that is never satisfied times out with status 1
t0=$(up)
$XB wait agent --nic 02:00:00:00:00:99 --timeout 2 > /tmp/wt.out 2> /tmp/wt.err; rc=$?
t1=$(up)
echo "dom0: \$ xenbeacon wait agent --nic 02:00:00:00:00:99 --timeout 2   -> status $rc"
show_out < /tmp/wt.err
[ $rc = 1 ] || fail "timeout: status $rc, expected 1"
# not before the 2 s; the upper bound only catches a wait that ignores its timeout (a loaded
# TCG guest can take seconds to start a process)
awk "BEGIN { exit !($t1 - $t0 >= 2.0 && $t1 - $t0 < 20.0) }" || fail "timeout took $t0 -> $t1"
ok "wait for a NIC that never comes: status 1 after $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s"
$XB wait nosuch --timeout 0.5 2>/dev/null; [ $? = 1 ] || fail "wait for a missing name did not time out"
ok "wait for a name no domain has: status 1"
# --- 7. by name, for a name no domain has yet: xl rename gives it to the guest
rm -f /tmp/wr.*
( $XB wait web1 --timeout 20 > /tmp/wr.out 2> /tmp/wr.err; echo $? > /tmp/wr.rc; up > /tmp/wr.t ) &
sleep 1
[ -e /tmp/wr.rc ] && fail "wait web1 returned before any domain had that name: $(cat /tmp/wr.err)"
t0=$(up)
xl rename agent web1 || fail "xl rename failed"
wait_file /tmp/wr.t 10 || fail "wait web1 never returned after xl rename"
echo "dom0: \$ xenbeacon wait web1   (started before 'xl rename agent web1')"
show_out < /tmp/wr.out
[ "$(cat /tmp/wr.rc)" = 0 ] && [ "$(cat /tmp/wr.out)" = "xenbeacon layout $layout" ] ||
  fail "wait web1: status $(cat /tmp/wr.rc), '$(cat /tmp/wr.out)' $(cat /tmp/wr.err)"
ok "wait by a name no domain had: returned $(awk "BEGIN { printf \"%.2f\", $(cat /tmp/wr.t) - $t0 }") s after xl rename started"
# the export followed the rename (a watch on the guest's home), then removes its file on SIGTERM
renamed() { grep -q "^xenbeacon_guest_booted{domid=\"$DOMID\",name=\"web1\"} 1$" /tmp/tf/xenbeacon.prom; }
n=50; until renamed; do n=$((n - 1)); [ $n -gt 0 ] || fail "the export did not follow xl rename: $(grep "domid=\"$DOMID\"" /tmp/tf/xenbeacon.prom | head -3)"; sleep 0.1; done
kill "$EXPORT_PID"; wait "$EXPORT_PID"; rc=$?
[ $rc = 0 ] || fail "export exited $rc on SIGTERM: $(cat /tmp/export.err)"
[ ! -e /tmp/tf/xenbeacon.prom ] || fail "export left its file behind"
ok "export: followed xl rename (name=web1, booted 1), exit 0 on SIGTERM, file removed"
xl rename web1 agent || fail "xl rename back failed"
go go-done
sleep 1   # let the domU print the agent's log before dom0 prints the domU console
