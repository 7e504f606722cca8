//! The publisher: turns the desired key set into the fewest WRITE/RM requests.
//!
//! It remembers what XenStore holds for the keys the agent owns (`written`), read back from
//! the store at start and after every reconnect, and diffs the desired set against it. The
//! plan ([`Publisher::plan`]) is pure and testable without a connection; [`Publisher::apply`]
//! sends it.
//!
//! Order within a round matters to the toolstack: xenopsd watches `attr/` but not `data/`, so
//! `data/*` goes first, then `data/updated` (squeezed's "an agent runs"), and the round ends
//! under `attr/`. When a round changed a `data/` key XAPI reads but nothing under `attr/`, the
//! round ends by rewriting `attr/PVAddons/Installed` so that xenopsd re-reads the guest.
//!
//! A key xenstored refuses is logged once, left out of `written`, and not sent again while its
//! value stays the same, unless the error may clear by itself (quota, EAGAIN), in which case
//! the next round retries it, or is a permission refusal (EACCES, EPERM), which is retried
//! after 10 s, doubling to 10 min (permissions may be granted later). Every other key is
//! published regardless.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::desired::{self, DesiredKeys, ReadBack};
use crate::layout::{self, key, KEEP_KEYS, OWNED_KEYS, OWNED_SUBTREES};
use crate::xenbus::conn::{Error, XenbusConn};
use crate::xenbus::wire::XsError;

/// One request of a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Write { key: String, value: String },
    Rm { key: String },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Write { key, .. } | Op::Rm { key } => key,
        }
    }

    /// Position in the round: data/* first, then other keys (control/, xenserver/), then
    /// data/updated, attr/* last; removals before writes in each group, so a write below a
    /// stale key is not undone.
    fn order(&self) -> (u8, bool) {
        let k = self.key();
        let group = if k == key::UPDATED {
            2
        } else if k.starts_with("data/") {
            0
        } else if k.starts_with("attr/") {
            3
        } else {
            1
        };
        (group, matches!(self, Op::Write { .. }))
    }
}

/// Why a key could not be published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// xenstored answered with this error.
    Xs(XsError),
    /// The request did not fit in one xenbus message.
    TooLarge,
    /// The key is not a valid XenStore path.
    InvalidPath,
}

impl Refusal {
    fn from_error(e: &Error) -> Option<Refusal> {
        match e {
            Error::Xs(x) => Some(Refusal::Xs(*x)),
            Error::TooLarge => Some(Refusal::TooLarge),
            Error::InvalidPath => Some(Refusal::InvalidPath),
            _ => None,
        }
    }

    /// Worth retrying on a later round without anything else changing.
    pub fn is_transient(self) -> bool {
        matches!(self, Refusal::Xs(x) if x.is_transient())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Xs(x) => write!(f, "xenstored refused: {x}"),
            Refusal::TooLarge => f.write_str("request larger than one xenbus message"),
            Refusal::InvalidPath => f.write_str("not a valid xenstore path"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Failure {
    /// The value that was refused; `None` for a refused removal.
    value: Option<String>,
    refusal: Refusal,
    /// A permission refusal is tried again from then on, even with the same value.
    retry: Option<(Instant, Duration)>,
}

/// First and longest wait before a key refused for permissions (`EACCES`, `EPERM`) is tried
/// again with the same value: the toolstack may grant access later (a home whose permissions
/// are set after the agent started). `control/feature-balloon` is the exception: under xl it
/// is refused for good, and the agent stops asking for it.
const PERMISSION_RETRY_MIN: Duration = Duration::from_secs(10);
const PERMISSION_RETRY_MAX: Duration = Duration::from_secs(600);

/// Counters since start, for logs, tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublisherMetrics {
    pub rounds: u64,
    pub writes: u64,
    pub removes: u64,
    pub refusals: u64,
    pub reads: u64,
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    pub writes: usize,
    pub removes: usize,
    pub refused: usize,
}

impl std::ops::AddAssign for RoundOutcome {
    fn add_assign(&mut self, r: RoundOutcome) {
        self.writes += r.writes;
        self.removes += r.removes;
        self.refused += r.refused;
    }
}

/// Deepest level below an owned subtree the read-back descends to, and the most nodes it
/// reads: a hostile or corrupt tree must not keep the agent busy.
const READBACK_MAX_DEPTH: usize = 8;
const READBACK_MAX_NODES: usize = 4096;

/// What the publisher knows of the store's owned keys since the last [`Publisher::forget`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Loaded {
    /// Nothing: the next round looks for the layout marker.
    #[default]
    No,
    /// The marker is there: the next round reads everything back first.
    MarkerSeen,
    /// No marker: rounds go out without a read-back until a full round ends with one.
    Fresh,
    /// Read back.
    Yes,
}

#[derive(Debug, Default)]
pub struct Publisher {
    written: BTreeMap<String, String>,
    failed: BTreeMap<String, Failure>,
    loaded: Loaded,
    /// The first error of the last read-back if it was incomplete (logged once while it
    /// lasts), and how many read-backs in a row were.
    readback_error: Option<String>,
    readback_failures: u32,
    /// `data/updated` must not be created yet.
    hold_updated: bool,
    pub metrics: PublisherMetrics,
}

impl Publisher {
    pub fn new() -> Publisher {
        Publisher::default()
    }

    /// Forgets what was written: after a reconnect, resume or migration the store may hold
    /// anything, so the next round reads it back and republishes.
    pub fn forget(&mut self) {
        self.written.clear();
        self.failed.clear();
        self.loaded = Loaded::No;
    }

    /// What the publisher believes XenStore holds for the owned keys.
    pub fn written(&self) -> &BTreeMap<String, String> {
        &self.written
    }

    /// Reads the owned keys and subtrees back from XenStore into `written`.
    ///
    /// A READ or DIRECTORY that fails with anything but "not there" (`ENOENT`) or "not ours to
    /// read" (`EACCES`), e.g. `EIO` or a malformed listing, makes the read-back incomplete:
    /// what it could not see may be a stale key. The round still goes out, and the next round
    /// reads back again, until one read-back is complete and removes what is stale.
    pub fn load(&mut self, conn: &mut XenbusConn) -> Result<(), Error> {
        self.written.clear();
        let mut incomplete = None;
        for k in OWNED_KEYS.iter().chain(KEEP_KEYS.iter()) {
            self.read_back(conn, k, &mut incomplete)?;
        }
        let mut budget = READBACK_MAX_NODES;
        for t in OWNED_SUBTREES {
            self.read_subtree(conn, t, 0, &mut budget, &mut incomplete)?;
        }
        log::debug!("read back {} owned keys from xenstore", self.written.len());
        match incomplete {
            None => {
                self.loaded = Loaded::Yes;
                if self.readback_error.take().is_some() {
                    log::info!(
                        "read-back complete after {} incomplete one(s); stale keys removed",
                        self.readback_failures
                    );
                }
                self.readback_failures = 0;
            }
            Some(msg) => {
                // Read back again on the next round.
                self.loaded = Loaded::MarkerSeen;
                self.readback_failures += 1;
                if self.readback_error.as_deref() != Some(msg.as_str()) {
                    log::warn!(
                        "read-back incomplete ({msg}): stale keys may stay until a read-back \
                         succeeds; retried on the next round"
                    );
                    self.readback_error = Some(msg);
                }
            }
        }
        Ok(())
    }

    /// Reads one key into `written`; returns whether the node exists. A failure that leaves
    /// it unknown whether the node exists is noted in `incomplete`.
    fn read_back(
        &mut self,
        conn: &mut XenbusConn,
        k: &str,
        incomplete: &mut Option<String>,
    ) -> Result<bool, Error> {
        self.metrics.reads += 1;
        match conn.read(k) {
            Ok(v) => {
                let v = String::from_utf8_lossy(v).into_owned();
                self.written.insert(k.to_owned(), v);
                Ok(true)
            }
            Err(e) if e.is_connection_lost() => Err(e),
            Err(e) => {
                note_readback_error(k, &e, incomplete);
                Ok(false)
            }
        }
    }

    fn read_subtree(
        &mut self,
        conn: &mut XenbusConn,
        path: &str,
        depth: usize,
        budget: &mut usize,
        incomplete: &mut Option<String>,
    ) -> Result<(), Error> {
        if depth > READBACK_MAX_DEPTH || *budget == 0 {
            return Ok(());
        }
        *budget -= 1;
        self.metrics.reads += 1;
        let children: Vec<String> = match conn.directory(path) {
            Ok(entries) => entries.map(str::to_owned).collect(),
            Err(e) if e.is_connection_lost() => return Err(e),
            Err(e) => {
                note_readback_error(path, &e, incomplete);
                return Ok(());
            }
        };
        if depth > 0 {
            // A node is a key when it holds a value or is a leaf; an empty inner node is only
            // a directory that WRITE created on the way.
            let exists = self.read_back(conn, path, incomplete)?;
            if exists
                && !children.is_empty()
                && self.written.get(path).is_some_and(|v| v.is_empty())
            {
                self.written.remove(path);
            }
        }
        for c in children {
            self.read_subtree(conn, &format!("{path}/{c}"), depth + 1, budget, incomplete)?;
        }
        Ok(())
    }

    /// The requests that make XenStore match `desired`, in the order they must be sent.
    /// `now` (seconds since the epoch) becomes the value of `data/updated`.
    pub fn plan(&self, desired: &DesiredKeys, now: u64) -> Vec<Op> {
        let mut ops = Vec::new();
        for (k, v) in desired.iter() {
            if k == key::UPDATED || self.written.get(k).is_some_and(|w| w == v) {
                continue;
            }
            if self.refused_for_good(k, Some(v)) {
                continue;
            }
            ops.push(Op::Write {
                key: k.to_owned(),
                value: v.to_owned(),
            });
        }
        let mut removed: Option<&str> = None;
        for k in self.written.keys() {
            if k == key::UPDATED
                || KEEP_KEYS.contains(&k.as_str())
                || desired.contains(k)
                || self.refused_for_good(k, None)
            {
                continue;
            }
            if removed.is_some_and(|r| layout::is_under(k, r)) {
                continue; // goes with its removed ancestor
            }
            // In an owned subtree, remove the highest directory nothing desired lives in, so
            // that a vanished NIC is one RM and leaves no empty directories behind.
            let target = match layout::owning_subtree(k) {
                Some(root) => topmost_unwanted(k, root, desired),
                None => k.as_str(),
            };
            removed = Some(target);
            ops.push(Op::Rm {
                key: target.to_owned(),
            });
        }
        let changed = !ops.is_empty();
        let exists = self.written.contains_key(key::UPDATED);
        if (changed || !exists) && (exists || !self.hold_updated) {
            let mut buf = [0u8; 20];
            ops.push(Op::Write {
                key: key::UPDATED.into(),
                value: desired::format_u64(now, &mut buf).into(),
            });
        }
        // xenopsd copies data/ one level deep (data/xenbeacon/* is ours alone).
        let xapi_reads_data = ops.iter().any(|op| {
            let k = op.key();
            k.strip_prefix("data/").is_some_and(|r| !r.contains('/'))
                && k != key::UPDATED
                && !k.starts_with("data/meminfo_")
        });
        let touches_attr = ops.iter().any(|op| op.key().starts_with("attr/"));
        if xapi_reads_data && !touches_attr {
            if let Some(v) = desired.get(key::PV_INSTALLED) {
                ops.push(Op::Write {
                    key: key::PV_INSTALLED.into(),
                    value: v.into(),
                });
            }
        }
        ops.sort_by_key(Op::order);
        ops
    }

    fn refused_for_good(&self, k: &str, value: Option<&str>) -> bool {
        self.failed.get(k).is_some_and(|f| {
            !f.refusal.is_transient()
                && f.value.as_deref() == value
                && f.retry.map_or(true, |(at, _)| Instant::now() < at)
        })
    }

    /// Sends `ops`. A refused key is recorded and the round goes on; a lost connection ends
    /// the round with the error.
    pub fn apply(&mut self, conn: &mut XenbusConn, ops: Vec<Op>) -> Result<RoundOutcome, Error> {
        self.metrics.rounds += 1;
        let mut out = RoundOutcome::default();
        let mut fresh: BTreeMap<Refusal, (usize, String)> = BTreeMap::new();
        let attr_follows = ops.iter().any(|op| op.key().starts_with("attr/"));
        for op in ops {
            // data/updated says "this round changed something": not when every request before
            // it was refused (control/feature-balloon under xl) and nothing under attr/ follows.
            if op.key() == key::UPDATED
                && out.writes + out.removes == 0
                && !attr_follows
                && self.written.contains_key(key::UPDATED)
            {
                continue;
            }
            let result = match &op {
                Op::Write { key, value } => conn.write(key, value.as_bytes()),
                Op::Rm { key } => conn.rm(key),
            };
            let e = match result {
                Ok(()) => {
                    match op {
                        Op::Write { key, value } => {
                            out.writes += 1;
                            self.failed.remove(&key);
                            self.written.insert(key, value);
                        }
                        Op::Rm { key } => {
                            out.removes += 1;
                            self.failed.remove(&key);
                            self.written.retain(|k, _| !layout::is_under(k, &key));
                        }
                    }
                    continue;
                }
                Err(e) => e,
            };
            let Some(refusal) = Refusal::from_error(&e) else {
                self.metrics.writes += out.writes as u64;
                self.metrics.removes += out.removes as u64;
                return Err(e);
            };
            out.refused += 1;
            let (key, value) = match op {
                Op::Write { key, value } => (key, Some(value)),
                Op::Rm { key } => (key, None),
            };
            let earlier = self.failed.get(&key).filter(|f| f.refusal == refusal);
            let seen = earlier.is_some();
            let retry = match refusal {
                Refusal::Xs(XsError::Eacces | XsError::Eperm) if key != key::FEATURE_BALLOON => {
                    let wait = earlier
                        .and_then(|f| f.retry)
                        .map_or(PERMISSION_RETRY_MIN, |(_, w)| {
                            (w * 2).min(PERMISSION_RETRY_MAX)
                        });
                    Some((Instant::now() + wait, wait))
                }
                _ => None,
            };
            if key == key::FEATURE_BALLOON && refusal == Refusal::Xs(XsError::Eacces) {
                if !seen {
                    log::info!(
                        "{key} cannot be created (EACCES): normal under xl/libxl, where control/ \
                         is read-only to the guest; XAPI's squeezed is not there to read it anyway"
                    );
                }
            } else if !seen {
                let entry = fresh.entry(refusal).or_insert((0, key.clone()));
                entry.0 += 1;
            }
            self.failed.insert(
                key,
                Failure {
                    value,
                    refusal,
                    retry,
                },
            );
        }
        for (refusal, (n, first)) in fresh {
            let retry = match refusal {
                _ if refusal.is_transient() => "retried on the next round",
                Refusal::Xs(XsError::Eacces | XsError::Eperm) => {
                    "retried after 10 s, then less and less often (at most every 10 min)"
                }
                _ => "not retried until it changes",
            };
            log::warn!("{n} key(s) not published ({refusal}), e.g. {first}; {retry}");
        }
        self.metrics.writes += out.writes as u64;
        self.metrics.removes += out.removes as u64;
        self.metrics.refusals += out.refused as u64;
        Ok(out)
    }

    /// Looks for `data/xenbeacon/layout` once after [`Publisher::forget`]; true when it is
    /// missing, i.e. the store holds nothing of ours to diff against (a new domain, a migrated
    /// or resumed one whose tree was rebuilt, or a first run after another agent).
    ///
    /// Then rounds go out without a read-back, so that the first key goes out after one round
    /// trip instead of one per owned node, and the next full round ends by reading the store
    /// back and removing what an earlier run or another agent left there. The marker is
    /// written in the first group of every round, so its presence is what makes a restart
    /// read back first and write nothing.
    pub fn probe_fresh(&mut self, conn: &mut XenbusConn) -> Result<bool, Error> {
        if self.loaded == Loaded::No {
            self.metrics.reads += 1;
            self.loaded = match conn.read(key::LAYOUT) {
                Err(e) if e.xs() == Some(XsError::Enoent) => {
                    log::debug!(
                        "no {} in xenstore: publishing before the read-back",
                        key::LAYOUT
                    );
                    self.written.clear();
                    Loaded::Fresh
                }
                Err(e) if e.is_connection_lost() => return Err(e),
                _ => Loaded::MarkerSeen,
            };
        }
        Ok(self.loaded == Loaded::Fresh)
    }

    /// Reads the store back unless that was done since the last [`Publisher::forget`] or the
    /// store is fresh ([`Publisher::probe_fresh`]); what it read, for the renderers.
    pub fn ensure_loaded(&mut self, conn: &mut XenbusConn) -> Result<Option<ReadBack>, Error> {
        self.probe_fresh(conn)?;
        match self.loaded {
            Loaded::MarkerSeen | Loaded::No => {
                self.load(conn)?;
                Ok(Some(ReadBack::from_published(
                    self.written.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )))
            }
            Loaded::Fresh | Loaded::Yes => Ok(None),
        }
    }

    /// On a fresh store, one round without the read-back that ends a full round: what is
    /// known early goes out before what takes longer to learn. Sends nothing otherwise.
    pub fn publish_early(
        &mut self,
        conn: &mut XenbusConn,
        desired: &DesiredKeys,
        now: u64,
    ) -> Result<Option<RoundOutcome>, Error> {
        if !self.probe_fresh(conn)? {
            return Ok(None);
        }
        self.plan_and_apply(conn, desired, now).map(Some)
    }

    /// Reads back (once per connection), plans and applies one round. On a fresh store, reads
    /// the store back after the round and removes what is stale.
    pub fn publish(
        &mut self,
        conn: &mut XenbusConn,
        desired: &DesiredKeys,
        now: u64,
    ) -> Result<RoundOutcome, Error> {
        self.ensure_loaded(conn)?;
        let mut out = self.plan_and_apply(conn, desired, now)?;
        if self.loaded == Loaded::Fresh {
            self.load(conn)?;
            out += self.plan_and_apply(conn, desired, now)?;
        }
        Ok(out)
    }

    fn plan_and_apply(
        &mut self,
        conn: &mut XenbusConn,
        desired: &DesiredKeys,
        now: u64,
    ) -> Result<RoundOutcome, Error> {
        let ops = self.plan(desired, now);
        if ops.is_empty() {
            return Ok(RoundOutcome::default());
        }
        self.apply(conn, ops)
    }

    /// While `hold` is true, `data/updated` is not created (an existing one is still
    /// updated): see [`crate::agent::Agent`]'s balloon rule.
    pub fn hold_updated(&mut self, hold: bool) {
        self.hold_updated = hold;
    }

    /// Why `key` was refused on the last try, if it was.
    pub fn refusal(&self, key: &str) -> Option<Refusal> {
        self.failed.get(key).map(|f| f.refusal)
    }
}

/// Notes the first read-back failure that leaves it unknown what the store holds: anything
/// but `ENOENT` (nothing there) and `EACCES` (nothing of the agent's: it can read what it owns).
fn note_readback_error(path: &str, e: &Error, incomplete: &mut Option<String>) {
    match e.xs() {
        Some(XsError::Enoent) => {}
        Some(XsError::Eacces) => log::debug!("cannot read back {path}: {e}"),
        _ => {
            log::debug!("cannot read back {path}: {e}");
            incomplete.get_or_insert_with(|| format!("{e} on {path}"));
        }
    }
}

/// The first of `root`, `root/a`, `root/a/b`, ... up to `k` below which nothing is desired.
fn topmost_unwanted<'k>(k: &'k str, root: &str, desired: &DesiredKeys) -> &'k str {
    let mut end = root.len();
    loop {
        let candidate = &k[..end];
        if !desired.has_under(candidate) || end == k.len() {
            return candidate;
        }
        end = k[end + 1..].find('/').map_or(k.len(), |i| end + 1 + i);
    }
}

/// Seconds since the epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(pairs: &[(&str, &str)]) -> DesiredKeys {
        let mut d = DesiredKeys::new();
        for (k, v) in pairs {
            d.set(k, v);
        }
        d
    }

    fn written(p: &mut Publisher, pairs: &[(&str, &str)]) {
        for (k, v) in pairs {
            p.written.insert(k.to_string(), v.to_string());
        }
        p.loaded = Loaded::Yes;
    }

    fn keys(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|o| match o {
                Op::Write { key, .. } => format!("W {key}"),
                Op::Rm { key } => format!("R {key}"),
            })
            .collect()
    }

    #[test]
    fn first_round_orders_data_updated_attr() {
        let p = Publisher::new();
        let d = desired(&[
            ("attr/PVAddons/Installed", "1"),
            ("data/os_name", "Debian"),
            ("attr/PVAddons/MajorVersion", "0"),
            ("data/meminfo_free", "5"),
        ]);
        let ops = p.plan(&d, 77);
        assert_eq!(
            keys(&ops),
            [
                "W data/meminfo_free",
                "W data/os_name",
                "W data/updated",
                "W attr/PVAddons/Installed",
                "W attr/PVAddons/MajorVersion",
            ]
        );
        assert_eq!(
            ops[2],
            Op::Write {
                key: "data/updated".into(),
                value: "77".into()
            }
        );
    }

    #[test]
    fn unchanged_store_needs_nothing() {
        let mut p = Publisher::new();
        written(
            &mut p,
            &[
                ("data/os_name", "Debian"),
                ("attr/PVAddons/Installed", "1"),
                ("data/updated", "5"),
            ],
        );
        let d = desired(&[("data/os_name", "Debian"), ("attr/PVAddons/Installed", "1")]);
        assert!(p.plan(&d, 99).is_empty());
    }

    #[test]
    fn stale_keys_are_removed_and_children_skipped() {
        let mut p = Publisher::new();
        written(
            &mut p,
            &[
                ("attr/PVAddons/Old", "x"),
                ("attr/PVAddons/Old/child", "y"),
                ("data/os_minorver", "4"),
                ("data/updated", "1"),
                ("attr/PVAddons/Installed", "1"),
            ],
        );
        let d = desired(&[("attr/PVAddons/Installed", "1")]);
        assert_eq!(
            keys(&p.plan(&d, 2)),
            [
                "R data/os_minorver",
                "W data/updated",
                "R attr/PVAddons/Old"
            ]
        );
    }

    #[test]
    fn data_only_change_ends_with_an_attr_write() {
        let mut p = Publisher::new();
        written(
            &mut p,
            &[
                ("data/os_name", "Old"),
                ("attr/PVAddons/Installed", "1"),
                ("data/updated", "1"),
            ],
        );
        let d = desired(&[("data/os_name", "New"), ("attr/PVAddons/Installed", "1")]);
        assert_eq!(
            keys(&p.plan(&d, 2)),
            [
                "W data/os_name",
                "W data/updated",
                "W attr/PVAddons/Installed"
            ]
        );
        // Memory moves are for the RRD, not for xenopsd: no attr nudge.
        let d = desired(&[
            ("data/os_name", "Old"),
            ("data/meminfo_free", "3"),
            ("attr/PVAddons/Installed", "1"),
        ]);
        assert_eq!(
            keys(&p.plan(&d, 2)),
            ["W data/meminfo_free", "W data/updated"]
        );
    }

    #[test]
    fn permanent_refusals_are_not_retried_until_the_value_changes() {
        let mut p = Publisher::new();
        written(&mut p, &[("data/updated", "1")]);
        p.failed.insert(
            "data/os_name".into(),
            Failure {
                value: Some("A".into()),
                refusal: Refusal::Xs(XsError::Eacces),
                retry: Some((Instant::now() + PERMISSION_RETRY_MIN, PERMISSION_RETRY_MIN)),
            },
        );
        p.failed.insert(
            "data/os_uname".into(),
            Failure {
                value: Some("6.1".into()),
                refusal: Refusal::Xs(XsError::Enospc),
                retry: None,
            },
        );
        let d = desired(&[("data/os_name", "A"), ("data/os_uname", "6.1")]);
        assert_eq!(keys(&p.plan(&d, 1)), ["W data/os_uname", "W data/updated"]);
        let d = desired(&[("data/os_name", "B"), ("data/os_uname", "6.1")]);
        assert_eq!(
            keys(&p.plan(&d, 1)),
            ["W data/os_name", "W data/os_uname", "W data/updated"]
        );
    }

    #[test]
    fn permission_refusals_are_retried_once_their_time_comes() {
        let mut p = Publisher::new();
        written(&mut p, &[("data/updated", "1")]);
        p.failed.insert(
            "attr/vif/0/ipv4/0".into(),
            Failure {
                value: Some("10.0.0.2".into()),
                refusal: Refusal::Xs(XsError::Eacces),
                retry: Some((Instant::now(), PERMISSION_RETRY_MIN)),
            },
        );
        let d = desired(&[("attr/vif/0/ipv4/0", "10.0.0.2")]);
        assert_eq!(
            keys(&p.plan(&d, 1)),
            ["W data/updated", "W attr/vif/0/ipv4/0"]
        );
    }

    #[test]
    fn a_vanished_nic_is_one_removal_of_its_directory() {
        let mut p = Publisher::new();
        written(
            &mut p,
            &[
                ("attr/vif/0/ipv4/0", "10.0.0.2"),
                ("attr/vif/0/ipv4/0/prefix", "24"),
                ("attr/vif/0/name", "eth0"),
                ("attr/vif/1/ipv4/0", "10.0.0.3"),
                ("attr/vif/1/ipv4/1", "10.0.0.4"),
                ("attr/vif/1/name", "eth1"),
                ("data/updated", "1"),
            ],
        );
        let d = desired(&[
            ("attr/vif/1/ipv4/0", "10.0.0.3"),
            ("attr/vif/1/name", "eth1"),
        ]);
        assert_eq!(
            keys(&p.plan(&d, 2)),
            ["W data/updated", "R attr/vif/0", "R attr/vif/1/ipv4/1"]
        );
        let d = desired(&[]);
        assert_eq!(keys(&p.plan(&d, 2)), ["W data/updated", "R attr/vif"]);
    }

    #[test]
    fn control_keys_come_before_data_updated() {
        let mut p = Publisher::new();
        written(&mut p, &[("data/updated", "1")]);
        let d = desired(&[("control/feature-balloon", "1"), ("data/os_name", "x")]);
        assert_eq!(
            keys(&p.plan(&d, 2)),
            [
                "W data/os_name",
                "W control/feature-balloon",
                "W data/updated"
            ]
        );
    }
}
