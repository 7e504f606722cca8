//! The guest's network as rtnetlink reports it: links by ifindex and their addresses.
//!
//! State is keyed by ifindex, never by name: names change (`eth0` becomes `enX0` when udev
//! renames it), and a rename is just an RTM_NEWLINK with a new name, after which the link is
//! classified again.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::layout::Mac;

/// What a network interface is, by topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NicClass {
    /// Xen PV network frontend: `device/devtype` = `vif` and `device/nodename` = `device/vif/<devid>`.
    Vif { devid: u32 },
    /// The device is a PCI function, or a virtio device whose parent is one (virtio-net-pci).
    Pci(PciNic),
    /// The device is a USB interface.
    Usb(UsbNic),
    /// The device is a platform (device-tree) device, or a virtio device whose parent is one
    /// (virtio-mmio).
    Platform(PlatformNic),
    /// No `device` link: bridge, bond, VLAN, macvlan, veth, lo, dummy, tun, wireguard...
    Virtual,
    /// A device on another bus (e.g. a xen device that is not a vif); keep the subsystem name.
    /// `"unknown"` when the bus can be neither read nor inferred.
    Other { bus: String },
}

/// A NIC on PCI: passthrough, pcifront, SR-IOV VF or virtio-net-pci.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciNic {
    /// The PCI function's directory name, e.g. `0000:00:05.0`.
    pub bdf: String,
    /// The netdev's resolved `device` path relative to /sys, e.g.
    /// `devices/pci-0/pci0000:00/0000:00:00.0` (for virtio: `.../0000:00:00.0/virtio0`).
    pub topology: String,
    /// The PCI function's `vendor`, as in sysfs (`0x8086`).
    pub vendor: Option<String>,
    /// The PCI function's `device`, as in sysfs (`0x100e`).
    pub device: Option<String>,
    /// The driver bound to the netdev's device (`e1000`, `virtio_net`).
    pub driver: Option<String>,
}

/// A NIC on USB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbNic {
    /// The USB interface's directory name, e.g. `1-1:1.0`.
    pub bus_path: String,
    /// The netdev's resolved `device` path relative to /sys.
    pub topology: String,
    /// The USB device's `idVendor` (`0525`).
    pub vendor: Option<String>,
    /// The USB device's `idProduct` (`a4a2`).
    pub product: Option<String>,
    /// The driver bound to the interface (`cdc_ether`).
    pub driver: Option<String>,
}

/// A platform (device-tree) NIC: an SoC's onboard Ethernet, or virtio-mmio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformNic {
    /// The device-tree node's full name, e.g. `/passthrough/virtio_mmio@a003e00`.
    pub node: Option<String>,
    /// The platform device's directory name, e.g. `a003e00.virtio_mmio`, `fd580000.ethernet`.
    pub name: String,
    /// The node's `compatible` strings, most specific first.
    pub compatible: Vec<String>,
    /// The netdev's resolved `device` path relative to /sys.
    pub topology: String,
    /// The driver bound to the netdev's device (`bcmgenet`, `virtio_net`).
    pub driver: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The current MAC.
    pub mac: Option<Mac>,
    /// The MAC the hardware came with, when the kernel reports one (`IFLA_PERM_ADDRESS`).
    pub perm_mac: Option<Mac>,
    /// The loopback device (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// The link layer is up (`IFF_LOWER_UP`): the carrier when `carrier` is not reported.
    pub lower_up: bool,
    pub carrier: Option<bool>,
    /// Bridge or bond this link is a member of.
    pub master: Option<u32>,
    /// Lower device of a VLAN or macvlan.
    pub lower: Option<u32>,
    /// `IFLA_INFO_KIND` (`bridge`, `bond`, `vlan`, `macvlan`, `veth`, ...).
    pub kind: Option<String>,
    pub vlan_id: Option<u16>,
    /// sysfs classification; `None` until classified (again, after a rename).
    pub class: Option<NicClass>,
}

impl Link {
    /// The MAC a device NIC is known by: the permanent one when there is one, else the
    /// current one. A bond gives its members its own MAC, so two passthrough NICs in one bond
    /// (or a VF bonded with a vif) would otherwise look like one NIC, or like another's.
    pub fn hw_mac(&self) -> Option<Mac> {
        self.perm_mac.or(self.mac)
    }
}

/// What rtnetlink tells of a link, before it is merged into what the agent knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFacts<'a> {
    pub index: u32,
    /// `None` when the message did not carry it (the known name is kept).
    pub name: Option<&'a str>,
    pub mac: Option<Mac>,
    pub perm_mac: Option<Mac>,
    pub loopback: bool,
    pub lower_up: bool,
    pub carrier: Option<bool>,
    pub master: Option<u32>,
    pub lower: Option<u32>,
    pub kind: Option<&'a str>,
    pub vlan_id: Option<u16>,
}

/// The state of an address, as far as reporting it goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrFlags {
    /// IPv6 duplicate address detection has not finished.
    pub tentative: bool,
    pub dad_failed: bool,
    /// Its preferred lifetime ran out.
    pub deprecated: bool,
    /// An IPv6 privacy address.
    pub temporary: bool,
    /// Configured, not learned (IPv6 SLAAC and DHCPv6 addresses are not).
    pub permanent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr {
    pub prefix_len: u8,
    pub scope: u8,
    pub flags: AddrFlags,
    /// Arrival order, so that the first (primary) address is allocated first.
    pub order: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetState {
    pub links: BTreeMap<u32, Link>,
    pub addrs: BTreeMap<(u32, IpAddr), Addr>,
    next_order: u64,
}

impl NetState {
    pub fn clear(&mut self) {
        self.links.clear();
        self.addrs.clear();
    }

    /// A link appeared or changed; true if the state changed. A rename drops the link's
    /// classification, so that it is classified again.
    pub fn update_link(&mut self, l: &LinkFacts<'_>) -> bool {
        let old = self.links.get(&l.index);
        let name = match (l.name, old) {
            (Some(n), _) => n.to_owned(),
            (None, Some(o)) => o.name.clone(),
            (None, None) => return false,
        };
        let class = old.filter(|o| o.name == name).and_then(|o| o.class.clone());
        let link = Link {
            index: l.index,
            name,
            mac: l.mac,
            perm_mac: l.perm_mac,
            loopback: l.loopback,
            lower_up: l.lower_up,
            carrier: l.carrier,
            master: l.master,
            lower: l.lower,
            kind: l.kind.map(str::to_owned),
            vlan_id: l.vlan_id,
            class,
        };
        if old == Some(&link) {
            return false;
        }
        self.links.insert(l.index, link);
        true
    }

    /// A link and its addresses are gone; true if the state changed.
    pub fn remove_link(&mut self, index: u32) -> bool {
        let gone = self.links.remove(&index).is_some();
        let before = self.addrs.len();
        self.addrs.retain(|(i, _), _| *i != index);
        gone || before != self.addrs.len()
    }

    /// An address appeared or changed; true if the state changed. It keeps its arrival order.
    pub fn update_addr(
        &mut self,
        index: u32,
        ip: IpAddr,
        prefix_len: u8,
        scope: u8,
        flags: AddrFlags,
    ) -> bool {
        let key = (index, ip);
        let order = match self.addrs.get(&key) {
            Some(old) => old.order,
            None => {
                self.next_order += 1;
                self.next_order
            }
        };
        let addr = Addr {
            prefix_len,
            scope,
            flags,
            order,
        };
        self.addrs.insert(key, addr) != Some(addr)
    }

    /// An address is gone; true if the state changed.
    pub fn remove_addr(&mut self, index: u32, ip: IpAddr) -> bool {
        self.addrs.remove(&(index, ip)).is_some()
    }

    /// Addresses of one link, in arrival order.
    pub fn addrs_of(&self, index: u32) -> Vec<(IpAddr, Addr)> {
        let mut v: Vec<(IpAddr, Addr)> = self
            .addrs
            .range((index, IpAddr::from([0u8; 4]))..)
            .take_while(|((i, _), _)| *i == index)
            .map(|((_, ip), a)| (*ip, *a))
            .collect();
        v.sort_by_key(|(_, a)| a.order);
        v
    }
}
