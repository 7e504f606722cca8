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

mod apply;
mod plan;

use std::collections::BTreeMap;

use self::apply::Failure;
pub use self::apply::Refusal;
pub use self::plan::Op;
use crate::desired::{DesiredKeys, ReadBack};
use crate::layout::{key, KEEP_KEYS, OWNED_KEYS, OWNED_SUBTREES};
use crate::xenbus::conn::{Error, XenbusConn};
use crate::xenbus::wire::XsError;
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

/// Seconds since the epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::apply::PERMISSION_RETRY_MIN;
    use super::*;
    use std::time::Instant;

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
