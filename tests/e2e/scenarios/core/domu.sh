# shellcheck shell=sh
. /root/domu.sh
report uname "$(uname -r)"

# 1. initramfs: no os-release, publish once
/bin/agent --once --log-level debug > /tmp/once.log 2>&1; rc=$?
sed 's/^/domU: once: /' /tmp/once.log
report once-rc "$rc"
report stage1 done

# 2. root filesystem with os-release: the daemon
await go2
cp /root/os-release /etc/os-release
hostname web1.e2e.example
/bin/agent --memory-interval 1 --log-level debug > /tmp/daemon.log 2>&1 &
pid=$!
report stage2 started

# 2b. a new host name is followed without a signal (POLLPRI on /proc/sys/kernel/hostname)
await go2b
hostname db2
report stage2b renamed

# 3. SIGHUP re-reads os-release and republishes what dom0 removed
await go3
sed -i 's/^PRETTY_NAME=.*/PRETTY_NAME="Xenbeacon Test OS, after SIGHUP"/' /etc/os-release
kill -HUP $pid
report stage3 hup-sent

# 3b. the balloon of step 2 has reached its target: from here on the total stays put
await go3b
i=0; B=/sys/devices/system/xen_memory/xen_memory0
while [ "$(cat $B/info/current_kb)" != "$(cat $B/target_kb)" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
say "balloon: current $(cat $B/info/current_kb) KiB, target $(cat $B/target_kb) KiB"
report balloon "$(cat $B/info/current_kb) $(cat $B/target_kb)"
report memtotal "$(awk '$1 == "MemTotal:" {print $2}' /proc/meminfo)"

# 4. SIGTERM: exit status 0
await go4
kill -TERM $pid; wait $pid; rc=$?
sed 's/^/domU: daemon: /' /tmp/daemon.log
report term-rc "$rc"

# 5. restart of an unchanged guest writes nothing
await go5
/bin/agent --log-level debug > /tmp/restart.log 2>&1 &
pid=$!
wait_log /tmp/restart.log 'published:' 30
sed 's/^/domU: restart: /' /tmp/restart.log
report stage5 done
await go6
kill -TERM $pid; wait $pid
say "scenario done"
