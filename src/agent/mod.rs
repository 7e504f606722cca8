//! The agent's state machine: sources -> model -> desired keys -> publisher.
//!
//! Every decision is made here: each `on_*` method says what an event means and returns a
//! [`Reaction`], the steps the event loop ([`crate::event_loop`]) then carries out by calling
//! back in (`publish`, `read_hints`, `dump_links`, ...) with the connection or the rtnetlink
//! source it owns. No fds here, so all of this is testable without a poll loop.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::balloon::{self, BalloonTracker};
use crate::desired::{self, DesiredKeys};
use crate::fault::{FaultLog, Seen};
use crate::layout::{ip_setting, key, Mac};
use crate::model::{Balloon, BalloonState, BootStage, GuestModel, OsInfo, ToolstackHints};
use crate::net::NicClass;
use crate::netconfig::settings::IpSettings;
use crate::netlink::source::{NetlinkError, NetlinkSource, RouteSocket};
use crate::nics::{normalize_bdf, NicOptions, NicRenderer};
use crate::publisher::{Op, Publisher, RoundOutcome, RoundTime};
use crate::sources::balloon::BalloonReader;
use crate::sources::meminfo::MeminfoReader;
use crate::sources::{hostname, kernel, os_release, stage, sysfs_net};
use crate::xenbus::conn::{Error, XenbusConn, EVENT_QUEUE_MAX};

pub use self::reaction::{IpStep, NetlinkStep, Reaction};

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Prefix for /proc, /sys and /etc.
    pub root: PathBuf,
    /// Smallest change of free memory (KiB) worth a write.
    pub memory_threshold_kb: u64,
    pub nics: NicOptions,
    /// Boot stage to publish; detected from /proc/self/mountinfo when `None`.
    pub stage: Option<BootStage>,
    /// Publish `data/xenbeacon/booted` = 1 at start.
    pub booted: bool,
    /// Write `control/feature-balloon` once memory settled.
    pub feature_balloon: bool,
    /// How long a balloon may stand still short of its target before it counts as stuck.
    pub balloon_stuck_after: Duration,
    /// Apply the toolstack's address requests (`--apply-ip-settings`).
    pub apply_ip_settings: bool,
}

/// `<dir>/<id>/mac` for every numeric `<id>` below `dir` (at most 64): what the toolstack
/// says each of its NICs is. Missing or unreadable nodes are normal.
fn read_macs(conn: &mut XenbusConn, dir: &str) -> Result<Vec<(u32, Mac)>, Error> {
    let ids: Vec<String> = match conn.directory(dir) {
        Ok(e) => e.map(str::to_owned).collect(),
        Err(e) if e.is_connection_lost() => return Err(e),
        Err(_) => return Ok(Vec::new()),
    };
    let mut macs = Vec::new();
    for id in ids.iter().take(64) {
        let Ok(n) = id.parse::<u32>() else { continue };
        match conn.read_string(&format!("{dir}/{id}/mac")) {
            Ok(m) => macs.extend(Mac::parse(&m).map(|m| (n, m))),
            Err(e) if e.is_connection_lost() => return Err(e),
            Err(_) => {}
        }
    }
    Ok(macs)
}

/// The watches the agent registers, as (path, token): `memory/target` (the balloon's new
/// target) and `unique-domain-id` (XAPI writes a fresh one for every domain, so a change means
/// resume in a new domain).
pub const WATCHES: [(&str, &str); 2] = [
    ("memory/target", TOKEN_TARGET),
    ("unique-domain-id", TOKEN_UDID),
];
pub const TOKEN_TARGET: &str = "xenbeacon:memory-target";
pub const TOKEN_UDID: &str = "xenbeacon:unique-domain-id";
/// With `--apply-ip-settings`: xenopsd's address requests, `xenserver/device/vif`.
pub const IP_SETTING_WATCH: (&str, &str) = (ip_setting::XENOPSD_DIR, TOKEN_IP_SETTING);
pub const TOKEN_IP_SETTING: &str = "xenbeacon:static-ip-setting";

/// Who the connection's domain is: after a restore, migration or a rebuilt tree the same guest
/// runs in a domain with another domid or another `unique-domain-id` (XAPI).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainIdentity {
    pub domid: Option<u32>,
    pub unique_id: Option<String>,
}

/// The agent's watches on the current connection.
#[derive(Debug, Default)]
struct WatchState {
    /// Tokens whose registration event has not arrived yet.
    unseen: Vec<&'static str>,
    /// Tokens xenstored refused: what they cover is re-checked on every memory tick.
    unwatched: Vec<&'static str>,
    /// Why each refused watch was refused, logged once until a WATCH for it succeeds.
    refusals: Vec<(&'static str, FaultLog)>,
    /// A watch-event overflow was logged on this connection.
    overflow_logged: bool,
}

pub struct Agent {
    cfg: AgentConfig,
    model: GuestModel,
    desired: DesiredKeys,
    publisher: Publisher,
    meminfo: MeminfoReader,
    meminfo_fault: FaultLog,
    nics: NicRenderer,
    balloon_reader: BalloonReader,
    balloon: BalloonTracker,
    identity: DomainIdentity,
    watches: WatchState,
    /// A round succeeded on some connection (the first one is logged at info level).
    published_once: bool,
    /// The domain was identified on some connection (the first is logged at info level).
    identified_once: bool,
    /// What the early round of this connection sent, logged with the round that follows.
    early: RoundOutcome,
    /// Address requests, with `--apply-ip-settings`.
    ip: Option<IpSettings>,
    /// Storing the record of what was applied failed (logged once per message).
    ip_record_fault: FaultLog,
    /// Writing an answer failed (logged once per message).
    ip_answer_fault: FaultLog,
    /// Reading the kernel's addresses and routes, or executing, failed.
    ip_writer_fault: FaultLog,
}

impl Agent {
    /// Reads every source once.
    pub fn new(cfg: AgentConfig) -> Agent {
        let mut agent = Agent {
            meminfo: MeminfoReader::new(&cfg.root),
            balloon_reader: BalloonReader::new(&cfg.root),
            balloon: BalloonTracker::new(cfg.balloon_stuck_after),
            cfg,
            model: GuestModel::default(),
            desired: DesiredKeys::new(),
            publisher: Publisher::new(),
            meminfo_fault: FaultLog::new(),
            nics: NicRenderer::new(),
            identity: DomainIdentity::default(),
            watches: WatchState::default(),
            published_once: false,
            identified_once: false,
            early: RoundOutcome::default(),
            ip: None,
            ip_record_fault: FaultLog::new(),
            ip_answer_fault: FaultLog::new(),
            ip_writer_fault: FaultLog::new(),
        };
        if agent.cfg.apply_ip_settings {
            agent.ip = Some(IpSettings::new(ip_settings::load_record(&agent.cfg.root)));
            agent.desired.set(key::FEATURE_STATIC_IP_SETTING, "1");
        }
        desired::render_pv_addons(&mut agent.desired);
        agent.model.stage = agent
            .cfg
            .stage
            .unwrap_or_else(|| stage::detect(&agent.cfg.root));
        desired::render_identity(
            agent.model.stage.as_str(),
            agent.cfg.booted,
            &mut agent.desired,
        );
        agent.refresh_all();
        agent
    }

    /// Re-reads every source (start, SIGHUP).
    pub fn refresh_all(&mut self) {
        // One uname(2) for the kernel release and the names: in a PV guest every system
        // call is a trip through Xen.
        let uts = kernel::uts(&self.cfg.root);
        self.refresh_os(&uts.release);
        self.set_host(&uts);
        // The balloon first: whether it moves decides what the memory keys say.
        self.refresh_balloon(Instant::now());
        self.refresh_memory();
    }

    /// Re-reads the balloon driver; returns its state (`None`: no balloon driver).
    pub fn refresh_balloon(&mut self, now: Instant) -> Option<BalloonState> {
        let reading = self
            .balloon_reader
            .read()
            .map(|info| (info, self.balloon.update(info, now)));
        let state = reading.map(|(_, s)| s);
        if state != self.model.balloon.map(|b| b.state) {
            if let Some((info, s)) = reading {
                log::debug!(
                    "balloon {}: current {} kB, target {} kB",
                    s.as_str(),
                    info.current_kb,
                    info.target_kb
                );
            }
            self.model.balloon = reading.map(|(info, state)| Balloon { info, state });
        }
        balloon::render(
            reading,
            self.cfg.feature_balloon,
            self.balloon.settled(),
            &mut self.desired,
        );
        state
    }

    fn set_host(&mut self, uts: &kernel::Uts) -> bool {
        let host = hostname::identity(&uts.nodename, &uts.domainname);
        if host == self.model.host {
            return false;
        }
        log::debug!("host name {:?}, domain {:?}", host.host, host.domain);
        self.model.host = host;
        desired::render_host(&self.model.host, &mut self.desired);
        true
    }

    fn refresh_os(&mut self, release: &str) {
        let os = match os_release::load(&self.cfg.root) {
            Ok(Some((path, os))) => {
                log::debug!("os-release from {}", path.display());
                Some(os)
            }
            Ok(None) => {
                log::info!("no os-release file (initramfs?): publishing Linux {release}");
                None
            }
            Err(e) => {
                log::warn!("cannot read os-release: {e}; publishing Linux {release}");
                None
            }
        };
        self.model.os = OsInfo::new(os.as_ref(), release);
        desired::render_os(&self.model.os, &mut self.desired);
    }

    /// Re-reads /proc/meminfo; true if a memory key changed.
    pub fn refresh_memory(&mut self) -> bool {
        match self.meminfo.read() {
            Ok(m) => {
                self.meminfo_fault.clear();
                self.model.memory = Some(m);
                let moving = self
                    .model
                    .balloon
                    .is_some_and(|b| b.state == BalloonState::Ballooning);
                desired::render_memory(&m, self.cfg.memory_threshold_kb, moving, &mut self.desired)
            }
            Err(e) => {
                let msg = e.to_string();
                if self.meminfo_fault.record(msg.clone()) == Seen::New {
                    log::warn!("{msg}; memory keys keep their last value");
                }
                false
            }
        }
    }

    /// The root prefix of /proc, /sys and /etc.
    pub fn root(&self) -> &std::path::Path {
        &self.cfg.root
    }

    pub fn desired(&self) -> &DesiredKeys {
        &self.desired
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Classifies links that are new or renamed, and renders the NIC keys again.
    fn refresh_nics(&mut self) {
        // /sys is opened once for all the links this round, not once per link.
        let mut sysfs = None;
        for link in self.model.net.links.values_mut() {
            if link.class.is_some() {
                continue;
            }
            // What sysfs would say of the loopback, without the five system calls to ask.
            if link.loopback {
                link.class = Some(NicClass::Virtual);
                continue;
            }
            let result = match sysfs.get_or_insert_with(|| sysfs_net::Sysfs::open(&self.cfg.root)) {
                Ok(sys) => sys.classify(&link.name),
                Err(e) => {
                    log::debug!("cannot classify {}: {e}", link.name);
                    continue;
                }
            };
            match result {
                Ok(class) => link.class = Some(class),
                // Gone or renamed since the event; the next event says what became of it.
                Err(e) => log::debug!("cannot classify {}: {e}", link.name),
            }
        }
        self.nics.render(
            &self.model.net,
            &self.model.hints,
            &self.cfg.nics,
            &mut self.desired,
        );
    }

    /// Reads what the toolstack tells about NICs: SR-IOV VF MACs (XAPI), the MAC of each vif
    /// (for a NIC that is a vif under another face) and the host address of PCI devices
    /// passed through with pcifront. Missing or unreadable nodes are normal.
    pub fn read_hints(&mut self, conn: &mut XenbusConn) -> Result<(), Error> {
        let mut hints = ToolstackHints {
            sriov_vfs: read_macs(conn, "xenserver/device/net-sriov-vf")?,
            // The MACs the toolstack gave the vifs, for a NIC that is a vif under another face.
            vif_macs: read_macs(conn, "device/vif")?,
            ..ToolstackHints::default()
        };
        match conn.read_string("device/pci/0/backend") {
            Ok(backend) => {
                let n = conn
                    .read_string(&format!("{backend}/num_devs"))
                    .ok()
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0);
                for i in 0..n.min(32) {
                    let vdev = conn.read_string(&format!("{backend}/vdev-{i}"));
                    let dev = conn.read_string(&format!("{backend}/dev-{i}"));
                    if let (Ok(v), Ok(d)) = (vdev, dev) {
                        if let (Some(v), Some(d)) = (normalize_bdf(&v), normalize_bdf(&d)) {
                            hints.pci_host.insert(v, d);
                        }
                    }
                }
            }
            Err(e) if e.is_connection_lost() => return Err(e),
            Err(_) => {}
        }
        if hints != self.model.hints {
            log::debug!(
                "toolstack hints: {} SR-IOV VF MACs, {} vif MACs, {} PCI host addresses",
                hints.sriov_vfs.len(),
                hints.vif_macs.len(),
                hints.pci_host.len()
            );
            self.model.hints = hints;
            self.nics.render(
                &self.model.net,
                &self.model.hints,
                &self.cfg.nics,
                &mut self.desired,
            );
        }
        Ok(())
    }

    /// rtnetlink is readable: its events go into the model; a change of a link or an address
    /// renders the NICs again and asks for a round.
    pub fn on_rtnetlink<S: RouteSocket>(
        &mut self,
        source: &mut NetlinkSource<S>,
    ) -> Result<Reaction, NetlinkError> {
        let changed = source.receive(&mut self.model.net)?;
        let mut r = Reaction::publish_if(changed);
        if changed {
            self.refresh_nics();
            let (forgot, appeared) = match &mut self.ip {
                Some(ip) => (
                    ip.on_links_changed(&self.model.net),
                    ip.nic_appeared(&self.model.net),
                ),
                None => (false, false),
            };
            if forgot {
                self.store_record();
            }
            if appeared {
                r.ip_settings = IpStep::Check;
            }
        }
        Ok(r)
    }

    /// A full dump of links and addresses replaces what the model knew (a socket just opened,
    /// SIGHUP). A failed dump changes nothing.
    pub fn dump_links<S: RouteSocket>(
        &mut self,
        source: &mut NetlinkSource<S>,
    ) -> Result<Reaction, NetlinkError> {
        source.dump(&mut self.model.net)?;
        self.refresh_nics();
        let appeared = match &mut self.ip {
            Some(ip) => ip.nic_appeared(&self.model.net),
            None => false,
        };
        Ok(Reaction {
            ip_settings: if appeared {
                IpStep::Check
            } else {
                IpStep::Nothing
            },
            ..Reaction::PUBLISH
        })
    }

    /// A connection to xenstore is up: it may hold anything, so the next round reads it back.
    /// On the first connection, what is known early goes out before rtnetlink is opened (the
    /// NICs take the longest to learn); then the hints, the round, who the domain is and the
    /// watches.
    pub fn on_connected(&mut self) -> Reaction {
        self.forget_published();
        let first = !self.published_once;
        Reaction {
            publish_early: first,
            netlink: if first {
                NetlinkStep::Open
            } else {
                NetlinkStep::Nothing
            },
            read_hints: true,
            publish: true,
            ip_settings: self.ip_step(IpStep::Reapply),
            settle_connection: true,
            ..Reaction::default()
        }
    }

    /// `step` when address requests are applied, else nothing.
    fn ip_step(&self, step: IpStep) -> IpStep {
        if self.ip.is_some() {
            step
        } else {
            IpStep::Nothing
        }
    }

    /// True with `--apply-ip-settings`.
    pub fn applies_ip_settings(&self) -> bool {
        self.ip.is_some()
    }

    /// The connection is gone: what was published is forgotten, to be read back on the next.
    pub fn on_disconnected(&mut self) {
        self.forget_published();
    }

    /// One publication round: the read-back (once per connection, or again after an
    /// incomplete one), the NICs rendered with what it found, then the round.
    pub fn publish(&mut self, conn: &mut XenbusConn) -> Result<(), Error> {
        self.hold_updated();
        if let Some(read_back) = self.publisher.ensure_loaded(conn)? {
            desired::adopt_published_free_memory(
                self.model.memory.as_ref(),
                read_back.free_memory_kb,
                self.cfg.memory_threshold_kb,
                &mut self.desired,
            );
            self.nics.seed(read_back.address_indexes);
            self.nics.render(
                &self.model.net,
                &self.model.hints,
                &self.cfg.nics,
                &mut self.desired,
            );
        }
        let mut round = self
            .publisher
            .publish(conn, &self.desired, RoundTime::now())?;
        round += std::mem::take(&mut self.early);
        self.log_round(round);
        Ok(())
    }

    fn log_round(&mut self, r: RoundOutcome) {
        if !self.published_once {
            self.published_once = true;
            log::info!(
                "published: {} keys desired, {} written, {} removed, {} refused",
                self.desired.len(),
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

    /// On a store with nothing of ours (see [`Publisher::probe_fresh`]), publishes what the
    /// agent knows before it has looked at the NICs: the OS, memory and balloon keys go out
    /// while the NICs, which take the longest to learn, follow in the next round.
    pub fn publish_early(&mut self, conn: &mut XenbusConn) -> Result<(), Error> {
        self.hold_updated();
        if let Some(r) = self
            .publisher
            .publish_early(conn, &self.desired, RoundTime::now())?
        {
            self.early += r;
        }
        Ok(())
    }

    /// squeezed takes the mere existence of `data/updated` as "booted" and then calibrates the
    /// domain's memory offset once, for its whole life, assuming the balloon is not moving:
    /// while a balloon driver is present and memory has not settled, `data/updated` is not
    /// created (as `control/feature-balloon` is not).
    fn hold_updated(&mut self) {
        let moving = self.balloon_unsettled();
        self.publisher.hold_updated(moving);
    }

    /// A balloon driver is there and memory has not settled yet.
    fn balloon_unsettled(&self) -> bool {
        self.model.balloon.is_some() && !self.balloon.settled()
    }

    /// What a watch event means for the agent.
    pub fn on_watch_event(&mut self, path: &str, token: &str, now: Instant) -> Reaction {
        // The event every WATCH fires once when it is registered.
        let first = match self.watches.unseen.iter().position(|t| *t == token) {
            Some(i) => {
                self.watches.unseen.swap_remove(i);
                true
            }
            None => false,
        };
        log::debug!(
            "watch event {path} ({token}){}",
            if first { ", registration" } else { "" }
        );
        let mut r = Reaction::default();
        if token == TOKEN_TARGET {
            if let Some(state) = self.refresh_balloon(now) {
                // A new target: the driver may not have started moving yet, so look again in
                // a second. The registration event changes nothing: recheck only if the
                // balloon is already moving. (A recheck also re-reads free memory, which
                // would make a restart write within a second.)
                r.recheck_balloon = !first || state == BalloonState::Ballooning;
                r.publish = true;
            }
        }
        // Watches fire again after a resume, and unique-domain-id changes with the domain:
        // is this still the domain we published to? Only the agent's own watches say
        // anything about that; an event with another token (a confused or hostile
        // xenstored) is dropped, since a domain check sends requests and, if each brought
        // another such event, the loop would never sleep.
        let ours = token == TOKEN_TARGET || token == TOKEN_UDID;
        r.check_domain = ours && !first;
        if token == TOKEN_IP_SETTING {
            r.ip_settings = self.ip_step(IpStep::Check);
        }
        r
    }

    /// `dropped` watch events were dropped (the queue overflowed): any watch may have fired,
    /// so one re-check of everything they cover.
    pub fn on_events_dropped(&mut self, dropped: u64, now: Instant) -> Reaction {
        if !self.watches.overflow_logged {
            log::warn!(
                "{dropped} watch events dropped (more than {EVENT_QUEUE_MAX} distinct tokens \
                 queued): re-checking the balloon target and the domain"
            );
            self.watches.overflow_logged = true;
        } else {
            log::debug!("{dropped} more watch events dropped");
        }
        Reaction {
            publish: self.refresh_balloon(now).is_some(),
            check_domain: true,
            ..Reaction::default()
        }
    }

    /// The memory tick: memory and balloon are read again, and every tick runs a round even
    /// without changes (a pure diff when nothing changed, and it retries keys refused for
    /// transient reasons). A watch xenstored refused is made up for here.
    pub fn on_memory_tick(&mut self, now: Instant) -> Reaction {
        self.refresh_balloon(now);
        self.refresh_memory();
        Reaction {
            publish: true,
            check_domain: self.watches.unwatched.contains(&TOKEN_UDID),
            ..Reaction::default()
        }
    }

    /// The balloon recheck timer: look again while the balloon moves.
    pub fn on_balloon_recheck(&mut self, now: Instant) -> Reaction {
        let state = self.refresh_balloon(now);
        self.refresh_memory();
        Reaction {
            recheck_balloon: state == Some(BalloonState::Ballooning),
            publish: true,
            ..Reaction::default()
        }
    }

    /// The host or domain name may have changed (their procfs files raised `POLLPRI`).
    pub fn on_host_name_changed(&mut self) -> Reaction {
        Reaction::publish_if(self.set_host(&kernel::uts(&self.cfg.root)))
    }

    /// The wall clock jumped (resume, restore, migration, or someone set the time).
    pub fn on_clock_jump(&mut self) -> Reaction {
        log::debug!("the wall clock jumped: checking that the domain is still ours");
        Reaction {
            check_domain: true,
            ..Reaction::default()
        }
    }

    /// SIGHUP: every source is read again, rtnetlink dumped again, the toolstack hints and the
    /// store read back, and everything republished.
    pub fn on_hangup(&mut self) -> Reaction {
        log::info!("SIGHUP: re-reading everything and republishing");
        self.refresh_all();
        self.forget_published();
        Reaction {
            netlink: NetlinkStep::Redump,
            read_hints: true,
            publish: true,
            ip_settings: self.ip_step(IpStep::Reapply),
            ..Reaction::default()
        }
    }

    /// Reads who the connection's domain is now.
    pub fn read_identity(conn: &mut XenbusConn) -> Result<DomainIdentity, Error> {
        let domid = match conn.read_domid() {
            Ok(d) => Some(d),
            Err(e) if e.is_connection_lost() => return Err(e),
            Err(_) => None,
        };
        let unique_id = match conn.read_string("unique-domain-id") {
            Ok(u) => Some(u),
            Err(e) if e.is_connection_lost() => return Err(e),
            Err(_) => None,
        };
        Ok(DomainIdentity { domid, unique_id })
    }

    /// Reads and remembers who the domain is, and logs it (at info level on the first
    /// connection). Done after the first round, which does not need it: only a later domain
    /// check compares against it.
    pub fn identify(&mut self, conn: &mut XenbusConn) -> Result<(), Error> {
        let id = Agent::read_identity(conn)?;
        let level = if self.identified_once {
            log::Level::Debug
        } else {
            log::Level::Info
        };
        self.identified_once = true;
        let endpoint = conn.endpoint();
        match id.domid {
            Some(domid) => log::log!(level, "connected to {endpoint}, domain {domid}"),
            None => log::log!(level, "connected to {endpoint} (domid unknown)"),
        }
        self.identity = id;
        Ok(())
    }

    /// After the round on a new connection: who the domain is, then the watches.
    pub fn settle_connection(&mut self, conn: &mut XenbusConn) -> Result<(), Error> {
        self.identify(conn)?;
        self.register_watches(conn)
    }

    /// Registers the watches. One that xenstored refuses (the connection stays) is logged once
    /// and re-checked on every memory tick instead.
    fn register_watches(&mut self, c: &mut XenbusConn) -> Result<(), Error> {
        let w = &mut self.watches;
        w.unseen.clear();
        w.unwatched.clear();
        w.overflow_logged = false;
        let ip_watch = self.ip.is_some().then_some(IP_SETTING_WATCH);
        for (path, token) in WATCHES.into_iter().chain(ip_watch) {
            match c.watch(path, token) {
                Ok(()) => {
                    w.unseen.push(token);
                    if let Some(i) = w.refusals.iter().position(|r| r.0 == token) {
                        w.refusals.swap_remove(i);
                        log::info!("xenstored accepts the watch on {path} again");
                    }
                }
                Err(e) if e.is_connection_lost() => return Err(e),
                Err(e) => {
                    w.unwatched.push(token);
                    let i = match w.refusals.iter().position(|r| r.0 == token) {
                        Some(i) => i,
                        None => {
                            w.refusals.push((token, FaultLog::new()));
                            w.refusals.len() - 1
                        }
                    };
                    let msg = e.to_string();
                    if w.refusals[i].1.record(msg.clone()) == Seen::New {
                        log::warn!(
                            "cannot watch {path} ({msg}): re-checking it on every memory tick instead"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// After a hint that the domain may have changed (watches firing again after resume, a
    /// wall-clock jump, a new `unique-domain-id`): if it did, or if keys the agent wrote are
    /// gone, everything is forgotten and a round republishes it all.
    pub fn check_domain(&mut self, conn: &mut XenbusConn) -> Result<Reaction, Error> {
        let now = Agent::read_identity(conn)?;
        let mut changed = now != self.identity;
        if changed {
            log::info!(
                "new domain (domid {:?} -> {:?}, unique-domain-id {:?} -> {:?}): republishing everything",
                self.identity.domid, now.domid, self.identity.unique_id, now.unique_id
            );
        } else if self.publisher.written().contains_key(key::LAYOUT) {
            match conn.read(key::LAYOUT) {
                Ok(_) => {}
                Err(e) if e.is_connection_lost() => return Err(e),
                Err(_) => {
                    log::info!("published keys are gone (resume or a rebuilt tree): republishing everything");
                    changed = true;
                }
            }
        }
        if changed {
            self.identity = now;
            self.forget_published();
        }
        Ok(Reaction {
            publish: changed,
            ip_settings: if changed {
                self.ip_step(IpStep::Reapply)
            } else {
                IpStep::Nothing
            },
            ..Reaction::default()
        })
    }

    /// Forgets what was published; the next round reads the store back and republishes.
    fn forget_published(&mut self) {
        self.publisher.forget();
    }

    /// What a first publication on an empty store would send, in order (for --dry-run).
    pub fn full_plan(&self) -> Vec<Op> {
        let mut p = Publisher::new();
        p.hold_updated(self.balloon_unsettled());
        p.plan(&self.desired, RoundTime::now())
    }
}

mod ip_settings;
mod reaction;
#[cfg(test)]
mod tests;
