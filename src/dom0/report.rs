//! What one guest publishes, as the dom0 commands show it: [`GuestReport`] and its parts.
//! Made from a [`super::tree::DomainTree`] by [`super::parse`]; printed by [`super::text`] and
//! [`super::json`].

use super::tree::is_denied;
use crate::layout::{Mac, NicDir};

/// Which agent wrote the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Agent {
    /// `data/xenbeacon/layout` = `layout`.
    Xenbeacon {
        layout: String,
        version: Option<String>,
    },
    /// Only the keys XAPI reads (`data/os_*`, `attr/PVAddons`, `attr/vif`, ...): another agent
    /// (xe-guest-utilities, xen-guest-agent, Windows PV tools). `pv_version` from
    /// `attr/PVAddons/*Version`.
    XapiStyle { pv_version: Option<String> },
    /// Nothing an agent writes.
    None,
    /// The keys that would tell could not be read.
    NoAccess,
}

impl Agent {
    /// `xenbeacon layout 1`, `xapi-style`, `none`, `no access`.
    pub fn label(&self) -> String {
        match self {
            Agent::Xenbeacon { layout, .. } => format!("xenbeacon layout {layout}"),
            Agent::XapiStyle { .. } => "xapi-style".into(),
            Agent::None => "none".into(),
            Agent::NoAccess => "no access".into(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Os {
    pub name: Option<String>,
    pub distro: Option<String>,
    pub major: Option<String>,
    pub minor: Option<String>,
    /// Kernel release (`data/os_uname`).
    pub kernel: Option<String>,
    /// `data/host_name_dns`, with `.` and `data/domain` when that is there: what xapi shows as
    /// the VM's `netbios_name`.
    pub host_name: Option<String>,
}

impl Os {
    /// `12.4`, `12`, or nothing.
    pub fn version(&self) -> Option<String> {
        match (&self.major, &self.minor) {
            (Some(a), Some(b)) => Some(format!("{a}.{b}")),
            (Some(a), None) => Some(a.clone()),
            _ => None,
        }
    }
}

/// Memory, in KiB: what the guest says (`data/meminfo_*`) and what the toolstack set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub total_kb: Option<u64>,
    pub free_kb: Option<u64>,
    /// `memory/target` (the balloon target the toolstack set; `xl mem-set`).
    pub target_kb: Option<u64>,
    /// `memory/static-max`.
    pub static_max_kb: Option<u64>,
    /// `control/feature-balloon` exists: squeezed may set balloon targets (its value is
    /// never read).
    pub feature_balloon: bool,
}

/// The guest's balloon driver, as xenbeacon reports it (`data/balloon_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Balloon {
    pub target_kb: Option<u64>,
    pub current_kb: Option<u64>,
    /// `reached`, `ballooning`, `stuck` (anything else is kept as written).
    pub state: Option<String>,
    pub reason: Option<String>,
}

/// How a NIC is attached, from where its keys are and their `bus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NicKind {
    /// `attr/vif/<devid>`: a PV vif.
    Vif,
    /// `xenserver/attr/net-sriov-vf/<vfid>`: an SR-IOV VF under XAPI.
    SriovVf,
    /// `attr/net/<mac>` with `bus` = `pci`.
    Pci,
    Usb,
    Platform,
    /// `bus` = `virtual` (reported with `--include-iface`).
    Virtual,
    /// `attr/net/<mac>` with another `bus` (as written) or none.
    Other(Option<String>),
    /// `attr/<ifname>/ip`: the pre-2017 layout XAPI still reads as a fallback.
    Legacy,
}

impl NicKind {
    /// For people: `vif`, `SR-IOV VF`, `PCI`, `USB`, `platform`, `virtual`, the bus, `legacy`.
    pub fn label(&self) -> String {
        match self {
            NicKind::Vif => "vif".into(),
            NicKind::SriovVf => "SR-IOV VF".into(),
            NicKind::Pci => "PCI".into(),
            NicKind::Usb => "USB".into(),
            NicKind::Platform => "platform".into(),
            NicKind::Virtual => "virtual".into(),
            NicKind::Other(Some(bus)) => bus.clone(),
            NicKind::Other(None) => "NIC".into(),
            NicKind::Legacy => "legacy".into(),
        }
    }

    /// For JSON: `vif`, `sriov-vf`, `pci`, `usb`, `platform`, `virtual`, `other`, `legacy`.
    pub fn id(&self) -> &'static str {
        match self {
            NicKind::Vif => "vif",
            NicKind::SriovVf => "sriov-vf",
            NicKind::Pci => "pci",
            NicKind::Usb => "usb",
            NicKind::Platform => "platform",
            NicKind::Virtual => "virtual",
            NicKind::Other(_) => "other",
            NicKind::Legacy => "legacy",
        }
    }
}

/// One `ipv4/<n>` or `ipv6/<n>` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// `<n>`.
    pub index: u32,
    /// As published (not necessarily a valid address).
    pub addr: String,
    /// `<n>/prefix`, if it is a valid prefix length for the family.
    pub prefix: Option<u8>,
}

impl Address {
    /// `10.0.0.2/24`, or the bare address without a prefix.
    pub fn cidr(&self) -> String {
        match self.prefix {
            Some(p) => format!("{}/{p}", self.addr),
            None => self.addr.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpperKind {
    Vlan,
    Macvlan,
    Ipvlan,
}

/// A VLAN (`vlan/<vid>/`), macvlan (`macvlan/<mac>/`) or ipvlan (`ipvlan/<ifindex>/`) on a NIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upper {
    pub kind: UpperKind,
    /// The VLAN id, the macvlan's MAC key or the ipvlan's interface index.
    pub id: String,
    pub name: Option<String>,
    pub mac: Option<String>,
    pub ipv4: Vec<Address>,
    pub ipv6: Vec<Address>,
}

impl Upper {
    /// `VLAN 100`, `macvlan`.
    pub fn label(&self) -> String {
        match self.kind {
            UpperKind::Vlan => format!("VLAN {}", self.id),
            UpperKind::Macvlan => "macvlan".into(),
            UpperKind::Ipvlan => "ipvlan".into(),
        }
    }
}

/// One NIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    pub kind: NicKind,
    /// vif devid, VF id, MAC key (`525400123405`) or legacy interface name.
    pub id: String,
    /// Its directory, relative to the home (`attr/vif/0`).
    pub path: String,
    /// False for a vif only the toolstack knows (`device/vif/<devid>`), with nothing from the
    /// guest.
    pub reported: bool,
    pub name: Option<String>,
    pub mac: Option<String>,
    pub carrier: Option<bool>,
    pub bridge: Option<String>,
    pub bond: Option<String>,
    pub bus: Option<String>,
    pub location: Option<String>,
    pub host_location: Option<String>,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub driver: Option<String>,
    pub compatible: Option<String>,
    pub topology: Option<String>,
    /// `kind`: the kernel's link kind.
    pub link_kind: Option<String>,
    pub ipv4: Vec<Address>,
    pub ipv6: Vec<Address>,
    pub uppers: Vec<Upper>,
}

impl Nic {
    pub(super) fn new(kind: NicKind, id: &str, path: &str) -> Nic {
        Nic {
            kind,
            id: id.to_owned(),
            path: path.to_owned(),
            reported: true,
            name: None,
            mac: None,
            carrier: None,
            bridge: None,
            bond: None,
            bus: None,
            location: None,
            host_location: None,
            vendor: None,
            product: None,
            driver: None,
            compatible: None,
            topology: None,
            link_kind: None,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            uppers: Vec::new(),
        }
    }

    /// `vif 0`, `SR-IOV VF 3`, `PCI`, ...
    pub fn label(&self) -> String {
        match self.kind {
            NicKind::Vif | NicKind::SriovVf => format!("{} {}", self.kind.label(), self.id),
            _ => self.kind.label(),
        }
    }

    /// The NIC's MAC as bytes: from `mac`, else from its directory (`attr/net/<mac>`).
    pub fn mac_bytes(&self) -> Option<Mac> {
        self.mac.as_deref().and_then(Mac::parse).or(self.dir_mac())
    }

    /// The MAC that names the directory (`attr/net/<mac>`): the device's permanent one.
    fn dir_mac(&self) -> Option<Mac> {
        match NicDir::parse(&self.path) {
            Some((NicDir::Net(mac), "")) => Some(mac),
            _ => None,
        }
    }

    /// `bridge br0`, `bond bond0`, both, or nothing.
    pub fn via(&self) -> Option<String> {
        let parts: Vec<String> = [("bridge", &self.bridge), ("bond", &self.bond)]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Everything one guest publishes, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestReport {
    pub domid: u32,
    pub name: Option<String>,
    /// From the `vm` key (`/vm/<uuid>`).
    pub uuid: Option<String>,
    pub agent: Agent,
    pub os: Os,
    /// `data/xenbeacon/stage`.
    pub stage: Option<String>,
    /// The key that says the guest finished booting, if it does: `data/xenbeacon/booted` (= 1)
    /// for xenbeacon, `data/updated` (exists) for XAPI-style agents.
    pub booted_by: Option<&'static str>,
    /// `data/updated`, as written.
    pub updated: Option<String>,
    pub memory: Memory,
    pub balloon: Option<Balloon>,
    /// vifs by devid, SR-IOV VFs by id, other NICs by MAC key, legacy interfaces by name.
    pub nics: Vec<Nic>,
    /// Keys under `data/`, `attr/` and `xenserver/attr/` not understood above, as written.
    pub other: Vec<(String, String)>,
    /// Paths xenstored refused (see [`DomainTree::denied`](super::tree::DomainTree::denied)).
    pub denied: Vec<String>,
    /// Not everything could be read (node limit).
    pub truncated: bool,
}

impl GuestReport {
    /// True when `path` (relative to the home) could not be read.
    pub fn no_access(&self, path: &str) -> bool {
        is_denied(&self.denied, path)
    }

    /// Nothing at all could be read.
    pub fn fully_denied(&self) -> bool {
        self.denied.iter().any(String::is_empty)
    }

    /// How much of the guest's home could be read: `none`, `partial` or `full`.
    pub fn access(&self) -> &'static str {
        if self.fully_denied() {
            "none"
        } else if self.denied.is_empty() {
            "full"
        } else {
            "partial"
        }
    }

    pub fn booted(&self) -> bool {
        self.booted_by.is_some()
    }

    /// The reported NIC with this MAC: the one whose directory it names (the device's
    /// permanent MAC) first, else the first whose current `mac` it is (a bond gives every
    /// member its own MAC).
    pub fn nic_by_mac(&self, mac: &Mac) -> Option<&Nic> {
        let reported = || self.nics.iter().filter(|n| n.reported);
        reported()
            .find(|n| n.dir_mac().as_ref() == Some(mac))
            .or_else(|| reported().find(|n| n.mac_bytes().as_ref() == Some(mac)))
    }
}
