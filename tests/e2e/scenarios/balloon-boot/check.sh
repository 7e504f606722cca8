# shellcheck shell=sh
await booted
xl mem-set agent 96 || fail "xl mem-set 96 failed"
go shrunk
await at96
ok "balloon at 96 MiB: $(value e2e/at96)"
xenstore-watch "$H" > /tmp/w 2>&1 &
w=$!
wait_line /tmp/w "^$H\$" 30 || fail "xenstore-watch $H never fired (its first event marks it set)"
# a target above the maximum xl mem-set left: Xen gives no more than that
xenstore-write "$H/memory/target" 131072
go raised
await balloon-at-start
set -- $(value e2e/balloon-at-start)
[ "$1" -lt "$2" ] || fail "the balloon was at its target when the agent started ($1 / $2 kB)"
ok "balloon at agent start: current $1 kB, target $2 kB"
wait_for data/updated "" 30 || fail "data/updated never appeared"
# the watch stream is ordered: once dom0's own mark is in it, so is every write before it
go updated-mark
wait_line /tmp/w "^$H/e2e/updated-mark\$" 30 || fail "dom0's mark never reached its own watch"
kill $w
# line numbers of the first event of each kind, in the order xenstored committed them
first() { grep -n -m1 -x "$H/$1" /tmp/w | cut -d: -f1; }
first_attr=$(grep -n -m1 "^$H/attr/" /tmp/w | cut -d: -f1)
state=$(first data/xenbeacon/balloon/state); updated=$(first data/updated)
echo "dom0: first events: balloon/state line $state, attr/ line $first_attr, data/updated line $updated"
[ -n "$state" ] && [ -n "$first_attr" ] && [ -n "$updated" ] || fail "missing events in the watch stream"
[ "$state" -lt "$first_attr" ] && [ "$first_attr" -lt "$updated" ] ||
  fail "data/updated came in the agent's first round, before memory settled"
ok "data/updated appeared only after the balloon held still (a later round than the first)"
expect data/xenbeacon/balloon/target_kb 131072
cur=$(value data/xenbeacon/balloon/current_kb)
[ "$cur" -lt 131072 ] || fail "balloon current_kb $cur: Xen was to hold it below the target"
ok "when data/updated appeared: current $cur kB, state $(value data/xenbeacon/balloon/state)"
# let Xen give the memory: the balloon moves again and reaches its target
xl mem-set agent 128 || fail "xl mem-set 128 failed"
wait_for data/xenbeacon/balloon/state reached 60 || fail "the balloon never reached 128 MiB"
expect data/xenbeacon/balloon/current_kb 131072
go done
await finished 30
