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
use crate::netconfig::plan::{KernelView, NetOp};
use crate::netconfig::record;
use crate::netconfig::request::{self, Origin};
use crate::netconfig::settings::{Answer, IpSettings, Seen as IpSeen};
use crate::netlink::source::{NetlinkError, NetlinkSource, RouteSocket};
use crate::netlink::writer::RouteWriter;
use crate::nics::{normalize_bdf, NicOptions, NicRenderer};
use crate::publisher::{Op, Publisher, RoundOutcome, RoundTime};
use crate::sources::balloon::BalloonReader;
use crate::sources::meminfo::MeminfoReader;
use crate::sources::{hostname, kernel, os_release, stage, sysfs_net};
use crate::xenbus::conn::{Error, XenbusConn, EVENT_QUEUE_MAX};

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

/// What an earlier run recorded; unreadable is empty (logged).
fn load_record(root: &std::path::Path) -> crate::netconfig::plan::Applied {
    match record::load(root) {
        Ok((applied, dropped)) => {
            if dropped > 0 {
                log::warn!(
                    "{}: {dropped} unreadable lines ignored",
                    record::path(root).display()
                );
            }
            applied
        }
        Err(e) => {
            log::warn!("cannot read {}: {e}", record::path(root).display());
            Default::default()
        }
    }
}

/// The keys of one request directory (absent and unreadable keys left out).
fn read_keys(
    conn: &mut XenbusConn,
    dir: &str,
    names: &[&'static str],
) -> Result<Vec<(&'static str, Vec<u8>)>, Error> {
    let mut keys = Vec::with_capacity(names.len());
    for name in names {
        match conn.read(&format!("{dir}/{name}")) {
            Ok(v) => keys.push((*name, v.to_vec())),
            Err(e) if e.is_connection_lost() => return Err(e),
            Err(_) => {}
        }
    }
    Ok(keys)
}

/// Numeric children of `dir` (at most [`IP_REQUESTS_MAX`]); none if it is absent or
/// unreadable.
fn numeric_children(conn: &mut XenbusConn, dir: &str) -> Result<Vec<u32>, Error> {
    match conn.directory(dir) {
        Ok(e) => Ok(e
            .filter_map(|n| n.parse().ok())
            .take(IP_REQUESTS_MAX)
            .collect()),
        Err(e) if e.is_connection_lost() => Err(e),
        Err(_) => Ok(Vec::new()),
    }
}

/// Every address request XenStore holds: xenopsd's and Ansible's.
fn read_ip_requests(conn: &mut XenbusConn) -> Result<Vec<IpSeen>, Error> {
    let mut seen = Vec::new();
    for devid in numeric_children(conn, ip_setting::XENOPSD_DIR)? {
        let dir = format!("{}/{devid}/{}", ip_setting::XENOPSD_DIR, ip_setting::SUBDIR);
        let keys = read_keys(conn, &dir, &XENOPSD_KEYS)?;
        if keys.is_empty() {
            continue;
        }
        let answered = match conn.read(&format!("{dir}/{}", ip_setting::ERROR_CODE)) {
            Ok(_) => true,
            Err(e) if e.is_connection_lost() => return Err(e),
            Err(_) => false,
        };
        seen.push(IpSeen {
            origin: Origin::Xenopsd(devid),
            request: request::from_xenopsd(devid, keys.as_slice()),
            answered,
        });
    }
    for device in numeric_children(conn, ip_setting::VM_DATA_DIR)? {
        let dir = format!("{}/{device}", ip_setting::VM_DATA_DIR);
        let keys = read_keys(conn, &dir, &VM_DATA_KEYS)?;
        if keys.is_empty() {
            continue;
        }
        seen.push(IpSeen {
            origin: Origin::VmData(device),
            request: request::from_vm_data(device, keys.as_slice()),
            answered: true,
        });
    }
    Ok(seen)
}

/// Has `writer` execute `ops`; if it cannot talk to the kernel at all, every operation counts
/// as refused with EIO (logged once).
fn execute(
    writer: &mut RouteWriter,
    ops: &[(Origin, NetOp)],
    fault: &mut FaultLog,
) -> Vec<(Origin, NetOp, Result<(), i32>)> {
    let bare: Vec<NetOp> = ops.iter().map(|(_, op)| *op).collect();
    match writer.execute(&bare) {
        Ok(results) => ops
            .iter()
            .zip(results)
            .map(|((origin, op), (_, r))| (*origin, *op, r))
            .collect(),
        Err(e) => {
            let msg = e.to_string();
            if fault.record(msg.clone()) == Seen::New {
                log::warn!("{msg}");
            }
            ops.iter()
                .map(|(origin, op)| (*origin, *op, Err(libc::EIO)))
                .collect()
        }
    }
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

/// Requests read per kind (vifs in `xenserver/device/vif`, devices in `vm-data/networks`).
const IP_REQUESTS_MAX: usize = 64;
/// The `vm-data/networks/<device>` keys (Ansible's `xenserver_guest`).
const VM_DATA_KEYS: [&str; 10] = [
    "mac", "type", "ip", "netmask", "prefix", "gateway", "type6", "ip6", "prefix6", "gateway6",
];
/// The `static-ip-setting` keys the agent reads.
const XENOPSD_KEYS: [&str; 7] = [
    ip_setting::MAC,
    ip_setting::ENABLED,
    ip_setting::ADDRESS,
    ip_setting::GATEWAY,
    ip_setting::ENABLED6,
    ip_setting::ADDRESS6,
    ip_setting::GATEWAY6,
];

/// What the event loop must do after the agent handled an event. The loop carries the steps
/// out in the order of the fields, and an earlier step may add later ones (a dump that changed
/// the NICs adds a round).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Reaction {
    /// On a fresh store, a round with what is known before the NICs ([`Agent::publish_early`]).
    pub publish_early: bool,
    /// What rtnetlink must do: open, or dump again ([`Agent::dump_links`]).
    pub netlink: NetlinkStep,
    /// Read what the toolstack tells about the NICs ([`Agent::read_hints`]).
    pub read_hints: bool,
    /// Look at the balloon again in a second ([`Agent::on_balloon_recheck`]).
    pub recheck_balloon: bool,
    /// Check that the domain is still the one published to ([`Agent::check_domain`]); the
    /// loop runs at most one a second.
    pub check_domain: bool,
    /// Address requests: look for changed ones, or apply all again
    /// ([`Agent::apply_ip_settings`]).
    pub ip_settings: IpStep,
    /// A publication round ([`Agent::publish`]).
    pub publish: bool,
    /// After the round on a new connection: who the domain is, and the watches
    /// ([`Agent::settle_connection`]).
    pub settle_connection: bool,
}

/// What to do about address requests, in increasing strength.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum IpStep {
    #[default]
    Nothing,
    /// Read the requests and act on those that changed or lost their answer.
    Check,
    /// Act on every request again, idempotently (start, reconnect, resume, migration, SIGHUP).
    Reapply,
}

/// What rtnetlink must do, in increasing strength: a later request includes an earlier one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum NetlinkStep {
    #[default]
    Nothing,
    /// Open the socket and dump, unless it was opened before (a socket that failed since is
    /// reopened on the loop's backoff schedule, not here).
    Open,
    /// Dump again on the open socket, or reopen one that failed.
    Redump,
}

impl std::ops::BitOrAssign for Reaction {
    fn bitor_assign(&mut self, o: Reaction) {
        self.publish_early |= o.publish_early;
        self.netlink = self.netlink.max(o.netlink);
        self.read_hints |= o.read_hints;
        self.recheck_balloon |= o.recheck_balloon;
        self.check_domain |= o.check_domain;
        self.publish |= o.publish;
        self.ip_settings = self.ip_settings.max(o.ip_settings);
        self.settle_connection |= o.settle_connection;
    }
}

impl Reaction {
    const PUBLISH: Reaction = Reaction {
        publish_early: false,
        netlink: NetlinkStep::Nothing,
        read_hints: false,
        recheck_balloon: false,
        check_domain: false,
        publish: true,
        ip_settings: IpStep::Nothing,
        settle_connection: false,
    };

    fn publish_if(changed: bool) -> Reaction {
        Reaction {
            publish: changed,
            ..Reaction::default()
        }
    }
}

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
            agent.ip = Some(IpSettings::new(load_record(&agent.cfg.root)));
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

    /// Address requests: reads them, decides (unchanged and answered ones are left alone
    /// unless `step` is a re-apply), has `writer` execute the operations, undoes a request's
    /// additions when one of its operations was refused, answers in `error-code`/`error-msg`,
    /// and stores what was applied. Only a lost connection is an error.
    pub fn apply_ip_settings(
        &mut self,
        conn: &mut XenbusConn,
        writer: &mut RouteWriter,
        step: IpStep,
    ) -> Result<(), Error> {
        let Some(ip) = &mut self.ip else {
            return Ok(());
        };
        if step == IpStep::Nothing {
            return Ok(());
        }
        if step == IpStep::Reapply {
            ip.reapply();
        }
        let seen = read_ip_requests(conn)?;
        if seen.is_empty() && ip.applied().entries.is_empty() {
            return Ok(());
        }
        let kernel = match writer.kernel_state() {
            Ok(k) => k,
            Err(e) => {
                let msg = e.to_string();
                if self.ip_writer_fault.record(msg.clone()) == Seen::New {
                    log::warn!("{msg}; address requests wait for the next change");
                }
                return Ok(());
            }
        };
        let _ = self.ip_writer_fault.clear();
        let view = KernelView {
            addrs: &kernel.addrs,
            routes: &kernel.routes,
        };
        let before = ip.applied().clone();
        let decision = ip.decide(&seen, &self.model.net, &view);
        let mut answers = decision.answers;
        if !decision.ops.is_empty() {
            let results = execute(writer, &decision.ops, &mut self.ip_writer_fault);
            let (more, undo) = ip.on_results(&results, &self.model.net);
            answers.extend(more);
            if !undo.is_empty() {
                let undone = execute(writer, &undo, &mut self.ip_writer_fault);
                ip.on_undo_results(&undone);
            }
        }
        let changed = *ip.applied() != before;
        for a in &answers {
            self.write_answer(conn, a)?;
        }
        if changed {
            self.store_record();
        }
        Ok(())
    }

    /// `error-msg`, then `error-code` (a reader that waits on `error-code` finds both).
    fn write_answer(&mut self, conn: &mut XenbusConn, a: &Answer) -> Result<(), Error> {
        let devid = match a.origin {
            Origin::Xenopsd(d) => d,
            Origin::VmData(_) => {
                if a.code == 0 {
                    log::info!("{}: applied", a.origin);
                }
                return Ok(());
            }
        };
        if a.code == 0 {
            log::info!("{}: applied", a.origin);
        }
        let dir = format!("{}/{devid}/{}", ip_setting::XENOPSD_DIR, ip_setting::SUBDIR);
        let mut digits = [0u8; crate::decimal::U64_DIGITS];
        let code = crate::decimal::format_u64(u64::from(a.code), &mut digits);
        let writes = [
            (ip_setting::ERROR_MSG, a.msg.as_bytes()),
            (ip_setting::ERROR_CODE, code.as_bytes()),
        ];
        for (k, v) in writes {
            let path = format!("{dir}/{k}");
            match conn.write(&path, v) {
                Ok(()) => {
                    self.ip_answer_fault.clear();
                }
                Err(e) if e.is_connection_lost() => return Err(e),
                Err(e) => {
                    let msg = format!("cannot answer in {path}: {e}");
                    if self.ip_answer_fault.record(msg.clone()) == Seen::New {
                        log::warn!("{msg}");
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the record of what was applied (`/run/xenbeacon/netconfig`).
    fn store_record(&mut self) {
        let Some(ip) = &self.ip else { return };
        match record::store(&self.cfg.root, ip.applied()) {
            Ok(()) => {
                self.ip_record_fault.clear();
            }
            Err(e) => {
                let msg = format!(
                    "cannot store {}: {e}; after a restart the agent will not remove the \
                     addresses it added",
                    record::path(&self.cfg.root).display()
                );
                if self.ip_record_fault.record(msg.clone()) == Seen::New {
                    log::warn!("{msg}");
                }
            }
        }
    }

    /// What a first publication on an empty store would send, in order (for --dry-run).
    pub fn full_plan(&self) -> Vec<Op> {
        let mut p = Publisher::new();
        p.hold_updated(self.balloon_unsettled());
        p.plan(&self.desired, RoundTime::now())
    }
}

/// Each event's meaning, without an fd: an agent over a fake /proc and /sys tree.
#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fake root, removed when dropped.
    struct Root(PathBuf);

    impl Root {
        fn new(name: &str) -> Root {
            let dir = std::env::temp_dir().join(format!(
                "xb-agent-{name}-{}-{:?}",
                std::process::id(),
                Instant::now()
            ));
            let root = Root(dir);
            root.file(
                "proc/meminfo",
                "MemTotal: 1000000 kB\nMemFree: 500000 kB\nMemAvailable: 600000 kB\n",
            );
            root.file("proc/sys/kernel/osrelease", "6.1.0-test\n");
            root.file("proc/sys/kernel/hostname", "web1\n");
            root.file("proc/sys/kernel/domainname", "(none)\n");
            root
        }

        fn file(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }

        fn balloon(&self, target_kb: u64, current_kb: u64) {
            let dir = "sys/devices/system/xen_memory/xen_memory0";
            self.file(&format!("{dir}/target_kb"), &format!("{target_kb}\n"));
            self.file(
                &format!("{dir}/info/current_kb"),
                &format!("{current_kb}\n"),
            );
        }

        fn agent(&self) -> Agent {
            self.agent_with(false)
        }

        fn agent_with(&self, apply_ip_settings: bool) -> Agent {
            Agent::new(AgentConfig {
                root: self.0.clone(),
                memory_threshold_kb: 1024,
                nics: NicOptions::default(),
                stage: Some(BootStage::Rootfs),
                booted: false,
                feature_balloon: true,
                balloon_stuck_after: Duration::from_secs(30),
                apply_ip_settings,
            })
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn desired(agent: &Agent, k: &str) -> Option<String> {
        agent.desired().get(k).map(str::to_owned)
    }

    const PUBLISH_ONLY: Reaction = Reaction::PUBLISH;

    #[test]
    fn the_first_connection_sends_what_is_known_before_opening_rtnetlink() {
        let root = Root::new("connect");
        let mut agent = root.agent();
        let r = agent.on_connected();
        assert_eq!(
            r,
            Reaction {
                publish_early: true,
                netlink: NetlinkStep::Open,
                read_hints: true,
                publish: true,
                settle_connection: true,
                ..Reaction::default()
            }
        );
    }

    #[test]
    fn address_requests_are_checked_on_their_watch_and_reapplied_on_connect_and_sighup() {
        let root = Root::new("ip-settings");
        // a record an earlier run left, with a line that cannot be trusted
        root.file(
            "run/xenbeacon/netconfig",
            "xenopsd 0 4 2 10.0.0.2/24 10.0.0.1\ngarbage\n",
        );
        let mut agent = root.agent_with(true);
        assert_eq!(
            desired(&agent, key::FEATURE_STATIC_IP_SETTING).as_deref(),
            Some("1")
        );
        assert_eq!(agent.on_connected().ip_settings, IpStep::Reapply);
        let now = Instant::now();
        let r = agent.on_watch_event(ip_setting::XENOPSD_DIR, TOKEN_IP_SETTING, now);
        assert_eq!(r.ip_settings, IpStep::Check);
        assert!(!r.check_domain && !r.publish);
        assert_eq!(agent.on_hangup().ip_settings, IpStep::Reapply);
        let mut both = agent.on_connected();
        both |= Reaction {
            ip_settings: IpStep::Check,
            ..Reaction::default()
        };
        assert_eq!(both.ip_settings, IpStep::Reapply);
        assert_eq!(
            agent.ip.as_ref().map(|ip| ip.applied().entries.len()),
            Some(1)
        );

        // without the option: no key, no step, the token means nothing
        let mut off = root.agent();
        assert_eq!(desired(&off, key::FEATURE_STATIC_IP_SETTING), None);
        assert_eq!(off.on_connected().ip_settings, IpStep::Nothing);
        let r = off.on_watch_event(ip_setting::XENOPSD_DIR, TOKEN_IP_SETTING, now);
        assert_eq!(r, Reaction::default());
        assert_eq!(off.on_hangup().ip_settings, IpStep::Nothing);
    }

    #[test]
    fn sighup_rereads_every_source_and_asks_for_a_dump_hints_and_a_round() {
        let root = Root::new("hup");
        let mut agent = root.agent();
        assert_eq!(desired(&agent, key::HOST_NAME).as_deref(), Some("web1"));
        root.file("proc/sys/kernel/hostname", "web2.example.com\n");
        let r = agent.on_hangup();
        assert_eq!(
            r,
            Reaction {
                netlink: NetlinkStep::Redump,
                read_hints: true,
                publish: true,
                ..Reaction::default()
            }
        );
        assert_eq!(desired(&agent, key::HOST_NAME).as_deref(), Some("web2"));
        assert_eq!(desired(&agent, key::DOMAIN).as_deref(), Some("example.com"));
    }

    #[test]
    fn a_host_name_change_publishes_and_an_unchanged_name_does_not() {
        let root = Root::new("host");
        let mut agent = root.agent();
        assert_eq!(agent.on_host_name_changed(), Reaction::default());
        root.file("proc/sys/kernel/hostname", "db1\n");
        assert_eq!(agent.on_host_name_changed(), PUBLISH_ONLY);
        assert_eq!(desired(&agent, key::HOST_NAME).as_deref(), Some("db1"));
    }

    #[test]
    fn a_new_balloon_target_publishes_and_rechecks_but_its_registration_event_does_not_recheck() {
        let root = Root::new("target");
        root.balloon(1000000, 1000000);
        let mut agent = root.agent();
        // The registration event of the agent's watch: nothing moved, no domain check.
        agent.watches.unseen = vec![TOKEN_TARGET, TOKEN_UDID];
        let r = agent.on_watch_event("memory/target", TOKEN_TARGET, Instant::now());
        assert_eq!(r, PUBLISH_ONLY);
        // A real event: the driver may not have started, so look again; and is the domain
        // still ours?
        root.balloon(800000, 1000000);
        let r = agent.on_watch_event("memory/target", TOKEN_TARGET, Instant::now());
        assert_eq!(
            r,
            Reaction {
                recheck_balloon: true,
                check_domain: true,
                publish: true,
                ..Reaction::default()
            }
        );
        assert_eq!(
            desired(&agent, key::BALLOON_STATE).as_deref(),
            Some("ballooning")
        );
    }

    #[test]
    fn a_watch_event_with_a_foreign_token_means_nothing() {
        let root = Root::new("foreign");
        let mut agent = root.agent();
        let r = agent.on_watch_event("memory/target", "someone-else", Instant::now());
        assert_eq!(r, Reaction::default());
        // unique-domain-id fired again (after its registration): check the domain.
        let r = agent.on_watch_event("unique-domain-id", TOKEN_UDID, Instant::now());
        assert_eq!(
            r,
            Reaction {
                check_domain: true,
                ..Reaction::default()
            }
        );
    }

    #[test]
    fn the_balloon_recheck_goes_on_while_the_balloon_moves() {
        let root = Root::new("recheck");
        root.balloon(800000, 1000000);
        let mut agent = root.agent();
        let t0 = Instant::now();
        root.balloon(800000, 900000);
        let r = agent.on_balloon_recheck(t0 + Duration::from_secs(1));
        assert!(r.recheck_balloon && r.publish, "{r:?}");
        root.balloon(800000, 800000);
        let r = agent.on_balloon_recheck(t0 + Duration::from_secs(2));
        assert_eq!(r, PUBLISH_ONLY);
        assert_eq!(
            desired(&agent, key::BALLOON_STATE).as_deref(),
            Some("reached")
        );
    }

    #[test]
    fn the_memory_tick_publishes_and_checks_the_domain_only_for_a_refused_watch() {
        let root = Root::new("tick");
        let mut agent = root.agent();
        root.file(
            "proc/meminfo",
            "MemTotal: 1000000 kB\nMemAvailable: 300000 kB\n",
        );
        assert_eq!(agent.on_memory_tick(Instant::now()), PUBLISH_ONLY);
        assert_eq!(
            desired(&agent, key::MEMINFO_FREE).as_deref(),
            Some("300000")
        );
        agent.watches.unwatched = vec![TOKEN_UDID];
        let r = agent.on_memory_tick(Instant::now());
        assert!(r.publish && r.check_domain, "{r:?}");
    }

    #[test]
    fn an_unreadable_meminfo_keeps_the_memory_keys() {
        let root = Root::new("nomem");
        let mut agent = root.agent();
        fs::remove_file(root.0.join("proc/meminfo")).unwrap();
        assert!(!agent.refresh_memory());
        assert!(agent.meminfo_fault.active());
        assert_eq!(
            desired(&agent, key::MEMINFO_TOTAL).as_deref(),
            Some("1000000")
        );
    }

    #[test]
    fn dropped_watch_events_and_a_clock_jump_check_the_domain() {
        let root = Root::new("dropped");
        let mut agent = root.agent();
        let r = agent.on_events_dropped(40, Instant::now());
        assert_eq!(
            r,
            Reaction {
                check_domain: true,
                ..Reaction::default()
            }
        );
        assert!(agent.watches.overflow_logged);
        assert_eq!(agent.on_clock_jump(), r);
        // With a balloon driver, its target is read again too and a round goes out.
        root.balloon(1000000, 1000000);
        let r = agent.on_events_dropped(1, Instant::now());
        assert!(r.publish && r.check_domain, "{r:?}");
    }

    #[test]
    fn reactions_combine_by_union_and_the_stronger_rtnetlink_step() {
        let mut r = Reaction {
            netlink: NetlinkStep::Redump,
            ..Reaction::default()
        };
        r |= Reaction {
            netlink: NetlinkStep::Open,
            recheck_balloon: true,
            ..Reaction::default()
        };
        r |= PUBLISH_ONLY;
        assert_eq!(
            r,
            Reaction {
                netlink: NetlinkStep::Redump,
                recheck_balloon: true,
                publish: true,
                ..Reaction::default()
            }
        );
    }

    #[test]
    fn a_dry_run_plans_everything_once_with_data_updated() {
        let root = Root::new("dry");
        let agent = root.agent();
        let plan = agent.full_plan();
        assert!(plan
            .iter()
            .any(|op| op.key() == key::OS_UNAME && op.value() == Some("6.1.0-test")));
        assert!(plan.iter().any(|op| op.key() == key::UPDATED));
    }
}
