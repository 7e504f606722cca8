//! Fault injection for the fake xenstored, in the spirit of smoltcp's `phy/fault_injector.rs`:
//! the server keeps its real behaviour and asks this layer, once per request, what to break.
//!
//! Mimics what a flaky or hostile xenstored can do to a client: errors it did not earn,
//! transaction conflicts, dropped connections, corrupt or unexpected replies, spurious watch
//! events, maximum-size values and slow replies. Simplified: faults act on whole requests,
//! are checked in the order they were added, and every matching fault fires (so a delay and an
//! error combine), except that a second fault of the same kind waits for a later request.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use xenbeacon::xenbus::wire::{MsgType, Request, XsError};

/// How [`Fault::Malformed`] corrupts a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedKind {
    /// Header `len` larger than the bytes that follow, then the connection is closed.
    WrongLength,
    /// The reply to the next DIRECTORY or GET_PERMS request loses its final NUL
    /// (an empty listing or an error becomes `a\0b`).
    MissingNul,
    /// The reply is sent with message type 99.
    UnknownType,
}

/// One kind of misbehaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reply `ERROR error` without doing the operation, for requests matching every filter.
    /// `path_prefix` is a plain string prefix of the resolved absolute path; empty = any
    /// request, including those without a path.
    Errno {
        domid: Option<u32>,
        msg_type: Option<MsgType>,
        path_prefix: String,
        error: XsError,
    },
    /// `TRANSACTION_END T` replies EAGAIN and the transaction is discarded.
    EagainOnCommit,
    /// The request is read, not executed, and the connection is closed without a reply.
    CloseMidRequest,
    /// Like `CloseMidRequest`, only for requests of `msg_type` whose resolved path starts
    /// with `path_prefix`.
    CloseOn {
        msg_type: MsgType,
        path_prefix: String,
    },
    /// The operation is executed but its reply is replaced by a corrupt one.
    Malformed(MalformedKind),
    /// Before the reply, a WATCH_EVENT for the request's path (as sent) with token `spurious`.
    /// Only requests that carry a path match.
    SpuriousWatchEvent,
    /// The next READ is answered with a 4096-byte value (the legal maximum), not executed.
    OversizeReply,
    /// Sleep this long before handling the request.
    Delay(Duration),
    /// Like `Delay`, only for requests whose resolved path starts with `path_prefix`: a store
    /// that hangs part way through a listing.
    DelayOn {
        path_prefix: String,
        delay: Duration,
    },
    /// Before the reply, this many WATCH_EVENTs for the request's path, each with its own
    /// token (`flood0`, `flood1`, ...): a store that holds a reply while it floods events.
    EventFlood(u32),
    /// Before the reply, a WATCH_EVENT for the request's path with this token (one of the
    /// client's own: every request it makes brings another event it must act on).
    EventWithToken(String),
}

/// What the server must do to one request; the sum of every fault that matched it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub delay: Option<Duration>,
    pub close: bool,
    pub error: Option<XsError>,
    pub eagain_on_commit: bool,
    pub malformed: Option<MalformedKind>,
    pub spurious_event: bool,
    pub oversize_read: bool,
    pub event_flood: u32,
    pub event_token: Option<String>,
}

struct Armed {
    fault: Fault,
    /// `None`: until [`FaultInjector::clear`]; `Some(n)`: fires `n` more times.
    remaining: Option<u32>,
}

/// Thread-safe set of armed faults, consulted by the server for every request.
#[derive(Default)]
pub struct FaultInjector {
    armed: Mutex<Vec<Armed>>,
}

impl FaultInjector {
    pub fn new() -> FaultInjector {
        FaultInjector::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Armed>> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms `fault` for `count` matching requests (`None`: until [`FaultInjector::clear`]).
    pub fn add(&self, fault: Fault, count: Option<u32>) {
        if count != Some(0) {
            let remaining = count;
            self.lock().push(Armed { fault, remaining });
        }
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Faults still armed.
    pub fn armed(&self) -> usize {
        self.lock().len()
    }

    /// Decides what happens to one request from `domid`. `req` is `None` when the request did
    /// not parse; `path` is its resolved absolute path. Fired faults are counted down and logged.
    pub fn on_request(&self, domid: u32, req: Option<&Request<'_>>, path: Option<&str>) -> Plan {
        let msg_type = req.map(|r| r.msg_type());
        let (mut plan, mut armed) = (Plan::default(), self.lock());
        for a in armed.iter_mut() {
            let fires = match a.fault {
                Fault::Errno {
                    domid: d,
                    msg_type: t,
                    ref path_prefix,
                    error,
                } => {
                    let prefix = path_prefix.as_str();
                    let path_hit = prefix.is_empty() || path.is_some_and(|p| p.starts_with(prefix));
                    let hit =
                        d.map_or(true, |d| d == domid) && t.map_or(true, |t| Some(t) == msg_type);
                    hit && path_hit && set(&mut plan.error, Some(error))
                }
                Fault::EagainOnCommit => {
                    let commit = matches!(req, Some(Request::TransactionEnd { commit: true }));
                    commit && set(&mut plan.eagain_on_commit, true)
                }
                Fault::CloseMidRequest => set(&mut plan.close, true),
                Fault::CloseOn {
                    msg_type: t,
                    ref path_prefix,
                } => {
                    let hit = msg_type == Some(t)
                        && path.is_some_and(|p| p.starts_with(path_prefix.as_str()));
                    hit && set(&mut plan.close, true)
                }
                Fault::Malformed(kind) => {
                    let listing = matches!(msg_type, Some(MsgType::Directory | MsgType::GetPerms));
                    (kind != MalformedKind::MissingNul || listing)
                        && set(&mut plan.malformed, Some(kind))
                }
                Fault::SpuriousWatchEvent => path.is_some() && set(&mut plan.spurious_event, true),
                Fault::OversizeReply => {
                    msg_type == Some(MsgType::Read) && set(&mut plan.oversize_read, true)
                }
                Fault::EventFlood(n) => path.is_some() && set(&mut plan.event_flood, n),
                Fault::EventWithToken(ref t) => {
                    path.is_some() && set(&mut plan.event_token, Some(t.clone()))
                }
                Fault::Delay(d) => {
                    plan.delay = Some(plan.delay.unwrap_or_default() + d);
                    true
                }
                Fault::DelayOn {
                    ref path_prefix,
                    delay,
                } => {
                    let hit = path.is_some_and(|p| p.starts_with(path_prefix.as_str()));
                    if hit {
                        plan.delay = Some(plan.delay.unwrap_or_default() + delay);
                    }
                    hit
                }
            };
            if fires {
                let what = (&a.fault, msg_type, path);
                eprintln!("fake-xenstored: dom{domid}: injecting {what:?}");
                a.remaining = a.remaining.map(|n| n.saturating_sub(1));
            }
        }
        armed.retain(|a| a.remaining != Some(0));
        plan
    }
}

/// Sets a plan entry unless an earlier fault already did; true if this fault fired.
fn set<T: Default + PartialEq>(slot: &mut T, value: T) -> bool {
    let free = *slot == T::default();
    if free {
        *slot = value;
    }
    free
}
