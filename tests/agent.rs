//! The agent binary end to end against the fake xenstored, with a fake /proc, /sys and /etc
//! tree behind `--root`: what it publishes, what it removes, what it leaves alone, how it
//! reacts to signals, refusals, quota and lost connections.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::fault_injector::{Fault, MalformedKind};
use support::guest::{meminfo, wait_until, Guest, DOMID, HOME};
use support::tempdir;
use xenbeacon::xenbus::conn::{Endpoint, XenbusConn};
use xenbeacon::xenbus::wire::{MsgType, XsError};

fn expected_debian() -> BTreeMap<String, String> {
    [
        ("data/os_name", "Debian GNU/Linux 12 (bookworm)"),
        ("data/os_distro", "debian"),
        ("data/os_majorver", "12"),
        ("data/os_uname", "6.1.0-test"),
        ("data/meminfo_total", "8000000"),
        ("data/meminfo_free", "4000000"),
        ("data/xenbeacon", ""),
        ("data/xenbeacon/layout", xenbeacon::layout::LAYOUT_VERSION),
        ("data/xenbeacon/version", env!("CARGO_PKG_VERSION")),
        // the fake root has no /proc/self/mountinfo: the real root is assumed
        ("data/xenbeacon/stage", "rootfs"),
        ("attr/PVAddons", ""),
        (
            "attr/PVAddons/MajorVersion",
            env!("CARGO_PKG_VERSION_MAJOR"),
        ),
        (
            "attr/PVAddons/MinorVersion",
            env!("CARGO_PKG_VERSION_MINOR"),
        ),
        (
            "attr/PVAddons/MicroVersion",
            env!("CARGO_PKG_VERSION_PATCH"),
        ),
        ("attr/PVAddons/BuildVersion", "0"),
        ("attr/PVAddons/Installed", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The published set without `data/updated` (a timestamp), which must be a decimal number.
fn without_updated(mut p: BTreeMap<String, String>) -> BTreeMap<String, String> {
    let updated = p.remove("data/updated").expect("data/updated missing");
    assert!(updated.parse::<u64>().is_ok(), "data/updated = {updated}");
    p
}

#[test]
fn once_publishes_identity_memory_and_version() {
    let g = Guest::new("once");
    g.once(&[]);
    assert_eq!(without_updated(g.published()), expected_debian());
}

#[test]
fn round_order_is_data_then_updated_then_attr() {
    let g = Guest::new("order");
    let mut dom0 = XenbusConn::open(&Endpoint::Socket(g.xs.dom0_socket())).unwrap();
    dom0.watch(HOME, "home").unwrap();
    g.once(&[]);
    // Watch events come in the order the store committed them: once the event of a key dom0
    // writes after the agent exited is in, so is every event of the agent's round.
    let mark = format!("{HOME}/e2e-mark");
    dom0.write(&mark, b"1").unwrap();
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    'read: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no event for {mark}: {events:?}"
        );
        dom0.receive().unwrap();
        while let Some(ev) = dom0.pending_event() {
            if ev.path == mark {
                break 'read;
            }
            if ev.path != HOME {
                events.push(ev.path.trim_start_matches(&format!("{HOME}/")).to_owned());
            }
        }
        std::thread::sleep(Duration::from_millis(5)); // (a non-blocking fd: poll it)
    }
    let pos = |k: &str| {
        events
            .iter()
            .position(|e| e == k)
            .unwrap_or_else(|| panic!("{k} not in {events:?}"))
    };
    let updated = pos("data/updated");
    assert!(events
        .iter()
        .filter(|e| e.starts_with("data/"))
        .all(|e| pos(e) <= updated));
    let first_attr = events.iter().position(|e| e.starts_with("attr/")).unwrap();
    assert!(updated < first_attr, "{events:?}");
    assert!(
        events[first_attr..].iter().all(|e| e.starts_with("attr/")),
        "{events:?}"
    );
}

#[test]
fn restart_of_an_unchanged_guest_writes_nothing() {
    let g = Guest::new("restart");
    g.once(&[]);
    let before = g.published();
    g.xs.reset_stats();
    // Free memory moved by less than the threshold: still nothing to write.
    g.file("proc/meminfo", &meminfo(8_000_000, 4_000_500));
    let out = g.once(&[]);
    let stats = g.xs.stats();
    assert_eq!(
        stats.count(DOMID, MsgType::Write),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stats.count(DOMID, MsgType::Rm), 0);
    assert_eq!(stats.count(DOMID, MsgType::Mkdir), 0);
    assert_eq!(g.published(), before);
}

/// With the layout marker present the store is read back before the round; without it the
/// round goes out first and the read-back follows. Either way stale keys go.
fn stale_keys_go_foreign_keys_stay(name: &str, layout_marker: bool) {
    let g = Guest::new(name);
    if layout_marker {
        g.xs.write(&format!("{HOME}/data/xenbeacon/layout"), "1");
    }
    g.xs.write(&format!("{HOME}/data/os_minorver"), "99");
    g.xs.write(&format!("{HOME}/attr/PVAddons/Old"), "x");
    g.xs.write(&format!("{HOME}/attr/PVAddons/Old/deeper"), "y");
    g.xs.write(&format!("{HOME}/data/other-agent/status"), "keep");
    // A NIC of a previous run that no longer exists: ours, stale.
    g.xs.write(&format!("{HOME}/attr/vif/0/ipv4/0"), "10.0.0.2");
    g.xs.write(&format!("{HOME}/attr/net/00163e000001/name"), "eth9");
    // Another tool's key under attr/: not ours.
    g.xs.write(&format!("{HOME}/attr/os/hotfixes"), "keep");
    g.once(&[]);
    let mut want = expected_debian();
    want.insert("data/other-agent".into(), "".into());
    want.insert("data/other-agent/status".into(), "keep".into());
    want.insert("attr/os".into(), "".into());
    want.insert("attr/os/hotfixes".into(), "keep".into());
    assert_eq!(without_updated(g.published()), want);
}

#[test]
fn stale_keys_go_foreign_keys_stay_after_a_read_back() {
    stale_keys_go_foreign_keys_stay("stale-marker", true);
}

#[test]
fn stale_keys_go_foreign_keys_stay_without_the_layout_marker() {
    stale_keys_go_foreign_keys_stay("stale", false);
}

/// On a store with nothing of ours (a new domain) the first write follows the toolstack
/// hints and one probe of the layout marker, not a read-back of every owned node, nor the
/// domain's identity (read after the round): in a PV guest each round trip costs about a
/// millisecond.
#[test]
fn a_fresh_store_is_written_before_it_is_read_back() {
    let g = Guest::new("fresh");
    g.once(&[]);
    let seq = g.xs.sequence(DOMID);
    let first_write = seq
        .iter()
        .position(|t| *t == MsgType::Write)
        .expect("no write");
    // the SR-IOV directory, the vif directory, the pcifront backend, the marker
    assert_eq!(first_write, 4, "{seq:?}");
    let reads_after = seq[first_write..]
        .iter()
        .filter(|t| matches!(t, MsgType::Read | MsgType::Directory))
        .count();
    assert!(
        reads_after >= 15,
        "the read-back after the round is missing: {seq:?}"
    );
    assert_eq!(without_updated(g.published()), expected_debian());
    // The read-back found exactly what the round wrote: nothing was sent after it.
    let sweep = first_write
        + seq[first_write..]
            .iter()
            .position(|t| *t != MsgType::Write)
            .unwrap();
    assert!(
        seq[sweep..]
            .iter()
            .all(|t| matches!(t, MsgType::Read | MsgType::Directory)),
        "{seq:?}"
    );
}

#[test]
fn initramfs_without_os_release_publishes_a_fallback() {
    let g = Guest::new("initramfs");
    fs::remove_file(g.root.path().join("etc/os-release")).unwrap();
    g.once(&[]);
    assert_eq!(g.get("data/os_name").as_deref(), Some("Linux 6.1.0-test"));
    assert_eq!(g.get("data/os_distro").as_deref(), Some("linux"));
    assert_eq!(g.get("data/os_majorver"), None);
    // /usr/lib/os-release is the second choice
    g.file(
        "usr/lib/os-release",
        "ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
    );
    g.once(&[]);
    assert_eq!(g.get("data/os_name").as_deref(), Some("Alpine Linux v3.20"));
    assert_eq!(g.get("data/os_majorver").as_deref(), Some("3"));
    assert_eq!(g.get("data/os_minorver").as_deref(), Some("20"));
}

#[test]
fn hostile_os_release_values_are_sanitised() {
    let g = Guest::new("hostile");
    let long = "A".repeat(10 * 1024);
    g.file(
        "etc/os-release",
        &format!("PRETTY_NAME=\"evil\\\\\u{1b}[2Jname\ttab\"\nID=caf\u{e9}\nVERSION_ID=\"{long}\"\nNAME=\"{long}\"\n"),
    );
    g.once(&[]);
    let name = g.get("data/os_name").unwrap();
    assert_eq!(name, "evil\\ [2Jname tab");
    assert_eq!(g.get("data/os_distro").as_deref(), Some("caf\u{e9}"));
    assert_eq!(g.get("data/os_majorver"), None);
    // a 10 KiB NAME would be used if PRETTY_NAME were missing: cut to 1024 bytes
    g.file("etc/os-release", &format!("NAME=\"{long}\"\n"));
    g.once(&[]);
    assert_eq!(g.get("data/os_name").map(|s| s.len()), Some(1024));
}

#[test]
fn daemon_follows_memory_sighup_and_exits_cleanly_on_sigterm() {
    let g = Guest::new("daemon");
    let d = g.daemon(&["--memory-interval", "1", "--memory-threshold", "0"]);
    g.wait_for("attr/PVAddons/Installed", "1");
    g.file("proc/meminfo", &meminfo(6_000_000, 3_000_000));
    g.wait_for("data/meminfo_free", "3000000");
    g.wait_for("data/meminfo_total", "6000000");

    g.file("etc/os-release", "PRETTY_NAME=\"Changed\"\nID=changed\n");
    g.xs.rm(&format!("{HOME}/data/os_uname"));
    d.signal(libc::SIGHUP);
    g.wait_for("data/os_name", "Changed");
    g.wait_for("data/os_distro", "changed");
    g.wait_for("data/os_uname", "6.1.0-test");
    assert_eq!(g.get("data/os_majorver"), None);
    let log = d.stop();
    assert!(log.contains("SIGHUP"), "{log}");
}

#[test]
fn sigint_exits_with_status_zero() {
    let g = Guest::new("sigint");
    let mut d = g.daemon(&[]);
    g.wait_for("attr/PVAddons/Installed", "1");
    d.signal(libc::SIGINT);
    assert!(d.child.wait().unwrap().success());
}

#[test]
fn a_refused_key_is_logged_once_and_the_rest_published() {
    let g = Guest::new("eacces");
    g.xs.faults().add(
        Fault::Errno {
            domid: Some(DOMID),
            msg_type: Some(MsgType::Write),
            path_prefix: format!("{HOME}/data/os_name"),
            error: XsError::Eacces,
        },
        None,
    );
    let d = g.daemon(&["--memory-interval", "1", "--memory-threshold", "0"]);
    g.wait_for("attr/PVAddons/Installed", "1");
    // Three more rounds that write something else.
    for free in [3_000_001, 3_000_002, 3_000_003] {
        g.file("proc/meminfo", &meminfo(8_000_000, free));
        g.wait_for("data/meminfo_free", &free.to_string());
    }
    assert_eq!(g.get("data/os_name"), None);
    assert_eq!(g.get("data/os_distro").as_deref(), Some("debian"));
    // Once the refusal is gone, SIGHUP republishes it.
    g.xs.faults().clear();
    d.signal(libc::SIGHUP);
    g.wait_for("data/os_name", "Debian GNU/Linux 12 (bookworm)");
    let log = d.stop();
    assert_eq!(log.matches("EACCES").count(), 1, "{log}");
}

#[test]
fn quota_refusals_are_retried_and_logged_once() {
    let g = Guest::new("quota");
    let owned = g.xs.node_count(DOMID);
    g.xs.set_quota(DOMID, owned + 4);
    let d = g.daemon(&["--memory-interval", "1"]);
    wait_until("an ENOSPC warning", || d.log().contains("ENOSPC"));
    // data/* goes first, so the first keys in are data keys
    assert!(g.get("data/meminfo_free").is_some());
    assert_eq!(g.get("attr/PVAddons/Installed"), None);
    std::thread::sleep(Duration::from_millis(2500)); // two more rounds, still refused
    g.xs.set_quota(DOMID, 1000);
    g.wait_for("attr/PVAddons/Installed", "1");
    assert_eq!(without_updated(g.published()), expected_debian());
    let log = d.stop();
    assert_eq!(log.matches("ENOSPC").count(), 1, "{log}");
}

#[test]
fn lost_connection_reconnects_and_republishes() {
    let g = Guest::new("reconnect");
    let d = g.daemon(&[]);
    g.wait_for("attr/PVAddons/Installed", "1");
    // xenstored restarts with a rebuilt tree
    g.xs.rm(&format!("{HOME}/data/os_name"));
    g.xs.rm(&format!("{HOME}/attr/PVAddons"));
    g.xs.disconnect_all();
    g.wait_for("data/os_name", "Debian GNU/Linux 12 (bookworm)");
    g.wait_for("attr/PVAddons/Installed", "1");
    assert_eq!(without_updated(g.published()), expected_debian());
    let log = d.stop();
    assert!(log.contains("connection lost"), "{log}");
}

#[test]
fn malformed_replies_and_closed_connections_end_in_the_right_state() {
    let g = Guest::new("faults");
    g.xs.faults().add(Fault::CloseMidRequest, Some(2));
    g.xs.faults()
        .add(Fault::Malformed(MalformedKind::WrongLength), Some(1));
    g.xs.faults()
        .add(Fault::Malformed(MalformedKind::UnknownType), Some(2));
    g.xs.faults()
        .add(Fault::Malformed(MalformedKind::MissingNul), Some(1));
    g.xs.faults().add(Fault::SpuriousWatchEvent, Some(20));
    let d = g.daemon(&[]);
    wait_until("every fault consumed and the keys published", || {
        g.xs.faults().armed() == 0 && g.get("attr/PVAddons/Installed").is_some()
    });
    wait_until("a complete publication", || {
        let p = g.published();
        p.contains_key("data/updated") && without_updated(p) == expected_debian()
    });
    d.stop();
}

#[test]
fn dry_run_prints_the_keys_in_publication_order() {
    let g = Guest::new("dry");
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .args(["--dry-run", "--root"])
        .arg(g.root.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let keys: Vec<&str> = lines
        .iter()
        .map(|l| l.split(" = ").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "data/meminfo_free",
            "data/meminfo_total",
            "data/os_distro",
            "data/os_majorver",
            "data/os_name",
            "data/os_uname",
            "data/xenbeacon/layout",
            "data/xenbeacon/stage",
            "data/xenbeacon/version",
            "data/updated",
            "attr/PVAddons/BuildVersion",
            "attr/PVAddons/Installed",
            "attr/PVAddons/MajorVersion",
            "attr/PVAddons/MicroVersion",
            "attr/PVAddons/MinorVersion",
        ]
    );
    assert!(lines.contains(&"data/os_name = Debian GNU/Linux 12 (bookworm)"));
    assert!(lines.contains(&"data/meminfo_free = 4000000"));
}

#[test]
fn outside_xen_it_says_so_and_fails() {
    let root = tempdir("notxen");
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .arg("--root")
        .arg(root.path())
        .env_remove("XENBEACON_XENSTORE")
        .output()
        .unwrap();
    if Path::new("/dev/xen/xenbus").exists() || Path::new("/proc/xen/xenbus").exists() {
        return; // running inside a Xen guest: nothing to check here
    }
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not running in a Xen guest"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unreachable_xenstore_with_once_fails_with_one_line() {
    let root = tempdir("nosock");
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .args(["--once", "--xenstore"])
        .arg(root.path().join("missing.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open xenstore"), "{err}");
}

#[test]
fn version_and_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("xenbeacon {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--xenstore",
        "--dry-run",
        "--once",
        "--memory-interval",
        "--memory-threshold",
        "--log-level",
        "--root",
        "--version",
        "SIGHUP",
    ] {
        assert!(help.contains(opt), "--help does not mention {opt}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .args(["--log-level", "loud", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .args(["--no-such-option"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--help"));
}

/// xapi's netbios_name comes from data/host_name_dns and data/domain; a FQDN host name is
/// split at its first dot, and the kernel's unset domain name `(none)` is no domain.
#[test]
fn host_and_domain_name_are_published() {
    let g = Guest::new("hostname");
    g.file("proc/sys/kernel/hostname", "web1.example.com\n");
    g.file("proc/sys/kernel/domainname", "(none)\n");
    g.once(&[]);
    assert_eq!(g.get("data/host_name_dns").as_deref(), Some("web1"));
    assert_eq!(g.get("data/domain").as_deref(), Some("example.com"));
    g.file("proc/sys/kernel/hostname", "db2\n");
    g.once(&[]);
    assert_eq!(g.get("data/host_name_dns").as_deref(), Some("db2"));
    assert_eq!(g.get("data/domain"), None);
    g.file("proc/sys/kernel/domainname", "corp\n");
    g.once(&[]);
    assert_eq!(g.get("data/domain").as_deref(), Some("corp"));
}

/// SIGUSR1 logs the counters once, and the agent goes on.
#[test]
fn sigusr1_logs_the_counters() {
    let g = Guest::new("stats");
    let d = g.daemon(&["--log-level", "info"]);
    g.wait_for("attr/PVAddons/Installed", "1");
    d.signal(libc::SIGUSR1);
    wait_until("stats line", || d.log().contains("stats: "));
    let log = d.log();
    let line = log.lines().find(|l| l.contains("stats: ")).unwrap();
    // the first rounds wrote every key: at least one round and some writes
    let rounds: u64 = line
        .split("stats: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(rounds >= 1, "{line}");
    assert!(!line.contains(" 0 written"), "{line}");
    // still running
    d.signal(libc::SIGHUP);
    wait_until("SIGHUP after SIGUSR1", || d.log().contains("SIGHUP"));
    d.stop();
}
