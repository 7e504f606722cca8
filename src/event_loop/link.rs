//! The xenstore connection: connecting (interruptible by the stop signal) and the reconnect
//! schedule with its fault logging. What a connection means (the round after it, the
//! watches) is the agent's ([`crate::agent::Agent::on_connected`]).

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::{EndpointChoice, BACKOFF_MAX, BACKOFF_MIN};
use crate::fault::{Backoff, FaultLog, Seen};
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

/// The connection and its reconnect schedule.
pub(super) struct Link {
    conn: Option<XenbusConn>,
    /// Nothing scheduled: the next attempt is now (no clock read for the first one).
    backoff: Backoff,
    /// The connection fault being lived with, logged once until it clears (the connection
    /// stays up for [`FAULT_CLEARS_AFTER`]).
    fault: FaultLog,
    /// The reconnect after the current fault was logged at info level.
    reconnect_logged: bool,
    /// Since when the connection is established (its first round went through).
    up_since: Option<Instant>,
    /// The stop signalfd, which ends every wait for xenstore.
    interrupt: RawFd,
}

impl Link {
    pub(super) fn new(interrupt: RawFd) -> Link {
        Link {
            interrupt,
            conn: None,
            backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
            fault: FaultLog::new(),
            reconnect_logged: false,
            up_since: None,
        }
    }

    pub(super) fn conn(&self) -> Option<&XenbusConn> {
        self.conn.as_ref()
    }

    pub(super) fn conn_mut(&mut self) -> Option<&mut XenbusConn> {
        self.conn.as_mut()
    }

    /// Disconnected, and the next attempt is due.
    pub(super) fn attempt_due(&self) -> bool {
        self.conn.is_none() && (!self.backoff.scheduled() || self.backoff.due(Instant::now()))
    }

    /// How long poll may sleep: `None` (forever) while connected, else until the next attempt.
    pub(super) fn wait(&self) -> Option<Duration> {
        match self.conn {
            Some(_) => None,
            None => Some(self.backoff.wait(Instant::now()).unwrap_or(Duration::ZERO)),
        }
    }

    /// One connection attempt: true if connected. Fails only when the endpoint can never
    /// work (not xenstore at all).
    pub(super) fn attempt(&mut self, choice: &EndpointChoice) -> Result<bool, Error> {
        match connect(choice, Some(self.interrupt)) {
            Ok(c) => {
                self.conn = Some(c);
                Ok(true)
            }
            Err(e @ Error::NotXenstore(_)) => Err(e),
            Err(e) => {
                self.down("cannot reach xenstore", &e);
                Ok(false)
            }
        }
    }

    /// The first round on the new connection went through.
    pub(super) fn established(&mut self) {
        if self.fault.active() {
            if !self.reconnect_logged {
                log::info!("xenstore reachable again; everything republished");
                self.reconnect_logged = true;
            } else {
                log::debug!("xenstore reachable again; everything republished");
            }
        }
        self.backoff.succeeded();
        self.up_since = Some(Instant::now());
    }

    /// Once the connection stayed up for [`FAULT_CLEARS_AFTER`], the fault it recovered from
    /// is over: says how often it happened. Called on the memory tick.
    pub(super) fn fault_cleared(&mut self, now: Instant) {
        let steady = self
            .up_since
            .is_some_and(|t| self.conn.is_some() && now >= t + FAULT_CLEARS_AFTER);
        if steady {
            if let Some((msg, n)) = self.fault.clear() {
                log::info!("xenstore connection steady again; \"{msg}\" happened {n} time(s)");
                self.reconnect_logged = false;
            }
        }
    }

    /// Drops the connection and schedules the next attempt.
    pub(super) fn down(&mut self, what: &str, e: &Error) {
        let msg = format!("{what}: {e}");
        if matches!(e, Error::Interrupted) {
            log::debug!("{msg}"); // the loop exits next
        } else {
            match self.fault.record(msg.clone()) {
                Seen::New => {
                    log::warn!("{msg}; retrying with backoff, will republish everything");
                    self.reconnect_logged = false;
                }
                Seen::Again(n) => log::debug!("{msg} ({n} times)"),
            }
        }
        self.up_since = None;
        self.conn = None;
        self.backoff.failed(Instant::now());
    }
}
