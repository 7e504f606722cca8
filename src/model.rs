//! The model of the guest: what the sources found, before it becomes XenStore keys.

use std::collections::BTreeMap;

use crate::layout::Mac;
use crate::net::NetState;
use crate::sources::balloon::BalloonInfo;
use crate::sources::hostname::HostIdentity;
use crate::sources::meminfo::MemInfo;
use crate::sources::os_release::OsRelease;
use crate::sources::stage::BootStage;

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
    use crate::sources::os_release::parse;

    #[test]
    fn versions_only_when_numeric() {
        let os = |v: &str| OsInfo::new(Some(&parse(&format!("ID=x\nVERSION_ID={v}\n"))), "6.1.0");
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
        let os = OsInfo::new(Some(&parse("NAME=Alpine\n")), "6.6");
        assert_eq!(os.name, "Alpine");
        assert_eq!(os.distro, "linux");
        let os = OsInfo::new(Some(&parse("PRETTY_NAME=\"  \"\n")), "6.6");
        assert_eq!(os.name, "Linux 6.6");
        let os = OsInfo::new(
            Some(&parse("PRETTY_NAME=\"\u{1}\"\nNAME=Alpine\nID=\u{0}\n")),
            "6.6",
        );
        assert_eq!(os.name, "Alpine");
        assert_eq!(os.distro, "linux");
    }
}
