//! `xenbeacon export --textfile-dir DIR`: keeps `DIR/xenbeacon.prom` (the series of
//! [`super::prometheus`]) current for node_exporter's textfile collector, on XenStore watches.
//!
//! Why a file and not an HTTP endpoint: node_exporter already runs on the hosts people watch,
//! with its TLS, authentication and a port their Prometheus scrapes; a textfile adds no
//! listening socket to dom0 and no HTTP code to the binary, and node_exporter reports when it
//! cannot read the file (`node_textfile_scrape_error`). Why not a cron job running `list`:
//! that re-reads every guest each minute whether it changed or not, and shows a change a
//! minute late; here a change is in the file within milliseconds and an idle host costs
//! nothing.
//!
//! What it watches: `@introduceDomain` and `@releaseDomain` (the domain list changed: list
//! it again) and each domain's home, with the domid in the token. The connection coalesces
//! queued events by token ([`crate::xenbus::conn::XenbusConn::limit_events`]), so a guest
//! that writes as fast as it can queues one event, whatever it writes, and an event says
//! which domain to re-read, nothing more. A round re-reads the changed domains (each capped
//! as in `list`, [`super::reader`]), renders their series and, if the file's text changed,
//! writes it to a temporary file in the same directory and renames it over the old one.
//! Rounds are at least `--min-interval` apart; the first change after a quiet spell is
//! exported at once.
//!
//! Memory: per domain only its rendered series (capped per guest by
//! [`super::prometheus`]), never the tree that was read. Time: connecting and every round
//! are bounded by `--timeout` ([`crate::xenbus::conn::XenbusConn::set_deadline`]); between
//! rounds the export sleeps in `poll(2)` on the connection and a signalfd, with no timeout
//! unless a round is owed.
//!
//! [`Exporter`] is the state (what to re-read, what the file says); [`run`] owns the fds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::cli::ExportArgs;
use super::prometheus::{self, GuestSeries};
use super::reader::{Domains, ReadError, Reader};
use super::report::GuestReport;
use super::tree::home;
use crate::sys;
use crate::xenbus::conn::Error;

/// The file written in `--textfile-dir`; node_exporter reads `*.prom`.
pub const FILE_NAME: &str = "xenbeacon.prom";
/// The temporary file renamed over [`FILE_NAME`]: not `*.prom`, so never read half-written.
pub const TEMP_NAME: &str = ".xenbeacon.prom.tmp";
/// The token of `@introduceDomain` and `@releaseDomain`.
const TOKEN_DOMAINS: &str = "xenbeacon-export";
/// The token of a domain's home watch: this, then the domid.
const TOKEN_HOME: &str = "xenbeacon-export/";
/// Most watch events queued. Events are coalesced by token, one per domain: this many domains
/// can change between two reads of the connection before the export lists them all again.
const EVENT_QUEUE: usize = 8192;

/// Why the export ended.
#[derive(Debug)]
pub enum ExportError {
    /// XenStore failed
    Read(ReadError),
    /// a round took longer than --timeout
    Timeout(Duration),
    /// cannot write the textfile
    Write(PathBuf, std::io::Error),
    /// not dom0
    NotDom0,
    /// poll(2) or the signalfd failed
    Sys(std::io::Error),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Read(e) => e.fmt(f),
            ExportError::Timeout(t) => write!(
                f,
                "XenStore did not answer within {} s (--timeout)",
                super::text::secs(*t)
            ),
            ExportError::Write(p, e) => write!(f, "cannot write {}: {e}", p.display()),
            ExportError::NotDom0 => f.write_str(
                "no access to /local/domain: the export needs dom0 (or a domain allowed to read every home)",
            ),
            ExportError::Sys(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ExportError {}

impl From<ReadError> for ExportError {
    fn from(e: ReadError) -> ExportError {
        ExportError::Read(e)
    }
}

/// What the export knows and owes: pure state, driven by [`Exporter::on_event`] and
/// [`Exporter::round`].
#[derive(Debug, Default)]
pub struct Exporter {
    /// Every domain's series, by domid: what the file says.
    guests: BTreeMap<u32, GuestSeries>,
    /// Domains whose home is watched.
    watched: BTreeSet<u32>,
    /// Domains to re-read in the next round.
    dirty: BTreeSet<u32>,
    /// The next round lists the domains again.
    relist: bool,
    /// Domains whose left-out series were logged (once per domain).
    logged: BTreeSet<u32>,
    /// The file was written at least once.
    written: bool,
}

impl Exporter {
    pub fn new() -> Exporter {
        Exporter {
            relist: true,
            ..Exporter::default()
        }
    }

    /// A watch event with this token.
    pub fn on_event(&mut self, token: &str) {
        if token == TOKEN_DOMAINS {
            self.relist = true;
        } else if let Some(d) = token.strip_prefix(TOKEN_HOME).and_then(|d| d.parse().ok()) {
            self.dirty.insert(d);
        }
    }

    /// Events were dropped: any domain may have changed.
    pub fn on_overflow(&mut self) {
        self.relist = true;
        self.dirty.extend(self.watched.iter().copied());
    }

    /// A round is owed.
    pub fn has_work(&self) -> bool {
        self.relist || !self.dirty.is_empty() || !self.written
    }

    /// Lists the domains if owed, re-reads the changed ones; true if the file's text changed.
    pub fn round(&mut self, reader: &mut Reader) -> Result<bool, ExportError> {
        let mut changed = !self.written;
        if std::mem::take(&mut self.relist) {
            let ids: BTreeSet<u32> = match reader.domains()? {
                Domains::All(ids) => ids.into_iter().collect(),
                Domains::OnlyOwn(_) => return Err(ExportError::NotDom0),
            };
            let gone: Vec<u32> = self.watched.difference(&ids).copied().collect();
            for d in gone {
                changed |= self.forget(reader, d);
            }
            for &d in ids.difference(&self.watched.clone()) {
                let path = home(d);
                let token = format!("{TOKEN_HOME}{d}");
                match reader.conn().watch(&path, &token) {
                    Ok(()) => {}
                    // Destroyed since the listing: nothing to watch.
                    Err(Error::Xs(_)) => continue,
                    Err(e) => return Err(ReadError::Request(format!("watch {path}"), e).into()),
                }
                self.watched.insert(d);
                self.dirty.insert(d);
            }
            // A new watch fires once at once; its domain is read below anyway. Take those
            // events now, so that they do not cost a second read in the next round.
            while let Some(ev) = reader.conn().pending_event() {
                self.on_event(&ev.token);
            }
        }
        for d in std::mem::take(&mut self.dirty) {
            if !self.watched.contains(&d) {
                continue;
            }
            match reader.read_domain(d)? {
                Some(tree) => {
                    let g = prometheus::guest(&GuestReport::parse(&tree));
                    if g.dropped > 0 && self.logged.insert(d) {
                        eprintln!("xenbeacon export: {}", prometheus::dropped_note(&g));
                    }
                    if self.guests.get(&d) != Some(&g) {
                        self.guests.insert(d, g);
                        changed = true;
                    }
                }
                None => changed |= self.forget(reader, d),
            }
        }
        Ok(changed)
    }

    /// Stops following a domain that is gone; true if it was in the file.
    fn forget(&mut self, reader: &mut Reader, d: u32) -> bool {
        // The watch of a removed node stays registered; drop it (it may be gone already).
        let _ = reader.conn().unwatch(&home(d), &format!("{TOKEN_HOME}{d}"));
        self.watched.remove(&d);
        self.dirty.remove(&d);
        self.logged.remove(&d);
        self.guests.remove(&d).is_some()
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus::write(&mut out, self.guests.values());
        out
    }

    pub fn guests(&self) -> usize {
        self.guests.len()
    }
}

/// Writes `text` to `dir/FILE_NAME` through `dir/TEMP_NAME` and rename(2), mode 0644 (read by
/// node_exporter's own user).
pub fn write_atomically(dir: &Path, text: &str) -> Result<(), ExportError> {
    let temp = dir.join(TEMP_NAME);
    let fail = |e| ExportError::Write(temp.clone(), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&temp)
        .map_err(fail)?;
    // Whatever the umask (a unit's UMask=0077): node_exporter runs as its own user.
    let readable = std::fs::Permissions::from_mode(0o644);
    f.set_permissions(readable).map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    drop(f);
    let file = dir.join(FILE_NAME);
    std::fs::rename(&temp, &file).map_err(|e| ExportError::Write(file.clone(), e))
}

/// `xenbeacon export`.
pub fn run(args: &ExportArgs) -> ExitCode {
    let dir = &args.textfile_dir;
    if !dir.is_dir() {
        eprintln!(
            "xenbeacon export: --textfile-dir {} is not a directory",
            dir.display()
        );
        return ExitCode::from(1);
    }
    let result = export(args);
    // Nobody keeps the file current any more: do not leave stale values looking current.
    let _ = std::fs::remove_file(dir.join(FILE_NAME));
    let _ = std::fs::remove_file(dir.join(TEMP_NAME));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xenbeacon export: {e}");
            ExitCode::from(match e {
                ExportError::Write(..) => 1,
                _ => 3,
            })
        }
    }
}

/// A request the deadline cut short is the round taking longer than `--timeout`.
fn timed<T>(r: Result<T, ExportError>, timeout: Duration) -> Result<T, ExportError> {
    match r {
        Err(ExportError::Read(ReadError::Request(_, Error::Timeout))) => {
            Err(ExportError::Timeout(timeout))
        }
        r => r,
    }
}

fn export(args: &ExportArgs) -> Result<(), ExportError> {
    let signals = sys::SignalFd::new(&[libc::SIGTERM, libc::SIGINT]).map_err(ExportError::Sys)?;
    let connect_by = Instant::now() + args.timeout;
    let mut reader = match Reader::open_until(args.xenstore.as_deref(), Some(connect_by)) {
        Ok(r) => r,
        Err(ReadError::Open(_, Error::Open(e))) if e.kind() == std::io::ErrorKind::WouldBlock => {
            return Err(ExportError::Timeout(args.timeout))
        }
        Err(e) => return Err(e.into()),
    };
    let conn = reader.conn();
    conn.limit_events(EVENT_QUEUE);
    for w in ["@introduceDomain", "@releaseDomain"] {
        let r = conn
            .watch(w, TOKEN_DOMAINS)
            .map_err(|e| ReadError::Request(format!("watch {w}"), e).into());
        timed(r, args.timeout)?;
    }
    conn.set_deadline(None);

    let mut state = Exporter::new();
    let mut last_round: Option<Instant> = None;
    loop {
        let conn = reader.conn();
        while let Some(ev) = conn.pending_event() {
            state.on_event(&ev.token);
        }
        if conn.take_overflow() > 0 {
            state.on_overflow();
        }
        let now = Instant::now();
        let due = last_round.map_or(now, |t| t + args.min_interval);
        if state.has_work() && now >= due {
            last_round = Some(now);
            reader.conn().set_deadline(Some(now + args.timeout));
            let round = state.round(&mut reader);
            reader.conn().set_deadline(None);
            if timed(round, args.timeout)? {
                write_atomically(&args.textfile_dir, &state.render())?;
                state.written = true;
            }
            // The requests may have buffered events: look at them before sleeping.
            continue;
        }
        let wake = state.has_work().then(|| due.saturating_duration_since(now));
        let mut fds = [
            libc::pollfd {
                fd: reader.conn().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        sys::poll(&mut fds, wake).map_err(ExportError::Sys)?;
        if fds[1].revents != 0 && signals.read().map_err(ExportError::Sys)?.is_some() {
            return Ok(());
        }
        if fds[0].revents != 0 {
            reader
                .conn()
                .receive()
                .map_err(|e| ReadError::Request("watch events".into(), e))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_say_what_to_reread() {
        let mut e = Exporter::new();
        assert!(e.has_work() && e.relist);
        e.relist = false;
        e.written = true;
        assert!(!e.has_work());
        e.on_event("xenbeacon-export/7");
        e.on_event("xenbeacon-export/7");
        e.on_event("xenbeacon-export/12");
        for junk in [
            "xenbeacon-export/",
            "xenbeacon-export/x",
            "xenbeacon-export/-1",
            "other/3",
        ] {
            e.on_event(junk);
        }
        assert_eq!(e.dirty.iter().copied().collect::<Vec<_>>(), [7, 12]);
        assert!(!e.relist);
        e.on_event(TOKEN_DOMAINS);
        assert!(e.relist);
        e.dirty.clear();
        e.watched.extend([1, 2]);
        e.on_overflow();
        assert_eq!(e.dirty.iter().copied().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("xb-export-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir, "a 1\n").unwrap();
        write_atomically(&dir, "b 2\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(FILE_NAME)).unwrap(),
            "b 2\n"
        );
        assert!(!dir.join(TEMP_NAME).exists());
        let mode = std::fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        std::fs::remove_dir_all(&dir).unwrap();
        let e = write_atomically(Path::new("/nonexistent/dir"), "x").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("cannot write /nonexistent/dir/.xenbeacon.prom.tmp"));
    }
}
