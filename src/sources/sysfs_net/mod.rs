//! What kind of NIC a network interface is, read from its sysfs topology.
//!
//! Interface names say nothing: udev, systemd and users rename them (`eth0` may be a USB dongle,
//! a PV vif may be called `lan0`, a bridge `eth0`). What the kernel cannot fake is where the
//! netdev's `device` link leads in `/sys/devices` and which bus that device sits on, so the
//! classifier looks only at that:
//!
//! * no `device` link: a software interface (bridge, bond, VLAN, veth, lo, tun, ...);
//! * a device on the `xen` bus with `devtype` = `vif` and `nodename` = `device/vif/<devid>`: a
//!   PV vif, whose devid is what the toolstack knows the NIC by;
//! * a device on the `pci` bus, or a `virtio` device whose parent is one: a PCI NIC (PCI
//!   passthrough, pcifront, SR-IOV VF, virtio-net-pci);
//! * a USB interface (`usb` bus): a USB NIC, with the ids of its USB device (the parent);
//! * a device on the `platform` bus, or a `virtio` device whose parent is one (virtio-mmio): a
//!   device-tree NIC, with its node and `compatible` from the `of_node` on the device or parent;
//! * anything else: [`NicClass::Other`], with the bus name.
//!
//! The bus is the name of the device's `subsystem` link; on trees without one it is inferred
//! from the device's `uevent` (`PCI_SLOT_NAME`, `DEVTYPE=usb_interface`, `XENBUS_TYPE`,
//! `MODALIAS`) and its path (`virtioN`, a PCI address, under `devices/platform/`).
//!
//! The interface name comes from netlink and the tree may be a hostile `--root` copy: the
//! rules here read it only through `confined.rs` (a `device` link leading outside
//! `root/sys/devices` is [`ClassifyError::OutsideSysfs`]; other links leading outside are
//! ignored).

mod confined;

use std::fs;
use std::io;
use std::path::Path;

use self::confined::{dir_name, printable, uevent_value};
pub use self::confined::{valid_ifname, Sysfs};
use crate::net::{NicClass, PciNic, PlatformNic, UsbNic};
use crate::sources::canonicalize;

crate::error_enum::error_enum! {
    /// An interface that could not be classified.
    #[derive(Debug)]
    pub enum ClassifyError {
        /// not a valid network interface name
        BadName,
        /// there is no /sys/class/net (sysfs not mounted)
        NoSysfs,
        /// the interface is not in /sys/class/net (it went away)
        Vanished,
        /// the interface's sysfs links lead outside /sys/devices
        OutsideSysfs,
        /// cannot read sysfs: {0}
        Io(io::Error),
    }
}

/// Classifies `ifname` by the topology under `root/sys` (see the module doc for the rules).
///
/// Errors: [`ClassifyError::BadName`] for a name the kernel would refuse,
/// [`ClassifyError::Vanished`] when `/sys/class/net/<ifname>` does not exist (or disappears
/// while being read), [`ClassifyError::OutsideSysfs`] when the class entry resolves outside
/// `root/sys` or its `device` link outside `root/sys/devices`, [`ClassifyError::Io`] for other
/// failures (a link loop, a dangling `device` link).
pub fn classify(root: &Path, ifname: &str) -> Result<NicClass, ClassifyError> {
    if !valid_ifname(ifname) {
        return Err(ClassifyError::BadName);
    }
    Sysfs::open(root)?.classify(ifname)
}

impl Sysfs {
    /// Classifies `ifname`, like [`classify`].
    pub fn classify(&mut self, ifname: &str) -> Result<NicClass, ClassifyError> {
        if !valid_ifname(ifname) {
            return Err(ClassifyError::BadName);
        }
        let entry = self.class_net.join(ifname);
        let netdir = match canonicalize(&entry) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // No entry: gone, unless there is no class/net at all (/sys not mounted).
                return Err(match fs::symlink_metadata(&self.class_net) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => ClassifyError::NoSysfs,
                    _ => ClassifyError::Vanished,
                });
            }
            Err(e) => return Err(ClassifyError::Io(e)),
        };
        if !netdir.starts_with(&self.sys) {
            return Err(ClassifyError::OutsideSysfs);
        }
        let class = match self.device_of(&entry, &netdir)? {
            None => NicClass::Virtual,
            Some(dev) => self.classify_device(&dev),
        };
        // Renamed or removed while we looked: what was read may be half of a dying device.
        if fs::symlink_metadata(&entry).is_err() {
            return Err(ClassifyError::Vanished);
        }
        Ok(class)
    }

    fn classify_device(&mut self, dev: &Path) -> NicClass {
        let bus = self.bus(dev);
        match bus.as_deref() {
            Some("pci") => NicClass::Pci(self.pci(dev, dev)),
            Some("usb") => NicClass::Usb(self.usb(dev)),
            Some("platform") => NicClass::Platform(self.platform(dev, dev)),
            // virtio is a transport-independent bus; what the NIC is, is its parent.
            Some("virtio") => {
                let parent = self.parent(dev).map(Path::to_path_buf);
                let parent_bus = parent.as_deref().and_then(|p| self.bus(p));
                match (parent.as_deref(), parent_bus.as_deref()) {
                    (Some(p), Some("pci")) => NicClass::Pci(self.pci(dev, p)),
                    (Some(p), Some("platform")) => NicClass::Platform(self.platform(dev, p)),
                    _ => other("virtio"),
                }
            }
            Some("xen") => match self.vif_devid(dev) {
                Some(devid) => NicClass::Vif { devid },
                None => other("xen"),
            },
            Some(bus) => other(bus),
            None => other("unknown"),
        }
    }

    /// `dev`'s PCI function is `func` (itself, or the parent of a virtio device).
    fn pci(&mut self, dev: &Path, func: &Path) -> PciNic {
        PciNic {
            bdf: dir_name(func),
            topology: self.topology(dev),
            vendor: self.attr(func, "vendor"),
            device: self.attr(func, "device"),
            driver: self.link_name(dev, "driver"),
        }
    }

    fn usb(&mut self, dev: &Path) -> UsbNic {
        // Netdevs bind to interfaces (`1-1:1.0`); the ids are on the USB device above.
        let devtype = self.uevent(dev, "DEVTYPE");
        let interface = match devtype.as_deref() {
            Some(t) => t == "usb_interface",
            None => dir_name(dev).contains(':'),
        };
        let ids = if interface {
            self.parent(dev).map(Path::to_path_buf)
        } else {
            Some(dev.to_path_buf())
        };
        let (vendor, product) = match ids {
            Some(d) => (self.attr(&d, "idVendor"), self.attr(&d, "idProduct")),
            None => (None, None),
        };
        UsbNic {
            bus_path: dir_name(dev),
            topology: self.topology(dev),
            vendor,
            product,
            driver: self.link_name(dev, "driver"),
        }
    }

    /// `dev`'s platform device is `pdev` (itself, or the parent of a virtio device). The
    /// device-tree node is on whichever of the two has an `of_node`.
    fn platform(&mut self, dev: &Path, pdev: &Path) -> PlatformNic {
        let of_dev = [dev, pdev]
            .into_iter()
            .find(|d| fs::symlink_metadata(d.join("of_node")).is_ok())
            .unwrap_or(pdev);
        let of_node = self.resolve(of_dev, "of_node").filter(|n| n.is_dir());
        let node = self
            .uevent(of_dev, "OF_FULLNAME")
            .or_else(|| of_node.as_deref().and_then(|n| self.dt_node_name(n)));
        let mut compatible = match &of_node {
            Some(n) => self.compatible(n),
            None => Vec::new(),
        };
        if compatible.is_empty() {
            compatible = self.uevent_compatible(of_dev);
        }
        PlatformNic {
            node,
            name: dir_name(pdev),
            compatible,
            topology: self.topology(dev),
            driver: self.link_name(dev, "driver"),
        }
    }

    /// The devid of a PV vif frontend, `None` for any other xen device.
    fn vif_devid(&mut self, dev: &Path) -> Option<u32> {
        if self.attr(dev, "devtype")? != "vif" {
            return None;
        }
        parse_vif_nodename(&self.attr(dev, "nodename")?)
    }

    /// The name of the device's bus: its `subsystem` link (or the pre-2.6.23 `bus` link),
    /// else inferred from its uevent and path.
    fn bus(&mut self, dev: &Path) -> Option<String> {
        if let Some(bus) = self
            .link_name(dev, "subsystem")
            .or_else(|| self.link_name(dev, "bus"))
        {
            return Some(bus);
        }
        self.infer_bus(dev).map(str::to_owned)
    }

    fn infer_bus(&mut self, dev: &Path) -> Option<&'static str> {
        if self.read(dev, "uevent") {
            let uevent = &self.buf;
            if uevent_value(uevent, "PCI_SLOT_NAME").is_some() {
                return Some("pci");
            }
            if matches!(
                uevent_value(uevent, "DEVTYPE").as_deref(),
                Some("usb_interface" | "usb_device")
            ) {
                return Some("usb");
            }
            if uevent_value(uevent, "XENBUS_TYPE").is_some() {
                return Some("xen");
            }
            let modalias = uevent_value(uevent, "MODALIAS").unwrap_or_default();
            match modalias.split(':').next() {
                Some("pci") => return Some("pci"),
                Some("usb") => return Some("usb"),
                Some("virtio") => return Some("virtio"),
                Some("xen") => return Some("xen"),
                Some("platform") => return Some("platform"),
                _ => {}
            }
        }
        let name = dir_name(dev);
        if is_virtio_name(&name) {
            Some("virtio")
        } else if is_bdf(&name) {
            Some("pci")
        } else if self.attr(dev, "devtype").is_some() && self.attr(dev, "nodename").is_some() {
            Some("xen")
        } else if dev.starts_with(self.devices.join("platform")) {
            Some("platform")
        } else {
            None
        }
    }

    /// The full name of a device-tree node (`/passthrough/virtio_mmio@a003e00`) from its
    /// canonical path under /sys/firmware/devicetree/base.
    fn dt_node_name(&mut self, node: &Path) -> Option<String> {
        let sys = &self.sys;
        let base = self.dt_base.get_or_insert_with(|| {
            canonicalize(&sys.join("firmware/devicetree/base"))
                .ok()
                .filter(|p| p.starts_with(sys))
        });
        let rel = node.strip_prefix(base.as_deref()?).ok()?;
        let mut name = String::new();
        for c in rel {
            name.push('/');
            name.push_str(&printable(c.as_encoded_bytes()));
        }
        Some(if name.is_empty() {
            "/".to_owned()
        } else {
            name
        })
    }

    /// A node's `compatible`: NUL-separated strings.
    fn compatible(&mut self, node: &Path) -> Vec<String> {
        if !self.read(node, "compatible") {
            return Vec::new();
        }
        split_compatible(&self.buf)
    }

    /// `OF_COMPATIBLE_0`, `OF_COMPATIBLE_1`, ... from a uevent, in index order.
    fn uevent_compatible(&mut self, dev: &Path) -> Vec<String> {
        if !self.read(dev, "uevent") {
            return Vec::new();
        }
        let mut found: Vec<(u32, String)> = Vec::new();
        for line in self.buf.split(|&c| c == b'\n') {
            let Some(rest) = line.strip_prefix(b"OF_COMPATIBLE_") else {
                continue;
            };
            let Some(eq) = rest.iter().position(|&c| c == b'=') else {
                continue;
            };
            let Some(index) = parse_u32(&rest[..eq]) else {
                continue; // OF_COMPATIBLE_N, the count
            };
            let value = printable(&rest[eq + 1..]);
            if !value.is_empty() {
                found.push((index, value));
            }
        }
        found.sort();
        found.into_iter().map(|(_, v)| v).collect()
    }
}

fn other(bus: &str) -> NicClass {
    NicClass::Other {
        bus: bus.to_owned(),
    }
}

/// `device/vif/<devid>` -> devid.
fn parse_vif_nodename(nodename: &str) -> Option<u32> {
    parse_u32(nodename.strip_prefix("device/vif/")?.as_bytes())
}

/// Decimal digits only (no sign, no spaces), without overflow.
fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |v, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        v.checked_mul(10)?.checked_add(u32::from(c - b'0'))
    })
}

/// `compatible` is a list of NUL-terminated strings.
fn split_compatible(raw: &[u8]) -> Vec<String> {
    raw.split(|&c| c == 0)
        .map(printable)
        .filter(|s| !s.is_empty())
        .collect()
}

/// `virtio0`, `virtio12`.
fn is_virtio_name(name: &str) -> bool {
    name.strip_prefix("virtio")
        .is_some_and(|n| parse_u32(n.as_bytes()).is_some())
}

/// A PCI function's name: `dddd:bb:dd.f` in hex (the domain may be longer on some hosts).
fn is_bdf(name: &str) -> bool {
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|c| c.is_ascii_hexdigit());
    let mut parts = name.split(':');
    let (Some(domain), Some(bus), Some(devfn), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    (hex(domain, 4) || hex(domain, 8)) && hex(bus, 2) && hex(dev, 2) && hex(func, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames_like_the_kernel() {
        for ok in [
            "eth0",
            "lo",
            "enp0s3",
            "a",
            "vif1.0",
            "br-lan",
            "fifteen-bytes-x",
            "é",
        ] {
            assert!(valid_ifname(ok), "{ok}");
        }
        let sixteen = "sixteen-bytes-xx";
        assert_eq!(sixteen.len(), 16);
        for bad in [
            "", ".", "..", "../x", "a/b", "eth0:1", "a b", "a\tb", "a\0b", "a\n", sixteen,
        ] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
        assert!(!valid_ifname("éééééééé")); // 8 chars, 16 bytes
    }

    #[test]
    fn printable_drops_control_and_non_ascii() {
        assert_eq!(printable(b"  0x8086\n"), "0x8086");
        assert_eq!(printable(b"0x80\x0086\xff\x1b[31m"), "0x8086[31m");
        assert_eq!(printable(b"\x00\x01\xfe"), "");
    }

    #[test]
    fn uevent_values() {
        let u = b"DRIVER=e1000\nPCI_SLOT_NAME=0000:00:00.0\nDEVTYPE=\nX=a=b\n\xff\xfe\n";
        assert_eq!(uevent_value(u, "DRIVER").as_deref(), Some("e1000"));
        assert_eq!(
            uevent_value(u, "PCI_SLOT_NAME").as_deref(),
            Some("0000:00:00.0")
        );
        assert_eq!(uevent_value(u, "DEVTYPE"), None);
        assert_eq!(uevent_value(u, "X").as_deref(), Some("a=b"));
        assert_eq!(uevent_value(u, "DRIVE"), None);
        assert_eq!(uevent_value(b"", "DRIVER"), None);
    }

    #[test]
    fn vif_nodenames() {
        assert_eq!(parse_vif_nodename("device/vif/0"), Some(0));
        assert_eq!(parse_vif_nodename("device/vif/4294967295"), Some(u32::MAX));
        for bad in [
            "device/vif/4294967296",
            "device/vif/",
            "device/vif/+1",
            "device/vif/-1",
            "device/vif/1/x",
            "device/vbd/51712",
            "backend/vif/1/0",
            "device/vif/99999999999999999999999",
        ] {
            assert_eq!(parse_vif_nodename(bad), None, "{bad}");
        }
    }

    #[test]
    fn compatible_lists() {
        assert_eq!(split_compatible(b"virtio,mmio\0"), ["virtio,mmio"]);
        assert_eq!(
            split_compatible(b"brcm,bcm2711-genet-v5\0brcm,genet\0"),
            ["brcm,bcm2711-genet-v5", "brcm,genet"]
        );
        assert!(split_compatible(b"\0\0\x01\0").is_empty());
        assert!(split_compatible(b"").is_empty());
    }

    #[test]
    fn bus_names_from_paths() {
        assert!(is_bdf("0000:00:05.0"));
        assert!(!is_bdf("10000:ab:1f.7"));
        assert!(is_bdf("0001abcd:00:00.0"));
        assert!(!is_bdf("pci0000:00"));
        assert!(!is_bdf("0000:00:05"));
        assert!(!is_bdf("0000:00:05.0:1"));
        assert!(is_virtio_name("virtio0"));
        assert!(is_virtio_name("virtio12"));
        assert!(!is_virtio_name("virtio"));
        assert!(!is_virtio_name("virtio_mmio"));
    }

    #[test]
    fn error_messages_are_the_doc_comments() {
        assert_eq!(
            ClassifyError::Vanished.to_string(),
            "the interface is not in /sys/class/net (it went away)"
        );
        assert_eq!(
            ClassifyError::BadName.to_string(),
            "not a valid network interface name"
        );
    }

    #[test]
    fn missing_sysfs() {
        let dir = std::env::temp_dir().join(format!("xb-sysfs-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            classify(&dir, "eth0"),
            Err(ClassifyError::NoSysfs)
        ));
        assert!(matches!(
            classify(&dir, "../x"),
            Err(ClassifyError::BadName)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
