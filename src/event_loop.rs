//! fd readiness dispatch: one thread, one `poll(2)` over the xenbus connection, a timerfd for
//! the memory interval and a signalfd for SIGTERM/SIGINT/SIGHUP. The work itself happens in
//! [`Agent`].

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::agent::{Agent, DomainIdentity};
use crate::model::BalloonState;
use crate::netlink::source::{NetlinkError, NetlinkSource};
use crate::publisher::RoundOutcome;
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

/// A failure that stops the agent.
#[derive(Debug)]
pub enum RunError {
    /// cannot set up signal or timer fds
    Setup(io::Error),
    /// poll(2) failed
    Poll(io::Error),
    /// cannot reach xenstore (with --once)
    Connect(Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Setup(e) => write!(f, "cannot set up signal and timer fds: {e}"),
            RunError::Poll(e) => write!(f, "poll failed: {e}"),
            RunError::Connect(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// How long the connection must stay up before the fault it recovered from counts as over.
const FAULT_CLEARS_AFTER: Duration = Duration::from_secs(60);

/// First and largest delay between connection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Opens the connection; every wait on it ends when `interrupt` (the stop signalfd) is readable.
fn connect(choice: &EndpointChoice, interrupt: Option<RawFd>) -> Result<XenbusConn, Error> {
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
fn identify(conn: &mut XenbusConn, first: bool) -> Result<DomainIdentity, Error> {
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

/// SIGUSR1: one line of counters since start (what a benchmark or an operator asks).
fn log_stats(agent: &Agent, link: &Link, netlink: &Rtnetlink) {
    let p = agent.publisher().metrics;
    let x = link
        .conn
        .as_ref()
        .map_or((0, 0), |c| (c.requests_sent, c.stray_replies));
    let n = netlink
        .source
        .as_ref()
        .map(|s| s.metrics)
        .unwrap_or_default();
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

fn log_round(agent: &Agent, r: RoundOutcome, first: bool) {
    if first {
        log::info!(
            "published: {} keys desired, {} written, {} removed, {} refused",
            agent.desired().len(),
            r.writes,
            r.removes,
            r.refused
        );
    } else if r.writes + r.removes + r.refused > 0 {
        log::debug!(
            "round: {} written, {} removed, {} refused",
            r.writes,
            r.removes,
            r.refused
        );
    }
}

/// Opens rtnetlink and dumps links and addresses into the agent. Without it the agent still
/// publishes everything but NICs.
pub fn open_netlink(agent: &mut Agent) -> Option<NetlinkSource> {
    let mut source = match NetlinkSource::open() {
        Ok(s) => s,
        Err(e) => {
            log::warn!("{e}; NICs are not reported");
            return None;
        }
    };
    match source.dump(agent.net_mut()) {
        Ok(()) => {
            agent.refresh_nics();
            Some(source)
        }
        Err(e) => {
            log::warn!("{e}; NICs are not reported");
            None
        }
    }
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

/// `--once`: connect, publish one round, return.
pub fn run_once(agent: &mut Agent, choice: &EndpointChoice) -> Result<(), RunError> {
    let _netlink = open_netlink(agent);
    let mut conn = connect(choice, None).map_err(RunError::Connect)?;
    agent.read_hints(&mut conn).map_err(RunError::Connect)?;
    let r = agent.publish(&mut conn).map_err(RunError::Connect)?;
    identify(&mut conn, true).map_err(RunError::Connect)?;
    log_round(agent, r, true);
    Ok(())
}

/// Runs until SIGTERM or SIGINT.
pub fn run(
    agent: &mut Agent,
    choice: &EndpointChoice,
    memory_interval: Duration,
) -> Result<(), RunError> {
    // Two signalfds: a stop signal also ends any wait for xenstore (a held reply, a connect),
    // SIGHUP does not.
    let signals = SignalFd::new(&[libc::SIGTERM, libc::SIGINT]).map_err(RunError::Setup)?;
    let hangup = SignalFd::new(&[libc::SIGHUP, libc::SIGUSR1]).map_err(RunError::Setup)?;
    // Opened after the first connection: on a fresh store a round goes out first.
    let mut netlink = Rtnetlink::new(signals.as_raw_fd());
    let mut link = Link::new(signals.as_raw_fd());
    let mut domain_checks = Throttle::new(DOMAIN_CHECK_MIN_INTERVAL);
    // The first attempt comes before the timers exist: in a PV guest their six system calls
    // would delay the first key by as many trips through Xen.
    link.attempt(choice, agent, &mut netlink)
        .map_err(RunError::Connect)?;
    let timer = TimerFd::new().map_err(RunError::Setup)?;
    timer
        .arm(memory_interval, memory_interval)
        .map_err(RunError::Setup)?;
    let clock = TimerFd::clock_jump_detector().map_err(RunError::Setup)?;
    let balloon_timer = TimerFd::new().map_err(RunError::Setup)?;
    let hostname = match HostnameWatch::open(agent.root()) {
        Ok(w) => Some(w),
        Err(e) => {
            log::info!("host name changes are not followed until SIGHUP: {e}");
            None
        }
    };
    let [host_fd, domain_fd] = hostname.as_ref().map_or([-1, -1], HostnameWatch::raw_fds);

    loop {
        if link.conn.is_none() && link.next_attempt.map_or(true, |t| Instant::now() >= t) {
            link.attempt(choice, agent, &mut netlink)
                .map_err(RunError::Connect)?;
        }
        if netlink.due() && netlink.open(agent) {
            if let Some(c) = link.conn.as_mut() {
                match agent.publish(c) {
                    Ok(r) => log_round(agent, r, false),
                    Err(e) => link.down("publishing failed", &e, agent),
                }
            }
        }

        let mut fds = [
            pollfd(signals.as_raw_fd()),
            pollfd(timer.as_raw_fd()),
            pollfd(link.conn.as_ref().map_or(-1, |c| c.as_raw_fd())),
            pollfd(netlink.source.as_ref().map_or(-1, |n| n.as_raw_fd())),
            pollfd(clock.as_raw_fd()),
            pollfd(balloon_timer.as_raw_fd()),
            pollpri(host_fd),
            pollpri(domain_fd),
            pollfd(hangup.as_raw_fd()),
        ];
        // Events a request already read into the buffer do not make the fd readable.
        let timeout = match link.conn.as_mut().map(XenbusConn::has_pending_event) {
            Some(true) => Some(Duration::ZERO),
            Some(false) => None,
            None => Some(link.next_attempt.map_or(Duration::ZERO, |t| {
                t.saturating_duration_since(Instant::now())
            })),
        };
        let timeout = earliest(earliest(timeout, netlink.wait()), domain_checks.wait());
        sys::poll(&mut fds, timeout).map_err(RunError::Poll)?;

        let mut publish_now = false;
        // Something hints that the domain under the agent may have changed.
        let mut check_domain = false;
        if fds[0].revents != 0 {
            if let Some(sig) = signals.read().map_err(RunError::Poll)? {
                log::info!("signal {sig}: exiting");
                return Ok(());
            }
        }
        if fds[8].revents != 0 {
            while let Some(sig) = hangup.read().map_err(RunError::Poll)? {
                if sig == libc::SIGUSR1 {
                    log_stats(agent, &link, &netlink);
                    continue;
                }
                log::info!("SIGHUP: re-reading everything and republishing");
                agent.refresh_all();
                // A failed dump leaves the NICs as they were; rtnetlink is reopened.
                netlink.redump(agent);
                agent.forget_published();
                if let Some(c) = link.conn.as_mut() {
                    if let Err(e) = agent.read_hints(c) {
                        link.down("reading toolstack hints failed", &e, agent);
                    }
                }
                publish_now = true;
            }
        }
        if fds[1].revents != 0 && timer.read().map_err(RunError::Poll)? > 0 {
            agent.refresh_memory();
            agent.refresh_balloon(Instant::now());
            // Every tick runs a round even without changes: it is a pure diff when nothing
            // changed, and it retries keys refused for transient reasons (quota, EAGAIN).
            publish_now = true;
            link.fault_cleared(Instant::now());
            // A refused watch on unique-domain-id: look for a new domain on every tick.
            check_domain |= link.conn.is_some() && link.unwatched.contains(&TOKEN_UDID);
        }
        if fds[2].revents != 0 {
            if let Some(c) = link.conn.as_mut() {
                if let Err(e) = c.receive() {
                    link.down("xenstore connection lost", &e, agent);
                }
            }
        }
        if fds[3].revents != 0 {
            if let Some(n) = netlink.source.as_mut() {
                match n.receive(agent.net_mut()) {
                    Ok(false) => {}
                    Ok(true) => {
                        agent.refresh_nics();
                        publish_now = true;
                    }
                    Err(e) => netlink.fail(&e),
                }
            }
        }
        if fds[4].revents != 0 {
            if let Err(e) = clock.read() {
                if e.raw_os_error() != Some(libc::ECANCELED) {
                    return Err(RunError::Poll(e));
                }
                clock.arm_clock_jump().map_err(RunError::Poll)?;
                log::debug!("the wall clock jumped: checking that the domain is still ours");
                check_domain = true;
            }
        }
        if fds[5].revents != 0 && balloon_timer.read().map_err(RunError::Poll)? > 0 {
            agent.refresh_memory();
            if agent.refresh_balloon(Instant::now()) == Some(BalloonState::Ballooning) {
                arm_balloon_recheck(&balloon_timer);
            }
            publish_now = true;
        }
        if fds[6].revents != 0 || fds[7].revents != 0 {
            publish_now |= agent.refresh_host();
        }
        if let Some(c) = link.conn.as_mut() {
            while let Some(ev) = c.pending_event() {
                let first = match link.unseen.iter().position(|t| *t == ev.token) {
                    Some(i) => {
                        link.unseen.swap_remove(i);
                        true
                    }
                    None => false,
                };
                log::debug!(
                    "watch event {} ({}){}",
                    ev.path,
                    ev.token,
                    if first { ", registration" } else { "" }
                );
                if ev.token == TOKEN_TARGET {
                    if let Some(state) = agent.refresh_balloon(Instant::now()) {
                        // A new target: the driver may not have started moving yet, so look
                        // again in a second. The registration event changes nothing: recheck
                        // only if the balloon is already moving. (A recheck also re-reads free
                        // memory, which would make a restart write within a second.)
                        if !first || state == BalloonState::Ballooning {
                            arm_balloon_recheck(&balloon_timer);
                        }
                        publish_now = true;
                    }
                }
                // Watches fire again after a resume, and unique-domain-id changes with the
                // domain: is this still the domain we published to? Only the agent's own
                // watches say anything about that; an event with another token (a confused
                // or hostile xenstored) is dropped, since a domain check sends requests and,
                // if each brought another such event, the loop would never sleep.
                let ours = ev.token == TOKEN_TARGET || ev.token == TOKEN_UDID;
                check_domain |= ours && !first;
            }
            let dropped = c.take_overflow();
            if dropped > 0 {
                // Any watch may have fired: one re-check of everything they cover.
                if !link.overflow_logged {
                    log::warn!(
                        "{dropped} watch events dropped (more than {} distinct tokens queued): \
                         re-checking the balloon target and the domain",
                        crate::xenbus::conn::EVENT_QUEUE_MAX
                    );
                    link.overflow_logged = true;
                } else {
                    log::debug!("{dropped} more watch events dropped");
                }
                if agent.refresh_balloon(Instant::now()).is_some() {
                    publish_now = true;
                }
                check_domain = true;
            }
        }
        if domain_checks.ready(check_domain) {
            if let Some(c) = link.conn.as_mut() {
                match agent.check_domain(c) {
                    Ok(changed) => publish_now |= changed,
                    Err(e) => link.down("xenstore connection lost", &e, agent),
                }
            }
        }
        if publish_now {
            if let Some(c) = link.conn.as_mut() {
                match agent.publish(c) {
                    Ok(r) => log_round(agent, r, false),
                    Err(e) => link.down("publishing failed", &e, agent),
                }
            }
        }
    }
}

/// The connection and its reconnect schedule.
struct Link {
    conn: Option<XenbusConn>,
    /// `None`: now (no clock read for the first attempt).
    next_attempt: Option<Instant>,
    backoff: Duration,
    /// The connection fault being lived with, logged once until it clears (the connection
    /// stays up for [`FAULT_CLEARS_AFTER`]), how often it happened, whether the reconnect
    /// after it was logged, and since when the connection is up.
    last_error: Option<String>,
    fault_count: u32,
    reconnect_logged: bool,
    up_since: Option<Instant>,
    /// No round has succeeded yet on any connection.
    first_round: bool,
    /// Watch tokens whose registration event has not arrived yet on this connection.
    unseen: Vec<&'static str>,
    /// The stop signalfd, which ends every wait for xenstore.
    interrupt: RawFd,
    /// A watch-event overflow was logged on this connection.
    overflow_logged: bool,
    /// Watch tokens xenstored refused on this connection: re-checked on every memory tick.
    unwatched: Vec<&'static str>,
    /// Refused watches and why, logged once until a WATCH for them succeeds.
    watch_refusals: Vec<(&'static str, String)>,
}

impl Link {
    fn new(interrupt: RawFd) -> Link {
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
    fn attempt(
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

    fn up(&mut self, conn: XenbusConn) {
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
    fn fault_cleared(&mut self, now: Instant) {
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
    fn down(&mut self, what: &str, e: &Error, agent: &mut Agent) {
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

/// The rtnetlink socket and its reopen schedule. A failure (a dump that keeps overrunning or
/// times out, a socket error) drops the socket and reopens it with backoff; until a dump
/// succeeds the NIC keys stay as they were, never replaced by what a failed dump saw.
struct Rtnetlink {
    source: Option<NetlinkSource>,
    /// `None`: not tried yet, or open.
    next_attempt: Option<Instant>,
    tried: bool,
    backoff: Duration,
    /// The failure being retried, logged once, and how many times it happened.
    last_error: Option<String>,
    failures: u32,
    /// The stop signalfd, which ends a dump's wait.
    interrupt: Option<RawFd>,
}

impl Rtnetlink {
    fn new(interrupt: RawFd) -> Rtnetlink {
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

    fn tried(&self) -> bool {
        self.tried
    }

    /// True when a reopen is scheduled and its time has come (the clock is read only then).
    fn due(&self) -> bool {
        self.source.is_none() && self.next_attempt.is_some_and(|t| Instant::now() >= t)
    }

    /// How long poll may sleep before the next reopen.
    fn wait(&self) -> Option<Duration> {
        match (&self.source, self.next_attempt) {
            (None, Some(t)) => Some(t.saturating_duration_since(Instant::now())),
            _ => None,
        }
    }

    /// Opens the socket and dumps into the agent; true (and the NICs rendered again) if the
    /// dump succeeded.
    fn open(&mut self, agent: &mut Agent) -> bool {
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
    fn redump(&mut self, agent: &mut Agent) {
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
    fn fail(&mut self, e: &NetlinkError) {
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

/// Watch tokens: `memory/target` (the balloon's new target) and `unique-domain-id` (XAPI
/// writes a fresh one for every domain, so a change means resume in a new domain).
const TOKEN_TARGET: &str = "xenbeacon:memory-target";
const TOKEN_UDID: &str = "xenbeacon:unique-domain-id";

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
    for (path, token) in [
        ("memory/target", TOKEN_TARGET),
        ("unique-domain-id", TOKEN_UDID),
    ] {
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
