//! What one guest publishes, parsed from its XenStore keys: the pure half of `list`, `show` and
//! `wait`.
//!
//! The input is a tree that was already read ([`DomainTree`]: relative path -> value, plus the
//! paths xenstored refused), so every rule here is testable without a connection. Guests are
//! hostile input: values may be anything (not numbers where numbers belong, control characters,
//! megabytes of keys), so nothing here trusts a value's shape; what does not parse is left out
//! of the structured fields and kept, raw, in [`GuestReport::other`].
//!
//! Layouts understood (docs/xenstore-layout.md): xenbeacon's (`data/xenbeacon/layout`), and the
//! XAPI-style keys every other agent writes (`data/os_*`, `attr/PVAddons/*`, `attr/vif/*`,
//! `xenserver/attr/net-sriov-vf/*`, the legacy `attr/<ifname>/ip`). The toolstack's own
//! `device/vif/<devid>/mac` adds the vifs a guest does not report, so a guest without an agent
//! still shows its NICs' MACs.

use std::collections::BTreeSet;

use super::report::{
    Address, Agent, Balloon, GuestReport, Memory, Nic, NicKind, Os, Upper, UpperKind,
};
use super::tree::{toolstack_key, DomainTree, GUEST_SUBTREES};
use crate::layout::{
    is_under, key, nic_key, NET_DIR, OWNED_SUBTREES, PV_ADDONS_DIR, SRIOV_VF_DIR, VIF_DIR,
    XENBEACON_DIR,
};

/// Roots that are containers, never "other keys" themselves.
const CONTAINERS: [&str; 7] = [
    "data",
    "attr",
    "xenserver",
    "xenserver/attr",
    VIF_DIR,
    NET_DIR,
    SRIOV_VF_DIR,
];
/// XAPI's `attr/os/hotfixes`: below `attr/` but not a legacy per-interface directory (nor
/// are the agent's own subtrees there).
const ATTR_OS: &str = "attr/os";

/// Tracks which nodes were understood, to leave the rest in `other`.
struct Parser<'t> {
    tree: &'t DomainTree,
    used: BTreeSet<&'t str>,
}

impl<'t> Parser<'t> {
    fn get(&mut self, path: &str) -> Option<String> {
        let (k, v) = self.tree.nodes.get_key_value(path)?;
        self.used.insert(k.as_str());
        Some(v.clone())
    }

    fn get_u64(&mut self, path: &str) -> Option<u64> {
        let v = self.tree.nodes.get(path)?;
        let n = parse_uint(v)?;
        self.get(path);
        Some(n)
    }

    fn exists(&self, path: &str) -> bool {
        self.tree.nodes.contains_key(path)
    }

    /// Marks `path` understood, if it exists.
    fn touch(&mut self, path: &str) {
        self.get(path);
    }

    /// The key `name` in `dir`.
    fn field(&mut self, dir: &str, name: &str) -> Option<String> {
        self.get(&format!("{dir}/{name}"))
    }

    /// `dir/<n>` (+ `/prefix`) entries, by index.
    fn addresses(&mut self, dir: &str, max_prefix: u8) -> Vec<Address> {
        let mut out = Vec::new();
        for n in self.tree.children(dir) {
            let Some(index) = parse_index(n) else {
                continue;
            };
            let path = format!("{dir}/{n}");
            let Some(addr) = self.tree.nodes.get(&path).filter(|v| !v.is_empty()) else {
                continue;
            };
            let addr = addr.clone();
            self.touch(&path);
            let prefix_key = format!("{path}/{}", nic_key::PREFIX);
            let prefix = self
                .tree
                .nodes
                .get(&prefix_key)
                .and_then(|p| parse_uint(p))
                .filter(|&p| p <= u64::from(max_prefix))
                .map(|p| p as u8);
            if prefix.is_some() {
                self.touch(&prefix_key);
            }
            insert_by_index(
                &mut out,
                Address {
                    index,
                    addr,
                    prefix,
                },
            );
        }
        out
    }

    fn uppers(&mut self, base: &str) -> Vec<Upper> {
        let mut out = Vec::new();
        let vlans = format!("{base}/{}", nic_key::VLAN);
        for vid in self.tree.children(&vlans) {
            if parse_uint(vid).filter(|&v| v <= 4095).is_none() {
                continue;
            }
            out.push(self.upper(UpperKind::Vlan, vid, &format!("{vlans}/{vid}")));
        }
        let macvlans = format!("{base}/{}", nic_key::MACVLAN);
        for id in self.tree.children(&macvlans) {
            out.push(self.upper(UpperKind::Macvlan, id, &format!("{macvlans}/{id}")));
        }
        let ipvlans = format!("{base}/{}", nic_key::IPVLAN);
        for id in self.tree.children(&ipvlans) {
            if parse_uint(id).is_none() {
                continue;
            }
            out.push(self.upper(UpperKind::Ipvlan, id, &format!("{ipvlans}/{id}")));
        }
        out
    }

    fn upper(&mut self, kind: UpperKind, id: &str, dir: &str) -> Upper {
        self.touch(dir);
        Upper {
            kind,
            id: id.to_owned(),
            name: self.field(dir, nic_key::NAME),
            mac: self.field(dir, nic_key::MAC),
            ipv4: self.addresses(&format!("{dir}/{}", nic_key::IPV4), 32),
            ipv6: self.addresses(&format!("{dir}/{}", nic_key::IPV6), 128),
        }
    }

    /// A NIC directory in xenbeacon's / Xen's layout.
    fn nic(&mut self, kind: NicKind, id: &str, dir: &str) -> Nic {
        self.touch(dir);
        let mut n = Nic::new(kind, id, dir);
        n.name = self.field(dir, nic_key::NAME);
        let mac = format!("{dir}/{}", nic_key::MAC);
        n.mac = self.get(&mac).filter(|m| !m.is_empty());
        if n.mac.is_none() {
            // vifs: the Xen-documented `mac/<index>`; take the lowest.
            let lowest = self
                .tree
                .children(&mac)
                .into_iter()
                .filter_map(|c| Some((parse_index(c)?, c)))
                .min_by_key(|&(i, _)| i);
            if let Some((_, c)) = lowest {
                n.mac = self.field(&mac, c);
            }
        }
        let carrier = format!("{dir}/{}", nic_key::CARRIER);
        n.carrier = match self.tree.nodes.get(&carrier).map(String::as_str) {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        };
        if n.carrier.is_some() {
            self.touch(&carrier);
        }
        n.bridge = self.field(dir, nic_key::BRIDGE);
        n.bond = self.field(dir, nic_key::BOND);
        n.bus = self.field(dir, nic_key::BUS);
        n.location = self.field(dir, nic_key::LOCATION);
        n.host_location = self.field(dir, nic_key::HOST_LOCATION);
        n.vendor = self.field(dir, nic_key::VENDOR);
        n.product = self.field(dir, nic_key::PRODUCT);
        n.driver = self.field(dir, nic_key::DRIVER);
        n.compatible = self.field(dir, nic_key::COMPATIBLE);
        n.topology = self.field(dir, nic_key::TOPOLOGY);
        n.link_kind = self.field(dir, nic_key::KIND);
        n.ipv4 = self.addresses(&format!("{dir}/{}", nic_key::IPV4), 32);
        n.ipv6 = self.addresses(&format!("{dir}/{}", nic_key::IPV6), 128);
        n.uppers = self.uppers(dir);
        n
    }

    /// `attr/<ifname>/ip` and `attr/<ifname>/ipv6/<i>/addr`.
    fn legacy(&mut self, ifname: &str, dir: &str) -> Option<Nic> {
        let ip = self.tree.nodes.get(&format!("{dir}/ip")).cloned();
        let mut v6 = Vec::new();
        for i in self.tree.children(&format!("{dir}/ipv6")) {
            let Some(index) = parse_index(i) else {
                continue;
            };
            if let Some(addr) = self.get(&format!("{dir}/ipv6/{i}/addr")) {
                let prefix = None;
                insert_by_index(
                    &mut v6,
                    Address {
                        index,
                        addr,
                        prefix,
                    },
                );
            }
        }
        if ip.is_none() && v6.is_empty() {
            return None;
        }
        self.touch(dir);
        let mut n = Nic::new(NicKind::Legacy, ifname, dir);
        n.name = Some(ifname.to_owned());
        if let Some(addr) = ip.filter(|a| !a.is_empty()) {
            self.touch(&format!("{dir}/ip"));
            n.ipv4.push(Address {
                index: 0,
                addr,
                prefix: None,
            });
        }
        n.ipv6 = v6;
        Some(n)
    }
}

/// A decimal integer of at most 19 digits (no sign, no spaces).
fn parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An address index `<n>`: decimal, fits a u32.
fn parse_index(s: &str) -> Option<u32> {
    parse_uint(s).and_then(|n| u32::try_from(n).ok())
}

/// Inserts `a` after the addresses with a lower or equal index. (Insertion rather than a
/// sort keeps the binary small: every `sort` is a few KiB of code per element type.)
fn insert_by_index(list: &mut Vec<Address>, a: Address) {
    let at = list.partition_point(|o| o.index <= a.index);
    list.insert(at, a);
}

/// `ids` (in key order) with the numeric ones first, in numeric order.
fn numeric_order(ids: Vec<&str>) -> Vec<&str> {
    let key = |id: &str| parse_uint(id).unwrap_or(u64::MAX);
    let mut out: Vec<&str> = Vec::with_capacity(ids.len());
    for id in ids {
        let at = out.partition_point(|o| key(o) <= key(id));
        out.insert(at, id);
    }
    out
}

impl GuestReport {
    /// Parses what one guest publishes: each part of the report in turn, then what is left
    /// (keys no part used) as `other`.
    pub fn parse(tree: &DomainTree) -> GuestReport {
        let mut p = Parser {
            tree,
            used: BTreeSet::new(),
        };
        let name = p.get(toolstack_key::NAME);
        let uuid = p
            .get(toolstack_key::VM)
            .and_then(|v| v.rsplit('/').next().map(str::to_owned))
            .filter(|u| !u.is_empty());
        let os = p.os();
        let memory = p.memory();
        let balloon = p.balloon();
        let layout = p.get(key::LAYOUT);
        let version = p.get(key::VERSION);
        let stage = p.get(key::STAGE);
        let booted_key = p.get(key::BOOTED);
        let updated = p.get(key::UPDATED);
        p.touch(XENBEACON_DIR);
        let pv = p.pv_addons();
        let mut nics = p.nics();
        let reported_any = !nics.is_empty();
        add_configured_vifs(tree, &mut nics);

        let os_keys = tree.children("data").iter().any(|k| k.starts_with("os_"));
        let agent = if let Some(layout) = layout {
            Agent::Xenbeacon { layout, version }
        } else if os_keys || pv.iter().any(Option::is_some) || reported_any {
            Agent::XapiStyle {
                pv_version: pv_version(&pv),
            }
        } else if tree.is_denied("data") || tree.is_denied("attr") {
            Agent::NoAccess
        } else {
            Agent::None
        };
        let booted_by = match agent {
            Agent::Xenbeacon { .. } if booted_key.as_deref() == Some("1") => Some(key::BOOTED),
            Agent::XapiStyle { .. } if updated.is_some() => Some(key::UPDATED),
            _ => None,
        };
        let other = p.unused();

        GuestReport {
            domid: tree.domid,
            name,
            uuid,
            agent,
            os,
            stage,
            booted_by,
            updated,
            memory,
            balloon,
            nics,
            other,
            denied: tree.denied.iter().cloned().collect(),
            truncated: tree.truncated,
        }
    }
}

impl Parser<'_> {
    fn os(&mut self) -> Os {
        Os {
            name: self.get(key::OS_NAME),
            distro: self.get(key::OS_DISTRO),
            major: self.get(key::OS_MAJORVER),
            minor: self.get(key::OS_MINORVER),
            kernel: self.get(key::OS_UNAME),
            host_name: self
                .get(key::HOST_NAME)
                .map(|h| match self.get(key::DOMAIN) {
                    Some(d) => format!("{h}.{d}"),
                    None => h,
                }),
        }
    }

    fn memory(&mut self) -> Memory {
        Memory {
            total_kb: self.get_u64(key::MEMINFO_TOTAL),
            free_kb: self.get_u64(key::MEMINFO_FREE),
            target_kb: self.get_u64(toolstack_key::MEMORY_TARGET),
            static_max_kb: self.get_u64(toolstack_key::MEMORY_STATIC_MAX),
            feature_balloon: self.exists(key::FEATURE_BALLOON),
        }
    }

    /// Layout 2 keeps the balloon keys under data/xenbeacon/balloon/, layout 1 had them as
    /// data/balloon_*: whichever set is there (the new one wins).
    fn balloon(&mut self) -> Option<Balloon> {
        let balloon_sets = [
            [
                key::BALLOON_TARGET,
                key::BALLOON_CURRENT,
                key::BALLOON_STATE,
                key::BALLOON_REASON,
            ],
            [
                key::LEGACY_BALLOON_TARGET,
                key::LEGACY_BALLOON_CURRENT,
                key::LEGACY_BALLOON_STATE,
                key::LEGACY_BALLOON_REASON,
            ],
        ];
        balloon_sets
            .into_iter()
            .find(|set| set.iter().any(|k| self.exists(k)))
            .map(|[target, current, state, reason]| Balloon {
                target_kb: self.get_u64(target),
                current_kb: self.get_u64(current),
                state: self.get(state),
                reason: self.get(reason),
            })
    }

    /// `attr/PVAddons/{MajorVersion,MinorVersion,MicroVersion,BuildVersion}`.
    fn pv_addons(&mut self) -> [Option<String>; 4] {
        let pv = [key::PV_MAJOR, key::PV_MINOR, key::PV_MICRO, key::PV_BUILD].map(|k| self.get(k));
        self.touch(key::PV_INSTALLED);
        self.touch(PV_ADDONS_DIR);
        pv
    }

    /// The NICs the guest reports: vifs, SR-IOV VFs, other NICs, then legacy ones.
    fn nics(&mut self) -> Vec<Nic> {
        let tree = self.tree;
        let mut nics = Vec::new();
        for devid in numeric_order(tree.children(VIF_DIR)) {
            nics.push(self.nic(NicKind::Vif, devid, &format!("{VIF_DIR}/{devid}")));
        }
        for vf in numeric_order(tree.children(SRIOV_VF_DIR)) {
            let dir = format!("{SRIOV_VF_DIR}/{vf}");
            nics.push(self.nic(NicKind::SriovVf, vf, &dir));
        }
        for mac in tree.children(NET_DIR) {
            let dir = format!("{NET_DIR}/{mac}");
            let bus = format!("{dir}/{}", nic_key::BUS);
            let kind = match tree.nodes.get(&bus).map(String::as_str) {
                Some("pci") => NicKind::Pci,
                Some("usb") => NicKind::Usb,
                Some("platform") => NicKind::Platform,
                Some("virtual") => NicKind::Virtual,
                Some("") | None => NicKind::Other(None),
                Some(bus) => NicKind::Other(Some(bus.to_owned())),
            };
            nics.push(self.nic(kind, mac, &dir));
        }
        for ifname in tree.children("attr") {
            let dir = format!("attr/{ifname}");
            if dir == ATTR_OS || OWNED_SUBTREES.contains(&dir.as_str()) {
                continue;
            }
            if let Some(n) = self.legacy(ifname, &dir) {
                nics.push(n);
            }
        }
        nics
    }

    /// The guest-side keys no part of the report used, with their values.
    fn unused(&self) -> Vec<(String, String)> {
        let tree = self.tree;
        tree.nodes
            .iter()
            .filter(|(k, v)| {
                let guest_side = GUEST_SUBTREES.iter().any(|t| is_under(k, t));
                let is_dir = v.is_empty() && tree.has_children(k);
                guest_side
                    && !is_dir
                    && !CONTAINERS.contains(&k.as_str())
                    && !self.used.contains(k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// `major.minor[.micro[.build]]` from the PV drivers' version keys, when major and minor are
/// there.
fn pv_version(pv: &[Option<String>; 4]) -> Option<String> {
    match pv {
        [Some(a), Some(b), micro, build] => {
            let mut v = format!("{a}.{b}");
            for part in [micro, build].into_iter().flatten() {
                v.push('.');
                v.push_str(part);
            }
            Some(v)
        }
        _ => None,
    }
}

/// The vifs the toolstack configured (`device/vif/<devid>`): a reported vif gets its MAC
/// from there if the guest gave none, and a vif the guest did not report is listed as
/// configured but not reported, in devid order among the vifs.
fn add_configured_vifs(tree: &DomainTree, nics: &mut Vec<Nic>) {
    for devid in numeric_order(tree.children(toolstack_key::VIFS)) {
        let mac = tree
            .nodes
            .get(&format!("{}/{devid}/mac", toolstack_key::VIFS));
        match nics
            .iter_mut()
            .find(|n| n.kind == NicKind::Vif && n.id == devid)
        {
            Some(n) if n.mac.is_none() => n.mac = mac.cloned(),
            Some(_) => {}
            None if parse_index(devid).is_some() => {
                let mut n = Nic::new(NicKind::Vif, devid, &format!("{VIF_DIR}/{devid}"));
                n.reported = false;
                n.mac = mac.cloned();
                let at = nics
                    .iter()
                    .position(|o| {
                        o.kind != NicKind::Vif
                            || parse_index(&o.id).unwrap_or(u32::MAX)
                                > parse_index(devid).unwrap_or(0)
                    })
                    .unwrap_or(nics.len());
                nics.insert(at, n);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Mac;

    fn tree(domid: u32, kv: &[(&str, &str)]) -> DomainTree {
        let mut t = DomainTree::new(domid);
        for (k, v) in kv {
            t.set(k, v);
        }
        t
    }

    fn xenbeacon_guest() -> DomainTree {
        tree(
            3,
            &[
                ("name", "web1"),
                ("vm", "/vm/5a0e0c4e-1b6b-4f0e-9a53-2f1d3c4b5a69"),
                ("memory/target", "131072"),
                ("memory/static-max", "131072"),
                ("data", ""),
                ("data/os_name", "Debian GNU/Linux 12 (bookworm)"),
                ("data/os_distro", "debian"),
                ("data/os_majorver", "12"),
                ("data/os_uname", "6.1.0-28-amd64"),
                ("data/meminfo_total", "78912"),
                ("data/meminfo_free", "60000"),
                ("data/updated", "1795511149"),
                ("data/xenbeacon", ""),
                ("data/xenbeacon/layout", "1"),
                ("data/xenbeacon/version", "0.1.0"),
                ("data/xenbeacon/stage", "rootfs"),
                ("data/xenbeacon/booted", "1"),
                ("control/feature-balloon", "1"),
                ("data/balloon_target_kb", "131072"),
                ("data/balloon_current_kb", "131072"),
                ("data/balloon_state", "reached"),
                ("data/agent-foreign", "keep"),
                ("attr/PVAddons/MajorVersion", "0"),
                ("attr/PVAddons/MinorVersion", "1"),
                ("attr/PVAddons/MicroVersion", "0"),
                ("attr/PVAddons/BuildVersion", "0"),
                ("attr/PVAddons/Installed", "1"),
                ("attr/vif/1/name", "eth1"),
                ("attr/vif/1/mac/0", "00:16:3e:00:00:01"),
                ("attr/vif/1/ipv4/0", "10.0.0.3"),
                ("attr/vif/10/ipv4/0", "10.0.0.10"),
                ("attr/vif/0", ""),
                ("attr/vif/0/name", "eth0"),
                ("attr/vif/0/mac", ""),
                ("attr/vif/0/mac/0", "00:16:3e:00:00:00"),
                ("attr/vif/0/carrier", "1"),
                ("attr/vif/0/bridge", "br0"),
                ("attr/vif/0/ipv4", ""),
                ("attr/vif/0/ipv4/1", "10.0.0.2"),
                ("attr/vif/0/ipv4/1/prefix", "24"),
                ("attr/vif/0/ipv4/0", "169.254.0.9"),
                ("attr/vif/0/ipv4/0/prefix", "99"),
                ("attr/vif/0/ipv4/x", "10.9.9.9"),
                ("attr/vif/0/ipv6/0", "2001:db8::2"),
                ("attr/vif/0/ipv6/0/prefix", "64"),
                ("attr/vif/0/vlan/100/name", "eth0.100"),
                ("attr/vif/0/vlan/100/ipv4/0", "10.0.100.2"),
                ("attr/vif/0/vlan/100/ipv4/0/prefix", "24"),
                ("attr/vif/0/macvlan/020000000001/name", "mv0"),
                ("attr/vif/0/macvlan/020000000001/mac", "02:00:00:00:00:01"),
                ("attr/net/525400123405/bus", "pci"),
                ("attr/net/525400123405/mac", "52:54:00:12:34:05"),
                ("attr/net/525400123405/location", "0000:00:00.0"),
                ("attr/net/525400123405/host-location", "0000:00:05.0"),
                ("attr/net/525400123405/ipv4/0", "10.0.2.15"),
                ("attr/net/0250000000aa/bus", "usb"),
                ("attr/net/0250000000aa/name", "usb0"),
                ("attr/net/0250000000bb/bus", "ccw"),
                ("xenserver/attr/net-sriov-vf/2/ipv4/0", "192.0.2.7"),
                ("xenserver/attr/net-sriov-vf/2/mac", "02:00:00:00:00:07"),
                ("device/vif/0/mac", "00:16:3e:00:00:00"),
                ("device/vif/2/mac", "00:16:3e:00:00:02"),
                ("device/vif/2/state", "4"),
            ],
        )
    }

    /// Layout 2 keeps the balloon under data/xenbeacon/balloon/ (a layout-1 leftover loses);
    /// the host name is xapi's netbios_name.
    #[test]
    fn a_bonded_nic_is_found_by_its_own_mac_and_by_the_bonds() {
        let r = GuestReport::parse(&tree(
            5,
            &[
                ("data/xenbeacon/layout", "2"),
                ("attr/vif/0/mac/0", "00:16:3e:00:00:00"),
                ("attr/vif/0/ipv4/0", "10.0.7.2"),
                ("attr/net/525400123405/name", "enp0s5"),
                ("attr/net/525400123405/mac", "00:16:3e:00:00:00"),
                ("attr/net/525400123405/ipv4/0", "10.0.7.2"),
            ],
        ));
        let path = |m: &str| {
            r.nic_by_mac(&Mac::parse(m).unwrap())
                .map(|n| n.path.as_str())
        };
        assert_eq!(path("52:54:00:12:34:05"), Some("attr/net/525400123405"));
        assert_eq!(path("00:16:3e:00:00:00"), Some("attr/vif/0"));
    }

    #[test]
    fn ipvlans_are_uppers_by_interface_index() {
        let r = GuestReport::parse(&tree(
            6,
            &[
                ("data/xenbeacon/layout", "2"),
                ("attr/vif/0/name", "eth0"),
                ("attr/vif/0/ipvlan/5/name", "ipvl0"),
                ("attr/vif/0/ipvlan/5/ipv4/0", "10.0.8.1"),
                ("attr/vif/0/ipvlan/6/name", "ipvl1"),
                ("attr/vif/0/ipvlan/x/name", "not an index"),
            ],
        ));
        let uppers = &r.nics[0].uppers;
        let seen: Vec<(&str, Option<&str>, String)> = uppers
            .iter()
            .map(|u| (u.id.as_str(), u.name.as_deref(), u.label()))
            .collect();
        assert_eq!(
            seen,
            [
                ("5", Some("ipvl0"), "ipvlan".to_owned()),
                ("6", Some("ipvl1"), "ipvlan".to_owned())
            ]
        );
        assert_eq!(uppers[0].ipv4[0].cidr(), "10.0.8.1");
    }

    #[test]
    fn layout_2_balloon_and_host_name() {
        let r = GuestReport::parse(&tree(
            4,
            &[
                ("data/xenbeacon/layout", "2"),
                ("data/xenbeacon/balloon/target_kb", "98304"),
                ("data/xenbeacon/balloon/current_kb", "110000"),
                ("data/xenbeacon/balloon/state", "ballooning"),
                ("data/balloon_state", "reached"),
                ("data/host_name_dns", "db2"),
            ],
        ));
        let b = r.balloon.as_ref().unwrap();
        assert_eq!(b.state.as_deref(), Some("ballooning"));
        assert_eq!((b.target_kb, b.current_kb), (Some(98304), Some(110000)));
        assert!(!r.memory.feature_balloon);
        assert_eq!(r.os.host_name.as_deref(), Some("db2"));
    }

    #[test]
    fn xenbeacon_layout() {
        let r = GuestReport::parse(&xenbeacon_guest());
        assert!(r.memory.feature_balloon);
        assert_eq!(r.domid, 3);
        assert_eq!(r.name.as_deref(), Some("web1"));
        assert_eq!(
            r.uuid.as_deref(),
            Some("5a0e0c4e-1b6b-4f0e-9a53-2f1d3c4b5a69")
        );
        assert_eq!(
            r.agent,
            Agent::Xenbeacon {
                layout: "1".into(),
                version: Some("0.1.0".into())
            }
        );
        assert_eq!(r.agent.label(), "xenbeacon layout 1");
        assert_eq!(r.os.version().as_deref(), Some("12"));
        assert_eq!(r.os.kernel.as_deref(), Some("6.1.0-28-amd64"));
        assert_eq!(r.stage.as_deref(), Some("rootfs"));
        assert_eq!(r.booted_by, Some("data/xenbeacon/booted"));
        assert_eq!(r.memory.total_kb, Some(78912));
        assert_eq!(r.memory.target_kb, Some(131072));
        let b = r.balloon.as_ref().unwrap();
        assert_eq!(b.state.as_deref(), Some("reached"));
        assert_eq!(b.reason, None);

        let labels: Vec<String> = r
            .nics
            .iter()
            .map(|n| format!("{} {}", n.label(), n.path))
            .collect();
        assert_eq!(
            labels,
            [
                "vif 0 attr/vif/0",
                "vif 1 attr/vif/1",
                "vif 2 attr/vif/2",
                "vif 10 attr/vif/10",
                "SR-IOV VF 2 xenserver/attr/net-sriov-vf/2",
                "USB attr/net/0250000000aa",
                "ccw attr/net/0250000000bb",
                "PCI attr/net/525400123405",
            ]
        );
        let eth0 = &r.nics[0];
        assert_eq!(eth0.name.as_deref(), Some("eth0"));
        assert_eq!(eth0.mac.as_deref(), Some("00:16:3e:00:00:00"));
        assert_eq!(eth0.carrier, Some(true));
        assert_eq!(eth0.via().as_deref(), Some("bridge br0"));
        let v4: Vec<String> = eth0.ipv4.iter().map(Address::cidr).collect();
        assert_eq!(v4, ["169.254.0.9", "10.0.0.2/24"]); // prefix 99 is not valid for IPv4
        assert_eq!(eth0.ipv6[0].cidr(), "2001:db8::2/64");
        assert_eq!(eth0.uppers.len(), 2);
        assert_eq!(eth0.uppers[0].label(), "VLAN 100");
        assert_eq!(eth0.uppers[0].ipv4[0].cidr(), "10.0.100.2/24");
        assert_eq!(eth0.uppers[1].mac.as_deref(), Some("02:00:00:00:00:01"));
        assert!(!r.nics[2].reported);
        assert_eq!(r.nics[2].mac.as_deref(), Some("00:16:3e:00:00:02"));
        let pci = &r.nics[7];
        assert_eq!(pci.host_location.as_deref(), Some("0000:00:05.0"));
        assert_eq!(pci.mac_bytes(), Mac::parse("525400123405"));
        // The USB NIC has no `mac` key: its key is its MAC.
        assert_eq!(r.nics[5].mac_bytes(), Mac::parse("02:50:00:00:00:aa"));
        assert_eq!(
            r.nic_by_mac(&Mac::parse("52-54-00-12-34-05").unwrap())
                .map(|n| n.path.as_str()),
            Some("attr/net/525400123405")
        );
        assert!(r
            .nic_by_mac(&Mac::parse("00:16:3e:00:00:02").unwrap())
            .is_none());

        // Not understood: kept as written. Directories and understood keys are not.
        let other: Vec<&str> = r.other.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            other,
            [
                "attr/vif/0/ipv4/0/prefix",
                "attr/vif/0/ipv4/x",
                "data/agent-foreign"
            ]
        );
    }

    #[test]
    fn empty_addresses_are_left_out_and_others_kept_as_written() {
        let t = tree(
            4,
            &[
                ("data/xenbeacon/layout", "1"),
                ("attr/vif/0/ipv4/0", ""),
                ("attr/vif/0/ipv4/1", "not-an-address"),
                ("attr/vif/0/ipv6/0", "2001:db8::1"),
                ("attr/net/525400123405/bus", "pci"),
                ("attr/net/525400123405/ipv4/3", "10.0.2.15"),
                ("device/vif/1/mac", "00:16:3e:00:00:01"),
            ],
        );
        let r = GuestReport::parse(&t);
        let v4 = |n: &Nic| -> Vec<(u32, String)> {
            n.ipv4.iter().map(|a| (a.index, a.addr.clone())).collect()
        };
        assert_eq!(v4(&r.nics[0]), [(1, "not-an-address".into())]);
        assert_eq!(r.nics[0].ipv6[0].addr, "2001:db8::1");
        assert!(!r.nics[1].reported); // device/vif/1
        assert_eq!(v4(&r.nics[2]), [(3, "10.0.2.15".into())]);
        assert_eq!(r.booted_by, None); // layout 1 without booted = 1
    }

    #[test]
    fn xapi_style_agent() {
        let t = tree(
            5,
            &[
                ("name", "win"),
                ("data/os_name", "Microsoft Windows Server 2019"),
                ("data/os_distro", "windows"),
                ("data/updated", "Mon Nov 24 09:00:00 UTC 2026"),
                ("data/volumes/0/name", "C:"),
                ("attr/PVAddons/MajorVersion", "9"),
                ("attr/PVAddons/MinorVersion", "3"),
                ("attr/vif/0/ipv4/0", "10.0.0.50"),
                ("attr/vif/0/ipv6/0", "fe80::1"),
                ("attr/eth1/ip", "10.1.1.1"),
                ("attr/eth1/ipv6/0/addr", "2001:db8::5"),
            ],
        );
        let r = GuestReport::parse(&t);
        assert_eq!(
            r.agent,
            Agent::XapiStyle {
                pv_version: Some("9.3".into())
            }
        );
        assert_eq!(r.agent.label(), "xapi-style");
        assert_eq!(r.booted_by, Some("data/updated"));
        assert_eq!(r.stage, None);
        assert_eq!(r.balloon, None);
        assert_eq!(r.nics.len(), 2);
        assert_eq!(r.nics[1].kind, NicKind::Legacy);
        assert_eq!(r.nics[1].name.as_deref(), Some("eth1"));
        assert_eq!(r.nics[1].ipv6[0].addr, "2001:db8::5");
        assert_eq!(r.nics[0].ipv4[0].addr, "10.0.0.50");
        assert_eq!(r.other, [("data/volumes/0/name".into(), "C:".into())]);
    }

    #[test]
    fn only_a_vif_address_is_an_agent_too() {
        let r = GuestReport::parse(&tree(6, &[("attr/vif/0/ipv4/0", "10.0.0.9")]));
        assert_eq!(r.agent, Agent::XapiStyle { pv_version: None });
        assert_eq!(r.booted_by, None);
    }

    #[test]
    fn no_agent() {
        let t = tree(
            7,
            &[
                ("name", "bare"),
                ("data", ""),
                ("attr", ""),
                ("memory/target", "262144"),
                ("device/vif/0/mac", "00:16:3e:aa:bb:cc"),
                ("device/vif/0/backend", "/local/domain/0/backend/vif/7/0"),
            ],
        );
        let r = GuestReport::parse(&t);
        assert_eq!(r.agent, Agent::None);
        assert_eq!(r.booted_by, None);
        assert!(r.other.is_empty(), "{:?}", r.other);
        assert_eq!(r.nics.len(), 1);
        assert!(!r.nics[0].reported);
        assert_eq!(r.nics[0].mac.as_deref(), Some("00:16:3e:aa:bb:cc"));
        assert!(r.nics[0].ipv4.is_empty());
        assert_eq!(r.memory.target_kb, Some(262144));
    }

    #[test]
    fn denied() {
        let mut t = DomainTree::new(8);
        t.denied.insert(String::new());
        let r = GuestReport::parse(&t);
        assert_eq!(r.agent, Agent::NoAccess);
        assert!(r.fully_denied());
        assert!(r.no_access("data/os_name"));

        let mut t = tree(9, &[("name", "half"), ("data/os_name", "x")]);
        t.denied.insert("attr".into());
        let r = GuestReport::parse(&t);
        assert!(r.no_access("attr/vif"));
        assert!(!r.no_access("data/os_name"));
        assert!(!r.no_access("attribute"));
        assert!(!r.fully_denied());
        assert_eq!(r.agent.label(), "xapi-style");
    }

    #[test]
    fn hostile_values_do_not_panic() {
        let t = tree(
            10,
            &[
                ("data/xenbeacon/layout", "9\u{1b}[2J"),
                ("data/meminfo_total", "-5"),
                ("data/meminfo_free", "99999999999999999999999"),
                ("data/balloon_state", "\"stuck\"\n"),
                ("memory/target", ""),
                ("attr/vif/0/ipv4/99999999999", "10.0.0.1"),
                ("attr/vif/0/ipv4/0/prefix", "24"),
                ("attr/vif/0/vlan/99999/name", "bad"),
                ("attr/vif/0/carrier", "yes"),
                ("attr/vif/0/mac/zz", "x"),
                ("attr/net/ü/bus", "pci"),
                ("attr/net/52-54-00-12-34-05/bus", "pci"),
                ("vm", "/"),
            ],
        );
        let r = GuestReport::parse(&t);
        assert_eq!(r.memory, Memory::default());
        assert!(r.nics[0].ipv4.is_empty());
        assert!(r.nics[0].uppers.is_empty());
        assert_eq!(r.nics[0].carrier, None);
        assert_eq!(r.nics[0].mac, None);
        // Neither key is a MAC in the layout's form (`aabbccddeeff`).
        assert_eq!(r.nics[1].mac_bytes(), None);
        assert_eq!(r.nics[2].mac_bytes(), None);
        assert_eq!(r.uuid, None);
        assert_eq!(r.agent.label(), "xenbeacon layout 9\u{1b}[2J");
        let other: Vec<&str> = r.other.iter().map(|(k, _)| k.as_str()).collect();
        assert!(other.contains(&"data/meminfo_total"));
        assert!(other.contains(&"attr/vif/0/ipv4/99999999999"));
    }
}
