//! `xenbeacon set-ip` against the fake xenstored: the real binary writes xenopsd's keys with
//! xenopsd's permissions, and the test plays the guest through the guest's own socket (it
//! must be able to read the request and write its answer; another domain must not).

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::fake_xenstored::FakeXenstored;
use support::guest::wait_until;
use support::tempdir;
use xenbeacon::netconfig::request::{from_xenopsd, Mode, StaticAddr};
use xenbeacon::xenbus::conn::{Endpoint, XenbusConn};

const HOME: &str = "/local/domain/5";
const DIR: &str = "/local/domain/5/xenserver/device/vif/0/static-ip-setting";

fn host() -> (FakeXenstored, support::TempDir) {
    let dir = tempdir("set-ip");
    let xs = FakeXenstored::start(dir.path());
    xs.add_domain(5);
    xs.write(&format!("{HOME}/name"), "web1");
    xs.write(&format!("{HOME}/device/vif/0/mac"), "00:16:3e:00:00:05");
    xs.add_domain(6);
    (xs, dir)
}

fn set_ip(sock: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .arg("set-ip")
        .args(args)
        .arg("--xenstore")
        .arg(sock)
        .env_remove("XENBEACON_XENSTORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The guest: waits for a request (enabled/enabled6 written, no answer yet), reads it through
/// its own connection, and answers.
fn guest_answers(xs: &FakeXenstored, code: &str, msg: &str) -> Vec<(&'static str, Vec<u8>)> {
    wait_until("a request without an answer", || {
        let asked = ["enabled", "enabled6"].map(|k| xs.exists(&format!("{DIR}/{k}")));
        asked.contains(&true) && !xs.exists(&format!("{DIR}/error-code"))
    });
    let mut c = XenbusConn::open(&Endpoint::Socket(xs.socket(5))).unwrap();
    let mut keys = Vec::new();
    for k in [
        "mac", "enabled", "address", "gateway", "enabled6", "address6", "gateway6",
    ] {
        if let Ok(v) = c.read(&format!("xenserver/device/vif/0/static-ip-setting/{k}")) {
            keys.push((k, v.to_vec()));
        }
    }
    c.write(
        "xenserver/device/vif/0/static-ip-setting/error-msg",
        msg.as_bytes(),
    )
    .unwrap();
    c.write(
        "xenserver/device/vif/0/static-ip-setting/error-code",
        code.as_bytes(),
    )
    .unwrap();
    keys
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn static_address_is_written_as_xenopsd_does_and_the_answer_awaited() {
    let (xs, _dir) = host();
    let child = set_ip(
        &xs.dom0_socket(),
        &[
            "web1",
            "--vif",
            "0",
            "--ipv4",
            "192.168.7.10/24",
            "--gateway",
            "192.168.7.1",
        ],
    );
    let keys = guest_answers(&xs, "0", "");
    let out = finish(child);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "vif 0: applied: 192.168.7.10/24 via 192.168.7.1\n"
    );
    // what the guest read parses as the request (with the agent's own parser)
    let r = from_xenopsd(0, keys.as_slice()).unwrap();
    let want = StaticAddr::new(
        "192.168.7.10".parse().unwrap(),
        24,
        Some("192.168.7.1".parse().unwrap()),
    )
    .unwrap();
    assert_eq!(r.v4(), Mode::Static(want));
    assert_eq!(r.mac.unwrap().to_string(), "00:16:3e:00:00:05");
    // xenopsd's rwperm_for_guest: the guest owns the vif's directory, others have no access
    assert_eq!(
        xs.perms(&format!("{HOME}/xenserver/device/vif/0"))
            .as_deref(),
        Some("n5")
    );
    let mut other = XenbusConn::open(&Endpoint::Socket(xs.socket(6))).unwrap();
    assert!(other.read(&format!("{DIR}/address")).is_err());
    // the warning: no agent announced the feature
    assert!(text(&out.stderr).contains("feature-static-ip-setting"));

    // back to DHCP: address and gateway go, enabled is 2; announced now, so no warning
    xs.write(&format!("{HOME}/control/feature-static-ip-setting"), "1");
    let child = set_ip(&xs.dom0_socket(), &["5", "--vif", "0", "--dhcp"]);
    let keys = guest_answers(&xs, "0", "");
    let out = finish(child);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "vif 0: applied: IPv4 DHCP\n");
    assert_eq!(text(&out.stderr), "");
    assert!(!xs.exists(&format!("{DIR}/address")));
    assert!(!xs.exists(&format!("{DIR}/gateway")));
    assert_eq!(
        from_xenopsd(0, keys.as_slice()).unwrap().v4(),
        Mode::Dynamic
    );
}

#[test]
fn a_refusal_is_printed_cleaned_and_exits_4() {
    let (xs, _dir) = host();
    let child = set_ip(
        &xs.dom0_socket(),
        &[
            "web1",
            "--vif",
            "0",
            "--ipv6",
            "2001:db8::5/64",
            "--gateway6",
            "fe80::1",
        ],
    );
    guest_answers(
        &xs,
        "3",
        "the kernel refused to add 2001:db8::5/64: \x1b[31mFile exists",
    );
    let out = finish(child);
    assert_eq!(out.status.code(), Some(4));
    let err = text(&out.stderr);
    assert!(
        err.contains("vif 0: the guest refused it (error-code 3): the kernel refused to add 2001:db8::5/64: ?[31mFile exists"),
        "{err}"
    );
    assert_eq!(xs.read(&format!("{DIR}/enabled6")).as_deref(), Some("1"));
    assert_eq!(
        xs.read(&format!("{DIR}/gateway6")).as_deref(),
        Some("fe80::1")
    );
    assert!(!xs.exists(&format!("{DIR}/enabled")), "IPv4 left alone");
}

#[test]
fn no_answer_times_out_with_status_1() {
    let (xs, _dir) = host();
    let start = Instant::now();
    let child = set_ip(
        &xs.dom0_socket(),
        &[
            "5",
            "--vif",
            "0",
            "--ipv4",
            "10.0.0.2/24",
            "--timeout",
            "0.5",
        ],
    );
    let out = finish(child);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("did not answer within 0.5 s"));
    assert!(start.elapsed() < Duration::from_secs(5));
    // written all the same, for an agent that starts later
    assert_eq!(
        xs.read(&format!("{DIR}/address")).as_deref(),
        Some("10.0.0.2/24")
    );
}

#[test]
fn bad_command_lines_and_missing_vifs_write_nothing() {
    let (xs, _dir) = host();
    for (args, status) in [
        (&["5", "--vif", "0", "--ipv4", "10.0.0.300/24"][..], 2),
        (
            &[
                "5",
                "--vif",
                "0",
                "--ipv4",
                "10.0.0.2/24",
                "--gateway",
                "10.9.0.1",
            ][..],
            2,
        ),
        (
            &["5", "--vif", "0", "--ipv4", "10.0.0.2/24", "--dhcp"][..],
            2,
        ),
        (&["5", "--vif", "0"][..], 2),
        (&["5", "--vif", "1", "--dhcp"][..], 1),
        (&["nosuch", "--vif", "0", "--dhcp"][..], 1),
    ] {
        let out = finish(set_ip(&xs.dom0_socket(), args));
        assert_eq!(
            out.status.code(),
            Some(status),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty());
    }
    assert!(!xs.exists(&format!("{HOME}/xenserver")));
}

#[test]
fn no_wait_writes_and_returns() {
    let (xs, _dir) = host();
    let out = finish(set_ip(
        &xs.dom0_socket(),
        &["5", "--vif", "0", "--autoconf6", "--no-wait"],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "vif 0: written: IPv6 autoconf\n");
    assert_eq!(xs.read(&format!("{DIR}/enabled6")).as_deref(), Some("2"));
    assert_eq!(
        xs.read(&format!("{DIR}/mac")).as_deref(),
        Some("00:16:3e:00:00:05")
    );
}
