//! The whole agent with `--apply-ip-settings`: real rtnetlink in a network namespace, the fake
//! xenstored playing xenopsd (its keys, its permissions) or xl (no `xenserver/`, `control/`
//! read-only), `xenbeacon set-ip` as dom0, and Ansible's `vm-data/networks` seeded before the
//! agent starts. Needs root (`ip netns`).

mod support;

use std::process::Command;

use support::guest::{wait_until, Guest, DOMID, HOME};
use support::netns::setup;
use xenbeacon::xenbus::conn::{Endpoint, Error, XenbusConn};
use xenbeacon::xenbus::wire::{MsgType, XsError};

const DIR: &str = "xenserver/device/vif/0/static-ip-setting";

/// What xenopsd writes when it plugs the vif (`xenstore_of_static_ip_setting`): the vif's
/// directory owned by the guest, mac, error-code 0, error-msg "", enabled 0, enabled6 0.
fn xenopsd_plug(g: &Guest, mac: &str) {
    // xenopsd makes control/ the guest's (libxl, which the fake xenstored follows, does not).
    g.xs.set_perms(&format!("{HOME}/control"), &format!("n{DOMID}"));
    let vif = format!("{HOME}/xenserver/device/vif/0");
    g.xs.write(&vif, "");
    g.xs.set_perms(&vif, &format!("n{DOMID}"));
    for (k, v) in [
        ("mac", mac),
        ("error-code", "0"),
        ("error-msg", ""),
        ("enabled", "0"),
        ("enabled6", "0"),
    ] {
        g.xs.write(&format!("{HOME}/{DIR}/{k}"), v);
    }
}

/// dom0 writes keys (`Some`) and removes them (`None`) below the request directory, in one
/// transaction, as xenopsd's `Xs.transaction` does.
fn dom0(g: &Guest, kv: &[(&str, Option<&str>)]) {
    let mut c = XenbusConn::open(&Endpoint::Socket(g.xs.dom0_socket())).unwrap();
    loop {
        c.transaction_start().unwrap();
        for (k, v) in kv {
            let path = format!("{HOME}/{DIR}/{k}");
            match v {
                Some(v) => c.write(&path, v.as_bytes()).unwrap(),
                None => c.rm(&path).unwrap(),
            }
        }
        match c.transaction_end(true) {
            Ok(()) => return,
            // the guest wrote meanwhile: redo it, as Xs.transaction does
            Err(Error::Xs(XsError::Eagain)) => continue,
            Err(e) => panic!("commit: {e}"),
        }
    }
}

/// Like `xenbeacon set-ip`: the old answer goes in the same transaction as the request;
/// returns the guest's answer.
fn request(g: &Guest, kv: &[(&str, Option<&str>)]) -> (String, String) {
    let mut all = vec![("error-code", None)];
    all.extend_from_slice(kv);
    dom0(g, &all);
    wait_until("the guest's error-code", || {
        g.get(&format!("{DIR}/error-code")).is_some()
    });
    g.settle();
    (
        g.get(&format!("{DIR}/error-code")).unwrap(),
        g.get(&format!("{DIR}/error-msg")).unwrap_or_default(),
    )
}

#[test]
fn xapi_static_dhcp_bad_input_ipv6_and_restart() {
    let (g, ns, sys) = setup("netconfig-xapi");
    let mac = ns.veth("eth0");
    sys.add_vif("eth0", 0, &mac);
    ns.ip("addr add 10.9.9.9/8 dev eth0"); // the OS's own address
    xenopsd_plug(&g, &mac);
    let d = g.daemon(&["--apply-ip-settings"]);
    g.wait_for("control/feature-static-ip-setting", "1");
    g.wait_for("attr/vif/0/ipv4/0", "10.9.9.9");

    // As xenopsd's set_ip_static does it (error-code is not touched): the address and the
    // route arrive, and are reported.
    dom0(
        &g,
        &[
            ("enabled", Some("1")),
            ("address", Some("192.168.50.10/24")),
            ("gateway", Some("192.168.50.1")),
        ],
    );
    g.wait_for("attr/vif/0/ipv4/1", "192.168.50.10");
    assert_eq!(g.get("attr/vif/0/ipv4/1/prefix").as_deref(), Some("24"));
    let r4 = ns.ip_output(&["-4", "route", "show", "default"]);
    assert!(
        r4.contains("default via 192.168.50.1 dev eth0 proto 181"),
        "{r4}"
    );
    assert_eq!(g.get(&format!("{DIR}/error-code")).as_deref(), Some("0"));
    assert_eq!(g.get(&format!("{DIR}/error-msg")).as_deref(), Some(""));

    // The agent's own answer fires its watch: no loop of answers.
    g.settle();
    let answers = |g: &Guest| {
        g.xs.requests(DOMID)
            .iter()
            .filter(|(t, p)| *t == MsgType::Write && p.ends_with("error-code"))
            .count()
    };
    let before = answers(&g);
    g.settle();
    assert_eq!(answers(&g), before);

    // Bad input: an error, and no change.
    let (code, msg) = request(&g, &[("address", Some("192.168.50.300/24"))]);
    assert_eq!(code, "1");
    assert_eq!(msg, "address: '192.168.50.300/24' is not valid");
    let (code, msg) = request(
        &g,
        &[
            ("address", Some("192.168.50.10/24")),
            ("gateway", Some("10.1.1.1")),
        ],
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("1", "gateway 10.1.1.1 is not inside 192.168.50.10/24")
    );
    // about 4 KiB: as long as a value can be next to its path in one xenbus message
    let long = "1".repeat(4000);
    let (code, msg) = request(&g, &[("address", Some(&long))]);
    assert_eq!(code, "1");
    assert!(msg.contains("value of 4000 bytes is too long"), "{msg}");
    assert_eq!(ns.addrs4("eth0"), ["10.9.9.9", "192.168.50.10"]);
    assert!(ns
        .ip_output(&["-4", "route", "show", "default"])
        .contains("via 192.168.50.1"));

    // Back to DHCP: what the agent added goes, the OS's address stays.
    let (code, _) = request(
        &g,
        &[("enabled", Some("2")), ("address", None), ("gateway", None)],
    );
    assert_eq!(code, "0");
    wait_until("192.168.50.10 unpublished", || {
        g.get("attr/vif/0/ipv4/1").is_none()
    });
    assert_eq!(ns.addrs4("eth0"), ["10.9.9.9"]);
    assert_eq!(ns.ip_output(&["-4", "route", "show", "default"]), "");

    // IPv6 static, then a restart of the agent, then autoconf: the record outlives the agent.
    let (code, msg) = request(
        &g,
        &[
            ("enabled6", Some("1")),
            ("address6", Some("2001:db8:50::10/64")),
            ("gateway6", Some("2001:db8:50::1")),
        ],
    );
    assert_eq!((code.as_str(), msg.as_str()), ("0", ""));
    g.wait_for("attr/vif/0/ipv6/0", "2001:db8:50::10");
    assert!(ns
        .ip_output(&["-6", "route", "show", "default"])
        .contains("via 2001:db8:50::1"));
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
    let record = std::fs::read_to_string(g.root.path().join("run/xenbeacon/netconfig")).unwrap();
    assert_eq!(
        record,
        "xenopsd 0 6 2 2001:db8:50::10/64 2001:db8:50::1\n"
            .replace(" 2 ", &format!(" {} ", ns.ifindex("eth0")))
    );

    let d = g.daemon(&["--apply-ip-settings"]);
    g.wait_for("attr/vif/0/ipv6/0", "2001:db8:50::10");
    let (code, _) = request(
        &g,
        &[
            ("enabled6", Some("2")),
            ("address6", None),
            ("gateway6", None),
        ],
    );
    assert_eq!(code, "0");
    wait_until("2001:db8:50::10 removed", || {
        !ns.ip_output(&["-6", "addr", "show", "dev", "eth0"])
            .contains("2001:db8:50::10")
    });
    assert_eq!(ns.ip_output(&["-6", "route", "show", "default"]), "");
    assert!(!g.root.path().join("run/xenbeacon/netconfig").exists());
    d.stop();
}

#[test]
fn a_network_manager_that_removes_the_address_is_not_fought() {
    let (g, ns, sys) = setup("netconfig-nm");
    let mac = ns.veth("eth0");
    sys.add_vif("eth0", 0, &mac);
    xenopsd_plug(&g, &mac);
    let d = g.daemon(&["--apply-ip-settings"]);
    let (code, _) = request(
        &g,
        &[
            ("enabled", Some("1")),
            ("address", Some("192.168.60.10/24")),
        ],
    );
    assert_eq!(code, "0");
    g.wait_for("attr/vif/0/ipv4/0", "192.168.60.10");
    ns.ip("addr del 192.168.60.10/24 dev eth0");
    wait_until("the removal published", || {
        g.get("attr/vif/0/ipv4/0").is_none()
    });
    g.settle();
    assert_eq!(ns.addrs4("eth0"), Vec::<String>::new());
    // Someone else adds the same address: switching to DHCP leaves it, it is not ours.
    ns.ip("addr add 192.168.60.10/24 dev eth0");
    let (code, _) = request(&g, &[("enabled", Some("2")), ("address", None)]);
    assert_eq!(code, "0");
    assert_eq!(ns.addrs4("eth0"), ["192.168.60.10"]);
    let log = d.stop();
    assert_eq!(
        log.matches("was removed by another program").count(),
        1,
        "{log}"
    );
}

#[test]
fn unknown_mac_and_a_refusing_kernel_are_answered_and_change_nothing() {
    let (g, ns, sys) = setup("netconfig-errors");
    let mac = ns.veth("eth0");
    sys.add_vif("eth0", 0, &mac);
    xenopsd_plug(&g, "00:16:3e:99:99:99");
    let d = g.daemon(&["--apply-ip-settings"]);
    let (code, msg) = request(
        &g,
        &[
            ("enabled", Some("1")),
            ("address", Some("192.168.70.10/24")),
        ],
    );
    // The netfront link of vif 0 carries another MAC: refused rather than guessed.
    assert_eq!(code, "2", "{msg}");
    assert_eq!(msg, "no NIC with MAC 00:16:3e:99:99:99 in this guest");
    // The kernel refuses: IPv6 turned off on the link. Nothing stays of the IPv4 half.
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "sysctl",
            "-qw",
            "net.ipv6.conf.eth0.disable_ipv6=1",
        ])
        .status()
        .unwrap();
    let (code, msg) = request(
        &g,
        &[
            ("mac", Some(&mac)),
            ("enabled", Some("1")),
            ("address", Some("192.168.70.10/24")),
            ("enabled6", Some("1")),
            ("address6", Some("2001:db8:70::10/64")),
        ],
    );
    assert_eq!(code, "3", "{msg}");
    assert!(
        msg.starts_with("the kernel refused to add 2001:db8:70::10/64 to eth0"),
        "{msg}"
    );
    assert_eq!(ns.addrs4("eth0"), Vec::<String>::new());
    // The agent keeps running and publishing.
    ns.ip("addr add 10.7.7.7/8 dev eth0");
    g.wait_for("attr/vif/0/ipv4/0", "10.7.7.7");
    d.stop();
}

#[cfg(feature = "dom0")]
#[test]
fn under_xl_set_ip_does_what_xenopsd_does() {
    let (g, ns, sys) = setup("netconfig-xl");
    let mac = ns.veth("eth0");
    sys.add_vif("eth0", 0, &mac);
    g.xs.write(&format!("{HOME}/device/vif/0/mac"), &mac);
    let d = g.daemon(&["--apply-ip-settings"]);
    g.wait_for("data/xenbeacon/layout", "2");
    // control/ is read-only under xl: the feature key is refused, once, quietly
    assert_eq!(g.get("control/feature-static-ip-setting"), None);
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .args([
            "set-ip",
            "5",
            "--vif",
            "0",
            "--ipv4",
            "192.168.80.10/24",
            "--gateway",
            "192.168.80.1",
            "--timeout",
            "20",
            "--xenstore",
        ])
        .arg(g.xs.dom0_socket())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "vif 0: applied: 192.168.80.10/24 via 192.168.80.1\n"
    );
    g.wait_for("attr/vif/0/ipv4/0", "192.168.80.10");
    assert!(ns
        .ip_output(&["-4", "route", "show", "default"])
        .contains("via 192.168.80.1"));
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .args([
            "set-ip",
            "5",
            "--vif",
            "0",
            "--dhcp",
            "--timeout",
            "20",
            "--xenstore",
        ])
        .arg(g.xs.dom0_socket())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("unpublished", || g.get("attr/vif/0/ipv4/0").is_none());
    assert_eq!(ns.addrs4("eth0"), Vec::<String>::new());
    let log = d.stop();
    assert_eq!(
        log.matches("feature-static-ip-setting cannot be created (EACCES)")
            .count(),
        1,
        "{log}"
    );
    assert!(!log.contains("WARN"), "{log}");
}

#[test]
fn ansible_vm_data_is_applied_at_start() {
    let (g, ns, sys) = setup("netconfig-ansible");
    let mac = ns.veth("eth0");
    sys.add_vif("eth0", 0, &mac);
    for (k, v) in [
        ("name", "Pool-wide network associated with eth0"),
        ("mac", mac.as_str()),
        ("type", "static"),
        ("ip", "192.168.90.10"),
        ("prefix", "24"),
        ("netmask", "255.255.255.0"),
        ("gateway", "192.168.90.1"),
        ("type6", "static"),
        ("ip6", "2001:db8:90::10"),
        ("prefix6", "64"),
        ("gateway6", ""),
    ] {
        g.xs.write(&format!("{HOME}/vm-data/networks/0/{k}"), v);
    }
    // a second entry for a NIC the guest does not have: logged, nothing else
    g.xs.write(
        &format!("{HOME}/vm-data/networks/1/mac"),
        "00:16:3e:77:77:77",
    );
    g.xs.write(&format!("{HOME}/vm-data/networks/1/type"), "dhcp");
    g.xs.set_perms(&format!("{HOME}/control"), &format!("n{DOMID}"));
    // without the option nothing happens
    g.once(&[]);
    assert_eq!(ns.addrs4("eth0"), Vec::<String>::new());
    // --once applies and reports in the same run (the initramfs case)
    g.once(&["--apply-ip-settings"]);
    assert_eq!(g.get("attr/vif/0/ipv4/0").as_deref(), Some("192.168.90.10"));
    assert_eq!(ns.addrs4("eth0"), ["192.168.90.10"]);
    assert!(ns
        .ip_output(&["-4", "route", "show", "default"])
        .contains("via 192.168.90.1"));
    assert!(ns
        .ip_output(&["-6", "addr", "show", "dev", "eth0"])
        .contains("2001:db8:90::10/64"));
    // the daemon after it: idempotent, nothing added twice
    let d = g.daemon(&["--apply-ip-settings"]);
    g.wait_for("control/feature-static-ip-setting", "1");
    g.settle();
    assert_eq!(ns.addrs4("eth0"), ["192.168.90.10"]);
    let log = d.stop();
    assert!(log.contains("no NIC with MAC 00:16:3e:77:77:77"), "{log}");
}

#[test]
fn a_nic_that_comes_up_after_the_request_gets_it() {
    let (g, ns, sys) = setup("netconfig-late-nic");
    let mac = "00:16:3e:00:00:07";
    xenopsd_plug(&g, mac);
    let d = g.daemon(&["--apply-ip-settings"]);
    let (code, msg) = request(
        &g,
        &[
            ("enabled", Some("1")),
            ("address", Some("192.168.95.10/24")),
        ],
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("2", "no NIC with MAC 00:16:3e:00:00:07 in this guest")
    );
    // netfront comes up late (or the vif is hot-plugged)
    sys.add_vif("eth0", 0, mac);
    ns.ip_args(&[
        "link", "add", "eth0", "address", mac, "type", "veth", "peer", "name", "eth0p",
    ]);
    ns.ip("link set eth0 up");
    ns.ip("link set eth0p up");
    g.wait_for("attr/vif/0/ipv4/0", "192.168.95.10");
    assert_eq!(ns.addrs4("eth0"), ["192.168.95.10"]);
    assert_eq!(g.get(&format!("{DIR}/error-code")).as_deref(), Some("0"));
    d.stop();
}

/// A new domain (resume, migration: XAPI writes a fresh `unique-domain-id`) re-applies every
/// request, also one whose address another program removed meanwhile: the domain check finds
/// the new domain and asks for the re-apply in the same iteration, after which it runs.
#[test]
fn a_new_domain_reapplies_the_requests() {
    let (g, ns, sys) = setup("netconfig-newdom");
    let mac = ns.veth("eth0");
    sys.add_vif("eth0", 0, &mac);
    xenopsd_plug(&g, &mac);
    g.xs.write(&format!("{HOME}/unique-domain-id"), "uuid-1");
    let d = g.daemon(&["--apply-ip-settings"]);
    let (code, _) = request(
        &g,
        &[
            ("enabled", Some("1")),
            ("address", Some("192.168.61.10/24")),
        ],
    );
    assert_eq!(code, "0");
    g.wait_for("attr/vif/0/ipv4/0", "192.168.61.10");
    ns.ip("addr del 192.168.61.10/24 dev eth0");
    wait_until("the removal published", || {
        g.get("attr/vif/0/ipv4/0").is_none()
    });
    g.xs.write(&format!("{HOME}/unique-domain-id"), "uuid-2");
    wait_until("the address applied again in the new domain", || {
        ns.addrs4("eth0") == ["192.168.61.10"]
    });
    g.wait_for("attr/vif/0/ipv4/0", "192.168.61.10");
    let log = d.stop();
    assert!(log.contains("new domain"), "{log}");
}
