//! The xenstore connection: connecting (interruptible by the stop signal), the round after a
//! connect, the agent's watches, and the reconnect schedule with its fault logging.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::rtnetlink::Rtnetlink;
use super::{log_round, EndpointChoice, BACKOFF_MAX, BACKOFF_MIN};
use crate::agent::{Agent, DomainIdentity, WATCHES};
use crate::publisher::RoundOutcome;
use crate::xenbus::conn::{Error, XenbusConn};

/// How long the connection must stay up before the fault it recovered from counts as over.
const FAULT_CLEARS_AFTER: Duration = Duration::from_secs(60);

/// Opens the connection; every wait on it ends when `interrupt` (the stop signalfd) is readable.
pub(super) fn connect(
    choice: &EndpointChoice,
    interrupt: Option<RawFd>,
) -> Result<XenbusConn, Error> {
    let endpoint = choice.resolve().ok_or_else(|| {
        Error::Open(io::Error::new(
            io::ErrorKind::NotFound,
            "no xenbus device at /dev/xen/xenbus or /proc/xen/xenbus \
             (mount devtmpfs on /dev, or xenfs on /proc/xen)",
        ))
    })?;
    let mut conn = XenbusConn::open_interruptible(&endpoint, interrupt)?;
    conn.limit_events(crate::xenbus::conn::EVENT_QUEUE_MAX);
    Ok(conn)
}

/// Reads who the connection's domain is and logs it (at info level on the first connection;
/// a reconnect is reported by [`Link::up`]). Done after the first round, which does not need
/// it: only a later domain check compares against it.
pub(super) fn identify(conn: &mut XenbusConn, first: bool) -> Result<DomainIdentity, Error> {
    let id = Agent::read_identity(conn)?;
    let endpoint = conn.endpoint();
    let level = if first {
        log::Level::Info
    } else {
        log::Level::Debug
    };
    match id.domid {
        Some(domid) => log::log!(level, "connected to {endpoint}, domain {domid}"),
        None => log::log!(level, "connected to {endpoint} (domid unknown)"),
    }
    Ok(id)
}
/// The round after a connect: the early round on a fresh store, toolstack hints, the round,
/// then who the domain is. rtnetlink is opened on the first connection, after the early
/// round: the NICs take the longest to learn, and everything else goes out without them.
fn round_after_connect(
    c: &mut XenbusConn,
    agent: &mut Agent,
    netlink: &mut Rtnetlink,
    first_round: bool,
) -> Result<RoundOutcome, Error> {
    let mut out = RoundOutcome::default();
    if first_round && !netlink.tried() {
        if let Some(early) = agent.publish_early(c)? {
            out = early;
        }
        netlink.open(agent);
    }
    // The hints only place NICs, which the early round leaves out.
    agent.read_hints(c)?;
    out += agent.publish(c)?;
    agent.set_identity(identify(c, first_round)?);
    Ok(out)
}
/// The connection and its reconnect schedule.
pub(super) struct Link {
    pub(super) conn: Option<XenbusConn>,
    /// `None`: now (no clock read for the first attempt).
    pub(super) next_attempt: Option<Instant>,
    pub(super) backoff: Duration,
    /// The connection fault being lived with, logged once until it clears (the connection
    /// stays up for [`FAULT_CLEARS_AFTER`]), how often it happened, whether the reconnect
    /// after it was logged, and since when the connection is up.
    pub(super) last_error: Option<String>,
    pub(super) fault_count: u32,
    pub(super) reconnect_logged: bool,
    pub(super) up_since: Option<Instant>,
    /// No round has succeeded yet on any connection.
    pub(super) first_round: bool,
    /// Watch tokens whose registration event has not arrived yet on this connection.
    pub(super) unseen: Vec<&'static str>,
    /// The stop signalfd, which ends every wait for xenstore.
    pub(super) interrupt: RawFd,
    /// A watch-event overflow was logged on this connection.
    pub(super) overflow_logged: bool,
    /// Watch tokens xenstored refused on this connection: re-checked on every memory tick.
    pub(super) unwatched: Vec<&'static str>,
    /// Refused watches and why, logged once until a WATCH for them succeeds.
    pub(super) watch_refusals: Vec<(&'static str, String)>,
}

impl Link {
    pub(super) fn new(interrupt: RawFd) -> Link {
        Link {
            interrupt,
            overflow_logged: false,
            unwatched: Vec::new(),
            watch_refusals: Vec::new(),
            conn: None,
            next_attempt: None,
            backoff: BACKOFF_MIN,
            last_error: None,
            fault_count: 0,
            reconnect_logged: false,
            up_since: None,
            first_round: true,
            unseen: Vec::new(),
        }
    }

    /// One connection attempt and, when it connects, the round after it and the watches.
    /// rtnetlink is opened on the first success.
    /// Fails only when the endpoint can never work (not xenstore at all).
    pub(super) fn attempt(
        &mut self,
        choice: &EndpointChoice,
        agent: &mut Agent,
        netlink: &mut Rtnetlink,
    ) -> Result<(), Error> {
        match connect(choice, Some(self.interrupt)) {
            Ok(mut c) => {
                agent.forget_published();
                let round =
                    round_after_connect(&mut c, agent, netlink, self.first_round).and_then(|r| {
                        let (unseen, unwatched) = (&mut self.unseen, &mut self.unwatched);
                        watch(&mut c, unseen, unwatched, &mut self.watch_refusals).map(|()| r)
                    });
                match round {
                    Ok(r) => {
                        log_round(agent, r, self.first_round);
                        self.first_round = false;
                        self.up(c);
                    }
                    Err(e) => self.down("publishing failed", &e, agent),
                }
            }
            Err(e @ Error::NotXenstore(_)) => return Err(e),
            Err(e) => self.down("cannot reach xenstore", &e, agent),
        }
        Ok(())
    }

    pub(super) fn up(&mut self, conn: XenbusConn) {
        if self.last_error.is_some() {
            if !self.reconnect_logged {
                log::info!("xenstore reachable again; everything republished");
                self.reconnect_logged = true;
            } else {
                log::debug!("xenstore reachable again; everything republished");
            }
        }
        self.backoff = BACKOFF_MIN;
        self.overflow_logged = false;
        self.up_since = Some(Instant::now());
        self.conn = Some(conn);
    }

    /// Once the connection stayed up for [`FAULT_CLEARS_AFTER`], the fault it recovered from
    /// is over: says how often it happened. Called on the memory tick.
    pub(super) fn fault_cleared(&mut self, now: Instant) {
        let steady = self
            .up_since
            .is_some_and(|t| self.conn.is_some() && now >= t + FAULT_CLEARS_AFTER);
        if steady {
            if let Some(msg) = self.last_error.take() {
                log::info!(
                    "xenstore connection steady again; \"{msg}\" happened {} time(s)",
                    self.fault_count
                );
                self.fault_count = 0;
                self.reconnect_logged = false;
            }
        }
    }

    /// Drops the connection, forgets what was published, schedules the next attempt.
    pub(super) fn down(&mut self, what: &str, e: &Error, agent: &mut Agent) {
        let msg = format!("{what}: {e}");
        if matches!(e, Error::Interrupted) {
            log::debug!("{msg}"); // the loop exits next
        } else if self.last_error.as_deref() == Some(msg.as_str()) {
            self.fault_count += 1;
            log::debug!("{msg} ({} times)", self.fault_count);
        } else {
            log::warn!("{msg}; retrying with backoff, will republish everything");
            self.last_error = Some(msg);
            self.fault_count = 1;
            self.reconnect_logged = false;
        }
        self.up_since = None;
        self.conn = None;
        agent.forget_published();
        self.next_attempt = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}
/// Registers the watches. One that xenstored refuses (the connection stays) is logged once
/// and left in `unwatched`: what it covers is re-checked on every memory tick instead.
fn watch(
    c: &mut XenbusConn,
    unseen: &mut Vec<&'static str>,
    unwatched: &mut Vec<&'static str>,
    refusals: &mut Vec<(&'static str, String)>,
) -> Result<(), Error> {
    unseen.clear();
    unwatched.clear();
    for (path, token) in WATCHES {
        match c.watch(path, token) {
            Ok(()) => {
                unseen.push(token);
                if let Some(i) = refusals.iter().position(|r| r.0 == token) {
                    refusals.swap_remove(i);
                    log::info!("xenstored accepts the watch on {path} again");
                }
            }
            Err(e) if e.is_connection_lost() => return Err(e),
            Err(e) => {
                unwatched.push(token);
                let msg = e.to_string();
                if !refusals.iter().any(|r| r.0 == token && r.1 == msg) {
                    log::warn!(
                        "cannot watch {path} ({msg}): re-checking it on every memory tick instead"
                    );
                    refusals.retain(|r| r.0 != token);
                    refusals.push((token, msg));
                }
            }
        }
    }
    Ok(())
}
