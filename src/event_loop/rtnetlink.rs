//! The rtnetlink socket and its reopen schedule.

use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::{BACKOFF_MAX, BACKOFF_MIN};
use crate::agent::{Agent, Reaction};
use crate::fault::{Backoff, FaultLog, Seen};
use crate::netlink::source::{NetlinkError, NetlinkMetrics, NetlinkSource};

/// The rtnetlink socket and its reopen schedule. A failure (a dump that keeps overrunning or
/// times out, a socket error) drops the socket and reopens it with backoff; until a dump
/// succeeds the NIC keys stay as they were, never replaced by what a failed dump saw.
pub(super) struct Rtnetlink {
    source: Option<NetlinkSource>,
    tried: bool,
    backoff: Backoff,
    fault: FaultLog,
    /// The stop signalfd, which ends a dump's wait.
    interrupt: RawFd,
}

impl Rtnetlink {
    pub(super) fn new(interrupt: RawFd) -> Rtnetlink {
        Rtnetlink {
            interrupt,
            source: None,
            tried: false,
            backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
            fault: FaultLog::new(),
        }
    }

    pub(super) fn raw_fd(&self) -> RawFd {
        self.source.as_ref().map_or(-1, NetlinkSource::as_raw_fd)
    }

    pub(super) fn metrics(&self) -> NetlinkMetrics {
        self.source.as_ref().map(|s| s.metrics).unwrap_or_default()
    }

    /// True when a reopen is scheduled and its time has come (the clock is read only then:
    /// in a PV guest a clock read may be a trip through Xen).
    pub(super) fn due(&self) -> bool {
        self.source.is_none() && self.backoff.scheduled() && self.backoff.due(Instant::now())
    }

    /// How long poll may sleep before the next reopen.
    pub(super) fn wait(&self) -> Option<Duration> {
        match self.source {
            None if self.backoff.scheduled() => self.backoff.wait(Instant::now()),
            _ => None,
        }
    }

    /// Opens the socket once: a socket that failed since is reopened when [`Rtnetlink::due`].
    pub(super) fn open_once(&mut self, agent: &mut Agent) -> Reaction {
        if self.tried {
            return Reaction::default();
        }
        self.open(agent)
    }

    /// Opens the socket and has the agent dump into its model.
    pub(super) fn open(&mut self, agent: &mut Agent) -> Reaction {
        self.tried = true;
        let mut source = match NetlinkSource::open() {
            Ok(s) => s,
            Err(e) => return self.fail(&e),
        };
        source.set_interrupt(Some(self.interrupt));
        match agent.dump_links(&mut source) {
            Ok(r) => {
                self.source = Some(source);
                self.backoff.succeeded();
                if let Some((_, n)) = self.fault.clear() {
                    log::info!("rtnetlink works again after {n} failure(s); NICs reported again");
                }
                r
            }
            Err(e) => self.fail(&e),
        }
    }

    /// A fresh dump on the open socket, or a reopen now (if it was ever opened).
    pub(super) fn redump(&mut self, agent: &mut Agent) -> Reaction {
        match self.source.as_mut() {
            Some(s) => match agent.dump_links(s) {
                Ok(r) => r,
                Err(e) => self.fail(&e),
            },
            None if self.tried => self.open(agent),
            None => Reaction::default(),
        }
    }

    /// The socket is readable: the agent takes its events.
    pub(super) fn receive(&mut self, agent: &mut Agent) -> Reaction {
        let Some(s) = self.source.as_mut() else {
            return Reaction::default();
        };
        match agent.on_rtnetlink(s) {
            Ok(r) => r,
            Err(e) => self.fail(&e),
        }
    }

    /// Drops the socket and schedules a reopen; the NIC keys keep their last values.
    fn fail(&mut self, e: &NetlinkError) -> Reaction {
        self.source = None;
        if matches!(e, NetlinkError::Interrupted) {
            return Reaction::default(); // the loop exits next
        }
        let msg = e.to_string();
        match self.fault.record(msg.clone()) {
            Seen::New => log::warn!(
                "{msg}; NIC keys keep their last values, reopening rtnetlink with backoff"
            ),
            Seen::Again(_) => log::debug!("{msg}"),
        }
        self.backoff.failed(Instant::now());
        Reaction::default()
    }
}
