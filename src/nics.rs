//! NIC keys: which interfaces are reported, under which XenStore path, with which addresses.
//!
//! Identity comes from sysfs topology ([`crate::sources::sysfs_net`]), never from names:
//!
//! * a PV vif is `attr/vif/<devid>/` (XAPI's layout, plus the Xen-documented `name`, `mac/0`,
//!   `ipv4/<n>/prefix`);
//! * a NIC whose MAC the toolstack lists under `xenserver/device/net-sriov-vf/<vfid>/mac` is an
//!   SR-IOV VF: `xenserver/attr/net-sriov-vf/<vfid>/` (what XAPI reads);
//! * a device NIC whose MAC is a vif's `device/vif/<devid>/mac`, while no netfront link holds
//!   that vif, is the vif under another face (the device model's emulated NIC in an HVM guest
//!   without netfront): `attr/vif/<devid>/`, where XAPI reads it, with its `bus`, `driver` and
//!   ids as under `attr/net/`;
//! * any other Ethernet (PCI, USB, platform, or an SR-IOV VF without a XAPI mapping) is
//!   `attr/net/<mac>/`, the MAC in lowercase hex without separators;
//! * bridges and bonds are not reported themselves: their addresses appear on each member, with
//!   `bridge` / `bond` naming the upper device; VLANs and macvlans on a NIC go below it
//!   (`vlan/<vid>/`, `macvlan/<mac>/`), out of the way of XAPI's `ipv4/<n>` parsing;
//! * purely virtual links (lo, veth, dummy, tun, bridges without a reported member) only with
//!   `--include-iface`.
//!
//! An address keeps its index `<n>` while it exists; a freed index is reused by the next new
//! address, and the first address of a family gets the lowest one. Indexes are seeded from
//! the keys read back at start, so a restart does not renumber anything.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::desired::{AddressIndexes, DesiredKeys};
use crate::layout::{is_under, nic_key, NicDir, UpperDir, NIC_SUBTREES};
use crate::model::ToolstackHints;
use crate::net::{Addr, Link, NetState, NicClass};

/// What to report.
#[derive(Clone, Debug)]
pub struct NicOptions {
    /// Glob patterns of interface names to report even when virtual.
    pub include: Vec<String>,
    /// Glob patterns of interface names never to report.
    pub exclude: Vec<String>,
    /// Report IPv4 169.254/16 and IPv6 fe80::/10 addresses.
    pub link_local: bool,
    /// Report IPv6 temporary (privacy) addresses.
    pub temporary: bool,
    /// Most addresses per NIC and family.
    pub max_addresses: usize,
}

impl Default for NicOptions {
    fn default() -> NicOptions {
        NicOptions {
            include: Vec::new(),
            exclude: Vec::new(),
            link_local: false,
            temporary: false,
            max_addresses: 16,
        }
    }
}

/// A PCI address in the kernel's form `dddd:bb:ss.f`, from any of the spellings toolstacks
/// use (pciback writes the function with two digits: `0000:00:00.00`).
pub fn normalize_bdf(s: &str) -> Option<String> {
    let (dbs, func) = s.trim().rsplit_once('.')?;
    let mut parts = dbs.split(':');
    let (d, b, sl) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let hex = |x: &str| u32::from_str_radix(x, 16).ok();
    let (d, b, sl, f) = (hex(d)?, hex(b)?, hex(sl)?, hex(func)?);
    (d <= 0xffff && b <= 0xff && sl <= 0x1f && f <= 7)
        .then(|| format!("{d:04x}:{b:02x}:{sl:02x}.{f:x}"))
}

/// Shell-style glob with `*` and `?`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Whether an address is worth reporting, and how much it is preferred when capping.
fn admit(ip: &IpAddr, a: &Addr, opts: &NicOptions) -> Option<u8> {
    if ip.is_loopback() || ip.is_unspecified() || (!opts.link_local && is_link_local(ip)) {
        return None;
    }
    if ip.is_ipv6() {
        if a.flags.tentative || a.flags.dad_failed || a.flags.deprecated {
            return None;
        }
        if !opts.temporary && a.flags.temporary {
            return None;
        }
    }
    // Lower is better: permanent global first, then other global, then link-local.
    let rank = if is_link_local(ip) {
        2
    } else if a.flags.permanent || ip.is_ipv4() {
        0
    } else {
        1
    };
    Some(rank)
}

/// What one render pass reads and writes: the model, the options, and the keys it fills.
struct Pass<'a> {
    net: &'a NetState,
    hints: &'a ToolstackHints,
    opts: &'a NicOptions,
    d: &'a mut DesiredKeys,
    /// Address directories rendered in this pass; the slots of the others are dropped.
    used_dirs: BTreeSet<String>,
}

/// An address a NIC should publish, in the order the free indexes go out: better rank first,
/// then the earlier arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct WantedAddr {
    /// 0 permanent global, 1 other global, 2 link-local (see [`admit`]).
    rank: u8,
    /// When the kernel reported it (the model's arrival order).
    order: u64,
    prefix_len: u8,
}

/// Keeps address indexes stable per directory (`attr/vif/0/ipv4`, ...).
#[derive(Debug, Default)]
pub struct NicRenderer {
    slots: BTreeMap<String, BTreeMap<IpAddr, u32>>,
    /// Directories whose truncation was logged, to log it once per run.
    truncated: BTreeSet<String>,
}

impl NicRenderer {
    pub fn new() -> NicRenderer {
        NicRenderer::default()
    }

    /// Takes over the indexes of addresses already in XenStore: for every directory found
    /// there, the store's numbering replaces the one in memory, so that a restart keeps it.
    pub fn seed(&mut self, published: AddressIndexes) {
        self.slots.extend(published);
    }

    /// Replaces every NIC key in `d` with what `net` says now.
    pub fn render(
        &mut self,
        net: &NetState,
        hints: &ToolstackHints,
        opts: &NicOptions,
        d: &mut DesiredKeys,
    ) {
        d.retain(|k| !NIC_SUBTREES.iter().any(|t| is_under(k, t)));
        let mut pass = Pass {
            net,
            hints,
            opts,
            d,
            used_dirs: BTreeSet::new(),
        };
        // the vifs a twin took (a handful at most)
        let mut twins: Vec<NicDir> = Vec::new();
        for link in net.links.values() {
            let Some((mut dir, mut twin)) = base_path(net, link, hints, opts) else {
                continue;
            };
            // Two devices with one vif's MAC: the first (lowest ifindex) is the twin.
            if twin {
                if twins.contains(&dir) {
                    let Some(mac) = link.hw_mac() else { continue };
                    (dir, twin) = (NicDir::Net(mac), false);
                } else {
                    twins.push(dir);
                }
            }
            self.render_nic(&mut pass, link, dir, twin);
        }
        let used_dirs = pass.used_dirs;
        self.slots.retain(|dir, _| used_dirs.contains(dir));
    }

    fn render_nic(&mut self, pass: &mut Pass<'_>, link: &Link, dir: NicDir, twin: bool) {
        let (net, opts) = (pass.net, pass.opts);
        let base = &dir.to_string();
        let d = &mut *pass.d;
        let key = |rel: &str| format!("{base}/{rel}");
        d.set(&key(nic_key::NAME), &link.name);
        let carrier = link.carrier.unwrap_or(link.lower_up);
        d.set(&key(nic_key::CARRIER), if carrier { "1" } else { "0" });
        if let Some(mac) = &link.mac {
            d.set(&key(dir.mac_key()), &mac.to_string());
        }
        if twin || matches!(dir, NicDir::Net(_)) {
            describe_device(link, pass.hints, base, d);
        }

        // Own addresses, then those of the bridges/bonds above (as if not enslaved).
        let mut sources = vec![link.index];
        let mut master = link.master;
        for _ in 0..4 {
            let Some(m) = master.and_then(|m| net.links.get(&m)) else {
                break;
            };
            match m.kind.as_deref() {
                Some("bridge") => d.set(&key(nic_key::BRIDGE), &m.name),
                Some("bond") => d.set(&key(nic_key::BOND), &m.name),
                _ => break,
            };
            sources.push(m.index);
            master = m.master;
        }
        self.render_addrs(pass, &sources, base, &link.name);

        // VLANs and macvlans on this NIC or on the bridge/bond above it.
        for upper in net.links.values() {
            let Some(lower) = upper.lower else { continue };
            if !sources.contains(&lower) || upper.index == link.index {
                continue;
            }
            if opts.exclude.iter().any(|g| glob_match(g, &upper.name)) {
                continue;
            }
            let upper_dir = match (upper.kind.as_deref(), upper.vlan_id, upper.mac) {
                (Some("vlan"), Some(vid), _) => UpperDir::Vlan(vid),
                (Some("macvlan" | "macvtap"), _, Some(mac)) => UpperDir::Macvlan(mac),
                (Some("ipvlan"), _, _) => UpperDir::Ipvlan(upper.index),
                _ => continue,
            };
            let sub = format!("{base}/{upper_dir}");
            let d = &mut *pass.d;
            d.set(&format!("{sub}/{}", nic_key::NAME), &upper.name);
            if let (UpperDir::Macvlan(_) | UpperDir::Ipvlan(_), Some(mac)) = (upper_dir, upper.mac)
            {
                d.set(&format!("{sub}/{}", nic_key::MAC), &mac.to_string());
            }
            self.render_addrs(pass, &[upper.index], &sub, &upper.name);
        }
    }

    /// The addresses of the links in `sources` (a NIC, then the bridge or bond above it),
    /// below `base`/ipv4 and `base`/ipv6, at indexes that stay stable while they live.
    fn render_addrs(&mut self, pass: &mut Pass<'_>, sources: &[u32], base: &str, name: &str) {
        let (net, opts) = (pass.net, pass.opts);
        for (family, v4) in [(nic_key::IPV4, true), (nic_key::IPV6, false)] {
            let mut wanted: BTreeMap<IpAddr, WantedAddr> = BTreeMap::new();
            for &src in sources {
                for (ip, a) in net.addrs_of(src) {
                    if ip.is_ipv4() != v4 || wanted.contains_key(&ip) {
                        continue;
                    }
                    if let Some(rank) = admit(&ip, &a, opts) {
                        let w = WantedAddr {
                            rank,
                            order: a.order,
                            prefix_len: a.prefix_len,
                        };
                        wanted.insert(ip, w);
                    }
                }
            }
            if wanted.is_empty() {
                continue;
            }
            let dir = format!("{base}/{family}");
            pass.used_dirs.insert(dir.clone());
            let slots = self.slots.entry(dir.clone()).or_default();
            slots.retain(|ip, _| wanted.contains_key(ip));
            let max = opts.max_addresses;
            if slots.len() > max {
                let mut by_index: Vec<(u32, IpAddr)> =
                    slots.iter().map(|(ip, &i)| (i, *ip)).collect();
                by_index.sort_unstable();
                for (_, ip) in &by_index[max..] {
                    slots.remove(ip);
                }
            }
            let mut fresh: Vec<(&WantedAddr, &IpAddr)> = wanted
                .iter()
                .filter(|(ip, _)| !slots.contains_key(*ip))
                .map(|(ip, w)| (w, ip))
                .collect();
            fresh.sort_unstable();
            let mut used: BTreeSet<u32> = slots.values().copied().collect();
            let mut next_free = 0u32;
            for (_, ip) in fresh {
                if slots.len() >= max {
                    break;
                }
                while used.contains(&next_free) {
                    next_free += 1;
                }
                slots.insert(*ip, next_free);
                used.insert(next_free);
            }
            // Logged once per NIC and family for the agent's life: a flapping address must not
            // log it again on every flap.
            if wanted.len() > slots.len() && self.truncated.insert(dir.clone()) {
                log::warn!(
                    "{name}: {} {family} addresses, publishing {} (--max-addresses; \
                     logged once for this NIC and family)",
                    wanted.len(),
                    slots.len()
                );
            }
            let d = &mut *pass.d;
            for (ip, n) in slots.iter() {
                let prefix = wanted.get(ip).map_or(0, |w| w.prefix_len);
                d.set(&format!("{dir}/{n}"), &ip.to_string());
                d.set_u64(&format!("{dir}/{n}/{}", nic_key::PREFIX), u64::from(prefix));
            }
        }
    }
}

/// Where a link's keys go, or `None` if it is not reported; true when the link is a vif's
/// twin: another device carrying the MAC the toolstack gave that vif (the device model's
/// emulated NIC in an HVM guest without netfront). A vif a netfront link holds has no twin.
fn base_path(
    net: &NetState,
    link: &Link,
    hints: &ToolstackHints,
    opts: &NicOptions,
) -> Option<(NicDir, bool)> {
    if opts.exclude.iter().any(|g| glob_match(g, &link.name)) {
        return None;
    }
    let included = opts.include.iter().any(|g| glob_match(g, &link.name));
    let class = link.class.as_ref()?;
    match class {
        NicClass::Vif { devid } => Some((NicDir::Vif(*devid), false)),
        NicClass::Virtual if !included => None,
        _ => {
            // Matched and named by the hardware's own MAC: a bond changes the current one.
            let mac = link.hw_mac()?;
            if let Some((vf, _)) = hints.sriov_vfs.iter().find(|(_, m)| *m == mac) {
                return Some((NicDir::SriovVf(*vf), false));
            }
            // Only a device can be a vif's twin: a bridge, VLAN or bond repeats its lower
            // NIC's MAC without being that NIC.
            if !matches!(class, NicClass::Virtual) {
                let twin = hints
                    .vif_macs
                    .iter()
                    .find(|(id, m)| *m == mac && !has_netfront(net, *id));
                if let Some((devid, _)) = twin {
                    return Some((NicDir::Vif(*devid), true));
                }
            }
            Some((NicDir::Net(mac), false))
        }
    }
}

/// A netfront link holds vif `devid`. Asked only when a device carries a vif's MAC, so the
/// render of every netlink event allocates nothing for it.
fn has_netfront(net: &NetState, devid: u32) -> bool {
    net.links
        .values()
        .any(|l| matches!(l.class, Some(NicClass::Vif { devid: d }) if d == devid))
}

/// `bus`, `location`, ids, driver and topology of a non-vif NIC.
fn describe_device(link: &Link, hints: &ToolstackHints, base: &str, d: &mut DesiredKeys) {
    let mut set = |rel: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            d.set(&format!("{base}/{rel}"), v);
        }
    };
    match link.class.as_ref() {
        Some(NicClass::Pci(p)) => {
            set(nic_key::BUS, Some("pci"));
            set(nic_key::LOCATION, Some(&p.bdf));
            set(
                nic_key::HOST_LOCATION,
                hints.pci_host.get(&p.bdf).map(String::as_str),
            );
            set(nic_key::VENDOR, p.vendor.as_deref());
            set(nic_key::PRODUCT, p.device.as_deref());
            set(nic_key::DRIVER, p.driver.as_deref());
            set(nic_key::TOPOLOGY, Some(&p.topology));
        }
        Some(NicClass::Usb(u)) => {
            set(nic_key::BUS, Some("usb"));
            set(nic_key::LOCATION, Some(&u.bus_path));
            set(nic_key::VENDOR, u.vendor.as_deref());
            set(nic_key::PRODUCT, u.product.as_deref());
            set(nic_key::DRIVER, u.driver.as_deref());
            set(nic_key::TOPOLOGY, Some(&u.topology));
        }
        Some(NicClass::Platform(p)) => {
            set(nic_key::BUS, Some("platform"));
            set(nic_key::LOCATION, p.node.as_deref().or(Some(&p.name)));
            set(nic_key::COMPATIBLE, Some(&p.compatible.join(" ")));
            set(nic_key::DRIVER, p.driver.as_deref());
            set(nic_key::TOPOLOGY, Some(&p.topology));
        }
        Some(NicClass::Other { bus }) => set(nic_key::BUS, Some(bus)),
        Some(NicClass::Virtual) => set(nic_key::BUS, Some("virtual")),
        Some(NicClass::Vif { .. }) | None => {}
    }
    if let Some(kind) = &link.kind {
        set(nic_key::KIND, Some(kind));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Mac;

    #[test]
    fn globs() {
        assert!(glob_match("eth*", "eth0"));
        assert!(glob_match("*", ""));
        assert!(glob_match("en?0", "enX0"));
        assert!(!glob_match("eth?", "eth10"));
        assert!(glob_match("docker*", "docker0"));
        assert!(!glob_match("br", "br0"));
    }

    #[test]
    fn pci_addresses() {
        assert_eq!(
            normalize_bdf("0000:00:00.00").as_deref(),
            Some("0000:00:00.0")
        );
        assert_eq!(
            normalize_bdf("0000:00:05.0").as_deref(),
            Some("0000:00:05.0")
        );
        assert_eq!(normalize_bdf("0:3:1f.7").as_deref(), Some("0000:03:1f.7"));
        assert_eq!(normalize_bdf("0000:00:20.0"), None);
        assert_eq!(normalize_bdf("0000:00:00"), None);
        assert_eq!(normalize_bdf("x"), None);
    }

    /// A link as rtnetlink reports it, classified as sysfs would.
    fn add_link(net: &mut NetState, facts: crate::net::LinkFacts<'_>, class: NicClass) {
        net.update_link(&facts);
        net.links.get_mut(&facts.index).unwrap().class = Some(class);
    }

    /// Two PCI NICs and a bond over them that gave both its own MAC (as active-backup does).
    fn bonded_pci_pair() -> NetState {
        use crate::net::LinkFacts;
        use crate::net::PciNic;
        let bond_mac = Mac([2, 0, 0, 0, 0, 0xb0]);
        let mut net = NetState::default();
        let bond = LinkFacts {
            index: 9,
            name: Some("bond0"),
            mac: Some(bond_mac),
            kind: Some("bond"),
            ..LinkFacts::default()
        };
        add_link(&mut net, bond, NicClass::Virtual);
        net.update_addr(9, "10.0.7.2".parse().unwrap(), 24, 0, Default::default());
        for (index, name, last) in [(2, "enp0s5", 5), (3, "enp0s6", 6)] {
            let member = LinkFacts {
                index,
                name: Some(name),
                mac: Some(bond_mac),
                perm_mac: Some(Mac([0x52, 0x54, 0, 0x12, 0x34, last])),
                master: Some(9),
                ..LinkFacts::default()
            };
            let pci = PciNic {
                bdf: format!("0000:00:0{last}.0"),
                topology: format!("devices/pci0000:00/0000:00:0{last}.0"),
                vendor: None,
                device: None,
                driver: None,
            };
            add_link(&mut net, member, NicClass::Pci(pci));
        }
        net
    }

    #[test]
    fn bonded_nics_keep_their_own_directories() {
        let mut d = DesiredKeys::new();
        let hints = ToolstackHints::default();
        NicRenderer::new().render(&bonded_pci_pair(), &hints, &NicOptions::default(), &mut d);
        for (mac, name) in [("525400123405", "enp0s5"), ("525400123406", "enp0s6")] {
            assert_eq!(d.get(&format!("attr/net/{mac}/name")), Some(name));
            // the MAC on the wire is still what `mac` says
            assert_eq!(
                d.get(&format!("attr/net/{mac}/mac")),
                Some("02:00:00:00:00:b0")
            );
            assert_eq!(d.get(&format!("attr/net/{mac}/bond")), Some("bond0"));
            assert_eq!(d.get(&format!("attr/net/{mac}/ipv4/0")), Some("10.0.7.2"));
        }
        assert!(!d
            .iter()
            .any(|(k, _)| k.starts_with("attr/net/0200000000b0")));
    }

    #[test]
    fn a_bonded_vf_is_found_by_its_own_mac() {
        let mut hints = ToolstackHints::default();
        hints
            .sriov_vfs
            .push((4, Mac([0x52, 0x54, 0, 0x12, 0x34, 6])));
        let mut d = DesiredKeys::new();
        NicRenderer::new().render(&bonded_pci_pair(), &hints, &NicOptions::default(), &mut d);
        let vf = NicDir::SriovVf(4).to_string();
        assert_eq!(d.get(&format!("{vf}/name")), Some("enp0s6"));
        assert_eq!(d.get("attr/net/525400123405/name"), Some("enp0s5"));
        assert_eq!(d.get("attr/net/525400123406/name"), None);
    }

    #[test]
    fn two_ipvlans_on_one_nic_keep_their_own_directories() {
        use crate::net::LinkFacts;
        let mac = Mac([0, 0x16, 0x3e, 0, 0, 0]);
        let mut net = NetState::default();
        let eth0 = LinkFacts {
            index: 2,
            name: Some("eth0"),
            mac: Some(mac),
            ..LinkFacts::default()
        };
        add_link(&mut net, eth0, NicClass::Vif { devid: 0 });
        // an ipvlan has its lower device's MAC
        for (index, name, ip) in [(5, "ipvl0", "10.0.8.1"), (6, "ipvl1", "10.0.8.2")] {
            let ipvlan = LinkFacts {
                index,
                name: Some(name),
                mac: Some(mac),
                lower: Some(2),
                kind: Some("ipvlan"),
                ..LinkFacts::default()
            };
            add_link(&mut net, ipvlan, NicClass::Virtual);
            net.update_addr(index, ip.parse().unwrap(), 24, 0, Default::default());
        }
        let mut d = DesiredKeys::new();
        let hints = ToolstackHints::default();
        NicRenderer::new().render(&net, &hints, &NicOptions::default(), &mut d);
        for (index, name, ip) in [(5, "ipvl0", "10.0.8.1"), (6, "ipvl1", "10.0.8.2")] {
            let dir = format!("attr/vif/0/ipvlan/{index}");
            assert_eq!(d.get(&format!("{dir}/name")), Some(name));
            assert_eq!(d.get(&format!("{dir}/mac")), Some("00:16:3e:00:00:00"));
            assert_eq!(d.get(&format!("{dir}/ipv4/0")), Some(ip));
        }
        assert!(!d.iter().any(|(k, _)| k.contains("/macvlan/")));
    }

    #[test]
    fn seeding_keeps_indexes() {
        let mut r = NicRenderer::new();
        let published = [
            ("attr/vif/0/ipv4/1", "10.0.0.2"),
            ("attr/vif/0/ipv4/1/prefix", "24"),
            ("attr/vif/0/name", "eth0"),
            ("attr/vif/0/ipv4/0", "not-an-ip"),
        ];
        // An earlier allocation in memory loses to what the store holds.
        r.slots
            .entry("attr/vif/0/ipv4".into())
            .or_default()
            .insert("10.0.0.2".parse().unwrap(), 0);
        r.seed(crate::desired::ReadBack::from_published(published.iter().copied()).address_indexes);
        let slots = &r.slots["attr/vif/0/ipv4"];
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[&"10.0.0.2".parse::<IpAddr>().unwrap()], 1);
    }
}
