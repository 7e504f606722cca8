//! fd readiness dispatch: one thread, one `poll(2)` over named fds (the stop and control
//! signalfds, the memory tick, the xenstore connection, rtnetlink, the wall-clock jump
//! detector, the balloon recheck timer and the host name files), one `on_*` method per fd.
//! What an event means is the agent's business ([`Agent`]): each `on_*` hands the event to
//! it and collects the [`Reaction`]; at the end of the iteration `Executor::carry_out` does
//! what the reactions asked, in their order. The xenstore connection and its reconnect
//! schedule are in `link.rs`, the rtnetlink socket and its reopen schedule in `rtnetlink.rs`.

mod link;
mod rtnetlink;

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use self::link::{connect, Link};
use self::rtnetlink::Rtnetlink;
use crate::agent::{Agent, IpStep, NetlinkStep, Reaction};
use crate::fault::{FaultLog, Seen};
use crate::netlink::source::NetlinkSource;
use crate::netlink::writer::RouteWriter;
use crate::sources::hostname::HostnameWatch;
use crate::sys::{self, SignalFd, TimerFd};
use crate::xenbus::conn::{Endpoint, Error, XenbusConn};

/// Where to connect: a fixed endpoint, or the first xenbus device that shows up.
#[derive(Clone, Debug)]
pub enum EndpointChoice {
    Fixed(Endpoint),
    Discover,
}

impl EndpointChoice {
    fn resolve(&self) -> Option<Endpoint> {
        match self {
            EndpointChoice::Fixed(e) => Some(e.clone()),
            EndpointChoice::Discover => Endpoint::discover(),
        }
    }
}

impl fmt::Display for EndpointChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointChoice::Fixed(e) => e.fmt(f),
            EndpointChoice::Discover => {
                f.write_str("xenbus device (/dev/xen/xenbus or /proc/xen/xenbus)")
            }
        }
    }
}

crate::error_enum::error_enum! {
    /// A failure that stops the agent.
    #[derive(Debug)]
    pub enum RunError {
        /// cannot set up signal and timer fds: {0}
        Setup(io::Error),
        /// poll failed: {0}
        Poll(io::Error),
        /// {0}
        Connect(Error),
    }
}

/// First and largest delay between connection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// SIGUSR1: one line of counters since start (what a benchmark or an operator asks).
fn log_stats(agent: &Agent, link: &Link, netlink: &Rtnetlink) {
    let p = agent.publisher().metrics;
    let x = link
        .conn()
        .map_or((0, 0), |c| (c.requests_sent, c.stray_replies));
    let n = netlink.metrics();
    log::info!(
        "stats: {} rounds, {} written, {} removed, {} refused, {} read back; xenstore \
         connection (since it opened): {} requests, {} stray replies; rtnetlink: {} dumps, {} datagrams, {} \
         messages, {} malformed, {} overruns",
        p.rounds,
        p.writes,
        p.removes,
        p.refusals,
        p.reads,
        x.0,
        x.1,
        n.dumps,
        n.datagrams,
        n.messages,
        n.malformed,
        n.overruns
    );
}

/// Opens rtnetlink and dumps links and addresses into the agent, for `--dry-run`. Without
/// it the agent still publishes everything but NICs.
pub fn open_netlink(agent: &mut Agent) -> Option<NetlinkSource> {
    let opened = NetlinkSource::open().and_then(|mut source| {
        let _ = agent.dump_links(&mut source)?;
        Ok(source)
    });
    opened
        .map_err(|e| log::warn!("{e}; NICs are not reported"))
        .ok()
}

/// `--once`: connect, publish one round, return.
pub fn run_once(agent: &mut Agent, choice: &EndpointChoice) -> Result<(), RunError> {
    let mut netlink = open_netlink(agent);
    let mut conn = connect(choice, None).map_err(RunError::Connect)?;
    let r = agent.on_connected();
    agent.read_hints(&mut conn).map_err(RunError::Connect)?;
    if r.ip_settings != IpStep::Nothing {
        // An initramfs without DHCP gets its address here, before the round reports it.
        let mut writer = Writer::default();
        if let Some(w) = writer.get() {
            agent
                .apply_ip_settings(&mut conn, w, r.ip_settings)
                .map_err(RunError::Connect)?;
        }
        // What was added, in the model before the round.
        if let Some(source) = netlink.as_mut() {
            if let Err(e) = agent.on_rtnetlink(source) {
                log::warn!("{e}");
            }
        }
    }
    agent.publish(&mut conn).map_err(RunError::Connect)?;
    agent.identify(&mut conn).map_err(RunError::Connect)
}

/// Runs until SIGTERM or SIGINT.
pub fn run(
    agent: &mut Agent,
    choice: &EndpointChoice,
    memory_interval: Duration,
) -> Result<(), RunError> {
    EventLoop::new(agent, choice, memory_interval)?.run()
}

/// The fds polled, by position in the poll set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fd {
    /// SIGTERM, SIGINT: also end any wait for xenstore (a held reply, a connect).
    Stop,
    /// SIGHUP, SIGUSR1: never interrupt a request.
    Control,
    MemoryTick,
    Xenstore,
    Rtnetlink,
    ClockJump,
    BalloonRecheck,
    HostName,
    DomainName,
}

impl Fd {
    /// Dispatch order: a stop first, then SIGHUP (which re-reads everything), then the rest.
    const ALL: [Fd; 9] = [
        Fd::Stop,
        Fd::Control,
        Fd::MemoryTick,
        Fd::Xenstore,
        Fd::Rtnetlink,
        Fd::ClockJump,
        Fd::BalloonRecheck,
        Fd::HostName,
        Fd::DomainName,
    ];
}

// `Fd::ALL` lists the fds in declaration order, so `fd as usize` indexes the poll set.
const _: () = {
    let mut i = 0;
    while i < Fd::ALL.len() {
        assert!(Fd::ALL[i] as usize == i);
        i += 1;
    }
};

/// Whether the loop goes on.
enum Flow {
    Continue,
    Exit,
}

/// Carries out what the agent decided: it owns the xenstore connection and the rtnetlink
/// socket, and lends them to the agent step by step. It decides nothing but how often a
/// domain check may run and when a connection or socket is tried again.
struct Executor<'a> {
    agent: &'a mut Agent,
    choice: &'a EndpointChoice,
    link: Link,
    netlink: Rtnetlink,
    /// Carries out the agent's address changes (opened the first time it is needed).
    writer: Writer,
    domain_checks: Throttle,
}

/// The rtnetlink writer, opened on first use; a failure to open is logged once and tried
/// again on the next use.
#[derive(Default)]
struct Writer {
    writer: Option<RouteWriter>,
    fault: FaultLog,
}

impl Writer {
    fn get(&mut self) -> Option<&mut RouteWriter> {
        if self.writer.is_none() {
            match RouteWriter::open() {
                Ok(w) => {
                    self.writer = Some(w);
                    self.fault.clear();
                }
                Err(e) => {
                    if self.fault.record(e.to_string()) == Seen::New {
                        log::warn!("{e}; address requests are not applied");
                    }
                }
            }
        }
        self.writer.as_mut()
    }
}

impl Executor<'_> {
    /// A connection attempt and an rtnetlink reopen, when due; what the agent makes of them.
    fn reconnect_when_due(&mut self) -> Result<Reaction, RunError> {
        let mut r = Reaction::default();
        if self.link.attempt_due() {
            if self.link.attempt(self.choice).map_err(RunError::Connect)? {
                r |= self.agent.on_connected();
            } else {
                self.agent.on_disconnected();
            }
        }
        if self.netlink.due() {
            r |= self.netlink.open(self.agent);
        }
        Ok(r)
    }

    /// Does what `r` asks, in the order of its fields; a step may add later ones. Returns
    /// the reaction as carried out (the loop arms the balloon recheck from it).
    fn carry_out(&mut self, mut r: Reaction) -> Reaction {
        if r.publish_early {
            self.with_conn("publishing failed", Agent::publish_early);
        }
        r |= match r.netlink {
            NetlinkStep::Nothing => Reaction::default(),
            NetlinkStep::Open => self.netlink.open_once(self.agent),
            NetlinkStep::Redump => self.netlink.redump(self.agent),
        };
        if r.read_hints {
            self.with_conn("reading toolstack hints failed", Agent::read_hints);
        }
        if self.domain_checks.ready(r.check_domain) {
            if let Some(more) = self.with_conn("xenstore connection lost", Agent::check_domain) {
                r |= more;
            }
        }
        // After the domain check: a new domain (resume, migration) re-applies every request.
        if r.ip_settings != IpStep::Nothing && self.link.conn().is_some() {
            if let Some(w) = self.writer.get() {
                let step = r.ip_settings;
                let (agent, link) = (&mut *self.agent, &mut self.link);
                if let Some(c) = link.conn_mut() {
                    if let Err(e) = agent.apply_ip_settings(c, w, step) {
                        link.down("applying address requests failed", &e);
                        agent.on_disconnected();
                    }
                }
            }
        }
        if r.publish {
            self.with_conn("publishing failed", Agent::publish);
        }
        if r.settle_connection
            && self
                .with_conn("publishing failed", Agent::settle_connection)
                .is_some()
        {
            self.link.established();
        }
        r
    }

    /// Runs one step on the connection, if there is one. A failure drops the connection (the
    /// agent forgets what it published) and the later steps find none.
    fn with_conn<T>(
        &mut self,
        what: &str,
        step: impl FnOnce(&mut Agent, &mut XenbusConn) -> Result<T, Error>,
    ) -> Option<T> {
        let c = self.link.conn_mut()?;
        match step(self.agent, c) {
            Ok(v) => Some(v),
            Err(e) => {
                self.link.down(what, &e);
                self.agent.on_disconnected();
                None
            }
        }
    }
}

struct EventLoop<'a> {
    exec: Executor<'a>,
    stop: SignalFd,
    control: SignalFd,
    memory_tick: TimerFd,
    clock: TimerFd,
    balloon_recheck: TimerFd,
    hostname: Option<HostnameWatch>,
    /// What this iteration's events asked for.
    reaction: Reaction,
}

impl<'a> EventLoop<'a> {
    fn new(
        agent: &'a mut Agent,
        choice: &'a EndpointChoice,
        memory_interval: Duration,
    ) -> Result<EventLoop<'a>, RunError> {
        let stop = SignalFd::new(&[libc::SIGTERM, libc::SIGINT]).map_err(RunError::Setup)?;
        let control = SignalFd::new(&[libc::SIGHUP, libc::SIGUSR1]).map_err(RunError::Setup)?;
        let mut exec = Executor {
            agent,
            choice,
            link: Link::new(stop.as_raw_fd()),
            netlink: Rtnetlink::new(stop.as_raw_fd()),
            writer: Writer::default(),
            domain_checks: Throttle::new(DOMAIN_CHECK_MIN_INTERVAL),
        };
        // The first attempt comes before the timers exist: in a PV guest their six system
        // calls would delay the first key by as many trips through Xen.
        let first = exec.reconnect_when_due()?;
        let _ = exec.carry_out(first);
        let memory_tick = TimerFd::new().map_err(RunError::Setup)?;
        memory_tick
            .arm(memory_interval, memory_interval)
            .map_err(RunError::Setup)?;
        let clock = TimerFd::clock_jump_detector().map_err(RunError::Setup)?;
        let balloon_recheck = TimerFd::new().map_err(RunError::Setup)?;
        let hostname = match HostnameWatch::open(exec.agent.root()) {
            Ok(w) => Some(w),
            Err(e) => {
                log::info!("host name changes are not followed until SIGHUP: {e}");
                None
            }
        };
        Ok(EventLoop {
            exec,
            stop,
            control,
            memory_tick,
            clock,
            balloon_recheck,
            hostname,
            reaction: Reaction::default(),
        })
    }

    fn run(mut self) -> Result<(), RunError> {
        loop {
            let due = self.exec.reconnect_when_due()?;
            self.finish(due);
            let mut fds = self.poll_set();
            sys::poll(&mut fds, self.timeout()).map_err(RunError::Poll)?;
            self.reaction = Reaction::default();
            for fd in Fd::ALL {
                if fds[fd as usize].revents == 0 {
                    continue;
                }
                let flow = match fd {
                    Fd::Stop => self.on_stop()?,
                    Fd::Control => self.on_control()?,
                    Fd::MemoryTick => self.on_memory_tick()?,
                    Fd::Xenstore => self.on_xenstore(),
                    Fd::Rtnetlink => self.on_rtnetlink(),
                    Fd::ClockJump => self.on_clock_jump()?,
                    Fd::BalloonRecheck => self.on_balloon_recheck()?,
                    Fd::HostName | Fd::DomainName => self.on_host_name(),
                };
                if let Flow::Exit = flow {
                    return Ok(());
                }
            }
            // Events a request read into the buffer come without the fd being readable.
            self.on_watch_events();
            let r = std::mem::take(&mut self.reaction);
            self.finish(r);
        }
    }

    /// Carries out a reaction (an empty one still runs a deferred domain check that is due),
    /// then arms the balloon recheck if it asked for one.
    fn finish(&mut self, r: Reaction) {
        if self.exec.carry_out(r).recheck_balloon {
            arm_balloon_recheck(&self.balloon_recheck);
        }
    }

    /// The poll set, in [`Fd`] order (`Fd as usize` indexes it).
    fn poll_set(&self) -> [libc::pollfd; Fd::ALL.len()] {
        let [host, domain] = self
            .hostname
            .as_ref()
            .map_or([-1, -1], HostnameWatch::raw_fds);
        [
            pollfd(self.stop.as_raw_fd()),
            pollfd(self.control.as_raw_fd()),
            pollfd(self.memory_tick.as_raw_fd()),
            pollfd(self.exec.link.conn().map_or(-1, |c| c.as_raw_fd())),
            pollfd(self.exec.netlink.raw_fd()),
            pollfd(self.clock.as_raw_fd()),
            pollfd(self.balloon_recheck.as_raw_fd()),
            pollpri(host),
            pollpri(domain),
        ]
    }

    /// How long poll may sleep: not at all with events already buffered, until the next
    /// connection attempt while disconnected, and no longer than a rtnetlink reopen or a
    /// deferred domain check.
    fn timeout(&mut self) -> Option<Duration> {
        let buffered = self
            .exec
            .link
            .conn_mut()
            .is_some_and(XenbusConn::has_pending_event);
        if buffered {
            return Some(Duration::ZERO);
        }
        earliest(
            earliest(self.exec.link.wait(), self.exec.netlink.wait()),
            self.exec.domain_checks.wait(),
        )
    }

    fn on_stop(&mut self) -> Result<Flow, RunError> {
        match self.stop.read().map_err(RunError::Poll)? {
            Some(sig) => {
                log::info!("signal {sig}: exiting");
                Ok(Flow::Exit)
            }
            None => Ok(Flow::Continue),
        }
    }

    fn on_control(&mut self) -> Result<Flow, RunError> {
        while let Some(sig) = self.control.read().map_err(RunError::Poll)? {
            if sig == libc::SIGUSR1 {
                log_stats(self.exec.agent, &self.exec.link, &self.exec.netlink);
            } else {
                self.reaction |= self.exec.agent.on_hangup();
            }
        }
        Ok(Flow::Continue)
    }

    fn on_memory_tick(&mut self) -> Result<Flow, RunError> {
        if self.memory_tick.read().map_err(RunError::Poll)? > 0 {
            let now = Instant::now();
            self.reaction |= self.exec.agent.on_memory_tick(now);
            self.exec.link.fault_cleared(now);
        }
        Ok(Flow::Continue)
    }

    fn on_xenstore(&mut self) -> Flow {
        if let Some(c) = self.exec.link.conn_mut() {
            if let Err(e) = c.receive() {
                self.exec.link.down("xenstore connection lost", &e);
                self.exec.agent.on_disconnected();
            }
        }
        Flow::Continue
    }

    fn on_rtnetlink(&mut self) -> Flow {
        self.reaction |= self.exec.netlink.receive(self.exec.agent);
        Flow::Continue
    }

    fn on_clock_jump(&mut self) -> Result<Flow, RunError> {
        if let Err(e) = self.clock.read() {
            if e.raw_os_error() != Some(libc::ECANCELED) {
                return Err(RunError::Poll(e));
            }
            self.clock.arm_clock_jump().map_err(RunError::Poll)?;
            self.reaction |= self.exec.agent.on_clock_jump();
        }
        Ok(Flow::Continue)
    }

    fn on_balloon_recheck(&mut self) -> Result<Flow, RunError> {
        if self.balloon_recheck.read().map_err(RunError::Poll)? > 0 {
            self.reaction |= self.exec.agent.on_balloon_recheck(Instant::now());
        }
        Ok(Flow::Continue)
    }

    fn on_host_name(&mut self) -> Flow {
        self.reaction |= self.exec.agent.on_host_name_changed();
        Flow::Continue
    }

    /// Watch events, read with the fd or with a reply, and dropped ones.
    fn on_watch_events(&mut self) {
        let Some(c) = self.exec.link.conn_mut() else {
            return;
        };
        let mut r = Reaction::default();
        while let Some(ev) = c.pending_event() {
            r |= self
                .exec
                .agent
                .on_watch_event(&ev.path, &ev.token, Instant::now());
        }
        let dropped = c.take_overflow();
        if dropped > 0 {
            r |= self.exec.agent.on_events_dropped(dropped, Instant::now());
        }
        self.reaction |= r;
    }
}

/// Domain checks (three READs each) at most this often: a xenstored that answers every
/// request with an event on one of the agent's watches would otherwise keep it busy.
const DOMAIN_CHECK_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Runs something at most once per interval; a request in between is deferred, not lost.
struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    pending: bool,
}

impl Throttle {
    fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            last: None,
            pending: false,
        }
    }

    /// Notes a request (if `requested`); true when the thing should run now.
    fn ready(&mut self, requested: bool) -> bool {
        self.pending |= requested;
        if !self.pending {
            return false;
        }
        let now = Instant::now();
        if self.last.is_some_and(|t| now < t + self.interval) {
            return false;
        }
        self.pending = false;
        self.last = Some(now);
        true
    }

    /// How long poll may sleep before a deferred run is due.
    fn wait(&self) -> Option<Duration> {
        match (self.pending, self.last) {
            (true, Some(t)) => Some((t + self.interval).saturating_duration_since(Instant::now())),
            (true, None) => Some(Duration::ZERO),
            _ => None,
        }
    }
}

/// The earlier of two poll timeouts (`None`: forever).
fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// While the balloon moves, look again every second until it reached its target or is stuck.
fn arm_balloon_recheck(t: &TimerFd) {
    if let Err(e) = t.arm(Duration::from_secs(1), Duration::ZERO) {
        log::warn!("cannot arm the balloon timer: {e}");
    }
}

/// procfs sysctl files raise `POLLPRI` (with `POLLERR`) when their value changes; they are
/// always readable, so `POLLIN` is not asked for.
fn pollpri(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLPRI,
        revents: 0,
    }
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
