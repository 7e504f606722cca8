# shellcheck shell=sh
. /root/domu.sh
/bin/agent --once --log-level debug 2>&1 | sed 's/^/domU: agent: /'
report done 1
