//! Planning a round: the requests that make XenStore match the desired keys, in the order the
//! toolstack needs them. Pure: no connection, testable on its own.

use std::time::Instant;

use super::Publisher;
use crate::decimal::{self, U64_DIGITS};
use crate::desired::DesiredKeys;
use crate::layout::{self, key, KEEP_KEYS};

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

impl Publisher {
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
            let mut buf = [0u8; U64_DIGITS];
            ops.push(Op::Write {
                key: key::UPDATED.into(),
                value: decimal::format_u64(now, &mut buf).into(),
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
