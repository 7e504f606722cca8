//! What the agent added, kept across its own restart: `/run/xenbeacon/netconfig` (below
//! `--root`).
//!
//! Why a file, and why there: the kernel forgets an address's origin (IFA_PROTO exists only
//! since Linux 6.1 and not every guest has it), so only the agent can say which addresses it
//! added; without a record a restarted agent could neither remove its own address when the
//! toolstack switches to DHCP nor tell it from one the OS configured. `/run` is a tmpfs: the
//! record lives exactly as long as the kernel's addresses (a reboot clears both), and survives
//! an agent restart, a package upgrade, resume and migration (the guest's memory moves with
//! it). Interface indexes are stable for the same reason. Default routes also carry the
//! agent's protocol number ([`super::plan::RTPROT_XENBEACON`]), which the kernel keeps, so a
//! route is removed only if both the record and the kernel say it is the agent's.
//!
//! One line per request and family: `xenopsd|vm-data <devid> 4|6 <ifindex> <addr/prefix|->
//! <gateway|->`. A line that does not parse is dropped (and so is never acted on): losing a
//! record can leave an address behind, never remove someone else's.

use std::io;
use std::path::{Path, PathBuf};

use super::plan::{Applied, AppliedEntry};
use super::request::Origin;

/// The record's path below the root.
pub const RECORD_PATH: &str = "run/xenbeacon/netconfig";

/// The record's file below `root`.
pub fn path(root: &Path) -> PathBuf {
    root.join(RECORD_PATH)
}

/// The record as text.
pub fn emit(applied: &Applied) -> String {
    let mut out = String::new();
    for e in &applied.entries {
        let (kind, id) = match e.origin {
            Origin::Xenopsd(d) => ("xenopsd", d),
            Origin::VmData(d) => ("vm-data", d),
        };
        let fam = if e.v6 { 6 } else { 4 };
        let addr = e
            .addr
            .map_or_else(|| "-".to_owned(), |(a, p)| format!("{a}/{p}"));
        let gw = e.gateway.map_or_else(|| "-".to_owned(), |g| g.to_string());
        out.push_str(&format!("{kind} {id} {fam} {} {addr} {gw}\n", e.index));
    }
    out
}

/// Parses a record; returns it and how many lines were dropped.
pub fn parse(text: &str) -> (Applied, usize) {
    let mut applied = Applied::default();
    let mut dropped = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match parse_line(line) {
            Some(e) => applied.entries.push(e),
            None => dropped += 1,
        }
    }
    (applied, dropped)
}

fn parse_line(line: &str) -> Option<AppliedEntry> {
    let mut f = line.split(' ');
    let kind = f.next()?;
    let id: u32 = f.next()?.parse().ok()?;
    let origin = match kind {
        "xenopsd" => Origin::Xenopsd(id),
        "vm-data" => Origin::VmData(id),
        _ => return None,
    };
    let v6 = match f.next()? {
        "4" => false,
        "6" => true,
        _ => return None,
    };
    let index: u32 = f.next()?.parse().ok()?;
    let addr = match f.next()? {
        "-" => None,
        s => {
            let (a, p) = s.split_once('/')?;
            Some((a.parse().ok()?, p.parse().ok()?))
        }
    };
    let gateway = match f.next()? {
        "-" => None,
        s => Some(s.parse().ok()?),
    };
    if f.next().is_some() || (addr.is_none() && gateway.is_none()) {
        return None;
    }
    let family_ok = |ip: &core::net::IpAddr| ip.is_ipv6() == v6;
    if !addr.iter().all(|(a, _)| family_ok(a)) || !gateway.iter().all(family_ok) {
        return None;
    }
    Some(AppliedEntry {
        origin,
        v6,
        index,
        addr,
        gateway,
    })
}

/// Reads the record; a missing file is an empty record.
pub fn load(root: &Path) -> io::Result<(Applied, usize)> {
    match std::fs::read_to_string(path(root)) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((Applied::default(), 0)),
        Err(e) => Err(e),
    }
}

/// Writes the record whole (a temporary file renamed over it), or removes it when empty.
pub fn store(root: &Path, applied: &Applied) -> io::Result<()> {
    let file = path(root);
    if applied.entries.is_empty() {
        return match std::fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("new");
    std::fs::write(&tmp, emit(applied))?;
    std::fs::rename(&tmp, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Applied {
        Applied {
            entries: vec![
                AppliedEntry {
                    origin: Origin::Xenopsd(0),
                    v6: false,
                    index: 2,
                    addr: Some(("10.0.0.2".parse().unwrap(), 24)),
                    gateway: Some("10.0.0.1".parse().unwrap()),
                },
                AppliedEntry {
                    origin: Origin::VmData(1),
                    v6: true,
                    index: 7,
                    addr: Some(("2001:db8::2".parse().unwrap(), 64)),
                    gateway: None,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let text = emit(&sample());
        assert_eq!(
            text,
            "xenopsd 0 4 2 10.0.0.2/24 10.0.0.1\nvm-data 1 6 7 2001:db8::2/64 -\n"
        );
        assert_eq!(parse(&text), (sample(), 0));
    }

    #[test]
    fn bad_lines_are_dropped_not_guessed() {
        let text = "xenopsd 0 4 2 10.0.0.2/24 10.0.0.1\n\
                    xenopsd 0 4 2 2001:db8::2/64 -\n\
                    other 0 4 2 10.0.0.2/24 -\n\
                    xenopsd 0 4 2 - -\n\
                    xenopsd x 4 2 10.0.0.2/24 -\n\
                    xenopsd 0 4 2 10.0.0.2/24 - extra\n\
                    \u{0}\u{ff}garbage";
        let (a, dropped) = parse(text);
        assert_eq!(a.entries.len(), 1);
        assert_eq!(dropped, 6);
    }

    #[test]
    fn store_and_load_below_root() {
        let dir = std::env::temp_dir().join(format!("xb-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(load(&dir).unwrap(), (Applied::default(), 0));
        store(&dir, &sample()).unwrap();
        assert_eq!(load(&dir).unwrap(), (sample(), 0));
        store(&dir, &Applied::default()).unwrap();
        assert!(!path(&dir).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
