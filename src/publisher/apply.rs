//! Sending a round: each request in order, and what xenstored refused, logged once and
//! retried by the rules in the module doc of [`super`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Op, Publisher, RoundOutcome};
use crate::layout::{self, key};
use crate::xenbus::conn::{Error, XenbusConn};
use crate::xenbus::wire::XsError;

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
pub(super) struct Failure {
    /// The value that was refused; `None` for a refused removal.
    pub(super) value: Option<String>,
    pub(super) refusal: Refusal,
    /// A permission refusal is tried again from then on, even with the same value.
    pub(super) retry: Option<(Instant, Duration)>,
}

/// First and longest wait before a key refused for permissions (`EACCES`, `EPERM`) is tried
/// again with the same value: the toolstack may grant access later (a home whose permissions
/// are set after the agent started). The keys of [`layout::OPTIONAL_KEYS`] are the exception:
/// EACCES ends their attempts for good.
pub(super) const PERMISSION_RETRY_MIN: Duration = Duration::from_secs(10);
const PERMISSION_RETRY_MAX: Duration = Duration::from_secs(600);

impl Publisher {
    /// Sends `ops`. A refused key is recorded and the round goes on; a lost connection ends
    /// the round with the error.
    pub fn apply(&mut self, conn: &mut XenbusConn, ops: Vec<Op>) -> Result<RoundOutcome, Error> {
        self.metrics.rounds += 1;
        let mut out = RoundOutcome::default();
        let mut fresh: BTreeMap<Refusal, (usize, String)> = BTreeMap::new();
        for op in ops {
            if let Op::Updated {
                only_after_a_change: true,
                ..
            } = op
            {
                if out.writes + out.removes == 0 {
                    continue;
                }
            }
            let result = match &op {
                Op::Write { key, value } => conn.write(key, value.as_bytes()),
                Op::Updated { value, .. } => conn.write(key::UPDATED, value.as_bytes()),
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
                        Op::Updated { value, .. } => {
                            out.writes += 1;
                            self.written.insert(key::UPDATED.to_owned(), value);
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
                Op::Updated { value, .. } => (key::UPDATED.to_owned(), Some(value)),
                Op::Rm { key } => (key, None),
            };
            if refusal == Refusal::Xs(XsError::Eacces)
                && layout::OPTIONAL_KEYS.contains(&key.as_str())
            {
                log::info!(
                    "{key} cannot be created (EACCES): normal under xl/libxl, where control/ \
                     is read-only to the guest; not asked for again"
                );
                self.failed.remove(&key);
                self.abandoned.insert(key);
                continue;
            }
            let earlier = self.failed.get(&key).filter(|f| f.refusal == refusal);
            let seen = earlier.is_some();
            let retry = match refusal {
                Refusal::Xs(XsError::Eacces | XsError::Eperm) => {
                    let wait = earlier
                        .and_then(|f| f.retry)
                        .map_or(PERMISSION_RETRY_MIN, |(_, w)| {
                            (w * 2).min(PERMISSION_RETRY_MAX)
                        });
                    Some((Instant::now() + wait, wait))
                }
                _ => None,
            };
            if !seen {
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
}
