# shellcheck shell=sh
. /root/domu.sh
# The agent starts only once dom0's `xenbeacon wait` is already blocked on its watch.
report ready 1
await go-agent
/bin/agent --log-level debug > /tmp/agent.log 2>&1 &
report agent-started 1

await go-booted
/bin/agent booted; report booted-rc $?

# The dom0 commands from inside a domU: its own keys are readable, dom0's are "no access".
await go-domu-read
/bin/agent list > /tmp/list.out 2> /tmp/list.err; report domu-list-rc $?
/bin/agent show 0 > /tmp/show0.out 2> /tmp/show0.err; report domu-show0-rc $?
for f in list.out list.err show0.out show0.err; do sed "s/^/domU: $f | /" /tmp/$f; done
report domu-list "$(grep -c "no access" /tmp/list.out /tmp/list.err | tr '\n' ' ')"
report domu-show0 "$(cat /tmp/show0.out /tmp/show0.err | tr '\n' ' ')"

await go-done
sed 's/^/domU: agent: /' /tmp/agent.log | grep -v DEBUG
say "scenario done"
