################################################################################
#
# xenbeacon
#
################################################################################

XENBEACON_VERSION = 0.1.0
XENBEACON_SITE = $(call github,xenbeacon,xenbeacon,v$(XENBEACON_VERSION))
XENBEACON_LICENSE = MIT or Apache-2.0
XENBEACON_LICENSE_FILES = LICENSE-MIT LICENSE-APACHE

# Buildroot's cargo infrastructure sets CARGO_PROFILE_RELEASE_OPT_LEVEL,
# _LTO and _CODEGEN_UNITS from BR2_OPTIMIZE_* and BR2_ENABLE_LTO, which
# overrides [profile.release] of Cargo.toml. Restore the project's size
# profile (opt-level z, LTO, one codegen unit): this package variable
# comes after PKG_CARGO_ENV on the command line, so it wins. panic=abort
# and strip=true are not overridden by Buildroot and apply as they are.
XENBEACON_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
	CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

# The dom0 commands are the crate's default feature "dom0". The cargo
# infrastructure builds with _CARGO_BUILD_OPTS but installs into the
# target with `cargo install`, which builds again with _CARGO_INSTALL_OPTS:
# both need the flag, or the image gets the default features.
ifneq ($(BR2_PACKAGE_XENBEACON_DOM0_COMMANDS),y)
XENBEACON_CARGO_BUILD_OPTS = --no-default-features
XENBEACON_CARGO_INSTALL_OPTS = --no-default-features
endif

# Xen guest support the agent relies on: /dev/xen/xenbus, /sys/hypervisor,
# the balloon driver and the PV console/disk/network frontends.
define XENBEACON_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_HYPERVISOR_GUEST)
	$(call KCONFIG_ENABLE_OPT,CONFIG_PARAVIRT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_XEN)
	$(call KCONFIG_ENABLE_OPT,CONFIG_XEN_SYS_HYPERVISOR)
	$(call KCONFIG_ENABLE_OPT,CONFIG_XEN_BALLOON)
	$(call KCONFIG_ENABLE_OPT,CONFIG_HVC_XEN)
	$(call KCONFIG_ENABLE_OPT,CONFIG_XEN_BLKDEV_FRONTEND)
	$(call KCONFIG_ENABLE_OPT,CONFIG_XEN_NETDEV_FRONTEND)
	$(call KCONFIG_ENABLE_OPT,CONFIG_DEVTMPFS)
endef

define XENBEACON_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(XENBEACON_PKGDIR)/S99xenbeacon \
		$(TARGET_DIR)/etc/init.d/S99xenbeacon
endef

define XENBEACON_INSTALL_INIT_OPENRC
	$(INSTALL) -D -m 0755 $(XENBEACON_PKGDIR)/xenbeacon.initd \
		$(TARGET_DIR)/etc/init.d/xenbeacon
	$(INSTALL) -D -m 0644 $(XENBEACON_PKGDIR)/xenbeacon.confd \
		$(TARGET_DIR)/etc/conf.d/xenbeacon
endef

define XENBEACON_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(XENBEACON_PKGDIR)/xenbeacon.service \
		$(TARGET_DIR)/usr/lib/systemd/system/xenbeacon.service
	$(INSTALL) -D -m 0644 $(XENBEACON_PKGDIR)/xenbeacon-booted.service \
		$(TARGET_DIR)/usr/lib/systemd/system/xenbeacon-booted.service
endef

$(eval $(cargo-package))
