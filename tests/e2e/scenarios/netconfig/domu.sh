# shellcheck shell=sh
. /root/domu.sh
# iproute2's ip (it prints a route's protocol), not busybox's applet earlier in PATH
IP=/usr/sbin/ip; [ -x $IP ] || IP=ip
$IP addr flush dev eth0
$IP -br addr
/bin/agent --apply-ip-settings --log-level debug > /tmp/agent.log 2>&1 &
report started 1
# ping dom0's bridge whenever dom0 asks, and tell what the default route is
n=1
while await "ping$n" 600; do
  report "route$n" "$($IP route show default | head -1)"
  report "route6-$n" "$($IP -6 route show default | head -1)"
  if [ "$(xenstore-read "e2e/ping$n")" = v6 ]; then target=2001:db8:e2e::1; else target=10.0.0.1; fi
  # IPv6: duplicate address detection may hold the new address for a second or two
  if ping -c 1 -W 3 $target >/dev/null 2>&1 || { sleep 2; ping -c 1 -W 3 $target >/dev/null 2>&1; }; then
    report "pong$n" ok
  else
    report "pong$n" fail
  fi
  [ "$(xenstore-read e2e/ping$n)" = last ] && break
  n=$((n + 1))
done
sed 's/^/domU: agent: /' /tmp/agent.log | grep -v DEBUG
report done 1
