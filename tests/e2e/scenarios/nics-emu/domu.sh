# shellcheck shell=sh
. /root/domu.sh
[ -d /sys/module/xen_netfront ] && say "xen_netfront is loaded: not the scenario"
/bin/agent --once --log-level debug 2>&1 | sed 's/^/domU: agent: /'
report done 1
