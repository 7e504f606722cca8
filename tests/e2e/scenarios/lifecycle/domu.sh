# shellcheck shell=sh
. /root/domu.sh
/bin/agent --memory-interval 2 > /tmp/agent.log 2>&1 &
report started 1
await go-log
report feature-balloon-lines "$(grep -c feature-balloon /tmp/agent.log)"
report feature-balloon-log "$(grep feature-balloon /tmp/agent.log | cut -c1-60)"
# keep running across save/restore; print the log at the end for the record
sleep 40
sed 's/^/domU: agent: /' /tmp/agent.log
