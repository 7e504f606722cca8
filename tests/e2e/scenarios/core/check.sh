# shellcheck shell=sh
# --- 1. after --once in the initramfs (no os-release)
await stage1
U=$(value e2e/uname)
expect e2e/once-rc 0
expect data/os_name "Linux $U"
expect data/os_distro linux
expect data/os_uname "$U"
expect_absent data/os_majorver
expect_absent data/os_minorver          # stale (planted by pre.sh), removed
expect_absent attr/PVAddons/Stale       # stale in an owned subtree, removed
expect data/agent-foreign keep          # not ours: untouched
expect_uint data/meminfo_total
expect_uint data/meminfo_free
[ "$(value data/meminfo_free)" -le "$(value data/meminfo_total)" ] || fail "meminfo_free > meminfo_total"
expect_uint data/updated
for k in MajorVersion MinorVersion MicroVersion BuildVersion; do expect_uint "attr/PVAddons/$k"; done
expect attr/PVAddons/Installed 1
[ "$(value attr/PVAddons/MajorVersion).$(value attr/PVAddons/MinorVersion).$(value attr/PVAddons/MicroVersion)" = "$XB_VERSION" ] ||
  fail "PVAddons version is not $XB_VERSION"
# What Xen Orchestra shows as the tools version (docs/consumers.md): only when the major is
# above 0, as major.minor.micro-build
xo=$(xo_tools_version) || fail "Xen Orchestra would hide the tools version (MajorVersion $(value attr/PVAddons/MajorVersion))"
[ "$xo" = "$XB_VERSION-$(value attr/PVAddons/BuildVersion)" ] || fail "Xen Orchestra would show '$xo'"
ok "Xen Orchestra shows management agent $xo"

# --- 2. the daemon with os-release; memory follows the balloon
go go2
await stage2
wait_for data/os_name "Xenbeacon Test OS 12.4 (e2e)" 30 || fail "os_name never came from os-release"
expect data/os_distro xbtest
expect data/os_majorver 12
expect data/os_minorver 4
expect data/os_uname "$U"
total=$(value data/meminfo_total)
xl mem-set agent 96 || fail "xl mem-set failed"
wait_change data/meminfo_total "$total" 30 || fail "meminfo_total stayed $total after xl mem-set"
new=$(value data/meminfo_total)
[ "$new" -lt "$total" ] || fail "meminfo_total rose from $total to $new after shrinking the balloon"
ok "meminfo_total followed the balloon: $total -> $new"
# xapi's netbios_name: data/host_name_dns + "." + data/domain
expect data/host_name_dns web1
expect data/domain e2e.example
[ "$(xapi_netbios_name)" = web1.e2e.example ] || fail "xapi would show netbios_name '$(xapi_netbios_name)'"
ok "xapi netbios_name = web1.e2e.example"

# --- 2b. a host name change is published without a signal
go go2b
await stage2b
wait_for data/host_name_dns db2 10 || fail "the new host name was not published"
wait_until_absent data/domain 10 || fail "data/domain stayed after the host name lost its domain"
ok "host name change followed: db2"

# --- 3. SIGHUP: re-read os-release, republish a key removed behind the agent's back
xenstore-rm "$H/data/os_distro"
go go3
wait_for data/os_name "Xenbeacon Test OS, after SIGHUP" 30 || fail "SIGHUP did not republish os_name"
wait_for data/os_distro xbtest 10 || fail "SIGHUP did not restore the removed data/os_distro"
ok "SIGHUP re-read os-release and restored data/os_distro"

# --- 3b. the balloon settles (the domU waits for its current size to reach the target) and the
# agent has published the total it settled at: step 5 may then expect the total not to move
go go3b
await memtotal
read -r cur tgt <<EOF
$(value e2e/balloon)
EOF
[ "$cur" = "$tgt" ] || fail "the balloon never reached its target: current $cur KiB, target $tgt KiB"
wait_for data/meminfo_total "$(value e2e/memtotal)" 30 ||
  fail "meminfo_total never reached the settled MemTotal $(value e2e/memtotal)"
ok "balloon settled at $cur KiB; meminfo_total = MemTotal = $(value e2e/memtotal)"

# --- 4. SIGTERM
go go4
await term-rc
expect e2e/term-rc 0

# --- 5. restart of an unchanged guest. What a restart may write: free memory moves on its own,
# so data/meminfo_free, if it moved by at least the threshold (1024 KiB) from the published
# value, and then data/updated with it. Nothing else under data/ or attr/: no write, no removal.
# One watch on the whole home; a key dom0 writes after the domU reported the restart's publish
# orders the events: once its event is in, every event of the restart is.
xenstore-watch "$H" > /tmp/w 2>&1 &
wh=$!
wait_line /tmp/w "^$H\$" 30 || fail "xenstore-watch $H never fired (its first event marks it set)"
before=$(xenstore-ls -f "$H/data"; xenstore-ls -f "$H/attr")
go go5
await stage5
go sentinel5
wait_line /tmp/w "^$H/e2e/sentinel5\$" 30 || fail "the sentinel's watch event never came"
kill $wh
after=$(xenstore-ls -f "$H/data"; xenstore-ls -f "$H/attr")
grep -E "^$H/(data|attr)(/|\$)" /tmp/w | sed 's/^/dom0:   restart event: /'
others=$(grep -E "^$H/(data|attr)(/|\$)" /tmp/w | grep -vxE "$H/data/(meminfo_free|updated)" || true)
[ -z "$others" ] || fail "the restart changed XenStore beyond free memory: $(echo "$others" | tr '\n' ' ')"
if grep -qx "$H/data/meminfo_free" /tmp/w; then
  old=$(echo "$before" | sed -n "s|^$H/data/meminfo_free = \"\(.*\)\"\$|\1|p")
  new=$(value data/meminfo_free)
  d=$((new - old)); [ $d -lt 0 ] && d=$((-d))
  [ $d -ge 1024 ] || fail "the restart rewrote meminfo_free $old -> $new, a change below the 1024 KiB threshold"
  grep -qx "$H/data/updated" /tmp/w || fail "meminfo_free was rewritten without data/updated"
  ok "the restart wrote only free memory, which moved by $d KiB (>= 1024), and data/updated"
else
  grep -qx "$H/data/updated" /tmp/w && fail "the restart wrote data/updated with nothing else"
  ok "the restart wrote nothing"
fi
# everything but those two keys is as it was
strip() { grep -vE "^$H/data/(meminfo_free|updated) = "; }
[ "$(echo "$before" | strip)" = "$(echo "$after" | strip)" ] || fail "XenStore differs after the restart"
ok "restart of the unchanged guest: data/ and attr/ as they were (free memory aside)"
go go6
