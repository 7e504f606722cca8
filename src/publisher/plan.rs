//! Planning a round: the requests that make XenStore match the desired keys, in the order the
//! toolstack needs them, and when `data/updated` is worth writing. Pure: no connection and no
//! clock (the round's times are handed in), testable on its own.

use std::time::Instant;

use super::Publisher;
use crate::decimal::{self, U64_DIGITS};
use crate::desired::DesiredKeys;
use crate::layout::{self, key, KEEP_KEYS};

/// One request of a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Write {
        key: String,
        value: String,
    },
    Rm {
        key: String,
    },
    /// `data/updated` = `value`, which says "this round changed something". With
    /// `only_after_a_change`, it is sent only if a request before it in the round went
    /// through: when every one was refused (`control/feature-balloon` under xl) and nothing
    /// under `attr/` follows, the round changed nothing.
    Updated {
        value: String,
        only_after_a_change: bool,
    },
}

/// When a round is planned: `unix` (seconds since the epoch) is the value of `data/updated`,
/// `now` decides which permission refusals are due for a retry.
#[derive(Clone, Copy, Debug)]
pub struct RoundTime {
    pub unix: u64,
    pub now: Instant,
}

impl RoundTime {
    pub fn now() -> RoundTime {
        RoundTime {
            unix: super::unix_now(),
            now: Instant::now(),
        }
    }
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Write { key, .. } | Op::Rm { key } => key,
            Op::Updated { .. } => key::UPDATED,
        }
    }

    /// The value written, `None` for a removal.
    pub fn value(&self) -> Option<&str> {
        match self {
            Op::Write { value, .. } | Op::Updated { value, .. } => Some(value),
            Op::Rm { .. } => None,
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
        (group, !matches!(self, Op::Rm { .. }))
    }
}

impl Publisher {
    /// The requests that make XenStore match `desired`, in the order they must be sent.
    pub fn plan(&self, desired: &DesiredKeys, time: RoundTime) -> Vec<Op> {
        let mut ops = Vec::new();
        for (k, v) in desired.iter() {
            if k == key::UPDATED || self.written.get(k).is_some_and(|w| w == v) {
                continue;
            }
            if self.abandoned.contains(k) || self.refused_for_good(k, Some(v), time.now) {
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
                || self.refused_for_good(k, None, time.now)
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
        // xenopsd copies data/ one level deep (data/xenbeacon/* is ours alone).
        let xapi_reads_data = ops.iter().any(|op| {
            let k = op.key();
            k.strip_prefix("data/").is_some_and(|r| !r.contains('/'))
                && k != key::UPDATED
                && !k.starts_with("data/meminfo_")
        });
        let mut touches_attr = ops.iter().any(|op| op.key().starts_with("attr/"));
        if xapi_reads_data && !touches_attr {
            if let Some(v) = desired.get(key::PV_INSTALLED) {
                ops.push(Op::Write {
                    key: key::PV_INSTALLED.into(),
                    value: v.into(),
                });
                touches_attr = true;
            }
        }
        // data/updated: when the round changes something, and once to create it, except that
        // it is not created while held (see `Publisher::hold_updated`).
        let changed = !ops.is_empty();
        let exists = self.written.contains_key(key::UPDATED);
        if (changed || !exists) && (exists || !self.hold_updated) {
            let mut buf = [0u8; U64_DIGITS];
            ops.push(Op::Updated {
                value: decimal::format_u64(time.unix, &mut buf).into(),
                only_after_a_change: exists && !touches_attr,
            });
        }
        ops.sort_by_key(Op::order);
        ops
    }

    fn refused_for_good(&self, k: &str, value: Option<&str>, now: Instant) -> bool {
        self.failed.get(k).is_some_and(|f| {
            !f.refusal.is_transient()
                && f.value.as_deref() == value
                && f.retry.map_or(true, |(at, _)| now < at)
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

#[cfg(test)]
mod tests {
    use super::super::apply::{Failure, Refusal, PERMISSION_RETRY_MIN};
    use super::super::Loaded;
    use super::*;
    use crate::xenbus::wire::XsError;

    fn desired(pairs: &[(&str, &str)]) -> DesiredKeys {
        let mut d = DesiredKeys::new();
        for (k, v) in pairs {
            d.set(k, v);
        }
        d
    }

    fn at(unix: u64) -> RoundTime {
        RoundTime {
            unix,
            now: Instant::now(),
        }
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
                Op::Updated { .. } => "W data/updated".to_owned(),
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
        let ops = p.plan(&d, at(77));
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
            Op::Updated {
                value: "77".into(),
                only_after_a_change: false
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
        assert!(p.plan(&d, at(99)).is_empty());
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
            keys(&p.plan(&d, at(2))),
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
            keys(&p.plan(&d, at(2))),
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
            keys(&p.plan(&d, at(2))),
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
        assert_eq!(
            keys(&p.plan(&d, at(1))),
            ["W data/os_uname", "W data/updated"]
        );
        let d = desired(&[("data/os_name", "B"), ("data/os_uname", "6.1")]);
        assert_eq!(
            keys(&p.plan(&d, at(1))),
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
            keys(&p.plan(&d, at(1))),
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
            keys(&p.plan(&d, at(2))),
            ["W data/updated", "R attr/vif/0", "R attr/vif/1/ipv4/1"]
        );
        let d = desired(&[]);
        assert_eq!(keys(&p.plan(&d, at(2))), ["W data/updated", "R attr/vif"]);
    }

    #[test]
    fn control_keys_come_before_data_updated() {
        let mut p = Publisher::new();
        written(&mut p, &[("data/updated", "1")]);
        let d = desired(&[("control/feature-balloon", "1"), ("data/os_name", "x")]);
        assert_eq!(
            keys(&p.plan(&d, at(2))),
            [
                "W data/os_name",
                "W control/feature-balloon",
                "W data/updated"
            ]
        );
    }

    #[test]
    fn data_updated_waits_for_a_change_only_when_nothing_under_attr_follows() {
        let mut p = Publisher::new();
        written(&mut p, &[("data/updated", "1")]);
        let d = desired(&[("control/feature-balloon", "1")]);
        let ops = p.plan(&d, at(5));
        assert_eq!(
            ops.last(),
            Some(&Op::Updated {
                value: "5".into(),
                only_after_a_change: true
            })
        );
        let d = desired(&[
            ("control/feature-balloon", "1"),
            ("attr/vif/0/name", "eth0"),
        ]);
        let ops = p.plan(&d, at(5));
        assert!(ops.contains(&Op::Updated {
            value: "5".into(),
            only_after_a_change: false
        }));
        // Creating it never waits.
        let p = Publisher::new();
        let d = desired(&[("control/feature-balloon", "1")]);
        assert!(p.plan(&d, at(5)).contains(&Op::Updated {
            value: "5".into(),
            only_after_a_change: false
        }));
    }

    #[test]
    fn data_updated_is_not_created_while_held_but_still_updated() {
        let mut p = Publisher::new();
        p.hold_updated(true);
        let d = desired(&[("data/os_name", "x")]);
        assert_eq!(keys(&p.plan(&d, at(1))), ["W data/os_name"]);
        written(&mut p, &[("data/updated", "1")]);
        assert_eq!(
            keys(&p.plan(&d, at(2))),
            ["W data/os_name", "W data/updated"]
        );
    }

    #[test]
    fn an_abandoned_key_is_never_planned() {
        let mut p = Publisher::new();
        written(&mut p, &[("data/updated", "1")]);
        p.abandoned.insert("control/feature-balloon".into());
        p.forget();
        written(&mut p, &[("data/updated", "1")]);
        let d = desired(&[("control/feature-balloon", "1")]);
        assert!(p.plan(&d, at(2)).is_empty());
    }

    #[test]
    fn a_permission_retry_is_due_by_the_round_time_not_the_wall_clock() {
        let mut p = Publisher::new();
        written(&mut p, &[("data/updated", "1")]);
        let t0 = Instant::now();
        p.failed.insert(
            "attr/vif/0/name".into(),
            Failure {
                value: Some("eth0".into()),
                refusal: Refusal::Xs(XsError::Eacces),
                retry: Some((t0 + PERMISSION_RETRY_MIN, PERMISSION_RETRY_MIN)),
            },
        );
        let d = desired(&[("attr/vif/0/name", "eth0")]);
        let before = RoundTime { unix: 2, now: t0 };
        assert!(p.plan(&d, before).is_empty());
        let after = RoundTime {
            unix: 2,
            now: t0 + PERMISSION_RETRY_MIN,
        };
        assert_eq!(
            keys(&p.plan(&d, after)),
            ["W data/updated", "W attr/vif/0/name"]
        );
    }
}
