#!/bin/bash
# dracut module: xenbeacon in the initramfs, publishing once before the switch to the real root.
# Install the directory as /usr/lib/dracut/modules.d/95xenbeacon/, then
# `dracut --force --add xenbeacon` (or add_dracutmodules+=" xenbeacon " in dracut.conf.d).

check() {
    require_binaries /usr/bin/xenbeacon || return 1
    # only useful in Xen guests, but harmless elsewhere: include when asked for
    return 255
}

depends() {
    return 0
}

# moddir is set by dracut when it sources this file.
# shellcheck disable=SC2154
install() {
    inst_simple /usr/bin/xenbeacon
    # pre-pivot: the root is mounted and the network (if any) is up; runs just before switch_root
    inst_hook pre-pivot 50 "$moddir/xenbeacon-initramfs.sh"
}
