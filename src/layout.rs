//! The XenStore key schema: every key name and subtree xenbeacon writes, the layout version,
//! and the typed NIC directories. The agent renders into it and the dom0 commands read from
//! it, so the writer and the reader cannot drift apart. docs/xenstore-layout.md documents each
//! key, docs/consumers.md what the toolstack does with it.
//!
//! This module imports nothing from the crate: it is the bottom of the dependency graph.

use std::fmt;

/// The version in `data/xenbeacon/layout`. 2: the balloon keys moved from `data/balloon_*` to
/// `data/xenbeacon/balloon/*`; `data/host_name_dns` and `data/domain`.
pub const LAYOUT_VERSION: &str = "2";

/// Key names, relative to the domain's home.
pub mod key {
    pub const OS_NAME: &str = "data/os_name";
    pub const OS_DISTRO: &str = "data/os_distro";
    pub const OS_MAJORVER: &str = "data/os_majorver";
    pub const OS_MINORVER: &str = "data/os_minorver";
    pub const OS_UNAME: &str = "data/os_uname";
    pub const MEMINFO_TOTAL: &str = "data/meminfo_total";
    pub const MEMINFO_FREE: &str = "data/meminfo_free";
    /// Written by the publisher itself, not rendered from the model.
    pub const UPDATED: &str = "data/updated";
    pub const PV_MAJOR: &str = "attr/PVAddons/MajorVersion";
    pub const PV_MINOR: &str = "attr/PVAddons/MinorVersion";
    pub const PV_MICRO: &str = "attr/PVAddons/MicroVersion";
    pub const PV_BUILD: &str = "attr/PVAddons/BuildVersion";
    pub const PV_INSTALLED: &str = "attr/PVAddons/Installed";
    /// Version of the layout this agent publishes; readers such as `xenbeacon list` use it to
    /// tell xenbeacon guests from other agents.
    pub const LAYOUT: &str = "data/xenbeacon/layout";
    pub const VERSION: &str = "data/xenbeacon/version";
    /// `initramfs` or `rootfs`: where the agent that published last runs.
    pub const STAGE: &str = "data/xenbeacon/stage";
    /// `1` once the guest finished booting; written by `xenbeacon booted` (or the agent with
    /// `--booted`), never removed by the agent.
    pub const BOOTED: &str = "data/xenbeacon/booted";
    /// The balloon keys live below `data/xenbeacon/` since layout 2: xenopsd copies `data/`
    /// one level deep, and xapi calls `VM.update_allowed_operations` for every change there it
    /// does not ignore, while `current_kb` changes every second of ballooning. Only our own
    /// dom0 commands read them.
    pub const BALLOON_TARGET: &str = "data/xenbeacon/balloon/target_kb";
    pub const BALLOON_CURRENT: &str = "data/xenbeacon/balloon/current_kb";
    /// `reached`, `ballooning` or `stuck`.
    pub const BALLOON_STATE: &str = "data/xenbeacon/balloon/state";
    pub const BALLOON_REASON: &str = "data/xenbeacon/balloon/reason";
    /// Layout 1's balloon keys: read by the dom0 commands, removed by the agent as stale.
    pub const LEGACY_BALLOON_TARGET: &str = "data/balloon_target_kb";
    pub const LEGACY_BALLOON_CURRENT: &str = "data/balloon_current_kb";
    pub const LEGACY_BALLOON_STATE: &str = "data/balloon_state";
    pub const LEGACY_BALLOON_REASON: &str = "data/balloon_reason";
    /// The guest's host name without its domain: xapi's `netbios_name` (with `data/domain`).
    pub const HOST_NAME: &str = "data/host_name_dns";
    /// The guest's domain name, when it knows one locally.
    pub const DOMAIN: &str = "data/domain";
    /// XAPI's squeezed: exists = "booted far enough for balloon targets".
    pub const FEATURE_BALLOON: &str = "control/feature-balloon";
    /// `1` while the agent applies address requests (`--apply-ip-settings`); XAPI refuses
    /// `VIF.configure_ipv4/6` without it (xen-api `ocaml/xapi/xapi_vif.ml`:166-174 at
    /// e2ee48d6). Removed when the option is off, refused under xl like `feature-balloon`.
    pub const FEATURE_STATIC_IP_SETTING: &str = "control/feature-static-ip-setting";
}

/// Single keys in directories shared with other software (`data/` is "available for arbitrary
/// domain use"): only these are ever read back or removed there.
pub const OWNED_KEYS: [&str; 18] = [
    key::OS_NAME,
    key::OS_DISTRO,
    key::OS_MAJORVER,
    key::OS_MINORVER,
    key::OS_UNAME,
    key::MEMINFO_TOTAL,
    key::MEMINFO_FREE,
    key::UPDATED,
    key::LAYOUT,
    key::VERSION,
    key::STAGE,
    key::LEGACY_BALLOON_TARGET,
    key::LEGACY_BALLOON_CURRENT,
    key::LEGACY_BALLOON_STATE,
    key::LEGACY_BALLOON_REASON,
    key::HOST_NAME,
    key::DOMAIN,
    key::FEATURE_STATIC_IP_SETTING,
];

/// Keys read back and written like the others, but never removed: `data/xenbeacon/booted` is
/// also written by `xenbeacon booted`, and squeezed takes the existence of
/// `control/feature-balloon` as "booted", which must not flap.
pub const KEEP_KEYS: [&str; 2] = [key::BOOTED, key::FEATURE_BALLOON];

/// Keys the toolstack may forbid the guest for good: under xl/libxl `control/` is read-only
/// to the guest, and xenstored answers EACCES. The first EACCES ends the attempts for the life
/// of the agent, logged once at info level (it is normal there: XAPI's squeezed, which reads
/// `control/feature-balloon`, is not there either). Any other refusal follows the usual rules.
pub const OPTIONAL_KEYS: [&str; 2] = [key::FEATURE_BALLOON, key::FEATURE_STATIC_IP_SETTING];

/// xenbeacon's own keys (`key::LAYOUT`, `key::STAGE`, ...).
pub const XENBEACON_DIR: &str = "data/xenbeacon";
/// The PV drivers' version keys (`key::PV_*`), which XAPI reads.
pub const PV_ADDONS_DIR: &str = "attr/PVAddons";
/// The balloon keys' directory (layout 2).
pub const BALLOON_SUBTREE: &str = "data/xenbeacon/balloon";
/// PV vifs, and device NICs that carry a vif's MAC: `attr/vif/<devid>`.
pub const VIF_DIR: &str = "attr/vif";
/// Every other Ethernet device: `attr/net/<mac>`.
pub const NET_DIR: &str = "attr/net";
/// SR-IOV VFs the toolstack (XAPI) mapped: `xenserver/attr/net-sriov-vf/<vfid>`.
pub const SRIOV_VF_DIR: &str = "xenserver/attr/net-sriov-vf";
/// Subtrees the NIC keys live in.
pub const NIC_SUBTREES: [&str; 3] = [VIF_DIR, NET_DIR, SRIOV_VF_DIR];
/// Subtrees the agent owns as a whole: anything in them it did not render is stale.
pub const OWNED_SUBTREES: [&str; 5] = [
    PV_ADDONS_DIR,
    BALLOON_SUBTREE,
    VIF_DIR,
    NET_DIR,
    SRIOV_VF_DIR,
];

/// Key names inside a NIC's directory ([`NicDir`]) and inside the directories of the VLANs and
/// macvlans on it ([`UpperDir`]).
pub mod nic_key {
    pub const NAME: &str = "name";
    /// `mac` (a vif's is `mac/0`: [`super::NicDir::mac_key`]).
    pub const MAC: &str = "mac";
    pub const CARRIER: &str = "carrier";
    pub const BRIDGE: &str = "bridge";
    pub const BOND: &str = "bond";
    pub const BUS: &str = "bus";
    pub const LOCATION: &str = "location";
    pub const HOST_LOCATION: &str = "host-location";
    pub const VENDOR: &str = "vendor";
    pub const PRODUCT: &str = "product";
    pub const DRIVER: &str = "driver";
    pub const COMPATIBLE: &str = "compatible";
    pub const TOPOLOGY: &str = "topology";
    /// The kernel's link kind.
    pub const KIND: &str = "kind";
    /// `ipv4/<n>` and `ipv6/<n>`, each with `<n>/prefix`.
    pub const IPV4: &str = "ipv4";
    pub const IPV6: &str = "ipv6";
    pub const PREFIX: &str = "prefix";
    /// [`super::UpperDir::Vlan`]: `vlan/<vid>`.
    pub const VLAN: &str = "vlan";
    /// [`super::UpperDir::Macvlan`]: `macvlan/<mac>`.
    pub const MACVLAN: &str = "macvlan";
    /// [`super::UpperDir::Ipvlan`]: `ipvlan/<ifindex>`.
    pub const IPVLAN: &str = "ipvlan";
}

/// The toolstack's address requests (`--apply-ip-settings`): keys the toolstack writes and the
/// agent reads, and the two the agent answers with. Not part of the published key set: the
/// publisher never reads them back or removes them.
pub mod ip_setting {
    /// Announced by the agent when it applies requests.
    pub const FEATURE: &str = super::key::FEATURE_STATIC_IP_SETTING;
    /// xenopsd's requests: `xenserver/device/vif/<devid>/static-ip-setting/*`.
    pub const XENOPSD_DIR: &str = "xenserver/device/vif";
    pub const SUBDIR: &str = "static-ip-setting";
    /// Ansible's `xenserver_guest`: `vm-data/networks/<device>/*`.
    pub const VM_DATA_DIR: &str = "vm-data/networks";
    pub const MAC: &str = "mac";
    /// `0` unspecified, `1` static, `2` DHCP.
    pub const ENABLED: &str = "enabled";
    /// CIDR.
    pub const ADDRESS: &str = "address";
    pub const GATEWAY: &str = "gateway";
    /// `0` unspecified, `1` static, `2` autoconf.
    pub const ENABLED6: &str = "enabled6";
    pub const ADDRESS6: &str = "address6";
    pub const GATEWAY6: &str = "gateway6";
    /// The guest's answer: `0` and an empty `error-msg` on success.
    pub const ERROR_CODE: &str = "error-code";
    pub const ERROR_MSG: &str = "error-msg";
}

/// True if `path` is `dir` or below it (component-wise: `attr/vif0` is not below `attr/vif`).
pub fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The owned subtree `key` lies in (or is), if any.
pub fn owning_subtree(key: &str) -> Option<&'static str> {
    OWNED_SUBTREES.iter().copied().find(|t| is_under(key, t))
}

/// True when `key` is one the agent may write or remove.
pub fn is_owned(key: &str) -> bool {
    OWNED_KEYS.contains(&key) || owning_subtree(key).is_some()
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parses `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` or `aabbccddeeff` (any case, surrounding
    /// whitespace ignored); every byte is two hex digits.
    pub fn parse(s: &str) -> Option<Mac> {
        let s = s.trim();
        let mut mac = [0u8; 6];
        let b = s.as_bytes();
        let (stride, sep) = match b.len() {
            12 => (2, None),
            17 => (3, Some(b[2])),
            _ => return None,
        };
        if sep.is_some_and(|c| c != b':' && c != b'-') {
            return None;
        }
        for (i, byte) in mac.iter_mut().enumerate() {
            let at = i * stride;
            if let Some(sep) = sep.filter(|_| i > 0) {
                if b[at - 1] != sep {
                    return None;
                }
            }
            let pair = s.get(at..at + 2)?;
            if !pair.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Mac(mac))
    }

    /// `aabbccddeeff`: the MAC as a XenStore path component (`[A-Za-z0-9_@-]` only).
    pub fn key(&self) -> MacKey {
        MacKey(*self)
    }
}

/// `aa:bb:cc:dd:ee:ff`.
impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [b':'; 17];
        for (i, b) in self.0.iter().enumerate() {
            text[i * 3..i * 3 + 2].copy_from_slice(&hex_pair(*b));
        }
        // Only hex digits and colons were written.
        f.write_str(std::str::from_utf8(&text).unwrap_or_default())
    }
}

/// Two lowercase hex digits, without the formatting machinery's width handling.
fn hex_pair(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]
}

/// A MAC written as a path component, `aabbccddeeff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacKey(Mac);

impl fmt::Display for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; 12];
        for (i, b) in self.0 .0.iter().enumerate() {
            text[i * 2..i * 2 + 2].copy_from_slice(&hex_pair(*b));
        }
        f.write_str(std::str::from_utf8(&text).unwrap_or_default())
    }
}

/// Where one NIC's keys live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NicDir {
    /// `attr/vif/<devid>`.
    Vif(u32),
    /// `xenserver/attr/net-sriov-vf/<vfid>`.
    SriovVf(u32),
    /// `attr/net/<mac>`.
    Net(Mac),
}

impl NicDir {
    /// The NIC directory `path` is or lies in, with the rest of the path below it (`""` for
    /// the directory itself).
    pub fn parse(path: &str) -> Option<(NicDir, &str)> {
        let split = |dir: &str| {
            let rest = path.strip_prefix(dir)?.strip_prefix('/')?;
            Some(rest.split_once('/').unwrap_or((rest, "")))
        };
        let numeric = |id: &str| {
            (!id.is_empty() && id.len() <= 10 && id.bytes().all(|b| b.is_ascii_digit()))
                .then(|| id.parse().ok())
                .flatten()
        };
        if let Some((id, rest)) = split(VIF_DIR) {
            return Some((NicDir::Vif(numeric(id)?), rest));
        }
        if let Some((id, rest)) = split(SRIOV_VF_DIR) {
            return Some((NicDir::SriovVf(numeric(id)?), rest));
        }
        let (mac, rest) = split(NET_DIR)?;
        if mac.len() != 12 {
            return None;
        }
        Some((NicDir::Net(Mac::parse(mac)?), rest))
    }

    /// The MAC key under this directory: vifs keep Xen's documented `mac/<index>`.
    pub fn mac_key(&self) -> &'static str {
        match self {
            NicDir::Vif(_) => "mac/0",
            NicDir::SriovVf(_) | NicDir::Net(_) => "mac",
        }
    }
}

/// The directory's path, relative to the home.
impl fmt::Display for NicDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NicDir::Vif(id) => write!(f, "{VIF_DIR}/{id}"),
            NicDir::SriovVf(id) => write!(f, "{SRIOV_VF_DIR}/{id}"),
            NicDir::Net(mac) => write!(f, "{NET_DIR}/{}", mac.key()),
        }
    }
}

/// What sits below a NIC and gets a directory of its own there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpperDir {
    /// `vlan/<vid>`.
    Vlan(u16),
    /// `macvlan/<mac>` (also macvtap).
    Macvlan(Mac),
    /// `ipvlan/<ifindex>`: an ipvlan has its lower device's MAC, so only its interface index
    /// tells two apart.
    Ipvlan(u32),
}

impl fmt::Display for UpperDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpperDir::Vlan(vid) => write!(f, "vlan/{vid}"),
            UpperDir::Macvlan(mac) => write!(f, "macvlan/{}", mac.key()),
            UpperDir::Ipvlan(index) => write!(f, "ipvlan/{index}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_respects_components() {
        assert!(is_under("attr/vif/0", "attr/vif"));
        assert!(is_under("attr/vif", "attr/vif"));
        assert!(!is_under("attr/vif0", "attr/vif"));
        assert!(!is_under("attr", "attr/vif"));
    }

    #[test]
    fn ownership() {
        assert!(is_owned("data/os_name"));
        assert!(is_owned("attr/PVAddons/Foo"));
        assert!(is_owned("data/xenbeacon/balloon/state"));
        assert!(!is_owned("attr/PVAddonsX"));
        assert!(!is_owned("data/agent/status"));
        assert!(!is_owned("control/shutdown"));
        assert_eq!(owning_subtree("attr/net/aa/ipv4/0"), Some(NET_DIR));
    }

    #[test]
    fn macs() {
        let m = Mac::parse(" 00:16:3E:0a:00:ff\n").unwrap();
        assert_eq!(m.to_string(), "00:16:3e:0a:00:ff");
        assert_eq!(m.key().to_string(), "00163e0a00ff");
        assert_eq!(Mac::parse("00-16-3e-0a-00-ff"), Some(m));
        assert_eq!(Mac::parse("00163e0a00ff"), Some(m));
        for bad in [
            "00:16:3e",
            "00:16:3e:00:00:00:00",
            "zz:16:3e:00:00:00",
            "00:16-3e:00:00:00",
            "0:16:3e:00:00:000",
            "00.16.3e.00.00.00",
            "+0163e0a00ff",
            "0:16:3e:00:00:0a0",
            "00:163e00000a",
            "",
        ] {
            assert_eq!(Mac::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn nic_dirs_round_trip() {
        let mac = Mac::parse("52:54:00:12:34:05").unwrap();
        for (dir, path) in [
            (NicDir::Vif(0), "attr/vif/0"),
            (NicDir::SriovVf(12), "xenserver/attr/net-sriov-vf/12"),
            (NicDir::Net(mac), "attr/net/525400123405"),
        ] {
            assert_eq!(dir.to_string(), path);
            assert_eq!(NicDir::parse(path), Some((dir, "")));
            let below = format!("{path}/ipv4/0");
            assert_eq!(NicDir::parse(&below), Some((dir, "ipv4/0")));
        }
        assert_eq!(NicDir::parse("attr/vif/x"), None);
        assert_eq!(NicDir::parse("attr/vif/+1"), None);
        assert_eq!(NicDir::parse("attr/net/52-54-00-12-34-05"), None);
        assert_eq!(NicDir::parse("attr/vif"), None);
        assert_eq!(NicDir::parse("attr/vifs/0"), None);
        assert_eq!(UpperDir::Vlan(100).to_string(), "vlan/100");
        assert_eq!(UpperDir::Macvlan(mac).to_string(), "macvlan/525400123405");
        // Display spells the names itself (a format argument costs the guest binary 80 bytes).
        assert_eq!(nic_key::VLAN, "vlan");
        assert_eq!(nic_key::MACVLAN, "macvlan");
        assert_eq!(UpperDir::Ipvlan(7).to_string(), "ipvlan/7");
        assert_eq!(nic_key::IPVLAN, "ipvlan");
    }
}
