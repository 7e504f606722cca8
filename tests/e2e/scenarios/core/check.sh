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

# --- 4. SIGTERM
go go4
await term-rc
expect e2e/term-rc 0

# --- 5. restart of an unchanged guest: no XenStore event under data/ or attr/
xenstore-watch "$H/data" > /tmp/w-data 2>&1 &
wd=$!
xenstore-watch "$H/attr" > /tmp/w-attr 2>&1 &
wa=$!
sleep 2
before=$(xenstore-ls -f "$H/data"; xenstore-ls -f "$H/attr")
go go5
await stage5
sleep 2
kill $wd $wa
after=$(xenstore-ls -f "$H/data"; xenstore-ls -f "$H/attr")
echo "dom0: watch events during the restart: data=$(wc -l < /tmp/w-data) attr=$(wc -l < /tmp/w-attr)"
sed 's/^/dom0:   data event: /' /tmp/w-data; sed 's/^/dom0:   attr event: /' /tmp/w-attr
# each watch fires once when it is set; anything more is a write or removal by the restart
[ "$(wc -l < /tmp/w-data)" -eq 1 ] && [ "$(wc -l < /tmp/w-attr)" -eq 1 ] || fail "the restart changed XenStore"
[ "$before" = "$after" ] || fail "XenStore differs after the restart"
ok "restart of the unchanged guest wrote nothing"
go go6
