//! The toolstack's address requests, as the agent reads, decides and answers them
//! (`--apply-ip-settings`): reading xenopsd's and Ansible's keys, having the rtnetlink writer
//! execute what [`crate::netconfig`] decided, writing `error-code`/`error-msg`, and the record
//! of what was applied.

use super::{Agent, IpStep};
use crate::fault::{FaultLog, Seen};
use crate::layout::ip_setting;
use crate::netconfig::plan::{KernelView, NetOp};
use crate::netconfig::record;
use crate::netconfig::request::{self, Origin};
use crate::netconfig::settings::{Answer, Seen as IpSeen};
use crate::netlink::writer::RouteWriter;
use crate::xenbus::conn::{Error, XenbusConn};

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

/// What an earlier run recorded; unreadable is empty (logged).
pub(super) fn load_record(root: &std::path::Path) -> crate::netconfig::plan::Applied {
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

impl Agent {
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
    pub(super) fn write_answer(&mut self, conn: &mut XenbusConn, a: &Answer) -> Result<(), Error> {
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
    pub(super) fn store_record(&mut self) {
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
}
