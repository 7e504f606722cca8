//! From requests to netlink operations, pure: given what each request asks of its NIC, what the
//! agent itself added before ([`Applied`]) and what the kernel has now ([`KernelView`]), the
//! operations that make it so, touching only what the agent added.
//!
//! Rules, in the order the operations run:
//! 1. a default route the agent added and no longer wants goes, if the kernel still has it
//!    with the agent's protocol number;
//! 2. an address the agent added and no longer wants goes, if the kernel still has it;
//! 3. a wanted address the kernel lacks is added;
//! 4. a wanted default route the kernel lacks is added (after its address: the gateway must be
//!    reachable on the link).
//!
//! An address or route that was there before the agent wanted it is used, not recorded: the
//! agent never removes what it did not add. Planning again against the kernel after the
//! operations gives nothing to do.

use core::net::IpAddr;

use super::request::{Mode, Origin};

/// The agent's routes carry this `rtm_protocol` (`ip route show proto 0xb5`), so that the kernel
/// itself says which default routes are the agent's: only those are ever deleted. Numbers below
/// 0x10 and the ones in `/etc/iproute2/rt_protos` are taken; 0xb5 is not.
pub const RTPROT_XENBEACON: u8 = 0xb5;

/// One rtnetlink change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetOp {
    AddAddr {
        index: u32,
        addr: IpAddr,
        prefix: u8,
    },
    DelAddr {
        index: u32,
        addr: IpAddr,
        prefix: u8,
    },
    /// A default route (`0.0.0.0/0` or `::/0`) via `gateway` on the link, main table.
    AddRoute {
        index: u32,
        gateway: IpAddr,
    },
    DelRoute {
        index: u32,
        gateway: IpAddr,
    },
}

impl core::fmt::Display for NetOp {
    /// What the operation does, for logs and `error-msg` ("the kernel refused to ...").
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetOp::AddAddr {
                index,
                addr,
                prefix,
            } => write!(f, "add {addr}/{prefix} to link {index}"),
            NetOp::DelAddr {
                index,
                addr,
                prefix,
            } => write!(f, "remove {addr}/{prefix} from link {index}"),
            NetOp::AddRoute { index, gateway } => {
                write!(f, "add a default route via {gateway} on link {index}")
            }
            NetOp::DelRoute { index, gateway } => {
                write!(f, "remove the default route via {gateway} on link {index}")
            }
        }
    }
}

/// What the agent added for one request and one address family. Only what the agent added
/// itself: an address that was already there is not in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppliedEntry {
    pub origin: Origin,
    pub v6: bool,
    pub index: u32,
    /// The address the agent added, with its prefix.
    pub addr: Option<(IpAddr, u8)>,
    /// The gateway of the default route the agent added.
    pub gateway: Option<IpAddr>,
}

/// Everything the agent added, by request and family. Kept across restarts by
/// [`super::record`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub entries: Vec<AppliedEntry>,
}

impl Applied {
    fn find(&self, origin: Origin, v6: bool) -> Option<&AppliedEntry> {
        self.entries
            .iter()
            .find(|e| e.origin == origin && e.v6 == v6)
    }

    fn entry_mut(&mut self, origin: Origin, v6: bool, index: u32) -> &mut AppliedEntry {
        let at = match self
            .entries
            .iter()
            .position(|e| e.origin == origin && e.v6 == v6)
        {
            Some(i) => i,
            None => {
                self.entries.push(AppliedEntry {
                    origin,
                    v6,
                    index,
                    addr: None,
                    gateway: None,
                });
                self.entries.len() - 1
            }
        };
        &mut self.entries[at]
    }

    /// Takes one executed operation of `origin`'s plan into account: what was added is now the
    /// agent's, what was removed no longer is. A failed operation changes nothing.
    pub fn record(&mut self, origin: Origin, op: &NetOp, ok: bool) {
        if !ok {
            return;
        }
        match *op {
            NetOp::AddAddr {
                index,
                addr,
                prefix,
            } => {
                let e = self.entry_mut(origin, addr.is_ipv6(), index);
                e.index = index;
                e.addr = Some((addr, prefix));
            }
            NetOp::AddRoute { index, gateway } => {
                let e = self.entry_mut(origin, gateway.is_ipv6(), index);
                e.index = index;
                e.gateway = Some(gateway);
            }
            NetOp::DelAddr { addr, .. } => {
                if let Some(e) = self.find_mut(origin, addr.is_ipv6()) {
                    e.addr = e.addr.filter(|&(a, _)| a != addr);
                }
            }
            NetOp::DelRoute { gateway, .. } => {
                if let Some(e) = self.find_mut(origin, gateway.is_ipv6()) {
                    e.gateway = e.gateway.filter(|&g| g != gateway);
                }
            }
        }
        self.entries
            .retain(|e| e.addr.is_some() || e.gateway.is_some());
    }

    fn find_mut(&mut self, origin: Origin, v6: bool) -> Option<&mut AppliedEntry> {
        self.entries
            .iter_mut()
            .find(|e| e.origin == origin && e.v6 == v6)
    }

    /// Forgets what the kernel no longer has (another program removed it): the agent does not
    /// add it back by itself, and must not later remove an address of the same value that
    /// someone else configured. Returns what was forgotten, for one log line each.
    pub fn forget_missing(&mut self, kernel: &KernelView<'_>) -> Vec<NetOp> {
        let mut gone = Vec::new();
        for e in &mut self.entries {
            if let Some((addr, prefix)) = e.addr {
                if !kernel.has_addr(e.index, addr, prefix) {
                    gone.push(NetOp::DelAddr {
                        index: e.index,
                        addr,
                        prefix,
                    });
                    e.addr = None;
                }
            }
            if let Some(gateway) = e.gateway {
                if !kernel.has_our_route(e.index, gateway) {
                    gone.push(NetOp::DelRoute {
                        index: e.index,
                        gateway,
                    });
                    e.gateway = None;
                }
            }
        }
        self.entries
            .retain(|e| e.addr.is_some() || e.gateway.is_some());
        gone
    }
}

/// A default route the kernel has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultRoute {
    pub index: u32,
    pub gateway: IpAddr,
    /// `rtm_protocol`: [`RTPROT_XENBEACON`] for the agent's.
    pub protocol: u8,
}

/// What the kernel has now: addresses `(ifindex, address, prefix)` and default routes.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelView<'a> {
    pub addrs: &'a [(u32, IpAddr, u8)],
    pub routes: &'a [DefaultRoute],
}

impl KernelView<'_> {
    fn has_addr(&self, index: u32, addr: IpAddr, prefix: u8) -> bool {
        self.addrs.contains(&(index, addr, prefix))
    }
    fn has_route(&self, index: u32, gateway: IpAddr) -> bool {
        self.routes
            .iter()
            .any(|r| r.index == index && r.gateway == gateway)
    }
    fn has_our_route(&self, index: u32, gateway: IpAddr) -> bool {
        self.routes
            .iter()
            .any(|r| r.index == index && r.gateway == gateway && r.protocol == RTPROT_XENBEACON)
    }
}

/// What one request wants of one NIC, the NIC found (by the agent) as `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub origin: Origin,
    pub index: u32,
    pub v4: Mode,
    pub v6: Mode,
}

/// The operations for `targets`, each with the request it serves. Requests not among the
/// targets (invalid ones, whose NIC was not found, unchanged or vanished) keep what they
/// have: an error changes nothing. An address one request gives up and another wants (XAPI
/// taking over from Ansible's boot-time data) is removed and added again, so that it ends up
/// recorded for the request that keeps it.
pub fn plan(
    targets: &[Target],
    applied: &Applied,
    kernel: &KernelView<'_>,
) -> Vec<(Origin, NetOp)> {
    let mut del_routes = Vec::new();
    let mut del_addrs = Vec::new();
    let wanted = |t: &Target, v6: bool| match if v6 { t.v6 } else { t.v4 } {
        Mode::Static(s) => Some(s),
        Mode::Unspecified | Mode::Dynamic => None,
    };
    for t in targets {
        for v6 in [false, true] {
            let want = wanted(t, v6);
            let want_addr = want.map(|s| (t.index, s.addr(), s.prefix()));
            let want_gw = want.and_then(|s| s.gateway().map(|g| (t.index, g)));
            let Some(prev) = applied.find(t.origin, v6) else {
                continue;
            };
            if let Some(g) = prev.gateway {
                if want_gw != Some((prev.index, g)) && kernel.has_our_route(prev.index, g) {
                    let op = NetOp::DelRoute {
                        index: prev.index,
                        gateway: g,
                    };
                    del_routes.push((t.origin, op));
                }
            }
            if let Some((a, p)) = prev.addr {
                if want_addr != Some((prev.index, a, p)) && kernel.has_addr(prev.index, a, p) {
                    let op = NetOp::DelAddr {
                        index: prev.index,
                        addr: a,
                        prefix: p,
                    };
                    del_addrs.push((t.origin, op));
                }
            }
        }
    }
    let deleted = |op: NetOp| {
        del_routes
            .iter()
            .chain(del_addrs.iter())
            .any(|(_, d)| *d == op)
    };
    let mut add_addrs = Vec::new();
    let mut add_routes = Vec::new();
    for t in targets {
        for v6 in [false, true] {
            let Some(s) = wanted(t, v6) else { continue };
            let (index, addr, prefix) = (t.index, s.addr(), s.prefix());
            let gone = deleted(NetOp::DelAddr {
                index,
                addr,
                prefix,
            });
            if !kernel.has_addr(index, addr, prefix) || gone {
                let op = NetOp::AddAddr {
                    index,
                    addr,
                    prefix,
                };
                add_addrs.push((t.origin, op));
            }
            if let Some(gateway) = s.gateway() {
                let gone = deleted(NetOp::DelRoute { index, gateway });
                if !kernel.has_route(index, gateway) || gone {
                    add_routes.push((t.origin, NetOp::AddRoute { index, gateway }));
                }
            }
        }
    }
    let mut ops = del_routes;
    ops.extend(del_addrs);
    ops.extend(add_addrs);
    ops.extend(add_routes);
    // Two requests asking the same of one NIC: the first one's operation serves both.
    let mut seen: Vec<NetOp> = Vec::with_capacity(ops.len());
    ops.retain(|(_, op)| {
        let new = !seen.contains(op);
        seen.push(*op);
        new
    });
    ops
}

#[cfg(test)]
mod tests {
    use super::super::request::StaticAddr;
    use super::*;

    const X0: Origin = Origin::Xenopsd(0);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn st(a: &str, p: u8, gw: Option<&str>) -> Mode {
        Mode::Static(StaticAddr::new(ip(a), p, gw.map(ip)).unwrap())
    }

    fn bare(tagged: &[(Origin, NetOp)]) -> Vec<NetOp> {
        tagged.iter().map(|(_, op)| *op).collect()
    }

    fn target(index: u32, v4: Mode, v6: Mode) -> Target {
        Target {
            origin: X0,
            index,
            v4,
            v6,
        }
    }

    /// A kernel that carries out operations, for checking that plans converge.
    #[derive(Default)]
    struct Kernel {
        addrs: Vec<(u32, IpAddr, u8)>,
        routes: Vec<DefaultRoute>,
    }

    impl Kernel {
        fn view(&self) -> KernelView<'_> {
            KernelView {
                addrs: &self.addrs,
                routes: &self.routes,
            }
        }
        fn run(&mut self, ops: &[(Origin, NetOp)], applied: &mut Applied) {
            for (origin, op) in ops {
                match *op {
                    NetOp::AddAddr {
                        index,
                        addr,
                        prefix,
                    } => self.addrs.push((index, addr, prefix)),
                    NetOp::DelAddr {
                        index,
                        addr,
                        prefix,
                    } => self.addrs.retain(|&a| a != (index, addr, prefix)),
                    NetOp::AddRoute { index, gateway } => self.routes.push(DefaultRoute {
                        index,
                        gateway,
                        protocol: RTPROT_XENBEACON,
                    }),
                    NetOp::DelRoute { index, gateway } => self
                        .routes
                        .retain(|r| (r.index, r.gateway) != (index, gateway)),
                }
                applied.record(*origin, op, true);
            }
        }
    }

    #[test]
    fn static_then_dhcp_adds_then_removes_only_its_own() {
        let mut k = Kernel::default();
        k.addrs.push((2, ip("10.9.9.9"), 8)); // the OS's
        let mut applied = Applied::default();
        let t = [target(
            2,
            st("192.168.7.10", 24, Some("192.168.7.1")),
            Mode::Unspecified,
        )];
        let ops = plan(&t, &applied, &k.view());
        assert_eq!(
            bare(&ops),
            [
                NetOp::AddAddr {
                    index: 2,
                    addr: ip("192.168.7.10"),
                    prefix: 24
                },
                NetOp::AddRoute {
                    index: 2,
                    gateway: ip("192.168.7.1")
                }
            ]
        );
        k.run(&ops, &mut applied);
        // idempotent
        assert!(plan(&t, &applied, &k.view()).is_empty());
        // DHCP: route first, then the address; the OS's address stays
        let t = [target(2, Mode::Dynamic, Mode::Unspecified)];
        let ops = plan(&t, &applied, &k.view());
        assert_eq!(
            bare(&ops),
            [
                NetOp::DelRoute {
                    index: 2,
                    gateway: ip("192.168.7.1")
                },
                NetOp::DelAddr {
                    index: 2,
                    addr: ip("192.168.7.10"),
                    prefix: 24
                }
            ]
        );
        k.run(&ops, &mut applied);
        assert_eq!(k.addrs, [(2, ip("10.9.9.9"), 8)]);
        assert_eq!(applied, Applied::default());
        assert!(plan(&t, &applied, &k.view()).is_empty());
    }

    #[test]
    fn what_was_there_before_is_used_but_never_removed() {
        let mut k = Kernel::default();
        k.addrs.push((2, ip("192.168.7.10"), 24));
        k.routes.push(DefaultRoute {
            index: 2,
            gateway: ip("192.168.7.1"),
            protocol: 3, // boot
        });
        let mut applied = Applied::default();
        let t = [target(
            2,
            st("192.168.7.10", 24, Some("192.168.7.1")),
            Mode::Unspecified,
        )];
        let ops = plan(&t, &applied, &k.view());
        assert_eq!(bare(&ops), []);
        k.run(&ops, &mut applied);
        let t = [target(2, Mode::Unspecified, Mode::Unspecified)];
        assert!(plan(&t, &applied, &k.view()).is_empty());
        // even a record that claims it cannot remove a route of another protocol
        let forged = Applied {
            entries: vec![AppliedEntry {
                origin: X0,
                v6: false,
                index: 2,
                addr: None,
                gateway: Some(ip("192.168.7.1")),
            }],
        };
        assert!(plan(&t, &forged, &k.view()).is_empty());
    }

    #[test]
    fn changing_the_address_swaps_it_and_moves_the_route() {
        let mut k = Kernel::default();
        let mut applied = Applied::default();
        let t = [target(
            3,
            st("10.0.0.2", 24, Some("10.0.0.1")),
            st("2001:db8::2", 64, None),
        )];
        let ops = plan(&t, &applied, &k.view());
        assert_eq!(ops.len(), 3);
        k.run(&ops, &mut applied);
        let t = [target(
            3,
            st("10.0.1.2", 24, Some("10.0.1.1")),
            st("2001:db8::2", 64, Some("fe80::1")),
        )];
        let ops = plan(&t, &applied, &k.view());
        assert_eq!(
            bare(&ops),
            [
                NetOp::DelRoute {
                    index: 3,
                    gateway: ip("10.0.0.1")
                },
                NetOp::DelAddr {
                    index: 3,
                    addr: ip("10.0.0.2"),
                    prefix: 24
                },
                NetOp::AddAddr {
                    index: 3,
                    addr: ip("10.0.1.2"),
                    prefix: 24
                },
                NetOp::AddRoute {
                    index: 3,
                    gateway: ip("10.0.1.1")
                },
                NetOp::AddRoute {
                    index: 3,
                    gateway: ip("fe80::1")
                },
            ]
        );
        k.run(&ops, &mut applied);
        assert!(plan(&t, &applied, &k.view()).is_empty());
        assert_eq!(applied.entries.len(), 2);
    }

    #[test]
    fn a_failed_add_is_not_recorded_and_errors_keep_what_is() {
        let k = Kernel::default();
        let mut applied = Applied::default();
        let op = NetOp::AddAddr {
            index: 2,
            addr: ip("10.0.0.2"),
            prefix: 24,
        };
        applied.record(X0, &op, false);
        assert_eq!(applied, Applied::default());
        applied.record(X0, &op, true);
        // a request absent from the targets (invalid, or its NIC not found) keeps its address
        assert!(plan(&[], &applied, &k.view()).is_empty());
    }

    #[test]
    fn removed_by_someone_else_is_forgotten_not_fought() {
        let mut k = Kernel::default();
        let mut applied = Applied::default();
        let t = [target(
            2,
            st("10.0.0.2", 24, Some("10.0.0.1")),
            Mode::Unspecified,
        )];
        let ops = plan(&t, &applied, &k.view());
        k.run(&ops, &mut applied);
        k.addrs.clear();
        k.routes.clear();
        let gone = applied.forget_missing(&k.view());
        assert_eq!(gone.len(), 2);
        assert_eq!(applied, Applied::default());
        // the same value configured later by someone else is theirs
        k.addrs.push((2, ip("10.0.0.2"), 24));
        let t = [target(2, Mode::Dynamic, Mode::Unspecified)];
        assert!(plan(&t, &applied, &k.view()).is_empty());
    }

    #[test]
    fn a_nic_that_moved_loses_the_old_and_gets_the_new() {
        let mut k = Kernel::default();
        let mut applied = Applied::default();
        let t = [target(2, st("10.0.0.2", 24, None), Mode::Unspecified)];
        let ops = plan(&t, &applied, &k.view());
        k.run(&ops, &mut applied);
        // the MAC now belongs to link 5 (a bridge took the address's place)
        let t = [target(5, st("10.0.0.2", 24, None), Mode::Unspecified)];
        let ops = plan(&t, &applied, &k.view());
        assert_eq!(
            bare(&ops),
            [
                NetOp::DelAddr {
                    index: 2,
                    addr: ip("10.0.0.2"),
                    prefix: 24
                },
                NetOp::AddAddr {
                    index: 5,
                    addr: ip("10.0.0.2"),
                    prefix: 24
                }
            ]
        );
        k.run(&ops, &mut applied);
        assert!(plan(&t, &applied, &k.view()).is_empty());
    }

    #[test]
    fn xapi_takes_an_address_over_from_ansible() {
        let mut k = Kernel::default();
        let mut applied = Applied::default();
        let vm = Origin::VmData(0);
        let ansible = Target {
            origin: vm,
            index: 2,
            v4: st("10.0.0.2", 24, Some("10.0.0.1")),
            v6: Mode::Unspecified,
        };
        let ops = plan(&[ansible], &applied, &k.view());
        k.run(&ops, &mut applied);
        // XAPI asks for the same address with another gateway; Ansible's part is dropped
        let xapi = target(2, st("10.0.0.2", 24, Some("10.0.0.254")), Mode::Unspecified);
        let dropped = Target {
            v4: Mode::Unspecified,
            ..ansible
        };
        let ops = plan(&[dropped, xapi], &applied, &k.view());
        k.run(&ops, &mut applied);
        assert_eq!(k.addrs, [(2, ip("10.0.0.2"), 24)]);
        assert_eq!(k.routes.len(), 1);
        assert_eq!(k.routes[0].gateway, ip("10.0.0.254"));
        assert_eq!(applied.entries.len(), 1);
        assert_eq!(applied.entries[0].origin, X0);
        assert!(plan(&[dropped, xapi], &applied, &k.view()).is_empty());
    }
}
