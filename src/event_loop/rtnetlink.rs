//! The rtnetlink socket and its reopen schedule.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::{BACKOFF_MAX, BACKOFF_MIN};
use crate::agent::Agent;
use crate::netlink::source::{NetlinkError, NetlinkSource};

/// The rtnetlink socket and its reopen schedule. A failure (a dump that keeps overrunning or
/// times out, a socket error) drops the socket and reopens it with backoff; until a dump
/// succeeds the NIC keys stay as they were, never replaced by what a failed dump saw.
pub(super) struct Rtnetlink {
    pub(super) source: Option<NetlinkSource>,
    /// `None`: not tried yet, or open.
    pub(super) next_attempt: Option<Instant>,
    pub(super) tried: bool,
    pub(super) backoff: Duration,
    /// The failure being retried, logged once, and how many times it happened.
    pub(super) last_error: Option<String>,
    pub(super) failures: u32,
    /// The stop signalfd, which ends a dump's wait.
    pub(super) interrupt: Option<RawFd>,
}

impl Rtnetlink {
    pub(super) fn new(interrupt: RawFd) -> Rtnetlink {
        Rtnetlink {
            interrupt: Some(interrupt),
            source: None,
            next_attempt: None,
            tried: false,
            backoff: BACKOFF_MIN,
            last_error: None,
            failures: 0,
        }
    }

    pub(super) fn tried(&self) -> bool {
        self.tried
    }

    /// True when a reopen is scheduled and its time has come (the clock is read only then).
    pub(super) fn due(&self) -> bool {
        self.source.is_none() && self.next_attempt.is_some_and(|t| Instant::now() >= t)
    }

    /// How long poll may sleep before the next reopen.
    pub(super) fn wait(&self) -> Option<Duration> {
        match (&self.source, self.next_attempt) {
            (None, Some(t)) => Some(t.saturating_duration_since(Instant::now())),
            _ => None,
        }
    }

    /// Opens the socket and dumps into the agent; true (and the NICs rendered again) if the
    /// dump succeeded.
    pub(super) fn open(&mut self, agent: &mut Agent) -> bool {
        self.tried = true;
        let interrupt = self.interrupt;
        let result = NetlinkSource::open().and_then(|mut s| {
            s.set_interrupt(interrupt);
            s.dump(agent.net_mut())?;
            Ok(s)
        });
        match result {
            Ok(s) => {
                self.source = Some(s);
                self.next_attempt = None;
                self.backoff = BACKOFF_MIN;
                if self.last_error.take().is_some() {
                    log::info!(
                        "rtnetlink works again after {} failure(s); NICs reported again",
                        self.failures
                    );
                }
                self.failures = 0;
                agent.refresh_nics();
                true
            }
            Err(e) => {
                self.fail(&e);
                false
            }
        }
    }

    /// SIGHUP: a fresh dump on the open socket, or a reopen now.
    pub(super) fn redump(&mut self, agent: &mut Agent) {
        match self.source.as_mut() {
            Some(s) => match s.dump(agent.net_mut()) {
                Ok(()) => agent.refresh_nics(),
                Err(e) => self.fail(&e),
            },
            None if self.tried => {
                self.open(agent);
            }
            None => {}
        }
    }

    /// Drops the socket and schedules a reopen; the NIC keys keep their last values.
    pub(super) fn fail(&mut self, e: &NetlinkError) {
        if matches!(e, NetlinkError::Interrupted) {
            self.source = None; // the loop exits next
            return;
        }
        let msg = e.to_string();
        self.failures += 1;
        if self.last_error.as_deref() != Some(msg.as_str()) {
            log::warn!("{msg}; NIC keys keep their last values, reopening rtnetlink with backoff");
            self.last_error = Some(msg);
        } else {
            log::debug!("{msg}");
        }
        self.source = None;
        self.next_attempt = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}
