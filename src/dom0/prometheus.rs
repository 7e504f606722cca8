//! `--format prometheus`: what guests report, in the text exposition format that
//! node_exporter's textfile collector reads (`list --format prometheus`, and the file that
//! [`super::export`] keeps current).
//!
//! The format (prometheus.io/docs/instrumenting/exposition_formats) is one line per series,
//! `name{label="value",...} number`, grouped by metric with one `# HELP` and one `# TYPE`
//! line each. Every series is labelled `domid` and `name`; the domid is ours (a number), the
//! rest of every label value was written by a guest, so:
//!
//! * a value is escaped as the format says (`\\`, `\"`, `\n`), and every other control,
//!   format or separator character becomes `?` (as in the tables: [`super::text::clean`]), so
//!   no value can end its line, its label or its series: one guest cannot break the file or
//!   write a series for another guest;
//! * a value is cut to [`LABEL_MAX`] bytes (at a character boundary, ending in `…`), so a
//!   guest's 4 KiB values cost the Prometheus server no more than a short one;
//! * a guest has at most [`NIC_SERIES_MAX`] `xenbeacon_nic_info` and
//!   [`ADDRESS_SERIES_MAX`] `xenbeacon_nic_address_info` series; an address that is not one
//!   of its family is left out (the label is the canonical form of a parsed address); two
//!   series that the cut made identical are written once. What was left out is counted in
//!   `xenbeacon_scrape_dropped_series`, and `xenbeacon_scrape_truncated` is 1 when it is not 0
//!   or when the reader stopped at its limits ([`super::reader::NODE_LIMIT`]);
//! * values that were not UTF-8 were replaced with U+FFFD when read.
//!
//! Units are the base units Prometheus asks for (bytes, seconds); facts that are strings are
//! labels of an `_info` series whose value is 1. Versions are compared by PromQL as numbers,
//! so `xenbeacon_guest_agent_version` and `xenbeacon_host_agent_version` encode `x.y.z` as
//! `x * 1000000 + y * 1000 + z` (the alert rules in packaging/prometheus/ use them).
//!
//! Rendering is split so that a file can be rewritten when one guest changed: [`guest`] turns
//! one report into its lines, per metric ([`GuestSeries`]); [`write()`] puts the metrics of all
//! guests together, HELP and TYPE first.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::report::{Address, Agent, GuestReport, Nic, NicKind, UpperKind};
use super::text::is_unsafe;

/// Longest label value, in bytes of the guest's text (escapes and the `…` come on top).
pub const LABEL_MAX: usize = 128;
/// Most `xenbeacon_nic_info` series per guest (NICs, then their VLANs, macvlans, ipvlans).
pub const NIC_SERIES_MAX: usize = 64;
/// Most `xenbeacon_nic_address_info` series per guest.
pub const ADDRESS_SERIES_MAX: usize = 256;

/// The metrics of one guest, in the order they are written; name, HELP.
const METRICS: [(&str, &str); 14] = [
    (
        "xenbeacon_guest_info",
        "Agent, OS and boot stage a domain's guest reports (agent: xenbeacon, other (XAPI-style keys), none, unknown (no access)).",
    ),
    (
        "xenbeacon_guest_booted",
        "1 if the guest said it finished booting (data/xenbeacon/booted, or data/updated for other agents).",
    ),
    (
        "xenbeacon_guest_memory_total_bytes",
        "Memory the guest's kernel has (data/meminfo_total).",
    ),
    (
        "xenbeacon_guest_memory_free_bytes",
        "Memory the guest's kernel has free (data/meminfo_free).",
    ),
    (
        "xenbeacon_guest_balloon_target_bytes",
        "Balloon target: the guest's reported target, else the toolstack's memory/target.",
    ),
    (
        "xenbeacon_guest_balloon_current_bytes",
        "Memory the guest's balloon driver has reached (data/xenbeacon/balloon/current_kb).",
    ),
    (
        "xenbeacon_guest_balloon_stuck",
        "1 if the guest reports its balloon driver stuck short of the target.",
    ),
    (
        "xenbeacon_guest_last_update_timestamp_seconds",
        "When the guest last wrote its report (data/updated, Unix time), if it is a number.",
    ),
    (
        "xenbeacon_guest_agent_version",
        "The guest's xenbeacon version x.y.z as x*1000000 + y*1000 + z.",
    ),
    (
        "xenbeacon_nic_info",
        "A NIC the guest reports (kind: vif, sriov-vf, pci, usb, platform, virtual, other, legacy, vlan, macvlan, ipvlan; vif: the vif devid).",
    ),
    (
        "xenbeacon_nic_address_info",
        "An address the guest reports on a NIC (family: ipv4, ipv6).",
    ),
    (
        "xenbeacon_scrape_truncated",
        "1 if what was read of the domain or written here is not all it published (limits of the reader or of series per guest).",
    ),
    (
        "xenbeacon_scrape_dropped_series",
        "Series of the domain left out: over the per-guest limits, invalid addresses, duplicates after cutting long values.",
    ),
    (
        "xenbeacon_guest_balloon_feature",
        "1 if the guest offers ballooning to the toolstack (control/feature-balloon).",
    ),
];
const INFO: usize = 0;
const BOOTED: usize = 1;
const MEM_TOTAL: usize = 2;
const MEM_FREE: usize = 3;
const BALLOON_TARGET: usize = 4;
const BALLOON_CURRENT: usize = 5;
const BALLOON_STUCK: usize = 6;
const LAST_UPDATE: usize = 7;
const AGENT_VERSION: usize = 8;
const NIC_INFO: usize = 9;
const ADDRESS_INFO: usize = 10;
const TRUNCATED: usize = 11;
const DROPPED: usize = 12;
const BALLOON_FEATURE: usize = 13;

const HOST_VERSION: (&str, &str) = (
    "xenbeacon_host_agent_version",
    "Version x.y.z of the xenbeacon that wrote this (in dom0), as x*1000000 + y*1000 + z.",
);

/// One guest's lines, per metric (no HELP or TYPE).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestSeries {
    pub domid: u32,
    lines: [String; METRICS.len()],
    /// Series left out (see the module's doc).
    pub dropped: usize,
}

/// Appends `s` as a label value (without the quotes): escaped, made harmless and cut.
fn label_value(out: &mut String, s: &str) {
    let mut used = 0;
    for c in s.chars() {
        used += c.len_utf8();
        if used > LABEL_MAX {
            out.push('…');
            return;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if is_unsafe(c) => out.push('?'),
            c => out.push(c),
        }
    }
}

/// The labels of a series after `domid` and `name`: `,kind="vif",...`.
struct Labels {
    buf: String,
}

impl Labels {
    fn new() -> Labels {
        Labels { buf: String::new() }
    }

    fn add(&mut self, name: &str, value: &str) -> &mut Self {
        self.buf.push(',');
        self.buf.push_str(name);
        self.buf.push_str("=\"");
        label_value(&mut self.buf, value);
        self.buf.push('"');
        self
    }

    fn opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        self.add(name, value.unwrap_or(""))
    }
}

/// `x.y.z` (each part at most 3 digits, anything after a `-` or `+` ignored) as a number.
pub fn version_number(v: &str) -> Option<u64> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let mut n = 0u64;
    let mut parts = 0;
    for p in core.split('.') {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n * 1000 + p.parse::<u64>().ok()?;
        parts += 1;
    }
    (parts == 3).then_some(n)
}

/// A Unix time as written in `data/updated`: digits only (other agents write dates).
fn unix_time(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The address in canonical form, if it is one of its family.
fn canonical(a: &Address, v6: bool) -> Option<String> {
    if v6 {
        a.addr.parse::<Ipv6Addr>().ok().map(|ip| ip.to_string())
    } else {
        a.addr.parse::<Ipv4Addr>().ok().map(|ip| ip.to_string())
    }
}

/// The per-guest limits and duplicate check of the NIC and address series.
struct Budget {
    nics: usize,
    addresses: usize,
    seen: HashSet<String>,
    dropped: usize,
}

impl Budget {
    /// True if a series with these labels may still be written (and marks it written).
    fn take(&mut self, address: bool, labels: &str) -> bool {
        let left = if address {
            &mut self.addresses
        } else {
            &mut self.nics
        };
        if *left == 0 || self.seen.contains(labels) {
            self.dropped += 1;
            return false;
        }
        *left -= 1;
        self.seen.insert(labels.to_owned());
        true
    }
}

struct Renderer<'a> {
    s: &'a mut GuestSeries,
    common: String,
    budget: Budget,
}

impl Renderer<'_> {
    fn sample(&mut self, metric: usize, labels: &str, value: u64) {
        let out = &mut self.s.lines[metric];
        let _ = writeln!(
            out,
            "{}{{{}{labels}}} {value}",
            METRICS[metric].0, self.common
        );
    }

    fn value(&mut self, metric: usize, value: Option<u64>) {
        if let Some(v) = value {
            self.sample(metric, "", v);
        }
    }

    /// One NIC (or upper) and its addresses.
    fn nic(
        &mut self,
        kind: &str,
        name: Option<&str>,
        mac: &str,
        n: &Nic,
        ipv4: &[Address],
        ipv6: &[Address],
    ) {
        let vif = match n.kind {
            NicKind::Vif => n.id.as_str(),
            _ => "",
        };
        let mut l = Labels::new();
        l.opt("nic", name)
            .add("kind", kind)
            .add("mac", mac)
            .opt("bus", n.bus.as_deref())
            .opt("driver", n.driver.as_deref())
            .add("vif", vif);
        if self.budget.take(false, &l.buf) {
            let labels = std::mem::take(&mut l.buf);
            self.sample(NIC_INFO, &labels, 1);
        } else {
            self.budget.dropped += ipv4.len() + ipv6.len();
            return;
        }
        for (list, family, v6) in [(ipv4, "ipv4", false), (ipv6, "ipv6", true)] {
            for a in list {
                let Some(addr) = canonical(a, v6) else {
                    self.budget.dropped += 1;
                    continue;
                };
                let prefix = a.prefix.map(|p| p.to_string());
                let mut l = Labels::new();
                l.opt("nic", name)
                    .add("mac", mac)
                    .add("family", family)
                    .add("address", &addr)
                    .opt("prefix", prefix.as_deref());
                if self.budget.take(true, &l.buf) {
                    let labels = std::mem::take(&mut l.buf);
                    self.sample(ADDRESS_INFO, &labels, 1);
                }
            }
        }
    }
}

/// One guest's series.
pub fn guest(r: &GuestReport) -> GuestSeries {
    let mut s = GuestSeries {
        domid: r.domid,
        ..GuestSeries::default()
    };
    let mut common = format!("domid=\"{}\",name=\"", r.domid);
    label_value(&mut common, r.name.as_deref().unwrap_or(""));
    common.push('"');
    let mut w = Renderer {
        s: &mut s,
        common,
        budget: Budget {
            nics: NIC_SERIES_MAX,
            addresses: ADDRESS_SERIES_MAX,
            seen: HashSet::new(),
            dropped: 0,
        },
    };

    let (agent, version) = match &r.agent {
        Agent::Xenbeacon { version, .. } => ("xenbeacon", version.as_deref()),
        Agent::XapiStyle { pv_version } => ("other", pv_version.as_deref()),
        Agent::None => ("none", None),
        Agent::NoAccess => ("unknown", None),
    };
    let mut l = Labels::new();
    l.opt("uuid", r.uuid.as_deref())
        .add("agent", agent)
        .opt("agent_version", version)
        .opt("os_name", r.os.name.as_deref())
        .opt("os_distro", r.os.distro.as_deref())
        .opt("os_version", r.os.version().as_deref())
        .opt("kernel", r.os.kernel.as_deref())
        .opt("stage", r.stage.as_deref());
    let info = l.buf;
    w.sample(INFO, &info, 1);
    if r.fully_denied() {
        return finish(w, r.truncated);
    }
    w.value(BOOTED, Some(u64::from(r.booted())));
    let bytes = |kb: Option<u64>| kb.and_then(|k| k.checked_mul(1024));
    w.value(MEM_TOTAL, bytes(r.memory.total_kb));
    w.value(MEM_FREE, bytes(r.memory.free_kb));
    let balloon_target = r.balloon.as_ref().and_then(|b| b.target_kb);
    w.value(BALLOON_TARGET, bytes(balloon_target.or(r.memory.target_kb)));
    if let Some(b) = &r.balloon {
        w.value(BALLOON_CURRENT, bytes(b.current_kb));
        w.value(
            BALLOON_STUCK,
            Some(u64::from(b.state.as_deref() == Some("stuck"))),
        );
    }
    w.value(BALLOON_FEATURE, Some(u64::from(r.memory.feature_balloon)));
    w.value(LAST_UPDATE, r.updated.as_deref().and_then(unix_time));
    if let Agent::Xenbeacon {
        version: Some(v), ..
    } = &r.agent
    {
        w.value(AGENT_VERSION, version_number(v));
    }
    for n in r.nics.iter().filter(|n| n.reported) {
        let mac = n.mac_bytes().map(|m| m.to_string()).unwrap_or_default();
        w.nic(n.kind.id(), n.name.as_deref(), &mac, n, &n.ipv4, &n.ipv6);
        for u in &n.uppers {
            let kind = match u.kind {
                UpperKind::Vlan => "vlan",
                UpperKind::Macvlan => "macvlan",
                UpperKind::Ipvlan => "ipvlan",
            };
            let umac = u
                .mac
                .as_deref()
                .and_then(crate::layout::Mac::parse)
                .map_or_else(|| mac.clone(), |m| m.to_string());
            w.nic(kind, u.name.as_deref(), &umac, n, &u.ipv4, &u.ipv6);
        }
    }
    finish(w, r.truncated)
}

/// The series that say what was left out.
fn finish(mut w: Renderer<'_>, reader_truncated: bool) -> GuestSeries {
    let dropped = w.budget.dropped;
    w.value(TRUNCATED, Some(u64::from(reader_truncated || dropped > 0)));
    w.value(DROPPED, Some(dropped as u64));
    w.s.dropped = dropped;
    std::mem::take(w.s)
}

/// The whole exposition: the host's version, then every metric with its HELP and TYPE and
/// the lines of every guest in `guests` (in their order).
pub fn write<'g, I>(out: &mut String, guests: I)
where
    I: Iterator<Item = &'g GuestSeries> + Clone,
{
    if let Some(v) = version_number(env!("CARGO_PKG_VERSION")) {
        let (name, help) = HOST_VERSION;
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
        );
    }
    for (i, (name, help)) in METRICS.iter().enumerate() {
        if guests.clone().all(|g| g.lines[i].is_empty()) {
            continue;
        }
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
        for g in guests.clone() {
            out.push_str(&g.lines[i]);
        }
    }
}

/// What [`GuestSeries::dropped`] counts, for a log line.
pub fn dropped_note(g: &GuestSeries) -> String {
    format!(
        "domain {}: {} series left out (at most {NIC_SERIES_MAX} NICs and {ADDRESS_SERIES_MAX} \
         addresses per guest, only valid addresses, no duplicates)",
        g.domid, g.dropped
    )
}

#[cfg(test)]
mod tests {
    use super::super::tree::DomainTree;
    use super::*;

    fn report(domid: u32, kv: &[(&str, &str)]) -> GuestReport {
        let mut t = DomainTree::new(domid);
        for (k, v) in kv {
            t.set(k, v);
        }
        GuestReport::parse(&t)
    }

    fn text(reports: &[GuestReport]) -> String {
        let series: Vec<GuestSeries> = reports.iter().map(guest).collect();
        let mut out = String::new();
        write(&mut out, series.iter());
        out
    }

    fn web1() -> GuestReport {
        report(
            1,
            &[
                ("name", "web1"),
                ("vm", "/vm/0f4a0c0e-1111-2222-3333-444455556666"),
                ("memory/target", "2097152"),
                ("control/feature-balloon", "1"),
                ("data/os_name", "Debian GNU/Linux 12 (bookworm)"),
                ("data/os_distro", "debian"),
                ("data/os_majorver", "12"),
                ("data/os_uname", "6.1.0-28-amd64"),
                ("data/meminfo_total", "2013232"),
                ("data/meminfo_free", "1503232"),
                ("data/updated", "1795511149"),
                ("data/xenbeacon/layout", "2"),
                ("data/xenbeacon/version", "0.9.1"),
                ("data/xenbeacon/stage", "rootfs"),
                ("data/xenbeacon/booted", "1"),
                ("data/xenbeacon/balloon/target_kb", "2097152"),
                ("data/xenbeacon/balloon/current_kb", "1900000"),
                ("data/xenbeacon/balloon/state", "stuck"),
                ("attr/vif/0/name", "eth0"),
                ("attr/vif/0/mac", "00:16:3e:00:00:01"),
                ("attr/vif/0/ipv4/0", "10.0.0.2"),
                ("attr/vif/0/ipv4/0/prefix", "24"),
                ("attr/vif/0/ipv6/0", "2001:DB8:0:0::2"),
                ("attr/vif/0/vlan/100/name", "eth0.100"),
                ("attr/vif/0/vlan/100/ipv4/0", "10.0.100.2"),
                ("attr/net/525400123405/name", "enp0s5"),
                ("attr/net/525400123405/bus", "pci"),
                ("attr/net/525400123405/driver", "e1000"),
            ],
        )
    }

    #[test]
    fn every_series_of_a_xenbeacon_guest() {
        let out = text(&[web1()]);
        let c = r#"domid="1",name="web1""#;
        for line in [
            format!("xenbeacon_guest_info{{{c},uuid=\"0f4a0c0e-1111-2222-3333-444455556666\",agent=\"xenbeacon\",agent_version=\"0.9.1\",os_name=\"Debian GNU/Linux 12 (bookworm)\",os_distro=\"debian\",os_version=\"12\",kernel=\"6.1.0-28-amd64\",stage=\"rootfs\"}} 1"),
            format!("xenbeacon_guest_booted{{{c}}} 1"),
            format!("xenbeacon_guest_memory_total_bytes{{{c}}} {}", 2013232u64 * 1024),
            format!("xenbeacon_guest_memory_free_bytes{{{c}}} {}", 1503232u64 * 1024),
            format!("xenbeacon_guest_balloon_target_bytes{{{c}}} {}", 2097152u64 * 1024),
            format!("xenbeacon_guest_balloon_current_bytes{{{c}}} {}", 1900000u64 * 1024),
            format!("xenbeacon_guest_balloon_stuck{{{c}}} 1"),
            format!("xenbeacon_guest_balloon_feature{{{c}}} 1"),
            format!("xenbeacon_guest_last_update_timestamp_seconds{{{c}}} 1795511149"),
            format!("xenbeacon_guest_agent_version{{{c}}} 9001"),
            format!("xenbeacon_nic_info{{{c},nic=\"eth0\",kind=\"vif\",mac=\"00:16:3e:00:00:01\",bus=\"\",driver=\"\",vif=\"0\"}} 1"),
            format!("xenbeacon_nic_info{{{c},nic=\"eth0.100\",kind=\"vlan\",mac=\"00:16:3e:00:00:01\",bus=\"\",driver=\"\",vif=\"0\"}} 1"),
            format!("xenbeacon_nic_info{{{c},nic=\"enp0s5\",kind=\"pci\",mac=\"52:54:00:12:34:05\",bus=\"pci\",driver=\"e1000\",vif=\"\"}} 1"),
            format!("xenbeacon_nic_address_info{{{c},nic=\"eth0\",mac=\"00:16:3e:00:00:01\",family=\"ipv4\",address=\"10.0.0.2\",prefix=\"24\"}} 1"),
            format!("xenbeacon_nic_address_info{{{c},nic=\"eth0\",mac=\"00:16:3e:00:00:01\",family=\"ipv6\",address=\"2001:db8::2\",prefix=\"\"}} 1"),
            format!("xenbeacon_nic_address_info{{{c},nic=\"eth0.100\",mac=\"00:16:3e:00:00:01\",family=\"ipv4\",address=\"10.0.100.2\",prefix=\"\"}} 1"),
            format!("xenbeacon_scrape_truncated{{{c}}} 0"),
            format!("xenbeacon_scrape_dropped_series{{{c}}} 0"),
        ] {
            assert!(out.lines().any(|l| l == line), "{line}\nnot in\n{out}");
        }
        // HELP and TYPE once per metric, before its samples.
        for (name, _) in METRICS {
            assert_eq!(
                out.matches(&format!("# TYPE {name} gauge\n")).count(),
                1,
                "{name}"
            );
        }
        assert!(
            out.starts_with("# HELP xenbeacon_host_agent_version "),
            "{out}"
        );
    }

    #[test]
    fn other_agents_and_none() {
        let win = report(
            2,
            &[
                ("name", "win"),
                ("data/os_name", "Windows"),
                ("data/updated", "Mon Nov 24 09:41:09 2026"),
                ("attr/PVAddons/MajorVersion", "9"),
                ("attr/PVAddons/MinorVersion", "3"),
            ],
        );
        let bare = report(
            3,
            &[("name", "bare"), ("device/vif/0/mac", "00:16:3e:00:00:03")],
        );
        let out = text(&[win, bare]);
        assert!(out.contains(r#"xenbeacon_guest_info{domid="2",name="win",uuid="",agent="other",agent_version="9.3",os_name="Windows","#), "{out}");
        assert!(
            out.contains("xenbeacon_guest_booted{domid=\"2\",name=\"win\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains(r#"xenbeacon_guest_info{domid="3",name="bare",uuid="",agent="none","#),
            "{out}"
        );
        assert!(
            out.contains("xenbeacon_guest_booted{domid=\"3\",name=\"bare\"} 0\n"),
            "{out}"
        );
        // Not a Unix time: no timestamp; no agent version for other agents.
        assert!(!out.contains("last_update_timestamp_seconds{"), "{out}");
        assert!(!out.contains("xenbeacon_guest_agent_version{"), "{out}");
        // The toolstack-only vif is not a reported NIC.
        assert!(!out.contains("xenbeacon_nic_info{"), "{out}");
    }

    /// Every line is a comment or `name{labels} value`, with labels that are ours.
    fn assert_well_formed(out: &str, domids: &[u32]) {
        for line in out.lines() {
            if line.starts_with("# HELP xenbeacon_") || line.starts_with("# TYPE xenbeacon_") {
                continue;
            }
            assert!(line.starts_with("xenbeacon_"), "{line:?}");
            if line.starts_with("xenbeacon_host_") {
                continue;
            }
            let (_, rest) = line.split_once('{').unwrap();
            let d: u32 = rest
                .strip_prefix("domid=\"")
                .and_then(|r| r.split('"').next())
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("{line:?}"));
            assert!(domids.contains(&d), "{line:?}");
            // Walk the labels as Prometheus' parser does: name="value" with escapes.
            let mut chars = rest.chars().peekable();
            loop {
                let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
                assert!(
                    name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{line:?}"
                );
                assert_eq!(chars.next(), Some('"'), "{line:?}");
                loop {
                    match chars.next() {
                        Some('\\') => {
                            assert!(matches!(chars.next(), Some('\\' | '"' | 'n')), "{line:?}")
                        }
                        Some('"') => break,
                        Some(c) => assert!(!c.is_control(), "{line:?}"),
                        None => panic!("{line:?}"),
                    }
                }
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => break,
                    c => panic!("{c:?} in {line:?}"),
                }
            }
            let value: String = chars.collect();
            assert!(
                value
                    .strip_prefix(' ')
                    .is_some_and(|v| v.parse::<u64>().is_ok()),
                "{line:?}"
            );
        }
    }

    #[test]
    fn hostile_values_cannot_break_the_file_or_forge_a_series() {
        let forged =
            "x\"} 1\nxenbeacon_guest_booted{domid=\"1\",name=\"web1\"} 0\n# TYPE x counter\n\\";
        let long = "ü".repeat(3000);
        let mut kv: Vec<(String, String)> = vec![
            ("name".into(), "evil\n\"".into()),
            ("data/xenbeacon/layout".into(), "2".into()),
            ("data/os_name".into(), forged.into()),
            (
                "data/os_uname".into(),
                "6.1\u{2028}\u{1b}[31m\r\u{feff}".into(),
            ),
            ("data/os_distro".into(), long.clone()),
            ("data/xenbeacon/version".into(), "1.2.3\n".into()),
            ("data/meminfo_total".into(), "18446744073709551615".into()),
            ("attr/vif/0/name".into(), forged.into()),
            ("attr/vif/0/ipv4/0".into(), "10.0.0.1\"} 1\n".into()),
            ("attr/vif/0/ipv4/1".into(), "010.0.0.1".into()),
        ];
        // Thousands of addresses and NICs, and names that differ only past the cut.
        for i in 0..2000 {
            kv.push((
                format!("attr/vif/1/ipv4/{i}"),
                format!("10.1.{}.{}", i / 256, i % 256),
            ));
        }
        for i in 0..100 {
            kv.push((
                format!("attr/vif/0/vlan/{}/name", i + 1),
                format!("{long}{i}"),
            ));
            kv.push((format!("attr/vif/{}/name", i + 2), format!("eth{}", i + 2)));
        }
        let kv: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let evil = report(5, &kv);
        let out = text(&[web1(), evil]);
        assert_well_formed(&out, &[1, 5]);
        // web1's booted series is its own, once.
        let booted: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("xenbeacon_guest_booted{domid=\"1\""))
            .collect();
        assert_eq!(
            booted,
            ["xenbeacon_guest_booted{domid=\"1\",name=\"web1\"} 1"]
        );
        let types = out.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(types, METRICS.len() + 1, "{out}");
        assert!(out.contains(r#"name="evil\n\"""#), "{out}");
        // Cut at LABEL_MAX bytes, on a character boundary.
        let cut = format!("os_distro=\"{}…\"", "ü".repeat(LABEL_MAX / 2));
        assert!(out.contains(&cut), "{out}");
        assert!(out.contains("kernel=\"6.1??[31m??\""), "{out}");
        // The overflowing total is left out, not wrapped.
        assert!(
            !out.contains("xenbeacon_guest_memory_total_bytes{domid=\"5\""),
            "{out}"
        );
        let count = |m: &str| {
            out.lines()
                .filter(|l| l.starts_with(m) && l.contains("domid=\"5\""))
                .count()
        };
        assert_eq!(count("xenbeacon_nic_address_info{"), ADDRESS_SERIES_MAX);
        // 100 VLAN names cut to the same value are one series; then vifs 1 to 62.
        assert_eq!(count("xenbeacon_nic_info{"), NIC_SERIES_MAX);
        assert!(out.contains(r#"nic="eth62",kind="vif""#) && !out.contains(r#"nic="eth63""#));
        let g = guest(&report(5, &kv));
        // 2000 - 256 addresses, 2 invalid ones, 99 duplicate VLANs, vifs 63 to 101.
        assert_eq!(g.dropped, 2000 - ADDRESS_SERIES_MAX + 2 + 99 + 39);
        assert!(
            out.contains(&format!(
                "xenbeacon_scrape_dropped_series{{domid=\"5\",name=\"evil\\n\\\"\"}} {}\n",
                g.dropped
            )),
            "{out}"
        );
        assert!(
            out.contains("xenbeacon_scrape_truncated{domid=\"5\",name=\"evil\\n\\\"\"} 1\n"),
            "{out}"
        );
        assert!(
            !out.contains("xenbeacon_guest_agent_version{domid=\"5\""),
            "{out}"
        );
    }

    #[test]
    fn versions_as_numbers() {
        assert_eq!(version_number("1.0.0"), Some(1_000_000));
        assert_eq!(version_number("0.9.12"), Some(9_012));
        assert_eq!(version_number("1.2.3-rc1"), Some(1_002_003));
        for bad in [
            "", "1", "1.2", "1.2.3.4", "1.2.x", "1000.0.0", "1..2", " 1.2.3",
        ] {
            assert_eq!(version_number(bad), None, "{bad}");
        }
        assert!(version_number(env!("CARGO_PKG_VERSION")).is_some());
    }
}
