//! The agent's state machine: sources -> model -> desired keys -> publisher.
//!
//! No fds here; the event loop ([`crate::event_loop`]) calls in when a timer fires, a signal
//! arrives or the connection changes, so all of this is testable without a poll loop.

use std::path::PathBuf;

use crate::desired::{self, DesiredKeys};
use crate::model::{GuestModel, OsInfo};
use crate::publisher::{unix_now, Op, Publisher, RoundOutcome};
use crate::sources::meminfo::MeminfoReader;
use crate::sources::{kernel, os_release};
use crate::xenbus::conn::{Error, XenbusConn};

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Prefix for /proc, /sys and /etc.
    pub root: PathBuf,
    /// Smallest change of free memory (KiB) worth a write.
    pub memory_threshold_kb: u64,
}

pub struct Agent {
    cfg: AgentConfig,
    model: GuestModel,
    desired: DesiredKeys,
    publisher: Publisher,
    meminfo: MeminfoReader,
    /// The last memory read failure, logged once until it changes.
    meminfo_error: Option<String>,
}

impl Agent {
    /// Reads every source once.
    pub fn new(cfg: AgentConfig) -> Agent {
        let mut agent = Agent {
            meminfo: MeminfoReader::new(&cfg.root),
            cfg,
            model: GuestModel::default(),
            desired: DesiredKeys::new(),
            publisher: Publisher::new(),
            meminfo_error: None,
        };
        desired::render_pv_addons(&mut agent.desired);
        agent.refresh_all();
        agent
    }

    /// Re-reads every source (start, SIGHUP).
    pub fn refresh_all(&mut self) {
        self.refresh_os();
        self.refresh_memory();
    }

    fn refresh_os(&mut self) {
        let release = kernel::release(&self.cfg.root);
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
        self.model.os = OsInfo::new(os.as_ref(), &release);
        desired::render_os(&self.model.os, &mut self.desired);
    }

    /// Re-reads /proc/meminfo; true if a memory key changed.
    pub fn refresh_memory(&mut self) -> bool {
        match self.meminfo.read() {
            Ok(m) => {
                self.meminfo_error = None;
                self.model.memory = Some(m);
                desired::render_memory(&m, self.cfg.memory_threshold_kb, &mut self.desired)
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

    pub fn model(&self) -> &GuestModel {
        &self.model
    }

    pub fn desired(&self) -> &DesiredKeys {
        &self.desired
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// One publication round.
    pub fn publish(&mut self, conn: &mut XenbusConn) -> Result<RoundOutcome, Error> {
        if self.publisher.ensure_loaded(conn)? {
            self.adopt_published_free_memory();
        }
        self.publisher.publish(conn, &self.desired, unix_now())
    }

    /// After a read-back, keeps the free-memory figure already in XenStore when the current
    /// one is within the threshold of it: a restart of an unchanged guest writes nothing.
    fn adopt_published_free_memory(&mut self) {
        let published = self
            .publisher
            .written()
            .get(desired::key::MEMINFO_FREE)
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(m), Some(p)) = (self.model.memory, published) {
            if m.free_for_toolstack().abs_diff(p) < self.cfg.memory_threshold_kb {
                self.desired.set_u64(desired::key::MEMINFO_FREE, p);
            }
        }
    }

    /// Forgets what was published; the next round reads the store back and republishes.
    pub fn forget_published(&mut self) {
        self.publisher.forget();
    }

    /// What a first publication on an empty store would send, in order (for --dry-run).
    pub fn full_plan(&self) -> Vec<Op> {
        Publisher::new().plan(&self.desired, unix_now())
    }
}
