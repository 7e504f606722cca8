# shellcheck shell=sh
await started
wait_for attr/vif/0/ipv4/0 10.0.0.2 30 || fail "vif address missing"
expect data/xenbeacon/layout 2
old=$DOMID
xl migrate agent localhost >/dev/null 2>&1 || fail "xl migrate failed"
DOMID=$(xl domid agent); H=/local/domain/$DOMID
[ "$DOMID" != "$old" ] || fail "migration kept domid $old"
ok "migrated: domain $old -> $DOMID"
wait_for data/xenbeacon/layout 2 30 || fail "nothing republished after migration"
wait_for attr/vif/0/ipv4/0 10.0.0.2 20 || fail "vif address not republished after migration"
for k in data/os_name data/meminfo_total data/updated attr/PVAddons/MajorVersion; do
  value $k >/dev/null || fail "$k missing after migration"
done
ok "everything republished after xl migrate"
