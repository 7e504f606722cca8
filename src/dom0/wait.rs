//! `xenbeacon wait`: block until a guest reports something, on XenStore watches, never by
//! polling XenStore.
//!
//! One `poll(2)` on the connection's fd, with the time left until `--timeout`. The guest is
//! read once ([`Reader::read_domain`]) and kept; a watch event then re-reads only the path it
//! names and what is below it ([`Reader::refresh`]), and each round ends with one check
//! ([`satisfied`], pure). The watch is set before the first read, so nothing that happens
//! between reading and watching can be missed; xenstored fires every new watch once.
//!
//! A guest may write as fast as it likes, so its writes must not become dom0's work: events
//! are coalesced (a set of at most [`TOUCHED_MAX`] distinct paths, else one whole re-read),
//! and rounds are at least [`REREAD_FLOOR`] apart. The deadline is checked before every round
//! and bounds every request ([`crate::xenbus::conn::XenbusConn::set_deadline`]) and the
//! connect, so `--timeout` ends the wait on time even when events never stop or xenstored
//! stops answering.
//!
//! Waiting by name for a domain that does not exist yet: `/local/domain` is watched (not
//! `@introduceDomain`) until a domain with that name shows up. libxl writes `name` before it
//! introduces the domain, `xl rename` fires it too, and it needs no privilege beyond reading
//! the tree (`@introduceDomain` is dom0-only and does not fire for renames). Once the domain is
//! found only its home is watched, so a busy host does not wake us for other guests' memory
//! updates. If the home is removed (`xl destroy`, `xl reboot`: a new domain with the same
//! name), a wait by name goes back to watching `/local/domain`; a wait by domid fails.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::reader::{DomainSpec, ReadError, Reader};
use super::report::{Address, Agent, GuestReport};
use super::tree::{home, DomainTree, DOMAINS_DIR, SINGLE_KEYS, SUBTREES};
use crate::layout::{is_under, Mac};
use crate::sys;
use crate::xenbus::conn::Error;

const TOKEN_DOMAINS: &str = "xenbeacon-wait-domains";
const TOKEN_HOME: &str = "xenbeacon-wait-home";

/// Least time between two rounds of re-reads: however often a guest writes, a wait costs
/// dom0 at most 20 rounds a second (and an answer at most this much latency).
pub const REREAD_FLOOR: Duration = Duration::from_millis(50);
/// Most distinct paths remembered between two rounds; past it, the round re-reads everything.
pub const TOUCHED_MAX: usize = 64;

/// What the guest must report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    pub booted: bool,
    pub ip: bool,
    pub nic: Option<Mac>,
}

impl Conditions {
    /// For the timeout message: `an IPv4 address`, `booted`, ...
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.booted {
            parts.push("that it booted".to_owned());
        }
        match (self.nic, self.ip) {
            (Some(m), true) => parts.push(format!("an IPv4 address on NIC {}", m)),
            (Some(m), false) => parts.push(format!("NIC {}", m)),
            (None, true) => parts.push("an IPv4 address".into()),
            (None, false) => {}
        }
        if parts.is_empty() {
            parts.push("an agent".into());
        }
        parts.join(" and ")
    }
}

/// What to print once `r` meets `c`: the address for `--ip`, the interface name (else MAC)
/// for `--nic`, `booted` for `--booted`, the agent without a condition; `None` until then.
///
/// The guest wrote all of it, and scripts put it on command lines (`ssh root@$(...)`), so
/// only what was validated is printed, in canonical form: an address that [`usable_ipv4`]
/// accepts, an interface name that [`safe_ifname`] accepts (else the NIC's MAC, as asked for),
/// a layout number of digits.
pub fn satisfied(r: &GuestReport, c: &Conditions) -> Option<String> {
    if c.booted && !r.booted() {
        return None;
    }
    let nic = match &c.nic {
        Some(mac) => Some((r.nic_by_mac(mac)?, mac)),
        None => None,
    };
    if c.ip {
        let addr = match nic {
            Some((n, _)) => n.ipv4.iter().find_map(usable_ipv4)?,
            None => first_usable_ipv4(r)?,
        };
        return Some(addr.to_string());
    }
    if let Some((n, mac)) = nic {
        let name = n.name.as_deref().filter(|name| safe_ifname(name));
        return Some(name.map_or_else(|| mac.to_string(), str::to_owned));
    }
    if c.booted {
        return Some("booted".into());
    }
    match &r.agent {
        Agent::Xenbeacon { layout, .. } => {
            let number = !layout.is_empty()
                && layout.len() <= 9
                && layout.bytes().all(|b| b.is_ascii_digit());
            Some(if number {
                format!("xenbeacon layout {layout}")
            } else {
                "xenbeacon".into()
            })
        }
        Agent::XapiStyle { .. } => Some(r.agent.label()),
        Agent::None | Agent::NoAccess => None,
    }
}

/// The guest's first usable IPv4 address ([`usable_ipv4`]), in the report's NIC order:
/// lowest vif devid, lowest index, then SR-IOV VFs, then the other NICs (`attr/net`). What
/// `wait --ip` prints, and the `ansible_host` of `list --format ansible`.
pub fn first_usable_ipv4(r: &GuestReport) -> Option<Ipv4Addr> {
    r.nics
        .iter()
        .filter(|n| n.reported)
        .find_map(|n| n.ipv4.iter().find_map(usable_ipv4))
}

/// The address, if it is a unicast IPv4 address another host can reach the guest at: a
/// dotted quad (no leading zeros, no other notation), not in 0.0.0.0/8 ("this network"),
/// 127.0.0.0/8 (loopback: dom0 itself), 169.254.0.0/16 (link-local: self-assigned, only
/// reachable on the guest's own link), 224.0.0.0/4 (multicast) or 240.0.0.0/4 (reserved, with
/// the broadcast address 255.255.255.255). Private and shared (CGNAT) ranges are usable.
pub fn usable_ipv4(a: &Address) -> Option<Ipv4Addr> {
    let ip: Ipv4Addr = a.addr.parse().ok()?;
    let first = ip.octets()[0];
    let unusable = first == 0 || ip.is_loopback() || ip.is_link_local() || first >= 224;
    (!unusable).then_some(ip)
}

/// True for an interface name that is safe on a command line: 1 to 15 bytes (the kernel's
/// limit) of ASCII letters, digits, `_`, `-` and `.`, not starting with `-` (an option) or `.`.
pub fn safe_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with(['-', '.'])
}

/// How a wait ended, other than with the answer.
#[derive(Debug)]
pub enum WaitError {
    /// timed out; with why, when XenStore itself was what did not answer in time
    Timeout(Option<&'static str>),
    /// the domain is gone
    Gone(u32),
    /// no such domain
    NoSuchDomain(u32),
    /// no access to the domain
    NoAccess(u32),
    /// bad --nic
    BadMac(String),
    /// XenStore failed
    Read(ReadError),
    /// poll(2) failed
    Poll(std::io::Error),
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitError::Timeout(None) => f.write_str("timed out"),
            WaitError::Timeout(Some(why)) => write!(f, "timed out ({why})"),
            WaitError::Gone(d) => write!(f, "domain {d} is gone"),
            WaitError::NoSuchDomain(d) => write!(f, "no domain {d}"),
            WaitError::NoAccess(d) => write!(
                f,
                "no access to /local/domain/{d} (xenstored refused; not dom0?)"
            ),
            WaitError::BadMac(m) => write!(
                f,
                "--nic '{m}' is not a MAC address (aa:bb:cc:dd:ee:ff or aabbccddeeff)"
            ),
            WaitError::Read(e) => e.fmt(f),
            WaitError::Poll(e) => write!(f, "poll failed: {e}"),
        }
    }
}

impl std::error::Error for WaitError {}

impl From<ReadError> for WaitError {
    fn from(e: ReadError) -> WaitError {
        WaitError::Read(e)
    }
}

fn watch_error(path: &str, e: crate::xenbus::conn::Error) -> WaitError {
    WaitError::Read(ReadError::Request(format!("watch {path}"), e))
}

enum Phase {
    /// Watching `/local/domain` for a domain with the name.
    Searching,
    /// Watching this domain's home.
    Watching(u32),
}

/// True for events that may change what the name resolves to.
fn names_changed(path: &str) -> bool {
    let Some(rest) = path.strip_prefix(DOMAINS_DIR) else {
        return false;
    };
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let mut parts = rest.split('/');
    let id = parts.next().unwrap_or("");
    let id_ok = id.is_empty() || id.bytes().all(|b| b.is_ascii_digit());
    id_ok && matches!(parts.next(), None | Some("name")) && parts.next().is_none()
}

/// What a watch event asks to re-read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Touch {
    /// Everything (the home itself, or a parent of what is read).
    All,
    /// This path, relative to the home, and what is below it.
    Path(String),
}

/// What an event at `path`, under the watched `home`, may have changed of what the guest
/// reports; `None` for the rest of the home (devices, control, ...).
fn touched(home: &str, path: &str) -> Option<Touch> {
    let rest = path.strip_prefix(home)?;
    let Some(rel) = rest.strip_prefix('/') else {
        return rest.is_empty().then_some(Touch::All);
    };
    let roots = || SUBTREES.iter().chain(SINGLE_KEYS.iter());
    if roots().any(|t| is_under(rel, t)) {
        Some(Touch::Path(rel.to_owned()))
    } else if roots().any(|t| is_under(t, rel)) {
        Some(Touch::All)
    } else {
        None
    }
}

/// The re-reads the next round owes: coalesced, bounded.
#[derive(Debug, Default, PartialEq, Eq)]
struct Pending {
    all: bool,
    /// None below another.
    paths: Vec<String>,
}

impl Pending {
    fn everything() -> Pending {
        Pending {
            all: true,
            paths: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        !self.all && self.paths.is_empty()
    }

    fn add(&mut self, t: Touch) {
        if self.all {
            return;
        }
        let p = match t {
            Touch::All => {
                *self = Pending::everything();
                return;
            }
            Touch::Path(p) => p,
        };
        if self.paths.iter().any(|q| is_under(&p, q)) {
            return;
        }
        self.paths.retain(|q| !is_under(q, &p));
        if self.paths.len() >= TOUCHED_MAX {
            *self = Pending::everything();
        } else {
            self.paths.push(p);
        }
    }
}

/// Waits for `c` on `spec` until `deadline` (forever if `None`); the text to print.
pub fn wait(
    reader: &mut Reader,
    spec: &DomainSpec,
    c: &Conditions,
    deadline: Option<Instant>,
) -> Result<String, WaitError> {
    reader.conn().set_deadline(deadline);
    match wait_until(reader, spec, c, deadline) {
        // A request the deadline cut short: the wait timed out, with XenStore as the reason.
        Err(WaitError::Read(ReadError::Request(_, Error::Timeout)))
            if deadline.is_some_and(|d| Instant::now() >= d) =>
        {
            Err(WaitError::Timeout(Some("XenStore had not answered")))
        }
        r => r,
    }
}

fn wait_until(
    reader: &mut Reader,
    spec: &DomainSpec,
    c: &Conditions,
    deadline: Option<Instant>,
) -> Result<String, WaitError> {
    let mut phase = match spec {
        DomainSpec::Domid(d) => {
            if !reader.exists(*d)? {
                return Err(WaitError::NoSuchDomain(*d));
            }
            let home = home(*d);
            reader
                .conn()
                .watch(&home, TOKEN_HOME)
                .map_err(|e| watch_error(&home, e))?;
            Phase::Watching(*d)
        }
        DomainSpec::Name(_) => {
            reader
                .conn()
                .watch(DOMAINS_DIR, TOKEN_DOMAINS)
                .map_err(|e| watch_error(DOMAINS_DIR, e))?;
            Phase::Searching
        }
    };
    // The guest as last read, kept up to date path by path.
    let mut cached: Option<DomainTree> = None;
    let mut pending = Pending::everything();
    let mut last_round: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(WaitError::Timeout(None));
        }
        while let Some(ev) = reader.conn().pending_event() {
            match (&phase, ev.token.as_str()) {
                (Phase::Searching, TOKEN_DOMAINS) if names_changed(&ev.path) => {
                    pending.add(Touch::All);
                }
                (Phase::Watching(d), TOKEN_HOME) => {
                    if let Some(t) = touched(&home(*d), &ev.path) {
                        pending.add(t);
                    }
                }
                _ => {}
            }
        }
        let due = last_round.map_or(now, |t| t + REREAD_FLOOR);
        if !pending.is_empty() && now >= due {
            last_round = Some(now);
            let todo = std::mem::take(&mut pending);
            match phase {
                Phase::Searching => {
                    if let Some(d) = reader.resolve(spec)? {
                        let home = home(d);
                        let conn = reader.conn();
                        conn.watch(&home, TOKEN_HOME)
                            .map_err(|e| watch_error(&home, e))?;
                        conn.unwatch(DOMAINS_DIR, TOKEN_DOMAINS)
                            .map_err(|e| watch_error(DOMAINS_DIR, e))?;
                        phase = Phase::Watching(d);
                        cached = None;
                        pending = Pending::everything();
                    }
                }
                Phase::Watching(d) => {
                    match cached.as_mut() {
                        Some(tree) if !todo.all => {
                            for p in &todo.paths {
                                reader.refresh(tree, p)?;
                            }
                        }
                        _ => cached = reader.read_domain(d)?,
                    }
                    match &cached {
                        Some(tree) => {
                            let r = GuestReport::parse(tree);
                            if r.fully_denied() {
                                return Err(WaitError::NoAccess(d));
                            }
                            if let Some(out) = satisfied(&r, c) {
                                return Ok(out);
                            }
                        }
                        None => {
                            let home = home(d);
                            // The watch of a removed node stays registered; drop it.
                            let _ = reader.conn().unwatch(&home, TOKEN_HOME);
                            if let DomainSpec::Domid(_) = spec {
                                return Err(WaitError::Gone(d));
                            }
                            reader
                                .conn()
                                .watch(DOMAINS_DIR, TOKEN_DOMAINS)
                                .map_err(|e| watch_error(DOMAINS_DIR, e))?;
                            phase = Phase::Searching;
                            pending = Pending::everything();
                        }
                    }
                }
            }
            // The requests may have buffered events: look at them before sleeping.
            continue;
        }
        // Sleep until an event, the deadline, or (with a round owed) the end of the floor.
        let wake = match (pending.is_empty(), deadline) {
            (true, d) => d,
            (false, Some(d)) => Some(d.min(due)),
            (false, None) => Some(due),
        };
        let left = wake.map(|w| w.saturating_duration_since(now));
        let mut readable = [libc::pollfd {
            fd: reader.conn().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if sys::poll(&mut readable, left).map_err(WaitError::Poll)? > 0 {
            reader
                .conn()
                .receive()
                .map_err(|e| WaitError::Read(ReadError::Request("watch events".into(), e)))?;
        }
    }
}

/// The `--nic` argument as a MAC.
pub fn parse_nic(s: &str) -> Result<Mac, WaitError> {
    Mac::parse(s).ok_or_else(|| WaitError::BadMac(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(kv: &[(&str, &str)]) -> GuestReport {
        let mut t = DomainTree::new(3);
        for (k, v) in kv {
            t.set(k, v);
        }
        GuestReport::parse(&t)
    }

    #[test]
    fn conditions() {
        let ip = Conditions {
            ip: true,
            ..Conditions::default()
        };
        let booted = Conditions {
            booted: true,
            ..Conditions::default()
        };
        let none = Conditions::default();
        let empty = guest(&[("name", "web1")]);
        assert_eq!(satisfied(&empty, &none), None);
        assert_eq!(satisfied(&empty, &ip), None);
        assert_eq!(satisfied(&empty, &booted), None);

        let xb = guest(&[
            ("data/xenbeacon/layout", "1"),
            ("data/updated", "1"),
            ("attr/vif/1/ipv4/0", "10.0.0.3"),
            ("attr/vif/0/ipv4/2", "10.0.0.2"),
            ("attr/vif/0/ipv4/5", "10.0.0.9"),
            ("attr/net/525400123405/ipv4/0", "10.0.2.15"),
            ("attr/net/525400123405/name", "enp0s5"),
        ]);
        assert_eq!(satisfied(&xb, &none).as_deref(), Some("xenbeacon layout 1"));
        assert_eq!(satisfied(&xb, &ip).as_deref(), Some("10.0.0.2"));
        // xenbeacon: data/updated is not "booted"; data/xenbeacon/booted = 1 is.
        assert_eq!(satisfied(&xb, &booted), None);
        let mac = parse_nic("52:54:00:12:34:05").unwrap();
        let nic = Conditions {
            nic: Some(mac),
            ..Conditions::default()
        };
        assert_eq!(satisfied(&xb, &nic).as_deref(), Some("enp0s5"));
        let nic_ip = Conditions {
            nic: Some(mac),
            ip: true,
            ..Conditions::default()
        };
        assert_eq!(satisfied(&xb, &nic_ip).as_deref(), Some("10.0.2.15"));
        let other_nic = Conditions {
            nic: Some(Mac([2, 0, 0, 0, 0, 1])),
            ..Conditions::default()
        };
        assert_eq!(satisfied(&xb, &other_nic), None);

        let done = guest(&[
            ("data/xenbeacon/layout", "1"),
            ("data/xenbeacon/booted", "1"),
        ]);
        assert_eq!(satisfied(&done, &booted).as_deref(), Some("booted"));
        let both = Conditions {
            booted: true,
            ip: true,
            nic: None,
        };
        assert_eq!(satisfied(&done, &both), None);

        // XAPI-style: data/updated existing is "booted".
        let xapi = guest(&[("data/os_name", "Windows"), ("data/updated", "x")]);
        assert_eq!(satisfied(&xapi, &booted).as_deref(), Some("booted"));
        assert_eq!(satisfied(&xapi, &none).as_deref(), Some("xapi-style"));
        assert!(parse_nic("nope").is_err());
        assert_eq!(both.describe(), "that it booted and an IPv4 address");
        assert_eq!(none.describe(), "an agent");
    }

    #[test]
    fn only_usable_addresses_and_safe_names_are_printed() {
        let ip = Conditions {
            ip: true,
            ..Conditions::default()
        };
        // Every unusable address is skipped, in every NIC, before the usable one.
        let r = guest(&[
            ("data/xenbeacon/layout", "1"),
            ("attr/vif/0/ipv4/0", "127.0.0.1"),
            ("attr/vif/0/ipv4/1", "0.0.0.0"),
            ("attr/vif/0/ipv4/2", "255.255.255.255"),
            ("attr/vif/0/ipv4/3", "224.0.0.1"),
            ("attr/vif/0/ipv4/4", "239.255.255.250"),
            ("attr/vif/0/ipv4/5", "169.254.10.1"),
            ("attr/vif/0/ipv4/6", "0.1.2.3"),
            ("attr/vif/0/ipv4/7", "240.0.0.1"),
            ("attr/vif/0/ipv4/8", "010.0.0.1"),
            ("attr/vif/0/ipv4/9", "10.0.0.1 -oProxyCommand=id"),
            ("attr/vif/1/ipv4/0", "127.1.2.3"),
            ("attr/vif/1/ipv4/1", "192.168.1.20"),
        ]);
        assert_eq!(satisfied(&r, &ip).as_deref(), Some("192.168.1.20"));
        let only_bad = guest(&[
            ("data/xenbeacon/layout", "1"),
            ("attr/vif/0/ipv4/0", "127.0.0.1"),
            ("attr/vif/0/ipv4/1", "255.255.255.255"),
        ]);
        assert_eq!(satisfied(&only_bad, &ip), None);
        for ok in [
            "10.0.0.2",
            "100.64.0.1",
            "172.16.0.1",
            "192.0.2.9",
            "223.255.255.254",
        ] {
            let a = Address {
                index: 0,
                addr: ok.into(),
                prefix: None,
            };
            assert_eq!(usable_ipv4(&a).map(|a| a.to_string()).as_deref(), Some(ok));
        }

        // --nic prints the name only if it is safe, else the MAC that was asked for.
        let mac = parse_nic("52:54:00:12:34:05").unwrap();
        let nic = Conditions {
            nic: Some(mac),
            ..Conditions::default()
        };
        for (name, printed) in [
            ("enp0s5", "enp0s5"),
            ("eth0.100", "eth0.100"),
            ("$(reboot) -oProxyCommand=x;id", "52:54:00:12:34:05"),
            ("-oProxyCommand=id", "52:54:00:12:34:05"),
            ("a b", "52:54:00:12:34:05"),
            ("x".repeat(16).as_str(), "52:54:00:12:34:05"),
            ("", "52:54:00:12:34:05"),
            (".hidden", "52:54:00:12:34:05"),
            ("eth`id`", "52:54:00:12:34:05"),
        ] {
            let r = guest(&[
                ("data/xenbeacon/layout", "1"),
                ("attr/net/525400123405/name", name),
            ]);
            assert_eq!(satisfied(&r, &nic).as_deref(), Some(printed), "{name:?}");
        }
        // Without a condition: the layout only if it is a number.
        let odd = guest(&[("data/xenbeacon/layout", "1 $(id)")]);
        assert_eq!(
            satisfied(&odd, &Conditions::default()).as_deref(),
            Some("xenbeacon")
        );
    }

    #[test]
    fn event_filters() {
        assert!(names_changed("/local/domain"));
        assert!(names_changed("/local/domain/7"));
        assert!(names_changed("/local/domain/7/name"));
        assert!(!names_changed("/local/domain/7/data/os_name"));
        assert!(!names_changed("/local/domainx"));
        assert!(!names_changed("/local/domain/7/name/x"));
        let home = "/local/domain/7";
        let path = |p: &str| Some(Touch::Path(p.into()));
        assert_eq!(touched(home, "/local/domain/7"), Some(Touch::All));
        assert_eq!(
            touched(home, "/local/domain/7/attr/vif/0/ipv4/0"),
            path("attr/vif/0/ipv4/0")
        );
        assert_eq!(touched(home, "/local/domain/7/data"), path("data"));
        assert_eq!(touched(home, "/local/domain/7/name"), path("name"));
        assert_eq!(touched(home, "/local/domain/7/memory"), Some(Touch::All));
        assert_eq!(touched(home, "/local/domain/7/xenserver"), Some(Touch::All));
        assert_eq!(
            touched(home, "/local/domain/7/device/vbd/51712/state"),
            None
        );
        assert_eq!(touched(home, "/local/domain/70/data/x"), None);
        assert_eq!(touched(home, "/local/domain/7/database"), None);
    }

    #[test]
    fn pending_rereads_are_coalesced_and_bounded() {
        let mut p = Pending::default();
        assert!(p.is_empty());
        let t = |s: &str| Touch::Path(s.into());
        p.add(t("data/a"));
        p.add(t("data/a"));
        p.add(t("data/a/b"));
        assert_eq!(p.paths, ["data/a"]);
        p.add(t("attr/vif/0/ipv4/0"));
        p.add(t("attr/vif/0"));
        assert_eq!(p.paths, ["data/a", "attr/vif/0"]);
        for i in 0..TOUCHED_MAX {
            p.add(t(&format!("data/k{i}")));
        }
        assert_eq!(p, Pending::everything());
        p.add(t("data/x"));
        assert_eq!(p, Pending::everything());
        let mut q = Pending::default();
        q.add(t("data/x"));
        q.add(Touch::All);
        assert_eq!(q, Pending::everything());
    }
}
