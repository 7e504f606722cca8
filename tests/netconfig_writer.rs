//! The rtnetlink writer against the real kernel, in a network namespace (root, `ip netns`):
//! it adds and removes addresses and default routes, reports the kernel's refusals with their
//! errno, reads back what the planner needs, and deletes only routes with the agent's protocol
//! number. Plans are checked to converge on the real kernel.

mod support;

use std::net::IpAddr;
use std::os::fd::AsRawFd;

use support::netns::Netns;
use xenbeacon::netconfig::plan::{plan, Applied, KernelView, NetOp, Target, RTPROT_XENBEACON};
use xenbeacon::netconfig::request::{Mode, Origin, StaticAddr};
use xenbeacon::netlink::writer::RouteWriter;

/// Runs `f` with a writer whose socket lives in `ns` (a netlink socket belongs to the
/// namespace it was opened in), on a thread of its own so the test's namespace stays.
fn in_ns<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce(&mut RouteWriter) -> T + Send + 'static,
) -> T {
    let path = format!("/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on an fd we own, for this thread only.
        assert_eq!(
            unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        let mut w = RouteWriter::open().unwrap();
        f(&mut w)
    })
    .join()
    .unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn adds_and_removes_addresses_and_default_routes() {
    let ns = Netns::new();
    ns.veth("eth0");
    let idx = ns.ifindex("eth0");
    let ops = vec![
        NetOp::AddAddr {
            index: idx,
            addr: ip("192.168.77.10"),
            prefix: 24,
        },
        NetOp::AddRoute {
            index: idx,
            gateway: ip("192.168.77.1"),
        },
        NetOp::AddAddr {
            index: idx,
            addr: ip("2001:db8:77::10"),
            prefix: 64,
        },
        NetOp::AddRoute {
            index: idx,
            gateway: ip("fe80::1"),
        },
    ];
    let results = in_ns(&ns, move |w| w.execute(&ops).unwrap());
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    let addrs = ns.ip_output(&["-o", "addr", "show", "dev", "eth0"]);
    assert!(
        addrs.contains("inet 192.168.77.10/24 brd 192.168.77.255"),
        "{addrs}"
    );
    assert!(addrs.contains("inet6 2001:db8:77::10/64"), "{addrs}");
    let r4 = ns.ip_output(&["-4", "route", "show", "default"]);
    assert!(
        r4.contains("default via 192.168.77.1 dev eth0 proto 181"),
        "{r4}"
    );
    let r6 = ns.ip_output(&["-6", "route", "show", "default"]);
    assert!(
        r6.contains("default via fe80::1 dev eth0 proto 181"),
        "{r6}"
    );

    // read back: what the planner sees
    let state = in_ns(&ns, |w| w.kernel_state().unwrap());
    assert!(state.addrs.contains(&(idx, ip("192.168.77.10"), 24)));
    assert!(state.addrs.contains(&(idx, ip("2001:db8:77::10"), 64)));
    assert!(state.routes.iter().any(|r| r.index == idx
        && r.gateway == ip("192.168.77.1")
        && r.protocol == RTPROT_XENBEACON));

    // the same add again: the kernel says EEXIST, reported, not hidden
    let again = vec![NetOp::AddRoute {
        index: idx,
        gateway: ip("192.168.77.1"),
    }];
    let results = in_ns(&ns, move |w| w.execute(&again).unwrap());
    assert_eq!(results[0].1, Err(libc::EEXIST));

    let ops = vec![
        NetOp::DelRoute {
            index: idx,
            gateway: ip("192.168.77.1"),
        },
        NetOp::DelAddr {
            index: idx,
            addr: ip("192.168.77.10"),
            prefix: 24,
        },
        NetOp::DelRoute {
            index: idx,
            gateway: ip("fe80::1"),
        },
        NetOp::DelAddr {
            index: idx,
            addr: ip("2001:db8:77::10"),
            prefix: 64,
        },
    ];
    let results = in_ns(&ns, move |w| w.execute(&ops).unwrap());
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert_eq!(ns.addrs4("eth0"), Vec::<String>::new());
    assert_eq!(ns.ip_output(&["-4", "route", "show", "default"]), "");
    assert!(!ns
        .ip_output(&["-6", "addr", "show", "dev", "eth0"])
        .contains("2001:db8:77::10"));
}

#[test]
fn refusals_carry_the_errno_and_do_not_stop_the_rest() {
    let ns = Netns::new();
    ns.veth("eth0");
    let idx = ns.ifindex("eth0");
    let ops = vec![
        // no such link
        NetOp::AddAddr {
            index: 9999,
            addr: ip("10.5.0.2"),
            prefix: 24,
        },
        // gateway not reachable: no address on the link yet
        NetOp::AddRoute {
            index: idx,
            gateway: ip("10.6.0.1"),
        },
        // removing what is not there
        NetOp::DelAddr {
            index: idx,
            addr: ip("10.7.0.2"),
            prefix: 24,
        },
        NetOp::AddAddr {
            index: idx,
            addr: ip("10.8.0.2"),
            prefix: 24,
        },
    ];
    let results = in_ns(&ns, move |w| w.execute(&ops).unwrap());
    assert_eq!(results[0].1, Err(libc::ENODEV));
    assert_eq!(results[1].1, Err(libc::ENETUNREACH));
    assert_eq!(results[2].1, Err(libc::EADDRNOTAVAIL));
    assert_eq!(results[3].1, Ok(()));
    assert_eq!(ns.addrs4("eth0"), ["10.8.0.2"]);
}

#[test]
fn only_the_agents_own_default_route_is_deleted() {
    let ns = Netns::new();
    ns.veth("eth0");
    let idx = ns.ifindex("eth0");
    ns.ip("addr add 10.9.0.2/24 dev eth0");
    ns.ip("route add default via 10.9.0.1 dev eth0 proto dhcp");
    let ops = vec![NetOp::DelRoute {
        index: idx,
        gateway: ip("10.9.0.1"),
    }];
    let results = in_ns(&ns, move |w| w.execute(&ops).unwrap());
    assert_eq!(results[0].1, Err(libc::ESRCH));
    assert!(ns
        .ip_output(&["-4", "route", "show", "default"])
        .contains("via 10.9.0.1"));
}

#[test]
fn plans_converge_on_the_real_kernel_and_leave_the_os_alone() {
    let ns = Netns::new();
    ns.veth("eth0");
    let idx = ns.ifindex("eth0");
    ns.ip("addr add 172.16.0.5/16 dev eth0"); // the OS's
    let origin = Origin::Xenopsd(0);
    let st =
        |a: &str, p, gw: Option<&str>| Mode::Static(StaticAddr::new(ip(a), p, gw.map(ip)).unwrap());
    let mut applied = Applied::default();
    let run = |targets: Vec<Target>, applied: &mut Applied| -> usize {
        let a = applied.clone();
        let results = in_ns(&ns, move |w| {
            let k = w.kernel_state().unwrap();
            let view = KernelView {
                addrs: &k.addrs,
                routes: &k.routes,
            };
            let ops: Vec<NetOp> = plan(&targets, &a, &view)
                .into_iter()
                .map(|(_, op)| op)
                .collect();
            w.execute(&ops).unwrap()
        });
        for (op, r) in &results {
            assert_eq!(*r, Ok(()), "{op}");
            applied.record(origin, op, r.is_ok());
        }
        results.len()
    };
    let t = |v4, v6| {
        vec![Target {
            origin,
            index: idx,
            v4,
            v6,
        }]
    };
    let want = t(
        st("192.168.90.2", 24, Some("192.168.90.1")),
        st("2001:db8:90::2", 64, Some("2001:db8:90::1")),
    );
    assert_eq!(run(want.clone(), &mut applied), 4);
    assert_eq!(run(want, &mut applied), 0, "idempotent");
    assert_eq!(run(t(Mode::Dynamic, Mode::Dynamic), &mut applied), 4);
    assert_eq!(applied, Applied::default());
    assert_eq!(ns.addrs4("eth0"), ["172.16.0.5"]);
    assert_eq!(ns.ip_output(&["-4", "route", "show", "default"]), "");
}
