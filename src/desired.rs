//! The desired XenStore key/value set: what the guest should look like in XenStore now.
//!
//! Keys are relative to the domain's home (`/local/domain/<domid>`); their names and the
//! subtrees the agent owns are in [`crate::layout`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::decimal::format_u64;
use crate::layout::{key, nic_key, LAYOUT_VERSION};
use crate::model::{HostIdentity, MemInfo, OsInfo};

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

/// Address indexes by address directory (`attr/vif/0/ipv4` -> address -> `<n>`).
pub type AddressIndexes = BTreeMap<String, BTreeMap<IpAddr, u32>>;

/// What the store held of the agent's keys, as the renderers need it: taking it over makes a
/// restart of an unchanged guest write nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadBack {
    /// The published `data/meminfo_free`.
    pub free_memory_kb: Option<u64>,
    /// The index of every published address (keys `.../ipv4/<n>` whose value is an address).
    pub address_indexes: AddressIndexes,
}

impl ReadBack {
    /// Extracts what the renderers take over from the keys read back.
    pub fn from_published<'a>(published: impl Iterator<Item = (&'a str, &'a str)>) -> ReadBack {
        let mut r = ReadBack::default();
        for (k, v) in published {
            if k == key::MEMINFO_FREE {
                r.free_memory_kb = v.parse().ok();
                continue;
            }
            let Some((dir, n)) = k.rsplit_once('/') else {
                continue;
            };
            let family = dir.rsplit('/').next();
            if !matches!(family, Some(nic_key::IPV4 | nic_key::IPV6)) || !dir.contains('/') {
                continue;
            }
            let (Ok(n), Ok(ip)) = (n.parse::<u32>(), v.parse::<IpAddr>()) else {
                continue;
            };
            let slots = r.address_indexes.entry(dir.to_owned()).or_default();
            if !slots.values().any(|&i| i == n) {
                slots.entry(ip).or_insert(n);
            }
        }
        r
    }
}

/// Keeps the free-memory figure already published when the current one is within
/// `threshold_kb` of it.
pub fn adopt_published_free_memory(
    m: Option<&MemInfo>,
    published_kb: Option<u64>,
    threshold_kb: u64,
    d: &mut DesiredKeys,
) {
    if let (Some(m), Some(p)) = (m, published_kb) {
        if m.free_for_toolstack().abs_diff(p) < threshold_kb {
            d.set_u64(key::MEMINFO_FREE, p);
        }
    }
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
        let mut buf = [0u8; crate::decimal::U64_DIGITS];
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
/// follows the balloon, but not each step of it: while `balloon_moving` it keeps the value it
/// has, since xapi pays a `VM.update_allowed_operations` for every change of it
/// (docs/consumers.md, X3), and the balloon re-reads memory every second while it moves.
pub fn render_memory(
    m: &MemInfo,
    threshold_kb: u64,
    balloon_moving: bool,
    d: &mut DesiredKeys,
) -> bool {
    let mut changed = false;
    if !balloon_moving || d.get(key::MEMINFO_TOTAL).is_none() {
        changed |= d.set_u64(key::MEMINFO_TOTAL, m.total_kb);
    }
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
    fn read_back_takes_free_memory_and_address_indexes() {
        let r = ReadBack::from_published(
            [
                ("data/meminfo_free", "4000"),
                ("attr/vif/0/ipv4/3", "10.0.0.2"),
                ("attr/vif/0/ipv4/3/prefix", "24"),
                ("attr/vif/0/ipv4/4", "10.0.0.2"),
                ("attr/vif/0/ipv4/5", "not-an-ip"),
                ("attr/vif/0/name", "eth0"),
            ]
            .into_iter(),
        );
        assert_eq!(r.free_memory_kb, Some(4000));
        let slots = &r.address_indexes["attr/vif/0/ipv4"];
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[&"10.0.0.2".parse::<IpAddr>().unwrap()], 3);
        let mut d = DesiredKeys::new();
        let m = MemInfo {
            total_kb: 8000,
            available_kb: Some(4500),
            free_kb: None,
        };
        adopt_published_free_memory(Some(&m), r.free_memory_kb, 1024, &mut d);
        assert_eq!(d.get(key::MEMINFO_FREE), Some("4000"));
        let mut far = DesiredKeys::new();
        adopt_published_free_memory(Some(&m), r.free_memory_kb, 100, &mut far);
        assert_eq!(far.get(key::MEMINFO_FREE), None);
    }

    #[test]
    fn memory_threshold() {
        let mut d = DesiredKeys::new();
        let m = |total, avail| MemInfo {
            total_kb: total,
            available_kb: Some(avail),
            free_kb: None,
        };
        assert!(render_memory(&m(1000, 500), 100, false, &mut d));
        assert!(!render_memory(&m(1000, 550), 100, false, &mut d));
        assert_eq!(d.get(key::MEMINFO_FREE), Some("500"));
        assert!(render_memory(&m(1000, 600), 100, false, &mut d));
        assert_eq!(d.get(key::MEMINFO_FREE), Some("600"));
        assert!(render_memory(&m(900, 600), 100, false, &mut d));
        assert_eq!(d.get(key::MEMINFO_TOTAL), Some("900"));
        assert!(render_memory(&m(900, 601), 0, false, &mut d));
        assert!(!render_memory(&m(900, 601), 0, false, &mut d));
    }

    #[test]
    fn the_total_waits_for_the_balloon() {
        let mut d = DesiredKeys::new();
        let m = |total| MemInfo {
            total_kb: total,
            available_kb: Some(500),
            free_kb: None,
        };
        // the first total goes out even while the balloon moves
        assert!(render_memory(&m(1000), 100, true, &mut d));
        assert_eq!(d.get(key::MEMINFO_TOTAL), Some("1000"));
        for step in [950, 900, 850] {
            assert!(!render_memory(&m(step), 100, true, &mut d));
            assert_eq!(d.get(key::MEMINFO_TOTAL), Some("1000"));
        }
        assert!(render_memory(&m(800), 100, false, &mut d));
        assert_eq!(d.get(key::MEMINFO_TOTAL), Some("800"));
    }
}
