//! Output for people: the `list` tables and the `show` page.
//!
//! Values come from guests and end up on an administrator's terminal, so every value is made
//! harmless first ([`clean`]: control characters, escape sequences included, and the invisible
//! format and separator characters become `?`) and, in tables, cut to a width that keeps the
//! columns readable. Missing values are `-`; values xenstored would not let us read are
//! `no access`, never blank, so an unreadable guest does not look like one without an agent.

use std::fmt::Write as _;

use super::report::{Address, Agent, GuestReport, Nic};
use super::tree::toolstack_key;
use crate::layout::key;

/// Widest table cell, in characters; longer values end with `…`.
pub const CELL_MAX: usize = 40;
/// Most NIC rows (NICs, VLANs and macvlans) `list` shows per domain.
pub const LIST_NIC_ROWS: usize = 32;
/// Most addresses `list` shows per NIC.
pub const LIST_ADDRESSES: usize = 8;
const NO_ACCESS: &str = "no access";

/// `s` with control, format and separator characters replaced by `?`: C0 and C1 controls (ESC,
/// CR, NUL, CSI), and every character of Unicode's general categories Cf, Zl and Zp, which a
/// terminal does not show but which reorder (bidi overrides and isolates), hide (zero-width
/// spaces and joiners, the BOM) or break (U+2028, U+2029) what is shown around them.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if is_unsafe(c) { '?' } else { c })
        .collect()
}

/// True for the characters [`clean`] replaces.
pub(super) fn is_unsafe(c: char) -> bool {
    c.is_control() || is_format_or_separator(c)
}

/// Unicode 15.1's general categories Cf (format), Zl (line separator) and Zp (paragraph
/// separator), from `DerivedGeneralCategory.txt`.
fn is_format_or_separator(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

fn cut(s: &str, max: usize) -> String {
    let s = clean(s);
    if s.chars().count() <= max {
        return s;
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// A size in KiB for people: `512 KiB`, `77.1 MiB`, `1.9 GiB`.
fn human_kib(kib: u64) -> String {
    const MIB: u64 = 1024;
    const GIB: u64 = 1024 * 1024;
    let one_decimal = |n: u64, unit: u64, name: &str| {
        let (q, r) = (n / unit, n % unit);
        let tenths = q.saturating_mul(10) + (r * 10 + unit / 2) / unit;
        match tenths % 10 {
            0 => format!("{} {name}", tenths / 10),
            d => format!("{}.{d} {name}", tenths / 10),
        }
    };
    match kib {
        k if k < MIB => format!("{k} KiB"),
        k if k < GIB => one_decimal(k, MIB, "MiB"),
        k => one_decimal(k, GIB, "GiB"),
    }
}

/// A duration in seconds for people: `2`, `0.5`, `1.25` (to the millisecond).
pub fn secs(d: std::time::Duration) -> String {
    let ms = d.subsec_millis();
    let mut s = format!("{}.{ms:03}", d.as_secs());
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (for `data/updated`).
fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Aligned columns, two spaces apart; the last column is not padded.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut width = vec![0usize; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    let pad = width[i] - c.chars().count();
                    let _ = write!(line, "{c}{:pad$}  ", "");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// A cell for the value of `key`: the value, `no access`, or `-`.
fn cell(r: &GuestReport, key: &str, v: Option<&str>) -> String {
    match v {
        Some(v) if !v.is_empty() => cut(v, CELL_MAX),
        _ if r.no_access(key) => NO_ACCESS.into(),
        _ => "-".into(),
    }
}

fn kib_cell(r: &GuestReport, key: &str, v: Option<u64>) -> String {
    match v {
        Some(k) => human_kib(k),
        None if r.no_access(key) => NO_ACCESS.into(),
        None => "-".into(),
    }
}

fn booted_cell(r: &GuestReport) -> String {
    match (&r.agent, r.booted_by) {
        (_, Some(_)) => "yes".into(),
        (Agent::Xenbeacon { .. } | Agent::XapiStyle { .. }, None) => "no".into(),
        (Agent::NoAccess, None) => NO_ACCESS.into(),
        (Agent::None, None) => "-".into(),
    }
}

fn balloon_cell(r: &GuestReport) -> String {
    let Some(b) = &r.balloon else {
        return cell(r, key::BALLOON_STATE, None);
    };
    let state = b
        .state
        .as_deref()
        .map_or_else(|| "-".to_owned(), |s| cut(s, 20));
    match (b.state.as_deref(), b.target_kb) {
        (Some("reached"), _) | (_, None) => state,
        (_, Some(t)) => format!("{state} (target {})", human_kib(t)),
    }
}

/// The first [`LIST_ADDRESSES`] addresses, IPv4 first, then `+N more`.
fn addresses_cell(v4: &[Address], v6: &[Address]) -> String {
    let all = v4.iter().chain(v6);
    let mut cell: Vec<String> = all
        .clone()
        .take(LIST_ADDRESSES)
        .map(|a| cut(&a.cidr(), 45))
        .collect();
    let more = all.count().saturating_sub(LIST_ADDRESSES);
    if more > 0 {
        cell.push(format!("+{more} more"));
    }
    if cell.is_empty() {
        "-".into()
    } else {
        cell.join(" ")
    }
}

fn opt(v: Option<&str>) -> String {
    v.filter(|v| !v.is_empty())
        .map_or_else(|| "-".to_owned(), |v| cut(v, CELL_MAX))
}

/// The tables of `xenbeacon list`, filled one domain at a time. Only cells are kept, each cut
/// to [`CELL_MAX`] characters, with at most [`LIST_NIC_ROWS`] NIC rows per domain and
/// [`LIST_ADDRESSES`] addresses per cell: a listing holds a few KiB per domain, whatever the
/// guests wrote (`show` prints everything of one).
pub struct ListTables {
    domains: Table,
    nics: Table,
    any_nic: bool,
}

impl Default for ListTables {
    fn default() -> ListTables {
        ListTables::new()
    }
}

impl ListTables {
    pub fn new() -> ListTables {
        ListTables {
            domains: Table::new(&[
                "DOMID", "NAME", "AGENT", "OS", "KERNEL", "STAGE", "BOOTED", "MEM", "FREE",
                "BALLOON",
            ]),
            nics: Table::new(&["DOMID", "NAME", "NIC", "IFACE", "MAC", "VIA", "ADDRESSES"]),
            any_nic: false,
        }
    }

    /// Adds one domain's rows.
    pub fn add(&mut self, r: &GuestReport) {
        let (domains, nics) = (&mut self.domains, &mut self.nics);
        let name = cell(r, toolstack_key::NAME, r.name.as_deref());
        if r.fully_denied() {
            let mut row = vec![r.domid.to_string(), name.clone()];
            row.extend(std::iter::repeat(NO_ACCESS.to_owned()).take(8));
            domains.row(row);
            nics.row(vec![r.domid.to_string(), name, NO_ACCESS.into()]);
            self.any_nic = true;
            return;
        }
        domains.row(vec![
            r.domid.to_string(),
            name.clone(),
            cut(&r.agent.label(), CELL_MAX),
            cell(r, key::OS_NAME, r.os.name.as_deref()),
            cell(r, key::OS_UNAME, r.os.kernel.as_deref()),
            cell(r, key::STAGE, r.stage.as_deref()),
            booted_cell(r),
            kib_cell(r, key::MEMINFO_TOTAL, r.memory.total_kb),
            kib_cell(r, key::MEMINFO_FREE, r.memory.free_kb),
            balloon_cell(r),
        ]);
        if r.no_access("attr") && r.nics.is_empty() {
            nics.row(vec![r.domid.to_string(), name.clone(), NO_ACCESS.into()]);
            self.any_nic = true;
        }
        let total: usize = r.nics.iter().map(|n| 1 + n.uppers.len()).sum();
        let mut shown = 0;
        for n in &r.nics {
            self.any_nic = true;
            if shown == LIST_NIC_ROWS {
                break;
            }
            nics.row(nic_row(r, &name, n));
            shown += 1;
            for u in n.uppers.iter().take(LIST_NIC_ROWS - shown) {
                nics.row(vec![
                    r.domid.to_string(),
                    name.clone(),
                    u.label(),
                    opt(u.name.as_deref()),
                    opt(u.mac.as_deref()),
                    n.name
                        .as_deref()
                        .map_or_else(|| n.label(), |p| cut(p, CELL_MAX)),
                    addresses_cell(&u.ipv4, &u.ipv6),
                ]);
                shown += 1;
            }
        }
        if total > shown {
            nics.row(vec![
                r.domid.to_string(),
                name,
                format!("+{} more (xenbeacon show {})", total - shown, r.domid),
            ]);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        self.domains.render(&mut out);
        if self.any_nic {
            out.push('\n');
            self.nics.render(&mut out);
        }
        out
    }
}

fn nic_row(r: &GuestReport, name: &str, n: &Nic) -> Vec<String> {
    let addresses = if n.reported {
        addresses_cell(&n.ipv4, &n.ipv6)
    } else {
        "(not reported by the guest)".into()
    };
    vec![
        r.domid.to_string(),
        name.to_owned(),
        cut(&n.label(), CELL_MAX),
        opt(n.name.as_deref()),
        opt(n.mac.as_deref()),
        n.via().map_or_else(|| "-".into(), |v| cut(&v, CELL_MAX)),
        addresses,
    ]
}

/// One `  key  value` line of the show page.
fn line(out: &mut String, k: &str, v: &str) {
    let _ = writeln!(out, "  {k:<12} {v}");
}

/// A value for the show page: cleaned, not cut (it is the one place to see all of it).
fn full(r: &GuestReport, key: &str, v: Option<&str>) -> String {
    match v {
        Some(v) => clean(v),
        None if r.no_access(key) => NO_ACCESS.into(),
        None => "-".into(),
    }
}

fn show_addresses(out: &mut String, indent: &str, v4: &[Address], v6: &[Address]) {
    for (fam, list) in [("ipv4", v4), ("ipv6", v6)] {
        for a in list {
            let k = format!("{fam}/{}", a.index);
            let _ = writeln!(out, "{indent}{k:<11} {}", clean(&a.cidr()));
        }
    }
}

/// `xenbeacon show`: everything one guest publishes, grouped.
pub fn show(r: &GuestReport) -> String {
    let mut out = String::new();
    let name = full(r, toolstack_key::NAME, r.name.as_deref());
    let _ = writeln!(out, "{name} (domid {})", r.domid);
    if r.fully_denied() {
        let _ = writeln!(
            out,
            "  no access: xenstored refused to read /local/domain/{}",
            r.domid
        );
        return out;
    }
    out.push_str("identity\n");
    line(
        &mut out,
        "uuid",
        &full(r, toolstack_key::VM, r.uuid.as_deref()),
    );
    let agent = match &r.agent {
        Agent::Xenbeacon { layout, version } => format!(
            "xenbeacon {} (layout {})",
            version.as_deref().map_or_else(|| "?".into(), clean),
            clean(layout)
        ),
        Agent::XapiStyle { pv_version } => match pv_version {
            Some(v) => format!(
                "xapi-style (another agent; PV drivers version {})",
                clean(v)
            ),
            None => "xapi-style (another agent)".into(),
        },
        Agent::None => "none (no agent keys: data/os_*, attr/PVAddons, attr/vif)".into(),
        Agent::NoAccess => NO_ACCESS.into(),
    };
    line(&mut out, "agent", &agent);
    line(&mut out, "os", &full(r, key::OS_NAME, r.os.name.as_deref()));
    let distro: Vec<String> = [r.os.distro.clone(), r.os.version()]
        .into_iter()
        .flatten()
        .map(|v| clean(&v))
        .collect();
    if !distro.is_empty() {
        line(&mut out, "distro", &distro.join(" "));
    }
    line(
        &mut out,
        "kernel",
        &full(r, key::OS_UNAME, r.os.kernel.as_deref()),
    );
    if let Some(h) = &r.os.host_name {
        line(&mut out, "host name", &clean(h));
    }

    out.push_str("boot\n");
    if let Some(s) = &r.stage {
        line(&mut out, "stage", &clean(s));
    }
    let booted = match r.booted_by {
        Some(k) if k == key::BOOTED => format!("yes ({k} = 1)"),
        Some(k) => format!("yes ({k} exists: an agent runs)"),
        None => booted_cell(r),
    };
    line(&mut out, "booted", &booted);
    let updated = match r.updated.as_deref() {
        Some(u) => match u.parse::<u64>() {
            Ok(secs) if (1_000_000_000..100_000_000_000).contains(&secs) => {
                format!("{} ({u})", utc(secs))
            }
            _ => clean(u),
        },
        None => full(r, key::UPDATED, None),
    };
    line(&mut out, "updated", &updated);

    out.push_str("memory\n");
    let m = &r.memory;
    let kib = |key: &str, v: Option<u64>| match v {
        Some(k) => format!("{} ({k} KiB)", human_kib(k)),
        None => full(r, key, None),
    };
    line(&mut out, "total", &kib(key::MEMINFO_TOTAL, m.total_kb));
    line(&mut out, "free", &kib(key::MEMINFO_FREE, m.free_kb));
    line(
        &mut out,
        "target",
        &kib(toolstack_key::MEMORY_TARGET, m.target_kb),
    );
    line(
        &mut out,
        "static-max",
        &kib(toolstack_key::MEMORY_STATIC_MAX, m.static_max_kb),
    );
    let may_balloon = if m.feature_balloon {
        "yes (control/feature-balloon)"
    } else if r.no_access(key::FEATURE_BALLOON) {
        NO_ACCESS
    } else {
        "no (no control/feature-balloon)"
    };
    line(&mut out, "may balloon", may_balloon);
    if let Some(b) = &r.balloon {
        let mut s = b.state.as_deref().map_or_else(|| "-".into(), clean);
        if let (Some(t), Some(c)) = (b.target_kb, b.current_kb) {
            let _ = write!(s, ": at {}, target {}", human_kib(c), human_kib(t));
        }
        line(&mut out, "balloon", &s);
        if let Some(reason) = &b.reason {
            line(&mut out, "reason", &clean(reason));
        }
    }

    out.push_str("nics\n");
    if r.no_access("attr") {
        let _ = writeln!(out, "  {NO_ACCESS} (attr/)");
    }
    if r.nics.is_empty() && !r.no_access("attr") {
        out.push_str("  none reported\n");
    }
    for n in &r.nics {
        let mut head = format!("  {}", clean(&n.label()));
        for v in [&n.name, &n.mac].into_iter().flatten() {
            let _ = write!(head, "  {}", clean(v));
        }
        if let Some(via) = n.via() {
            let _ = write!(head, "  ({})", clean(&via));
        }
        match n.carrier {
            Some(true) => head.push_str("  carrier up"),
            Some(false) => head.push_str("  carrier down"),
            None => {}
        }
        if !n.reported {
            head.push_str("  (configured by the toolstack; not reported by the guest)");
        }
        let _ = writeln!(out, "{head}");
        let _ = writeln!(out, "      {:<11} {}", "path", clean(&n.path));
        let details = [
            ("bus", &n.bus),
            ("location", &n.location),
            ("host", &n.host_location),
            ("vendor", &n.vendor),
            ("product", &n.product),
            ("driver", &n.driver),
            ("compatible", &n.compatible),
            ("topology", &n.topology),
            ("kind", &n.link_kind),
        ];
        for (k, v) in details {
            if let Some(v) = v {
                let _ = writeln!(out, "      {k:<11} {}", clean(v));
            }
        }
        show_addresses(&mut out, "      ", &n.ipv4, &n.ipv6);
        for u in &n.uppers {
            let mut head = format!("      {}", u.label());
            for v in [&u.name, &u.mac].into_iter().flatten() {
                let _ = write!(head, "  {}", clean(v));
            }
            let _ = writeln!(out, "{head}");
            show_addresses(&mut out, "          ", &u.ipv4, &u.ipv6);
        }
    }

    if !r.other.is_empty() {
        out.push_str("other keys\n");
        for (k, v) in &r.other {
            let _ = writeln!(out, "  {} = {}", clean(k), clean(v));
        }
    }
    for d in r.denied.iter() {
        let _ = writeln!(out, "no access: {}", clean(d));
    }
    if r.truncated {
        out.push_str("(more keys than xenbeacon reads per domain; not all are shown)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tree::DomainTree;
    use super::*;

    /// The two tables of `xenbeacon list`: domains, then NICs.
    fn list(reports: &[GuestReport]) -> String {
        let mut tables = ListTables::new();
        for r in reports {
            tables.add(r);
        }
        tables.render()
    }

    #[test]
    fn sizes_and_dates() {
        assert_eq!(human_kib(512), "512 KiB");
        assert_eq!(human_kib(131072), "128 MiB");
        assert_eq!(human_kib(78912), "77.1 MiB");
        assert_eq!(human_kib(2_000_000), "1.9 GiB");
        assert_eq!(human_kib(u64::MAX), "17592186044416 GiB");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        let d = std::time::Duration::from_millis;
        assert_eq!(
            [d(2000), d(500), d(1250), d(0), d(10)].map(secs),
            ["2", "0.5", "1.25", "0", "0.01"]
        );
        assert_eq!(utc(1_795_511_149), "2026-11-24 09:05:49 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn terminal_safe() {
        assert_eq!(
            clean("a\u{1b}[2Jb\r\n\0\u{9b}c\u{202e}"),
            "a?[2Jb???\u{3f}c?"
        );
        assert_eq!(clean("Grüße 日本"), "Grüße 日本");
        // Format (Cf) and separator (Zl, Zp) characters: invisible, reordering or breaking.
        for c in [
            '\u{2028}',
            '\u{2029}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{202a}',
            '\u{202e}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2069}',
            '\u{206f}',
            '\u{feff}',
            '\u{ad}',
            '\u{61c}',
            '\u{180e}',
            '\u{fff9}',
            '\u{e0001}',
            '\u{e007f}',
        ] {
            assert_eq!(clean(&format!("a{c}b")), "a?b", "U+{:04X}", c as u32);
        }
        // Neighbours of those ranges are printable and stay.
        assert_eq!(
            clean("\u{2027}\u{2030}\u{2065}\u{fefe}\u{fffc}"),
            "\u{2027}\u{2030}\u{2065}\u{fefe}\u{fffc}"
        );
        assert_eq!(cut("abcdef", 4), "abc…");
    }

    fn domains() -> Vec<GuestReport> {
        let mut a = DomainTree::new(1);
        a.set("name", "web1")
            .set("data/xenbeacon/layout", "1")
            .set("data/xenbeacon/stage", "rootfs")
            .set("data/xenbeacon/booted", "1")
            .set("data/os_name", "Debian GNU/Linux 12 (bookworm)")
            .set("data/os_uname", "6.1.0-28-amd64")
            .set("data/meminfo_total", "78912")
            .set("data/meminfo_free", "60000")
            .set("data/balloon_state", "ballooning")
            .set("data/balloon_target_kb", "98304")
            .set("attr/vif/0/name", "eth0")
            .set("attr/vif/0/mac/0", "00:16:3e:00:00:00")
            .set("attr/vif/0/bridge", "br0")
            .set("attr/vif/0/ipv4/0", "10.0.0.2")
            .set("attr/vif/0/ipv4/0/prefix", "24")
            .set("attr/vif/0/vlan/100/name", "eth0.100")
            .set("attr/vif/0/vlan/100/ipv4/0", "10.0.100.2");
        let mut b = DomainTree::new(2);
        b.set("name", "bare")
            .set("device/vif/0/mac", "00:16:3e:aa:bb:cc");
        let mut c = DomainTree::new(3);
        c.denied.insert(String::new());
        let mut d = DomainTree::new(4);
        d.set("name", "evil\u{1b}[31m")
            .set("data/os_name", &"x".repeat(200));
        [a, b, c, d].iter().map(GuestReport::parse).collect()
    }

    #[test]
    fn list_tables() {
        let out = list(&domains());
        let expected = "\
DOMID  NAME       AGENT               OS                                        KERNEL          STAGE      BOOTED     MEM        FREE       BALLOON
1      web1       xenbeacon layout 1  Debian GNU/Linux 12 (bookworm)            6.1.0-28-amd64  rootfs     yes        77.1 MiB   58.6 MiB   ballooning (target 96 MiB)
2      bare       none                -                                         -               -          -          -          -          -
3      no access  no access           no access                                 no access       no access  no access  no access  no access  no access
4      evil?[31m  xapi-style          xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…  -               -          no         -          -          -

DOMID  NAME       NIC        IFACE     MAC                VIA         ADDRESSES
1      web1       vif 0      eth0      00:16:3e:00:00:00  bridge br0  10.0.0.2/24
1      web1       VLAN 100   eth0.100  -                  eth0        10.0.100.2
2      bare       vif 0      -         00:16:3e:aa:bb:cc  -           (not reported by the guest)
3      no access  no access
";
        assert_eq!(out, expected, "\n{out}");
    }

    #[test]
    fn list_keeps_a_bounded_number_of_rows_and_addresses() {
        let mut t = DomainTree::new(7);
        t.set("data/xenbeacon/layout", "1");
        for v in 0..40 {
            for a in 0..10 {
                t.set(&format!("attr/vif/{v}/ipv4/{a}"), &format!("10.0.{v}.{a}"));
            }
        }
        let out = list(&[GuestReport::parse(&t)]);
        let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("7 ")).collect();
        // The domain row, LIST_NIC_ROWS NIC rows, one "more" row.
        assert_eq!(rows.len(), 1 + LIST_NIC_ROWS + 1, "{out}");
        assert!(
            rows[1].ends_with(
                "10.0.0.0 10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7 +2 more"
            ),
            "{}",
            rows[1]
        );
        assert!(
            rows[LIST_NIC_ROWS + 1].ends_with("+8 more (xenbeacon show 7)"),
            "{out}"
        );
    }

    #[test]
    fn show_page() {
        let r = &domains()[0];
        let out = show(r);
        for want in [
            "web1 (domid 1)\n",
            "  agent        xenbeacon ? (layout 1)\n",
            "  booted       yes (data/xenbeacon/booted = 1)\n",
            "  total        77.1 MiB (78912 KiB)\n",
            "  target       -\n",
            "  may balloon  no (no control/feature-balloon)\n",
            "  balloon      ballooning\n",
            "  vif 0  eth0  00:16:3e:00:00:00  (bridge br0)\n",
            "      ipv4/0      10.0.0.2/24\n",
            "      VLAN 100  eth0.100\n",
            "          ipv4/0      10.0.100.2\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
        let denied = show(&domains()[2]);
        assert!(denied.contains("no access"), "{denied}");
        assert!(!show(&domains()[3]).contains('\u{1b}'));
    }
}
