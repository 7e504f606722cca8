#!/bin/sh
# For a plain BusyBox /init: publish from the initramfs, then hand over to the real root, whose
# init system starts xenbeacon again (as a daemon) and runs `xenbeacon booted` at the end.
# Copy the static binary to /usr/bin/xenbeacon in the initramfs and add these lines to /init.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev          # /dev/xen/xenbus
# ... load network drivers, configure the network for a network boot ...
/usr/bin/xenbeacon --once --log-level warn
# ... mount the real root on /newroot ...
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
