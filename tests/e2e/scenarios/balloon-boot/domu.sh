# shellcheck shell=sh
. /root/domu.sh
I=/sys/devices/system/xen_memory/xen_memory0
# until_balloon TEST: wait (up to 30 s) until the balloon's numbers pass TEST ($c, $t in kB)
until_balloon() {
  _n=300
  while :; do
    c=$(cat $I/info/current_kb); t=$(cat $I/target_kb)
    eval "$1" && return 0
    _n=$((_n - 1)); [ $_n -gt 0 ] || return 1
    sleep 0.1
  done
}
report booted "$(cat $I/info/current_kb)"
await shrunk
until_balloon '[ "$c" = 98304 ] && [ "$t" = 98304 ]'
report at96 "$c $t"
await raised
# Xen holds the balloon below the new target: start while memory has not settled
until_balloon '[ "$t" = 131072 ]'
report balloon-at-start "$c $t"
/bin/agent --log-level debug > /tmp/agent.log 2>&1 &
pid=$!
await done
kill -TERM $pid; wait $pid
sed 's/^/domU: agent: /' /tmp/agent.log
report finished 1
