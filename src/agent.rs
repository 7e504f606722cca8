//! The agent's state machine: sources -> model -> desired keys -> publisher.
//!
//! No fds here; the event loop ([`crate::event_loop`]) calls in when a timer fires, a signal
//! arrives or the connection changes, so all of this is testable without a poll loop.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::balloon::{self, BalloonTracker};
use crate::desired::{self, DesiredKeys};
use crate::layout::key;
use crate::layout::Mac;
use crate::model::{Balloon, BalloonState, BootStage, GuestModel, OsInfo, ToolstackHints};
use crate::net::{NetState, NicClass};
use crate::nics::{normalize_bdf, NicOptions, NicRenderer};
use crate::publisher::{unix_now, Op, Publisher, Refusal, RoundOutcome};
use crate::sources::balloon::BalloonReader;
use crate::sources::hostname;
use crate::sources::meminfo::MeminfoReader;
use crate::sources::stage;
use crate::sources::sysfs_net;
use crate::sources::{kernel, os_release};
use crate::xenbus::conn::{Error, XenbusConn};
use crate::xenbus::wire::XsError;

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

/// What the event loop should do after the agent handled an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Reaction {
    /// Run a publication round.
    pub publish: bool,
    /// Look at the balloon again in a second.
    pub recheck_balloon: bool,
    /// Check that the domain under the agent is still the one it published to.
    pub check_domain: bool,
}

impl std::ops::BitOrAssign for Reaction {
    fn bitor_assign(&mut self, o: Reaction) {
        self.publish |= o.publish;
        self.recheck_balloon |= o.recheck_balloon;
        self.check_domain |= o.check_domain;
    }
}

/// Who the connection's domain is: after a restore, migration or a rebuilt tree the same guest
/// runs in a domain with another domid or another `unique-domain-id` (XAPI).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainIdentity {
    pub domid: Option<u32>,
    pub unique_id: Option<String>,
}

pub struct Agent {
    cfg: AgentConfig,
    model: GuestModel,
    desired: DesiredKeys,
    publisher: Publisher,
    meminfo: MeminfoReader,
    /// The last memory read failure, logged once until it changes.
    meminfo_error: Option<String>,
    nics: NicRenderer,
    balloon_reader: BalloonReader,
    balloon: BalloonTracker,
    /// `control/feature-balloon` was refused with EACCES (xl): never tried again.
    feature_balloon_denied: bool,
    identity: DomainIdentity,
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
            meminfo_error: None,
            nics: NicRenderer::new(),
            feature_balloon_denied: false,
            identity: DomainIdentity::default(),
        };
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
        let feature = self.cfg.feature_balloon && !self.feature_balloon_denied;
        balloon::render(reading, feature, self.balloon.settled(), &mut self.desired);
        state
    }

    /// Re-reads the host and domain name; true if a key changed.
    pub fn refresh_host(&mut self) -> bool {
        self.set_host(&kernel::uts(&self.cfg.root))
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
                self.meminfo_error = None;
                self.model.memory = Some(m);
                let moving = self
                    .model
                    .balloon
                    .is_some_and(|b| b.state == BalloonState::Ballooning);
                desired::render_memory(&m, self.cfg.memory_threshold_kb, moving, &mut self.desired)
            }
            Err(e) => {
                let msg = e.to_string();
                if self.meminfo_error.as_deref() != Some(msg.as_str()) {
                    log::warn!("{msg}; memory keys keep their last value");
                    self.meminfo_error = Some(msg);
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

    /// The network state, for the netlink source to update.
    pub fn net_mut(&mut self) -> &mut NetState {
        &mut self.model.net
    }

    /// Classifies links that are new or renamed, and renders the NIC keys again.
    pub fn refresh_nics(&mut self) {
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

    /// One publication round.
    pub fn publish(&mut self, conn: &mut XenbusConn) -> Result<RoundOutcome, Error> {
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
        let round = self.publisher.publish(conn, &self.desired, unix_now());
        if self.publisher.refusal(key::FEATURE_BALLOON) == Some(Refusal::Xs(XsError::Eacces)) {
            self.feature_balloon_denied = true;
            self.desired.remove(key::FEATURE_BALLOON);
        }
        round
    }

    /// On a store with nothing of ours (see [`Publisher::probe_fresh`]), publishes what the
    /// agent knows before it has looked at the NICs: the OS, memory and balloon keys go out
    /// while the NICs, which take the longest to learn, follow in the next round.
    pub fn publish_early(&mut self, conn: &mut XenbusConn) -> Result<Option<RoundOutcome>, Error> {
        self.hold_updated();
        self.publisher
            .publish_early(conn, &self.desired, unix_now())
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

    /// What a watch event means for the agent. `first`: the event every WATCH fires once
    /// when it is registered.
    pub fn on_watch_event(&mut self, token: &str, first: bool, now: Instant) -> Reaction {
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
        r
    }

    /// Watch events were dropped (the queue overflowed): any watch may have fired, so one
    /// re-check of everything they cover.
    pub fn on_events_dropped(&mut self, now: Instant) -> Reaction {
        Reaction {
            publish: self.refresh_balloon(now).is_some(),
            recheck_balloon: false,
            check_domain: true,
        }
    }

    /// The memory tick: memory and balloon are read again, and every tick runs a round even
    /// without changes (a pure diff when nothing changed, and it retries keys refused for
    /// transient reasons). A watch xenstored refused is made up for here.
    pub fn on_memory_tick(&mut self, now: Instant, unwatched: &[&str]) -> Reaction {
        self.refresh_balloon(now);
        self.refresh_memory();
        Reaction {
            publish: true,
            recheck_balloon: false,
            check_domain: unwatched.contains(&TOKEN_UDID),
        }
    }

    /// The balloon recheck timer: look again while the balloon moves.
    pub fn on_balloon_recheck(&mut self, now: Instant) -> Reaction {
        let state = self.refresh_balloon(now);
        self.refresh_memory();
        Reaction {
            recheck_balloon: state == Some(BalloonState::Ballooning),
            publish: true,
            check_domain: false,
        }
    }

    /// SIGHUP: every source is read again and the store read back; the event loop adds a
    /// fresh rtnetlink dump and the toolstack hints.
    pub fn on_hangup(&mut self) {
        log::info!("SIGHUP: re-reading everything and republishing");
        self.refresh_all();
        self.forget_published();
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

    /// Remembers the identity at connect time.
    pub fn set_identity(&mut self, id: DomainIdentity) {
        self.identity = id;
    }

    /// After a hint that the domain may have changed (watches firing again after resume, a
    /// wall-clock jump, a new `unique-domain-id`): true if it did, or if keys the agent wrote
    /// are gone; then everything is forgotten and the next round republishes it all.
    pub fn check_domain(&mut self, conn: &mut XenbusConn) -> Result<bool, Error> {
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
        Ok(changed)
    }

    /// Forgets what was published; the next round reads the store back and republishes.
    pub fn forget_published(&mut self) {
        self.publisher.forget();
    }

    /// What a first publication on an empty store would send, in order (for --dry-run).
    pub fn full_plan(&self) -> Vec<Op> {
        let mut p = Publisher::new();
        p.hold_updated(self.balloon_unsettled());
        p.plan(&self.desired, unix_now())
    }
}
