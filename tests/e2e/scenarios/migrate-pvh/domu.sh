# shellcheck shell=sh
. /root/domu.sh
/bin/agent > /tmp/agent.log 2>&1 &
report started 1
sleep 60
sed 's/^/domU: agent: /' /tmp/agent.log
