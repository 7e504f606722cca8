//! The agent's side of address requests, as a state machine without fds: given the requests
//! read from XenStore, the guest's links ([`NetState`]) and the kernel's addresses and routes,
//! it decides the netlink operations and the answers; given the writer's results, it records
//! what was added and answers. The agent carries it; the event loop's writer executes.
//!
//! * A request is decided again only when it changed, lost its answer (`xenbeacon set-ip`
//!   removes `error-code` with every request), or on a re-apply (start, resume, migration,
//!   xenstore reconnect, SIGHUP). The agent's own `error-code` write fires the watch again;
//!   that request is unchanged and answered, so nothing happens: no loop.
//! * An address the agent added that another program removed is logged once and forgotten,
//!   not added back, until the request changes or a re-apply: a network manager is not
//!   fought in a loop.
//! * Any refused operation undoes what the same request added in that round: an address the
//!   kernel refuses means nothing is applied for that VIF.

use core::net::IpAddr;

use super::plan::{plan, Applied, KernelView, NetOp, Target};
use super::request::{Mode, NicRequest, Origin, RequestError};
use crate::layout::Mac;
use crate::net::NetState;
use crate::net::NicClass;

/// One request as read from XenStore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub origin: Origin,
    pub request: Result<NicRequest, RequestError>,
    /// `error-code` exists (always true for `vm-data`, which has no answer keys).
    pub answered: bool,
}

/// What to write back for a request: `error-code` and `error-msg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub origin: Origin,
    pub code: u32,
    pub msg: String,
}

impl Answer {
    fn ok(origin: Origin) -> Answer {
        Answer {
            origin,
            code: 0,
            msg: String::new(),
        }
    }
    fn err(origin: Origin, e: &RequestError) -> Answer {
        Answer {
            origin,
            code: e.code(),
            msg: e.to_string(),
        }
    }
}

/// The outcome of a decision: operations to execute (then [`IpSettings::on_results`]), and
/// answers that need none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub ops: Vec<(Origin, NetOp)>,
    pub answers: Vec<Answer>,
}

/// What the agent knows of address requests.
#[derive(Clone, Debug, Default)]
pub struct IpSettings {
    applied: Applied,
    /// The last decided request of each origin.
    decided: Vec<(Origin, Result<NicRequest, RequestError>)>,
    /// Origins whose operations are executing, with their pending answers.
    executing: Vec<Origin>,
    /// Addresses already logged as removed by someone else.
    logged_gone: Vec<NetOp>,
    /// Requests answered "no such NIC", with their MAC: decided again when such a NIC
    /// appears (a netfront that comes up after the agent, a hot-plugged vif).
    missing_nic: Vec<(Origin, Option<Mac>)>,
}

impl IpSettings {
    /// Starts from what an earlier run recorded.
    pub fn new(applied: Applied) -> IpSettings {
        IpSettings {
            applied,
            ..IpSettings::default()
        }
    }

    pub fn applied(&self) -> &Applied {
        &self.applied
    }

    /// Forgets decisions so that the next [`IpSettings::decide`] re-applies everything
    /// (resume, migration, reconnect, SIGHUP).
    pub fn reapply(&mut self) {
        self.decided.clear();
    }

    /// Decides what to do about `seen` (every request XenStore holds now).
    pub fn decide(&mut self, seen: &[Seen], net: &NetState, kernel: &KernelView<'_>) -> Decision {
        let mut d = Decision::default();
        for gone in self.applied.forget_missing(kernel) {
            log::warn!(
                "{} was removed by another program; not adding it back until the request changes",
                describe(&gone, net)
            );
        }
        let mut targets = Vec::new();
        let changed = |s: &Seen| {
            let last = self.decided.iter().find(|(o, _)| *o == s.origin);
            !(s.answered && last.is_some_and(|(_, r)| *r == s.request))
        };
        let changed: Vec<bool> = seen.iter().map(changed).collect();
        // A change of XAPI's request may give an address back to Ansible's, or take it: the
        // boot-time requests are planned again with it (without answers or logs of their own).
        // An invalid XAPI request changes nothing, so it re-plans nothing either (its NIC and
        // families are unknown: Ansible's address could come back where XAPI's had won).
        let xenopsd = |s: &Seen| matches!(s.origin, Origin::Xenopsd(_));
        let xenopsd_changed = !seen.iter().any(|s| xenopsd(s) && s.request.is_err())
            && seen.iter().zip(&changed).any(|(s, c)| *c && xenopsd(s));
        let mut answering = Vec::new();
        for (s, &changed) in seen.iter().zip(&changed) {
            let replan = !changed && xenopsd_changed && matches!(s.origin, Origin::VmData(_));
            if !changed && !replan {
                continue;
            }
            if replan {
                let Ok(req) = &s.request else { continue };
                if let Some(t) = target(seen, net, s.origin, req) {
                    targets.push(t);
                }
                continue;
            }
            answering.push(s.origin);
            self.decided.retain(|(o, _)| *o != s.origin);
            self.decided.push((s.origin, s.request.clone()));
            self.missing_nic.retain(|(o, _)| *o != s.origin);
            let req = match &s.request {
                Ok(r) => r,
                Err(e) => {
                    log::warn!("{}: {e}; nothing changed", s.origin);
                    d.answers.push(Answer::err(s.origin, e));
                    continue;
                }
            };
            let Some(t) = target(seen, net, s.origin, req) else {
                let what = match req.mac {
                    Some(m) => format!("MAC {m}"),
                    None => format!("vif {}", devid(s.origin)),
                };
                let e = RequestError::NoSuchNic { what };
                log::warn!("{}: {e}; nothing changed until it appears", s.origin);
                d.answers.push(Answer::err(s.origin, &e));
                self.missing_nic.push((s.origin, req.mac));
                continue;
            };
            targets.push(t);
        }
        d.ops = plan(&targets, &self.applied, kernel);
        for t in targets.iter().filter(|t| answering.contains(&t.origin)) {
            if d.ops.iter().any(|(o, _)| *o == t.origin) {
                self.executing.push(t.origin);
            } else {
                d.answers.push(Answer::ok(t.origin));
            }
        }
        d
    }

    /// Takes the writer's results for [`Decision::ops`]: records what was added or removed
    /// and answers each request that had operations. Returns the answers and the operations
    /// that undo what a request with a refused operation added in this round (execute them,
    /// then [`IpSettings::on_undo_results`]).
    pub fn on_results(
        &mut self,
        results: &[(Origin, NetOp, Result<(), i32>)],
        net: &NetState,
    ) -> (Vec<Answer>, Vec<(Origin, NetOp)>) {
        let mut answers = Vec::new();
        let mut undo = Vec::new();
        for (origin, op, r) in results {
            self.applied.record(*origin, op, r.is_ok());
            match r {
                Ok(()) => log::info!("{origin}: {}", describe(op, net)),
                Err(errno) => log::warn!(
                    "{origin}: cannot {}: {}",
                    describe(op, net),
                    std::io::Error::from_raw_os_error(*errno)
                ),
            }
        }
        for origin in std::mem::take(&mut self.executing) {
            let mine = results.iter().filter(|(o, ..)| *o == origin);
            let failed = mine.clone().find_map(|(_, op, r)| r.err().map(|e| (op, e)));
            match failed {
                None => answers.push(Answer::ok(origin)),
                Some((op, errno)) => {
                    let e = RequestError::Kernel {
                        what: describe(op, net),
                        errno,
                    };
                    answers.push(Answer::err(origin, &e));
                    // Routes first, then addresses: the reverse of the order they were added.
                    let added: Vec<NetOp> = mine
                        .filter(|(.., r)| r.is_ok())
                        .map(|(_, op, _)| *op)
                        .collect();
                    for op in added.iter().rev() {
                        let inverse = match *op {
                            NetOp::AddAddr {
                                index,
                                addr,
                                prefix,
                            } => NetOp::DelAddr {
                                index,
                                addr,
                                prefix,
                            },
                            NetOp::AddRoute { index, gateway } => {
                                NetOp::DelRoute { index, gateway }
                            }
                            NetOp::DelAddr { .. } | NetOp::DelRoute { .. } => continue,
                        };
                        undo.push((origin, inverse));
                    }
                }
            }
        }
        (answers, undo)
    }

    /// Records the undo operations' results.
    pub fn on_undo_results(&mut self, results: &[(Origin, NetOp, Result<(), i32>)]) {
        for (origin, op, r) in results {
            self.applied.record(*origin, op, r.is_ok());
        }
    }

    /// After a netlink change: true when a NIC that a request was waiting for is there now;
    /// that request is then decided again on the next check (once: a NIC that is still
    /// missing is answered again only when it changes).
    pub fn nic_appeared(&mut self, net: &NetState) -> bool {
        let before = self.missing_nic.len();
        let found: Vec<Origin> = self
            .missing_nic
            .iter()
            .filter(|(o, mac)| find_nic(net, *o, *mac).is_some())
            .map(|(o, _)| *o)
            .collect();
        self.missing_nic.retain(|(o, _)| !found.contains(o));
        self.decided.retain(|(o, _)| !found.contains(o));
        self.missing_nic.len() != before
    }

    /// After a netlink change: an address the agent added that is gone is logged, once.
    /// Returns true if something was forgotten (the record needs storing).
    pub fn on_links_changed(&mut self, net: &NetState) -> bool {
        let mut changed = false;
        for e in &mut self.applied.entries {
            if let Some((addr, prefix)) = e.addr {
                let there = net
                    .addrs
                    .get(&(e.index, addr))
                    .is_some_and(|a| a.prefix_len == prefix);
                if !there {
                    let op = NetOp::DelAddr {
                        index: e.index,
                        addr,
                        prefix,
                    };
                    if !self.logged_gone.contains(&op) {
                        log::warn!(
                            "{}: {addr}/{prefix} was removed by another program; not adding it \
                             back until the request changes",
                            e.origin
                        );
                        self.logged_gone.push(op);
                    }
                    e.addr = None;
                    changed = true;
                }
            }
        }
        self.applied
            .entries
            .retain(|e| e.addr.is_some() || e.gateway.is_some());
        changed
    }
}

/// What `req` of `origin` wants of its NIC, if the NIC is there. XAPI's live request wins
/// over Ansible's boot-time data for the same NIC and family.
fn target(seen: &[Seen], net: &NetState, origin: Origin, req: &NicRequest) -> Option<Target> {
    let index = find_nic(net, origin, req.mac)?;
    let (mut v4, mut v6) = (req.v4(), req.v6());
    if matches!(origin, Origin::VmData(_)) {
        for other in seen
            .iter()
            .filter(|o| matches!(o.origin, Origin::Xenopsd(_)))
        {
            let Ok(x) = &other.request else { continue };
            if find_nic(net, other.origin, x.mac) == Some(index) {
                if x.v4() != Mode::Unspecified {
                    v4 = Mode::Unspecified;
                }
                if x.v6() != Mode::Unspecified {
                    v6 = Mode::Unspecified;
                }
            }
        }
    }
    Some(Target {
        origin,
        index,
        v4,
        v6,
    })
}

fn devid(o: Origin) -> u32 {
    match o {
        Origin::Xenopsd(d) | Origin::VmData(d) => d,
    }
}

/// `add 10.0.0.2/24 to eth0`, with the link's name when known.
fn describe(op: &NetOp, net: &NetState) -> String {
    let name = |i: u32| {
        net.links
            .get(&i)
            .map_or_else(|| format!("link {i}"), |l| l.name.clone())
    };
    match *op {
        NetOp::AddAddr {
            index,
            addr,
            prefix,
        } => format!("add {addr}/{prefix} to {}", name(index)),
        NetOp::DelAddr {
            index,
            addr,
            prefix,
        } => format!("remove {addr}/{prefix} from {}", name(index)),
        NetOp::AddRoute { index, gateway } => {
            format!("add a default route via {gateway} on {}", name(index))
        }
        NetOp::DelRoute { index, gateway } => {
            format!("remove the default route via {gateway} on {}", name(index))
        }
    }
}

/// The link a request's address goes on, the same NIC that reporting finds: the netfront
/// link of vif `devid`, else a device carrying the vif's MAC (an HVM guest's emulated twin),
/// else any non-virtual link with that MAC; then, if it is a member of a bridge or bond, that
/// bridge or bond (where a bridged NIC's address belongs).
pub fn find_nic(net: &NetState, origin: Origin, mac: Option<Mac>) -> Option<u32> {
    let devid = devid(origin);
    let netfront = net
        .links
        .values()
        .find(|l| matches!(l.class, Some(NicClass::Vif { devid: d }) if d == devid));
    let base = netfront.or_else(|| {
        let mac = mac?;
        net.links.values().find(|l| {
            !l.loopback
                && l.hw_mac() == Some(mac)
                && !matches!(l.class, Some(NicClass::Virtual))
                && !matches!(
                    l.kind.as_deref(),
                    Some("vlan" | "macvlan" | "macvtap" | "ipvlan" | "bridge" | "bond")
                )
        })
    })?;
    // A netfront whose MAC is not the requested one is another NIC: refuse rather than guess.
    if let (Some(want), Some(have)) = (mac, base.hw_mac()) {
        if want != have && base.mac != Some(want) {
            return None;
        }
    }
    let mut link = base;
    for _ in 0..4 {
        match link.master.and_then(|m| net.links.get(&m)) {
            Some(master) => link = master,
            None => break,
        }
    }
    Some(link.index)
}

/// The kernel's addresses as the planner wants them, from the model.
pub fn kernel_addrs(net: &NetState) -> Vec<(u32, IpAddr, u8)> {
    net.addrs
        .iter()
        .map(|((i, ip), a)| (*i, *ip, a.prefix_len))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::plan::{DefaultRoute, RTPROT_XENBEACON};
    use super::super::request::from_xenopsd;
    use super::*;
    use crate::net::{AddrFlags, LinkFacts};

    const MAC: Mac = Mac([0, 0x16, 0x3e, 0, 0, 1]);

    fn net() -> NetState {
        let mut n = NetState::default();
        n.update_link(&LinkFacts {
            index: 2,
            name: Some("eth0"),
            mac: Some(MAC),
            ..LinkFacts::default()
        });
        n.links.get_mut(&2).unwrap().class = Some(NicClass::Vif { devid: 0 });
        n
    }

    fn seen(kv: &[(&'static str, &str)], answered: bool) -> Seen {
        let keys: Vec<(&'static str, Vec<u8>)> = kv
            .iter()
            .map(|(k, v)| (*k, v.as_bytes().to_vec()))
            .collect();
        Seen {
            origin: Origin::Xenopsd(0),
            request: from_xenopsd(0, keys.as_slice()),
            answered,
        }
    }

    fn static_req() -> Seen {
        seen(
            &[
                ("mac", "00:16:3e:00:00:01"),
                ("enabled", "1"),
                ("address", "10.0.0.2/24"),
                ("gateway", "10.0.0.1"),
            ],
            false,
        )
    }

    fn ok_all(d: &Decision) -> Vec<(Origin, NetOp, Result<(), i32>)> {
        d.ops.iter().map(|(o, op)| (*o, *op, Ok(()))).collect()
    }

    #[test]
    fn a_request_is_decided_once_and_its_own_answer_does_not_loop() {
        let n = net();
        let mut s = IpSettings::default();
        let k = KernelView::default();
        let d = s.decide(&[static_req()], &n, &k);
        assert_eq!(d.ops.len(), 2);
        assert!(d.answers.is_empty());
        let (answers, undo) = s.on_results(&ok_all(&d), &n);
        assert_eq!(answers, [Answer::ok(Origin::Xenopsd(0))]);
        assert!(undo.is_empty());
        // the watch fires for our own error-code write: same request, answered → nothing
        let mut answered = static_req();
        answered.answered = true;
        let addrs = [(2, "10.0.0.2".parse().unwrap(), 24)];
        let routes = [DefaultRoute {
            index: 2,
            gateway: "10.0.0.1".parse().unwrap(),
            protocol: RTPROT_XENBEACON,
        }];
        let k = KernelView {
            addrs: &addrs,
            routes: &routes,
        };
        assert_eq!(s.decide(&[answered.clone()], &n, &k), Decision::default());
        // set-ip again with the same request (error-code removed): answered again, no ops
        let d = s.decide(&[static_req()], &n, &k);
        assert_eq!(d.ops, []);
        assert_eq!(d.answers, [Answer::ok(Origin::Xenopsd(0))]);
        // a re-apply (resume) decides again, idempotently
        s.reapply();
        let d = s.decide(&[answered], &n, &k);
        assert_eq!((d.ops.len(), d.answers.len()), (0, 1));
    }

    #[test]
    fn errors_are_answered_and_change_nothing() {
        let n = net();
        let mut s = IpSettings::default();
        let k = KernelView::default();
        let bad = seen(&[("enabled", "1"), ("address", "10.0.0.300/24")], false);
        let d = s.decide(&[bad], &n, &k);
        assert_eq!(d.ops, []);
        assert_eq!(d.answers[0].code, 1);
        assert_eq!(d.answers[0].msg, "address: '10.0.0.300/24' is not valid");
        let other_mac = seen(
            &[
                ("mac", "00:16:3e:99:99:99"),
                ("enabled", "1"),
                ("address", "10.0.0.2/24"),
            ],
            false,
        );
        let d = s.decide(&[other_mac], &n, &k);
        assert_eq!(d.ops, []);
        assert_eq!(d.answers[0].code, 2);
        assert_eq!(
            d.answers[0].msg,
            "no NIC with MAC 00:16:3e:99:99:99 in this guest"
        );
    }

    #[test]
    fn a_refused_operation_undoes_the_rounds_additions() {
        let n = net();
        let mut s = IpSettings::default();
        let d = s.decide(&[static_req()], &n, &KernelView::default());
        let mut results = ok_all(&d);
        results[1].2 = Err(libc::ENETUNREACH);
        let (answers, undo) = s.on_results(&results, &n);
        assert_eq!(answers[0].code, 3);
        assert!(
            answers[0]
                .msg
                .starts_with("the kernel refused to add a default route via 10.0.0.1 on eth0"),
            "{}",
            answers[0].msg
        );
        assert_eq!(
            undo,
            [(
                Origin::Xenopsd(0),
                NetOp::DelAddr {
                    index: 2,
                    addr: "10.0.0.2".parse().unwrap(),
                    prefix: 24
                }
            )]
        );
        let undone: Vec<_> = undo.iter().map(|(o, op)| (*o, *op, Ok(()))).collect();
        s.on_undo_results(&undone);
        assert_eq!(s.applied(), &Applied::default());
    }

    #[test]
    fn xapi_takes_over_from_ansible_and_gives_back() {
        let n = net();
        let mut s = IpSettings::default();
        let keys = |kv: &[(&'static str, &str)]| -> Vec<(&'static str, Vec<u8>)> {
            kv.iter()
                .map(|(k, v)| (*k, v.as_bytes().to_vec()))
                .collect()
        };
        let vm = Seen {
            origin: Origin::VmData(0),
            request: crate::netconfig::request::from_vm_data(
                0,
                keys(&[("ip", "10.0.0.42"), ("prefix", "24")]).as_slice(),
            ),
            answered: true,
        };
        let unspecified = seen(&[("enabled", "0")], true);
        let d = s.decide(
            &[vm.clone(), unspecified.clone()],
            &n,
            &KernelView::default(),
        );
        assert_eq!(d.ops.len(), 1);
        assert_eq!(d.answers, [Answer::ok(Origin::Xenopsd(0))]);
        s.on_results(&ok_all(&d), &n);
        let addrs = [(2, "10.0.0.42".parse().unwrap(), 24)];
        let k = KernelView {
            addrs: &addrs,
            routes: &[],
        };
        // XAPI says DHCP: Ansible's address goes, though its request did not change
        let dhcp = seen(&[("enabled", "2")], false);
        let d = s.decide(&[vm.clone(), dhcp], &n, &k);
        assert_eq!(
            d.ops,
            [(
                Origin::VmData(0),
                NetOp::DelAddr {
                    index: 2,
                    addr: "10.0.0.42".parse().unwrap(),
                    prefix: 24
                }
            )]
        );
        assert_eq!(d.answers, [Answer::ok(Origin::Xenopsd(0))]);
        let (answers, _) = s.on_results(&ok_all(&d), &n);
        assert!(answers.is_empty());
        // an invalid XAPI request: answered, and Ansible's address does not come back
        let bad = seen(&[("enabled", "1"), ("address", "10.0.0.300/24")], false);
        let d = s.decide(&[vm.clone(), bad], &n, &KernelView::default());
        assert_eq!(d.ops, []);
        assert_eq!(d.answers[0].code, 1);
        // back to unspecified: Ansible's address comes back
        let d = s.decide(
            &[vm, seen(&[("enabled", "0")], false)],
            &n,
            &KernelView::default(),
        );
        assert_eq!(d.ops.len(), 1);
    }

    #[test]
    fn a_nic_that_appears_later_gets_its_request() {
        let mut s = IpSettings::default();
        let empty = NetState::default();
        let d = s.decide(&[static_req()], &empty, &KernelView::default());
        assert_eq!(d.answers[0].code, 2);
        // our own answer fires the watch: nothing, however often
        let mut answered = static_req();
        answered.answered = true;
        assert_eq!(
            s.decide(&[answered.clone()], &empty, &KernelView::default()),
            Decision::default()
        );
        assert!(!s.nic_appeared(&empty));
        let n = net();
        assert!(s.nic_appeared(&n));
        assert!(!s.nic_appeared(&n));
        let d = s.decide(&[answered], &n, &KernelView::default());
        assert_eq!(d.ops.len(), 2);
    }

    #[test]
    fn a_bridged_vif_gets_the_address_on_its_bridge() {
        let mut n = net();
        n.update_link(&LinkFacts {
            index: 5,
            name: Some("br0"),
            mac: Some(MAC),
            kind: Some("bridge"),
            ..LinkFacts::default()
        });
        n.links.get_mut(&2).unwrap().master = Some(5);
        assert_eq!(find_nic(&n, Origin::Xenopsd(0), Some(MAC)), Some(5));
        assert_eq!(find_nic(&n, Origin::Xenopsd(1), Some(MAC)), Some(5));
        assert_eq!(find_nic(&n, Origin::Xenopsd(1), None), None);
        assert_eq!(find_nic(&n, Origin::Xenopsd(0), Some(Mac([2; 6]))), None);
    }

    #[test]
    fn removed_by_another_program_is_logged_once_and_forgotten() {
        let mut n = net();
        let mut s = IpSettings::default();
        let d = s.decide(&[static_req()], &n, &KernelView::default());
        s.on_results(&ok_all(&d), &n);
        n.update_addr(2, "10.0.0.2".parse().unwrap(), 24, 0, AddrFlags::default());
        assert!(!s.on_links_changed(&n));
        n.remove_addr(2, "10.0.0.2".parse().unwrap());
        assert!(s.on_links_changed(&n));
        assert!(!s.on_links_changed(&n));
        assert!(s.applied().entries.iter().all(|e| e.addr.is_none()));
    }
}
