//! The desired XenStore key/value set: what the guest should look like in XenStore now.
//!
//! Keys are relative to the domain's home (`/local/domain/<domid>`). Every key and subtree the
//! agent owns is listed here; docs/xenstore-layout.md documents each one.

use std::collections::BTreeMap;

use crate::model::OsInfo;
use crate::sources::hostname::HostIdentity;
use crate::sources::meminfo::MemInfo;

/// Key names.
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
    /// Version of the layout this agent publishes (docs/xenstore-layout.md); readers such as
    /// `xenbeacon list` use it to tell xenbeacon guests from other agents.
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
}

/// The layout version in `data/xenbeacon/layout`. 2: the balloon keys moved from
/// `data/balloon_*` to `data/xenbeacon/balloon/*`; `data/host_name_dns` and `data/domain`.
pub const LAYOUT_VERSION: &str = "2";

/// Single keys in directories shared with other software (`data/` is "available for arbitrary
/// domain use"): only these are ever read back or removed there.
pub const OWNED_KEYS: [&str; 17] = [
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
];

/// The balloon keys' directory (layout 2).
pub const BALLOON_SUBTREE: &str = "data/xenbeacon/balloon";

/// Keys read back and written like the others, but never removed: `data/xenbeacon/booted` is
/// also written by `xenbeacon booted`, and squeezed takes the existence of
/// `control/feature-balloon` as "booted", which must not flap.
pub const KEEP_KEYS: [&str; 2] = [key::BOOTED, key::FEATURE_BALLOON];
/// Subtrees the agent owns as a whole: anything in them it did not render is stale.
pub const OWNED_SUBTREES: [&str; 5] = [
    "attr/PVAddons",
    BALLOON_SUBTREE,
    crate::nics::NIC_SUBTREES[0],
    crate::nics::NIC_SUBTREES[1],
    crate::nics::NIC_SUBTREES[2],
];

/// The owned subtree `key` lies in (or is), if any.
pub fn owning_subtree(key: &str) -> Option<&'static str> {
    OWNED_SUBTREES.iter().copied().find(|t| {
        key.strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// True when `key` is one the agent may write or remove.
pub fn is_owned(key: &str) -> bool {
    OWNED_KEYS.contains(&key)
        || OWNED_SUBTREES.iter().any(|t| {
            key.strip_prefix(t)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// Longest value written, in bytes. C xenstored's default node quota is 2048 bytes including
/// the path and permissions; a cut here keeps every key writable. Cuts fall on a UTF-8
/// character boundary.
pub const VALUE_MAX: usize = 1024;

/// Makes `raw` a value XenStore and its readers handle: control characters (newlines, tabs,
/// escape sequences, NUL) become spaces, surrounding spaces go, and the result is cut to
/// [`VALUE_MAX`] bytes. Non-ASCII UTF-8 is kept (`attr/vif/*/name` is specified as UTF-8).
pub fn sanitize_value(raw: &str, out: &mut String) {
    out.clear();
    // Control characters become spaces before trimming, so a leading one goes like a space.
    let chars = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .skip_while(|c| c.is_whitespace());
    for c in chars {
        if out.len() + c.len_utf8() > VALUE_MAX {
            break;
        }
        out.push(c);
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
}

/// `value` in decimal, formatted on the stack.
pub fn format_u64(mut value: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    core::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// The desired key/value set. Updated in place, so an unchanged value costs no allocation.
#[derive(Clone, Debug, Default)]
pub struct DesiredKeys {
    map: BTreeMap<String, String>,
    scratch: String,
}

impl DesiredKeys {
    pub fn new() -> DesiredKeys {
        DesiredKeys::default()
    }

    /// Sets `key` to the sanitised `value`; true if that changed anything.
    pub fn set(&mut self, key: &str, value: &str) -> bool {
        sanitize_value(value, &mut self.scratch);
        match self.map.get_mut(key) {
            Some(v) if *v == self.scratch => false,
            Some(v) => {
                v.clear();
                v.push_str(&self.scratch);
                true
            }
            None => {
                self.map.insert(key.to_owned(), self.scratch.clone());
                true
            }
        }
    }

    /// Sets `key` to a decimal number.
    pub fn set_u64(&mut self, key: &str, value: u64) -> bool {
        let mut buf = [0u8; 20];
        self.set(key, format_u64(value, &mut buf))
    }

    /// Sets `key` when `value` is `Some`, removes it otherwise.
    pub fn set_opt(&mut self, key: &str, value: Option<&str>) -> bool {
        match value {
            Some(v) => self.set(key, v),
            None => self.remove(key),
        }
    }

    pub fn remove(&mut self, key: &str) -> bool {
        self.map.remove(key).is_some()
    }

    /// Keeps only the keys for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.map.retain(|k, _| keep(k));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// True when `dir` itself or any key below it is desired.
    pub fn has_under(&self, dir: &str) -> bool {
        self.map
            .range::<str, _>((std::ops::Bound::Included(dir), std::ops::Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| {
                k == dir || k.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
            })
    }

    /// Keys in order, with their values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// `attr/PVAddons/*`: the agent's version as decimal integers. XAPI marks a guest's PV drivers
/// `Unknown` when any of these is not an integer. The build number comes from the
/// `XENBEACON_BUILD_NUMBER` environment variable at compile time (default 0).
pub fn render_pv_addons(d: &mut DesiredKeys) {
    d.set(key::PV_MAJOR, env!("CARGO_PKG_VERSION_MAJOR"));
    d.set(key::PV_MINOR, env!("CARGO_PKG_VERSION_MINOR"));
    d.set(key::PV_MICRO, env!("CARGO_PKG_VERSION_PATCH"));
    d.set_u64(key::PV_BUILD, build_number());
    d.set(key::PV_INSTALLED, "1");
}

/// The build number published as `attr/PVAddons/BuildVersion`.
pub fn build_number() -> u64 {
    option_env!("XENBEACON_BUILD_NUMBER")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `data/xenbeacon/*`: layout version, agent version, boot stage, and `booted` when asked.
pub fn render_identity(stage: &str, booted: bool, d: &mut DesiredKeys) {
    d.set(key::LAYOUT, LAYOUT_VERSION);
    d.set(key::VERSION, env!("CARGO_PKG_VERSION"));
    d.set(key::STAGE, stage);
    if booted {
        d.set(key::BOOTED, "1");
    }
}

/// `data/os_*`.
pub fn render_os(os: &OsInfo, d: &mut DesiredKeys) {
    d.set(key::OS_NAME, &os.name);
    d.set(key::OS_DISTRO, &os.distro);
    d.set_opt(key::OS_MAJORVER, os.major.as_deref());
    d.set_opt(key::OS_MINORVER, os.minor.as_deref());
    d.set(key::OS_UNAME, &os.uname);
}

/// `data/host_name_dns` and `data/domain` (xapi's `netbios_name`).
pub fn render_host(host: &HostIdentity, d: &mut DesiredKeys) {
    d.set_opt(key::HOST_NAME, host.host.as_deref());
    d.set_opt(key::DOMAIN, host.domain.as_deref());
}

/// `data/meminfo_*` in KiB. The free figure moves all the time; it is only updated when it
/// differs from the desired one by at least `threshold_kb` (0: on every change). The total
/// follows every change (ballooning).
pub fn render_memory(m: &MemInfo, threshold_kb: u64, d: &mut DesiredKeys) -> bool {
    let mut changed = d.set_u64(key::MEMINFO_TOTAL, m.total_kb);
    let free = m.free_for_toolstack();
    let current: Option<u64> = d.get(key::MEMINFO_FREE).and_then(|v| v.parse().ok());
    let due = match current {
        None => true,
        Some(c) => c != free && c.abs_diff(free) >= threshold_kb,
    };
    if due {
        changed |= d.set_u64(key::MEMINFO_FREE, free);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_rules() {
        let mut out = String::new();
        sanitize_value("  Debian\nGNU/Linux\t12\u{1b}[31m  \n", &mut out);
        assert_eq!(out, "Debian GNU/Linux 12 [31m");
        sanitize_value("caf\u{e9} \u{1F600}", &mut out);
        assert_eq!(out, "caf\u{e9} \u{1F600}");
        sanitize_value("a\0b", &mut out);
        assert_eq!(out, "a b");
        sanitize_value("\u{1}debian", &mut out);
        assert_eq!(out, "debian");
        let long = "\u{e9}".repeat(4096);
        sanitize_value(&long, &mut out);
        assert!(out.len() <= VALUE_MAX && out.len() >= VALUE_MAX - 1);
        assert!(out.chars().all(|c| c == '\u{e9}'));
    }

    #[test]
    fn formats_u64() {
        let mut b = [0u8; 20];
        assert_eq!(format_u64(0, &mut b), "0");
        assert_eq!(format_u64(1234567, &mut b), "1234567");
        assert_eq!(format_u64(u64::MAX, &mut b), "18446744073709551615");
    }

    #[test]
    fn set_reports_changes_only() {
        let mut d = DesiredKeys::new();
        assert!(d.set("data/a", "1"));
        assert!(!d.set("data/a", "1"));
        assert!(!d.set("data/a", " 1\n"));
        assert!(d.set("data/a", "2"));
        assert!(d.set_opt("data/a", None));
        assert!(!d.set_opt("data/a", None));
        assert!(d.is_empty());
    }

    #[test]
    fn pv_addons_are_integers() {
        let mut d = DesiredKeys::new();
        render_pv_addons(&mut d);
        for k in [key::PV_MAJOR, key::PV_MINOR, key::PV_MICRO, key::PV_BUILD] {
            assert!(d.get(k).unwrap().parse::<u32>().is_ok(), "{k}");
        }
        assert_eq!(d.get(key::PV_INSTALLED), Some("1"));
    }

    #[test]
    fn memory_threshold() {
        let mut d = DesiredKeys::new();
        let m = |total, avail| MemInfo {
            total_kb: total,
            available_kb: Some(avail),
            free_kb: None,
        };
        assert!(render_memory(&m(1000, 500), 100, &mut d));
        assert!(!render_memory(&m(1000, 550), 100, &mut d));
        assert_eq!(d.get(key::MEMINFO_FREE), Some("500"));
        assert!(render_memory(&m(1000, 600), 100, &mut d));
        assert_eq!(d.get(key::MEMINFO_FREE), Some("600"));
        assert!(render_memory(&m(900, 600), 100, &mut d));
        assert_eq!(d.get(key::MEMINFO_TOTAL), Some("900"));
        assert!(render_memory(&m(900, 601), 0, &mut d));
        assert!(!render_memory(&m(900, 601), 0, &mut d));
    }

    #[test]
    fn ownership() {
        assert!(is_owned("data/os_name"));
        assert!(is_owned("attr/PVAddons/Foo"));
        assert!(!is_owned("attr/PVAddonsX"));
        assert!(!is_owned("data/agent/status"));
        assert!(!is_owned("control/shutdown"));
    }
}
