# nooelint: oelint.var.bbclassextend - a guest agent for Xen domUs has no native/nativesdk use
SUMMARY = "Tiny guest agent for Xen domUs"
DESCRIPTION = "xenbeacon publishes what only a Xen guest knows (OS, kernel, memory, \
               network addresses) to XenStore, for XAPI/XCP-ng/XenServer, Xen Orchestra \
               or plain xl. It speaks the xenbus protocol on /dev/xen/xenbus itself: \
               no libxenstore, no threads."
HOMEPAGE = "https://github.com/xenbeacon/xenbeacon"
BUGTRACKER = "https://github.com/xenbeacon/xenbeacon/issues"
SECTION = "admin"
CVE_PRODUCT = "xenbeacon"
LICENSE = "MIT OR Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE-MIT;md5=99198bf6d8cead846f089f4449dda1fb \
                    file://LICENSE-APACHE;md5=1836efb2eb779966696f473ee8540542"

SRC_URI = "git://github.com/xenbeacon/xenbeacon.git;protocol=https;branch=main"
SRCREV = "87d422eb74bc43319341dd55bdc4b13bd0e2005e"

require ${BPN}-crates.inc

inherit cargo cargo-update-recipe-crates systemd update-rc.d

# Cargo.toml's release profile (opt-level z, LTO, one codegen unit, panic abort) is used as
# it is; only stripping is left to OE, which strips and splits -dbg itself (a binary that
# is already stripped fails the already-stripped QA check).
export CARGO_PROFILE_RELEASE_STRIP = "false"

# The dom0 commands (list, show, wait) are the crate's default feature "dom0"; a domU image
# can leave them out (PACKAGECONFIG:remove:pn-xenbeacon = "dom0"), about 70 KiB smaller.
PACKAGECONFIG ??= "dom0"
PACKAGECONFIG[dom0] = ",--no-default-features"

# The unit and the init script ship in the source tree (one copy, shared with Buildroot).
SYSTEMD_SERVICE:${PN} = "xenbeacon.service xenbeacon-booted.service"
INITSCRIPT_NAME = "xenbeacon"
INITSCRIPT_PARAMS = "defaults 99"

do_install:append() {
    if ${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'true', 'false', d)}; then
        install -d ${D}${systemd_system_unitdir}
        install -m 0644 ${S}/buildroot/package/xenbeacon/xenbeacon.service ${D}${systemd_system_unitdir}/
        install -m 0644 ${S}/buildroot/package/xenbeacon/xenbeacon-booted.service ${D}${systemd_system_unitdir}/
    fi
    if ${@bb.utils.contains('DISTRO_FEATURES', 'sysvinit', 'true', 'false', d)}; then
        install -d ${D}${sysconfdir}/init.d
        install -m 0755 ${S}/buildroot/package/xenbeacon/S99xenbeacon ${D}${sysconfdir}/init.d/xenbeacon
    fi
}
