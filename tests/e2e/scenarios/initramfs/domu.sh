# shellcheck shell=sh
. /root/domu.sh
/bin/agent --once > /tmp/once.log 2>&1
sed 's/^/domU: initramfs agent: /' /tmp/once.log
report stage1 done
await go-switch
mkdir -p /newroot && mount -t tmpfs -o size=64m tmpfs /newroot
for d in bin sbin usr lib lib64 etc root; do [ -e /$d ] && cp -a /$d /newroot/; done
mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp
cp /root/os-release /newroot/etc/os-release
cat > /newroot/stage2.sh <<'S2'
. /root/domu.sh
mount -t proc proc /proc 2>/dev/null; mount -t sysfs sys /sys 2>/dev/null; mount -t devtmpfs dev /dev 2>/dev/null
/bin/agent > /tmp/agent.log 2>&1 &
wait_log /tmp/agent.log 'published:' 30
report stage2 started
await go-booted
/bin/agent booted
report booted-rc $?
sleep 30
sed 's/^/domU: rootfs agent: /' /tmp/agent.log
S2
mount --move /proc /newroot/proc 2>/dev/null; mount --move /sys /newroot/sys 2>/dev/null; mount --move /dev /newroot/dev 2>/dev/null
exec switch_root /newroot /bin/sh /stage2.sh
