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

use std::collections::{BTreeMap, BTreeSet};

use self::apply::Failure;
pub use self::apply::Refusal;
pub use self::plan::{Op, RoundTime};
use crate::desired::{DesiredKeys, ReadBack};
use crate::fault::{FaultLog, Seen};
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
    /// [`crate::layout::OPTIONAL_KEYS`] the toolstack refused for good: never sent again,
    /// not even after [`Publisher::forget`].
    abandoned: BTreeSet<String>,
    loaded: Loaded,
    /// An incomplete read-back, logged once while it lasts.
    readback_fault: FaultLog,
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
                if let Some((_, n)) = self.readback_fault.clear() {
                    log::info!(
                        "read-back complete after {n} incomplete one(s); stale keys removed"
                    );
                }
            }
            Some(msg) => {
                // Read back again on the next round.
                self.loaded = Loaded::MarkerSeen;
                if self.readback_fault.record(msg.clone()) == Seen::New {
                    log::warn!(
                        "read-back incomplete ({msg}): stale keys may stay until a read-back \
                         succeeds; retried on the next round"
                    );
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
    /// store is fresh ([`Publisher::probe_fresh`]); what it read, for the renderers. Called
    /// once before each round ([`Publisher::publish`] does not read back itself): an
    /// incomplete read-back is tried again on the next round, not twice in one.
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
        time: RoundTime,
    ) -> Result<Option<RoundOutcome>, Error> {
        if !self.probe_fresh(conn)? {
            return Ok(None);
        }
        self.plan_and_apply(conn, desired, time).map(Some)
    }

    /// Plans and applies one round against what [`Publisher::ensure_loaded`] read. On a fresh
    /// store, reads the store back after the round and removes what is stale.
    pub fn publish(
        &mut self,
        conn: &mut XenbusConn,
        desired: &DesiredKeys,
        time: RoundTime,
    ) -> Result<RoundOutcome, Error> {
        let mut out = self.plan_and_apply(conn, desired, time)?;
        if self.loaded == Loaded::Fresh {
            self.load(conn)?;
            out += self.plan_and_apply(conn, desired, time)?;
        }
        Ok(out)
    }

    fn plan_and_apply(
        &mut self,
        conn: &mut XenbusConn,
        desired: &DesiredKeys,
        time: RoundTime,
    ) -> Result<RoundOutcome, Error> {
        let ops = self.plan(desired, time);
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
