//! The model of the guest: what the sources found, before it becomes XenStore keys.

use std::collections::BTreeMap;
use std::fmt;

use crate::layout::Mac;
use crate::net::NetState;

// Facts as the sources read them; the sources import these types, never the other way.

/// The fields the agent publishes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: Option<String>,
    pub name: Option<String>,
    pub pretty_name: Option<String>,
    pub version_id: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total_kb: u64,
    /// `MemAvailable` (Linux >= 3.14).
    pub available_kb: Option<u64>,
    pub free_kb: Option<u64>,
}

impl MemInfo {
    /// What XAPI calls free memory: `MemAvailable`, or `MemFree` on kernels without it.
    pub fn free_for_toolstack(&self) -> u64 {
        self.available_kb.or(self.free_kb).unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalloonInfo {
    pub target_kb: u64,
    pub current_kb: u64,
}

/// What the guest calls itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostIdentity {
    /// The host name without its domain.
    pub host: Option<String>,
    pub domain: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BootStage {
    Initramfs,
    /// Also what is assumed when /proc/self/mountinfo cannot tell.
    #[default]
    Rootfs,
}

impl BootStage {
    pub fn as_str(self) -> &'static str {
        match self {
            BootStage::Initramfs => "initramfs",
            BootStage::Rootfs => "rootfs",
        }
    }
}

impl fmt::Display for BootStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Operating system identity as XAPI understands it (`data/os_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsInfo {
    /// os-release `PRETTY_NAME` (or `NAME`), else `Linux <release>`.
    pub name: String,
    /// os-release `ID`, else `linux`.
    pub distro: String,
    /// First component of `VERSION_ID`, when it is all digits.
    pub major: Option<String>,
    /// Second component of `VERSION_ID`, when it is all digits.
    pub minor: Option<String>,
    /// Kernel release, `uname -r`.
    pub uname: String,
}

impl OsInfo {
    /// Builds the identity from os-release, or the initramfs fallback when there is none.
    pub fn new(os: Option<&OsRelease>, kernel_release: &str) -> OsInfo {
        let fallback_name = format!("Linux {kernel_release}");
        let Some(os) = os else {
            return OsInfo {
                name: fallback_name,
                distro: "linux".into(),
                major: None,
                minor: None,
                uname: kernel_release.into(),
            };
        };
        let name = os
            .pretty_name
            .as_deref()
            .filter(says_something)
            .or(os.name.as_deref().filter(says_something))
            .map_or(fallback_name, str::to_owned);
        let distro = os
            .id
            .as_deref()
            .filter(says_something)
            .unwrap_or("linux")
            .to_owned();
        let mut parts = os.version_id.as_deref().unwrap_or("").split('.');
        let major = parts.next().and_then(numeric);
        let minor = major.as_ref().and(parts.next().and_then(numeric));
        OsInfo {
            name,
            distro,
            major,
            minor,
            uname: kernel_release.into(),
        }
    }
}

/// A value that is more than spaces and control characters (which sanitising would turn into
/// an empty string).
fn says_something(s: &&str) -> bool {
    s.chars().any(|c| !c.is_whitespace() && !c.is_control())
}

/// A version component XAPI can parse as an integer: 1 to 9 ASCII digits.
fn numeric(s: &str) -> Option<String> {
    (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_owned())
}

/// The balloon driver's last reading and what it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balloon {
    pub info: BalloonInfo,
    pub state: BalloonState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalloonState {
    /// `current_kb` = `target_kb`.
    Reached,
    /// Not there yet, and `current_kb` moved within the stuck timeout.
    Ballooning,
    /// Not there, and nothing moved for the stuck timeout.
    Stuck,
}

impl BalloonState {
    pub fn as_str(self) -> &'static str {
        match self {
            BalloonState::Reached => "reached",
            BalloonState::Ballooning => "ballooning",
            BalloonState::Stuck => "stuck",
        }
    }
}

/// Facts only the toolstack's XenStore entries tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolstackHints {
    /// `xenserver/device/net-sriov-vf/<vfid>/mac` (XAPI only).
    pub sriov_vfs: Vec<(u32, Mac)>,
    /// Guest PCI address -> host PCI address, from the pcifront backend (`vdev-N` / `dev-N`).
    pub pci_host: BTreeMap<String, String>,
    /// `device/vif/<devid>/mac`: the MAC the toolstack gave each vif.
    pub vif_macs: Vec<(u32, Mac)>,
}

/// Every fact the agent publishes, in source terms: the sources fill it, the renderers turn
/// it into keys. No I/O here, and no wire format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestModel {
    pub os: OsInfo,
    /// `None` until /proc/meminfo could be read.
    pub memory: Option<MemInfo>,
    /// Host and domain name.
    pub host: HostIdentity,
    /// Links and addresses (rtnetlink) and each link's class (sysfs).
    pub net: NetState,
    /// What the toolstack's own keys say about the NICs.
    pub hints: ToolstackHints,
    /// `None`: no balloon driver.
    pub balloon: Option<Balloon>,
    /// Where the agent runs: the initramfs or the root filesystem.
    pub stage: BootStage,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(pretty_name: Option<&str>, name: Option<&str>, id: Option<&str>) -> OsRelease {
        OsRelease {
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            pretty_name: pretty_name.map(str::to_owned),
            version_id: None,
        }
    }

    #[test]
    fn versions_only_when_numeric() {
        let os = |v: &str| {
            let r = OsRelease {
                version_id: Some(v.to_owned()),
                ..release(None, None, Some("x"))
            };
            OsInfo::new(Some(&r), "6.1.0")
        };
        assert_eq!((os("12").major, os("12").minor), (Some("12".into()), None));
        assert_eq!(
            (os("22.04").major, os("22.04").minor),
            (Some("22".into()), Some("04".into()))
        );
        assert_eq!(
            (os("3.20.3").major, os("3.20.3").minor),
            (Some("3".into()), Some("20".into()))
        );
        assert_eq!((os("rolling").major, os("rolling").minor), (None, None));
        assert_eq!((os("1.x").major, os("1.x").minor), (Some("1".into()), None));
        assert_eq!((os("x.1").major, os("x.1").minor), (None, None));
        assert_eq!(os("99999999999").major, None);
    }

    #[test]
    fn initramfs_fallback() {
        let os = OsInfo::new(None, "6.1.0-48-amd64");
        assert_eq!(os.name, "Linux 6.1.0-48-amd64");
        assert_eq!(os.distro, "linux");
        assert_eq!(os.uname, "6.1.0-48-amd64");
    }

    #[test]
    fn name_falls_back_to_name_then_kernel() {
        let os = OsInfo::new(Some(&release(None, Some("Alpine"), None)), "6.6");
        assert_eq!(os.name, "Alpine");
        assert_eq!(os.distro, "linux");
        let os = OsInfo::new(Some(&release(Some("  "), None, None)), "6.6");
        assert_eq!(os.name, "Linux 6.6");
        let os = OsInfo::new(
            Some(&release(Some("\u{1}"), Some("Alpine"), Some("\u{0}"))),
            "6.6",
        );
        assert_eq!(os.name, "Alpine");
        assert_eq!(os.distro, "linux");
    }
}
