//! `xenbeacon list`, `show` and `wait` against the fake xenstored: the real binary, several
//! domains (xenbeacon's layout, XAPI-style keys only, no agent), dom0's privileged socket and
//! a domU's socket (no access to other domains), a domain removed while it is being read, and
//! waits that must end within a second of the key appearing, without polling.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::fake_xenstored::FakeXenstored;
use support::{tempdir, TempDir};
use xenbeacon::xenbus::server_wire;
use xenbeacon::xenbus::wire::{self, Packet, Request, HEADER_LEN};

/// A host: dom0, a xenbeacon guest (1, web1), a guest with another agent (2, win), a guest
/// without an agent (3, bare).
struct Host {
    xs: FakeXenstored,
    dom0: PathBuf,
    dir: TempDir,
}

const WEB1: &str = "/local/domain/1";

fn xenbeacon_guest(xs: &FakeXenstored, domid: u32, name: &str) {
    xs.add_domain(domid);
    let h = format!("/local/domain/{domid}");
    for (k, v) in [
        ("name", name),
        ("data/os_name", "Debian GNU/Linux 12 (bookworm)"),
        ("data/os_distro", "debian"),
        ("data/os_majorver", "12"),
        ("data/os_uname", "6.1.0-28-amd64"),
        ("data/meminfo_total", "2013232"),
        ("data/meminfo_free", "1503232"),
        ("data/updated", "1795511149"),
        ("data/xenbeacon/layout", "1"),
        ("data/xenbeacon/version", "0.1.0"),
        ("data/xenbeacon/stage", "rootfs"),
        ("data/host_name_dns", "web1"),
        ("data/domain", "example.com"),
        // layout 1's balloon keys
        ("data/balloon_target_kb", "2097152"),
        ("data/balloon_current_kb", "2097152"),
        ("data/balloon_state", "reached"),
        ("attr/PVAddons/MajorVersion", "0"),
        ("attr/PVAddons/MinorVersion", "1"),
        ("attr/PVAddons/MicroVersion", "0"),
        ("attr/PVAddons/BuildVersion", "0"),
        ("attr/PVAddons/Installed", "1"),
        ("attr/vif/0/name", "eth0"),
        ("attr/vif/0/mac/0", "00:16:3e:00:00:01"),
        ("attr/vif/0/carrier", "1"),
        ("attr/vif/0/bridge", "br0"),
        ("attr/vif/0/vlan/100/name", "eth0.100"),
        ("attr/vif/0/vlan/100/ipv4/0", "10.0.100.2"),
        ("attr/vif/0/vlan/100/ipv4/0/prefix", "24"),
        ("attr/net/525400123405/name", "enp0s5"),
        ("attr/net/525400123405/mac", "52:54:00:12:34:05"),
        ("attr/net/525400123405/bus", "pci"),
        ("attr/net/525400123405/location", "0000:00:00.0"),
        ("attr/net/525400123405/host-location", "0000:00:05.0"),
        ("attr/net/525400123405/driver", "e1000"),
        ("attr/net/525400123405/ipv4/0", "10.0.2.15"),
        ("attr/net/525400123405/ipv4/0/prefix", "24"),
        ("attr/net/525400123406/name", "usb0"),
        ("attr/net/525400123406/mac", "52:54:00:12:34:06"),
        ("attr/net/525400123406/bus", "usb"),
        ("attr/net/525400123407/name", "end0"),
        ("attr/net/525400123407/mac", "52:54:00:12:34:07"),
        ("attr/net/525400123407/bus", "platform"),
        ("xenserver/attr/net-sriov-vf/2/name", "eth2"),
        ("xenserver/attr/net-sriov-vf/2/mac", "02:00:00:00:00:02"),
        ("xenserver/attr/net-sriov-vf/2/ipv4/0", "192.0.2.9"),
        ("device/vif/0/mac", "00:16:3e:00:00:01"),
    ] {
        xs.write(&format!("{h}/{k}"), v);
    }
}

fn host(name: &str) -> Host {
    let dir = tempdir(name);
    let xs = FakeXenstored::start(dir.path());
    xs.write("/local/domain/0/name", "Domain-0");
    xs.write("/local/domain/0/domid", "0");
    xenbeacon_guest(&xs, 1, "web1");

    xs.add_domain(2);
    for (k, v) in [
        ("name", "win"),
        ("data/os_name", "Microsoft Windows Server 2019 Standard"),
        ("data/os_distro", "windows"),
        ("data/os_majorver", "10"),
        ("data/os_uname", "10.0.17763"),
        ("data/meminfo_total", "4193848"),
        ("data/meminfo_free", "2936880"),
        ("data/updated", "Mon Nov 24 09:41:09 2026"),
        ("attr/PVAddons/MajorVersion", "9"),
        ("attr/PVAddons/MinorVersion", "3"),
        ("attr/PVAddons/MicroVersion", "1"),
        ("attr/PVAddons/BuildVersion", "123"),
        ("attr/vif/0/ipv4/0", "10.0.0.50"),
        ("attr/vif/0/ipv6/0", "fe80::50"),
    ] {
        xs.write(&format!("/local/domain/2/{k}"), v);
    }

    xs.add_domain(3);
    xs.write("/local/domain/3/name", "bare");
    xs.write("/local/domain/3/device/vif/0/mac", "00:16:3e:00:00:03");

    let dom0 = xs.dom0_socket();
    Host { xs, dom0, dir }
}

fn command(sock: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xenbeacon"));
    c.args(args)
        .arg("--xenstore")
        .arg(sock)
        .env_remove("XENBEACON_XENSTORE");
    c
}

fn run(sock: &Path, args: &[&str]) -> Output {
    command(sock, args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects exit status 0; stdout.
fn ok(sock: &Path, args: &[&str]) -> String {
    let o = run(sock, args);
    assert!(
        o.status.success(),
        "{args:?}: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The line of `out` that starts with `prefix` (columns are separated by 2+ spaces).
fn line_of<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in\n{out}"))
}

/// The cells of a table line.
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn list_shows_every_domain_and_agent() {
    let h = host("list");
    let out = ok(&h.dom0, &["list"]);
    println!("{out}");
    let header = cells(line_of(&out, "DOMID  NAME  "));
    assert_eq!(
        header,
        ["DOMID", "NAME", "AGENT", "OS", "KERNEL", "STAGE", "BOOTED", "MEM", "FREE", "BALLOON"]
    );
    assert_eq!(
        cells(line_of(&out, "0 ")),
        ["0", "Domain-0", "none", "-", "-", "-", "-", "-", "-", "-"]
    );
    assert_eq!(
        cells(line_of(&out, "1 ")),
        [
            "1",
            "web1",
            "xenbeacon layout 1",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-28-amd64",
            "rootfs",
            "no",
            "1.9 GiB",
            "1.4 GiB",
            "reached"
        ]
    );
    assert_eq!(
        cells(line_of(&out, "2 ")),
        [
            "2",
            "win",
            "xapi-style",
            "Microsoft Windows Server 2019 Standard",
            "10.0.17763",
            "-",
            "yes",
            "4 GiB",
            "2.8 GiB",
            "-"
        ]
    );
    assert_eq!(
        cells(line_of(&out, "3 ")),
        ["3", "bare", "none", "-", "-", "-", "-", "-", "-", "-"]
    );
    // Columns are aligned: every row of the first table has AGENT at the same offset.
    let at = |l: &str, s: &str| l.find(s).unwrap();
    let col = at(line_of(&out, "DOMID  NAME  "), "AGENT");
    assert_eq!(at(line_of(&out, "1 "), "xenbeacon"), col);
    assert_eq!(at(line_of(&out, "2 "), "xapi-style"), col);

    // The NIC table: every kind, its addresses.
    let nics: Vec<Vec<&str>> = out
        .split("\n\n")
        .nth(1)
        .expect("a NIC table")
        .lines()
        .map(cells)
        .collect();
    let want: Vec<Vec<&str>> = vec![
        vec!["DOMID", "NAME", "NIC", "IFACE", "MAC", "VIA", "ADDRESSES"],
        vec![
            "1",
            "web1",
            "vif 0",
            "eth0",
            "00:16:3e:00:00:01",
            "bridge br0",
            "-",
        ],
        vec![
            "1",
            "web1",
            "VLAN 100",
            "eth0.100",
            "-",
            "eth0",
            "10.0.100.2/24",
        ],
        vec![
            "1",
            "web1",
            "SR-IOV VF 2",
            "eth2",
            "02:00:00:00:00:02",
            "-",
            "192.0.2.9",
        ],
        vec![
            "1",
            "web1",
            "PCI",
            "enp0s5",
            "52:54:00:12:34:05",
            "-",
            "10.0.2.15/24",
        ],
        vec!["1", "web1", "USB", "usb0", "52:54:00:12:34:06", "-", "-"],
        vec![
            "1",
            "web1",
            "platform",
            "end0",
            "52:54:00:12:34:07",
            "-",
            "-",
        ],
        vec!["2", "win", "vif 0", "-", "-", "-", "10.0.0.50 fe80::50"],
        vec![
            "3",
            "bare",
            "vif 0",
            "-",
            "00:16:3e:00:00:03",
            "-",
            "(not reported by the guest)",
        ],
    ];
    assert_eq!(nics, want, "\n{out}");
}

#[test]
fn list_json() {
    let h = host("listjson");
    let out = ok(&h.dom0, &["list", "--json"]);
    assert!(
        out.starts_with(r#"{"domains":[{"domid":0,"name":"Domain-0","#),
        "{out}"
    );
    assert!(out.ends_with("]}\n"), "{out}");
    assert_eq!(out.lines().count(), 1);
    for want in [
        r#""domid":1,"name":"web1","uuid":null,"access":"full","denied":[],"agent":{"kind":"xenbeacon","layout":"1","version":"0.1.0","pv_version":null}"#,
        r#""os":{"name":"Debian GNU/Linux 12 (bookworm)","distro":"debian","major":"12","minor":null,"kernel":"6.1.0-28-amd64","host_name":"web1.example.com"},"stage":"rootfs","booted":false,"booted_by":null"#,
        r#""balloon":{"target_kb":2097152,"current_kb":2097152,"state":"reached","reason":null}"#,
        r#""kind":"pci","id":"525400123405","path":"attr/net/525400123405","reported":true,"name":"enp0s5""#,
        r#""host_location":"0000:00:05.0""#,
        r#""ipv4":[{"index":0,"address":"10.0.2.15","prefix":24}]"#,
        r#""uppers":[{"kind":"vlan","id":"100","name":"eth0.100","mac":null,"ipv4":[{"index":0,"address":"10.0.100.2","prefix":24}],"ipv6":[]}]"#,
        r#""agent":{"kind":"xapi-style","layout":null,"version":null,"pv_version":"9.3.1.123"}"#,
        r#""booted":true,"booted_by":"data/updated","updated":"Mon Nov 24 09:41:09 2026""#,
        r#""domid":3,"name":"bare","uuid":null,"access":"full","denied":[],"agent":{"kind":"none""#,
        r#""kind":"vif","id":"0","path":"attr/vif/0","reported":false,"name":null,"mac":"00:16:3e:00:00:03""#,
    ] {
        assert!(out.contains(want), "missing {want}\nin {out}");
    }
}

#[test]
fn show_text_and_json() {
    let h = host("show");
    let by_name = ok(&h.dom0, &["show", "web1"]);
    let by_id = ok(&h.dom0, &["show", "1"]);
    assert_eq!(by_name, by_id);
    println!("{by_name}");
    for want in [
        "web1 (domid 1)\n",
        "identity\n",
        "  agent        xenbeacon 0.1.0 (layout 1)\n",
        "  os           Debian GNU/Linux 12 (bookworm)\n",
        "  distro       debian 12\n",
        "  kernel       6.1.0-28-amd64\n",
        "boot\n",
        "  stage        rootfs\n",
        "  booted       no\n",
        "  updated      2026-11-24 09:05:49 UTC (1795511149)\n",
        "memory\n",
        "  total        1.9 GiB (2013232 KiB)\n",
        "  target       128 MiB (131072 KiB)\n",
        "  balloon      reached: at 2 GiB, target 2 GiB\n",
        "nics\n",
        "  vif 0  eth0  00:16:3e:00:00:01  (bridge br0)  carrier up\n",
        "      VLAN 100  eth0.100\n",
        "          ipv4/0      10.0.100.2/24\n",
        "  PCI  enp0s5  52:54:00:12:34:05\n",
        "      host        0000:00:05.0\n",
        "      ipv4/0      10.0.2.15/24\n",
    ] {
        assert!(by_name.contains(want), "missing {want:?} in\n{by_name}");
    }
    let win = ok(&h.dom0, &["show", "win"]);
    assert!(
        win.contains("  agent        xapi-style (another agent; PV drivers version 9.3.1.123)\n"),
        "{win}"
    );
    assert!(
        win.contains("  booted       yes (data/updated exists: an agent runs)\n"),
        "{win}"
    );
    let bare = ok(&h.dom0, &["show", "bare"]);
    assert!(bare.contains("  agent        none"), "{bare}");
    assert!(
        bare.contains(
            "  vif 0  00:16:3e:00:00:03  (configured by the toolstack; not reported by the guest)"
        ),
        "{bare}"
    );

    let json = ok(&h.dom0, &["show", "web1", "--json"]);
    assert!(json.starts_with(r#"{"domid":1,"name":"web1","#), "{json}");
    assert!(json.ends_with("}\n"), "{json}");

    let missing = run(&h.dom0, &["show", "nosuch"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no domain 'nosuch'"),
        "{}",
        stderr(&missing)
    );
    let missing = run(&h.dom0, &["show", "42"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn hostile_guest_values_are_escaped() {
    let h = host("hostile");
    h.xs.write(
        &format!("{WEB1}/data/os_name"),
        "\u{1b}]0;owned\u{7}\"Evil\" \\ OS\nline2 ü",
    );
    // Invisible format and separator characters: a line break, zero-width, a BOM.
    h.xs.write(
        &format!("{WEB1}/data/os_uname"),
        "6.1\u{2028}\u{200b}x\u{feff}\u{2066}",
    );
    let text = ok(&h.dom0, &["show", "web1"]);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("  kernel       6.1??x??\n"), "{text:?}");
    for c in ['\u{2028}', '\u{200b}', '\u{feff}', '\u{2066}'] {
        assert!(!text.contains(c), "{text:?}");
    }
    assert!(text.contains("?]0;owned?\"Evil\" \\ OS?line2 ü"), "{text}");
    let list = ok(&h.dom0, &["list"]);
    assert!(!list.contains('\u{1b}'), "{list:?}");
    assert!(
        !list.contains('\u{2028}') && !list.contains('\u{feff}'),
        "{list:?}"
    );
    let json = ok(&h.dom0, &["show", "web1", "--json"]);
    assert!(
        json.contains(r#""name":"\u001b]0;owned\u0007\"Evil\" \\ OS\nline2 ü""#),
        "{json}"
    );
}

/// From domU 5's socket: another domain's keys are "no access", its own are readable.
#[test]
fn domu_sees_no_access() {
    let h = host("domu");
    let sock5 = h.xs.add_domain(5);
    h.xs.write("/local/domain/5/data/xenbeacon/layout", "1");

    // /local/domain itself is not listable for a domU (as on real Xen): only its own domain.
    let o = run(&sock5, &["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no access to /local/domain"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        cells(line_of(&stdout(&o), "5 "))[1..3],
        ["guest5", "xenbeacon layout 1"]
    );
    assert!(!stdout(&o).contains("web1"));

    // With /local/domain listable, the other homes are still refused: "no access".
    h.xs.set_perms("/local/domain", "n0,r5");
    let out = ok(&sock5, &["list"]);
    println!("{out}");
    let web1 = cells(line_of(&out, "1 "));
    assert_eq!(web1[..3], ["1", "no access", "no access"], "{out}");
    assert!(
        out.lines()
            .any(|l| cells(l) == ["1", "no access", "no access"]),
        "{out}"
    );
    assert_eq!(cells(line_of(&out, "5 "))[1], "guest5");

    let o = run(&sock5, &["show", "1"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).contains("no access"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("no access to /local/domain/1"),
        "{}",
        stderr(&o)
    );
    let json = ok(&sock5, &["list", "--json"]);
    assert!(json.contains(r#""domid":1,"name":null,"uuid":null,"access":"none","denied":[""],"agent":{"kind":"no-access""#), "{json}");

    // Partly readable: data/ is, attr/ is not.
    h.xs.set_perms("/local/domain/1", "n0,r5");
    h.xs.set_perms("/local/domain/1/name", "n0,r5");
    h.xs.set_perms("/local/domain/1/data", "n1,r5");
    for k in ["os_name", "os_uname", "xenbeacon", "xenbeacon/layout"] {
        h.xs.set_perms(&format!("/local/domain/1/data/{k}"), "n1,r5");
    }
    let out = ok(&sock5, &["show", "web1"]);
    assert!(
        out.contains("  os           Debian GNU/Linux 12 (bookworm)\n"),
        "{out}"
    );
    assert!(out.contains("  total        no access\n"), "{out}");
    assert!(out.contains("nics\n  no access (attr/)\n"), "{out}");
}

/// A UNIX-socket proxy to dom0's socket that removes `home` just before forwarding the first
/// request for a path starting with `trigger`: the domain vanishes while it is being read.
fn vanishing_proxy<'s>(
    scope: &'s thread::Scope<'s, '_>,
    xs: &'s FakeXenstored,
    listen: &Path,
    trigger: &'s str,
    home: &'s str,
    fired: &'s AtomicBool,
) {
    let listener = UnixListener::bind(listen).unwrap();
    let upstream = xs.dom0_socket();
    scope.spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let server = UnixStream::connect(&upstream).unwrap();
        let (mut s_read, mut c_write) = (server.try_clone().unwrap(), client.try_clone().unwrap());
        scope.spawn(move || {
            let _ = std::io::copy(&mut s_read, &mut c_write);
            let _ = c_write.shutdown(std::net::Shutdown::Both);
        });
        let mut server = server;
        loop {
            let mut msg = vec![0u8; HEADER_LEN];
            if client.read_exact(&mut msg).is_err() {
                break;
            }
            let len = wire::message_len(&msg).unwrap().unwrap();
            msg.resize(len, 0);
            client.read_exact(&mut msg[HEADER_LEN..]).unwrap();
            let p = Packet::new_unchecked(&msg[..]);
            let path = p
                .msg_type()
                .ok()
                .and_then(|t| Request::parse(t, p.payload()).ok())
                .and_then(|r| r.path().map(str::to_owned));
            if path.is_some_and(|p| p.starts_with(trigger)) && !fired.swap(true, Ordering::SeqCst) {
                xs.rm(home);
            }
            if server.write_all(&msg).is_err() {
                break;
            }
        }
        let _ = server.shutdown(std::net::Shutdown::Both);
    });
}

#[test]
fn domain_vanishing_mid_read_is_skipped() {
    let h = host("vanish");
    xenbeacon_guest(&h.xs, 9, "doomed");
    let fired = AtomicBool::new(false);
    let proxy = h.dir.path().join("proxy.sock");
    thread::scope(|s| {
        // Removed after its home was listed and data/ was read, while attr/ is read.
        vanishing_proxy(
            s,
            &h.xs,
            &proxy,
            "/local/domain/9/attr",
            "/local/domain/9",
            &fired,
        );
        let out = ok(&proxy, &["list"]);
        println!("{out}");
        assert!(
            fired.load(Ordering::SeqCst),
            "the proxy never saw domain 9 being read"
        );
        assert!(!out.contains("doomed"), "{out}");
        assert!(!out.lines().any(|l| l.starts_with("9 ")), "{out}");
        for d in ["0 ", "1 ", "2 ", "3 "] {
            line_of(&out, d);
        }
    });
    // Removed right after the listing: the first request for its home.
    xenbeacon_guest(&h.xs, 9, "doomed");
    let fired = AtomicBool::new(false);
    let proxy = h.dir.path().join("proxy2.sock");
    thread::scope(|s| {
        vanishing_proxy(
            s,
            &h.xs,
            &proxy,
            "/local/domain/9",
            "/local/domain/9",
            &fired,
        );
        let out = ok(&proxy, &["list", "--json"]);
        assert!(fired.load(Ordering::SeqCst));
        assert!(
            !out.contains("doomed") && out.contains(r#""domid":3,"#),
            "{out}"
        );
    });
}

/// Runs `xenbeacon ARGS` to the end; (exit code, stdout bytes, stdout's start and end with
/// stderr, its peak RSS in KiB).
///
/// Not from this process: a child's peak RSS (`ru_maxrss`) starts from the memory of the
/// process that forked it, and this one holds the fake xenstored's tree (~100 MiB here). So
/// this test binary runs again as [`maxrss_helper`], a fresh small process, which runs
/// xenbeacon and reports. Its own few MiB are a floor of the figure.
fn run_measured(sock: &Path, args: &[&str]) -> (Option<i32>, usize, String, u64) {
    let result = sock.with_extension("maxrss");
    let o = Command::new(std::env::current_exe().unwrap())
        .args(["maxrss_helper", "--exact", "--ignored", "--nocapture"])
        .env("XB_MAXRSS_SOCK", sock)
        .env("XB_MAXRSS_ARGS", args.join("\u{1f}"))
        .env("XB_MAXRSS_RESULT", &result)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&result).unwrap();
    let _ = std::fs::remove_file(&result);
    let (head, rest) = text.split_once('\n').unwrap();
    let f: Vec<i64> = head.split(' ').map(|n| n.parse().unwrap()).collect();
    let code = (f[0] >= 0).then_some(f[0] as i32);
    (code, f[1] as usize, rest.to_owned(), f[2] as u64)
}

/// Not a test: the helper process of [`run_measured`], run by it with `--ignored`.
#[test]
#[ignore = "the helper process of run_measured, not a test on its own"]
fn maxrss_helper() {
    let sock = std::env::var_os("XB_MAXRSS_SOCK").expect("run by run_measured only");
    let args = std::env::var("XB_MAXRSS_ARGS").unwrap();
    let args: Vec<&str> = args.split('\u{1f}').collect();
    // Reaped by wait4 below, which also gives its resource usage (std's wait does not).
    #[allow(clippy::zombie_processes)]
    let mut child = command(Path::new(&sock), &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = thread::spawn(move || {
        let mut e = String::new();
        let _ = stderr.read_to_string(&mut e);
        e
    });
    let reader = thread::spawn(move || {
        // Keep the start and end, count the rest: the output may be large.
        let (mut n, mut head, mut buf) = (0usize, Vec::new(), vec![0u8; 1 << 16]);
        let mut tail = Vec::new();
        loop {
            let k = stdout.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            n += k;
            if head.len() < 4096 {
                head.extend_from_slice(&buf[..k.min(4096)]);
            }
            tail = buf[k.saturating_sub(64)..k].to_vec();
        }
        head.extend_from_slice(b"\n...\n");
        head.extend_from_slice(&tail);
        (n, String::from_utf8_lossy(&head).into_owned())
    });
    let mut status = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: valid pointers for the whole call; the child is ours and not reaped yet.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let (n, text) = reader.join().unwrap();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let result = format!(
        "{code} {n} {}\n{text}{}",
        usage.ru_maxrss,
        errors.join().unwrap()
    );
    std::fs::write(std::env::var_os("XB_MAXRSS_RESULT").unwrap(), result).unwrap();
}

/// 50 guests filled to their node quota with the largest values they may write: `list` and
/// `list --json` read one domain at a time and keep only what they print, so memory does not
/// grow with what the guests wrote.
#[test]
fn list_memory_is_bounded_per_domain() {
    let h = host("listmem");
    let (_, _, _, floor) = run_measured(&h.dom0, &["list"]);
    println!("list of the 4 small domains: peak RSS {floor} KiB");
    for d in 10..60u32 {
        h.xs.add_domain(d);
        h.xs.write(&format!("/local/domain/{d}/data/xenbeacon/layout"), "1");
        let used = h.xs.node_count(d);
        // 100 to a directory, so that each DIRECTORY reply fits in one message.
        for i in 0..support::fake_xenstored::DEFAULT_NODE_QUOTA - used - 10 {
            let path = format!("/local/domain/{d}/data/d{}/k{}", i / 100, i % 100);
            let len = support::fake_xenstored::NODE_SIZE_MAX - path.len();
            h.xs.write(&path, &"x".repeat(len));
        }
    }
    assert_eq!(
        h.xs.node_count(10),
        support::fake_xenstored::DEFAULT_NODE_QUOTA
    );
    let (code, bytes, out, rss) = run_measured(&h.dom0, &["list"]);
    println!("list: exit {code:?}, {bytes} bytes out, peak RSS {rss} KiB");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\n10     guest10   xenbeacon layout 1"),
        "{out}"
    );
    let (jcode, jbytes, jout, jrss) = run_measured(&h.dom0, &["list", "--json"]);
    println!("list --json: exit {jcode:?}, {jbytes} bytes out, peak RSS {jrss} KiB");
    assert_eq!(jcode, Some(0), "{jout}");
    assert!(jout.starts_with(r#"{"domains":[{"domid":0,"#), "{jout}");
    assert!(jout.ends_with("]}\n"), "{jout}");
    // What 50 domains wrote is ~100 MiB; what is kept must not be.
    assert!(rss < 24 * 1024, "list peak RSS {rss} KiB");
    assert!(jrss < 24 * 1024, "list --json peak RSS {jrss} KiB");
}

/// A `wait` running in the background.
struct Waiter {
    child: Child,
}

impl Waiter {
    fn start(sock: &Path, args: &[&str]) -> Waiter {
        let child = command(sock, &[&["wait"], args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Waiter { child }
    }

    fn assert_blocked(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("wait ended early: {status:?}: {err}");
        }
    }

    /// Waits for the exit; (status code, stdout, stderr, when it exited).
    fn finish(mut self) -> (Option<i32>, String, String, Instant) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "wait never ended");
            thread::sleep(Duration::from_millis(5));
        };
        let ended = Instant::now();
        let (mut out, mut err) = (String::new(), String::new());
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.code(), out, err, ended)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn wait_ip_returns_when_the_address_appears_without_polling() {
    let h = host("waitip");
    // web1 has NICs but no IPv4 on a vif yet; the SR-IOV VF and PCI NIC have addresses, but
    // a vif's comes first once there: remove those to wait for the vif.
    h.xs.rm(&format!("{WEB1}/xenserver"));
    h.xs.rm(&format!("{WEB1}/attr/net"));
    let mut w = Waiter::start(&h.dom0, &["web1", "--ip", "--timeout", "20"]);
    thread::sleep(Duration::from_millis(500));
    w.assert_blocked();
    // Blocked on a watch: once its first read is done (under load that may take a while),
    // no requests at all while nothing changes.
    let settled = Instant::now() + Duration::from_secs(10);
    loop {
        h.xs.reset_stats();
        thread::sleep(Duration::from_millis(300));
        if h.xs.stats().0.values().sum::<u64>() == 0 {
            break;
        }
        assert!(Instant::now() < settled, "wait keeps sending requests");
    }
    h.xs.reset_stats();
    thread::sleep(Duration::from_millis(1000));
    w.assert_blocked();
    let idle = h.xs.stats();
    assert_eq!(
        idle.0.values().sum::<u64>(),
        0,
        "requests while idle: {idle:?}"
    );

    // Changes that are not an IPv4 address (an IPv6 one, another domain) do not end it.
    h.xs.write(&format!("{WEB1}/attr/vif/0/ipv6/0"), "2001:db8::2");
    h.xs.write("/local/domain/2/data/meminfo_free", "1");
    thread::sleep(Duration::from_millis(200));
    w.assert_blocked();

    h.xs.write(&format!("{WEB1}/attr/vif/0/ipv4/0/prefix"), "24"); // node ipv4/0 = "" first
    thread::sleep(Duration::from_millis(200));
    w.assert_blocked();
    let written = Instant::now();
    h.xs.write(&format!("{WEB1}/attr/vif/0/ipv4/0"), "10.0.0.2");
    let (code, out, err, ended) = w.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "10.0.0.2\n");
    let took = ended.duration_since(written);
    println!("wait --ip returned {took:?} after the write");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn wait_nic_and_booted() {
    let h = host("waitnic");
    let mut w = Waiter::start(
        &h.dom0,
        &["1", "--nic", "02:00:00:00:00:aa", "--ip", "--timeout", "20"],
    );
    let mut b = Waiter::start(&h.dom0, &["web1", "--booted", "--timeout", "20"]);
    thread::sleep(Duration::from_millis(400));
    w.assert_blocked();
    b.assert_blocked();
    h.xs.write(&format!("{WEB1}/attr/net/0200000000aa/name"), "usb1");
    h.xs.write(&format!("{WEB1}/attr/net/0200000000aa/bus"), "usb");
    thread::sleep(Duration::from_millis(200));
    w.assert_blocked(); // the NIC, but no address yet
    let t = Instant::now();
    h.xs.write(&format!("{WEB1}/attr/net/0200000000aa/ipv4/0"), "10.7.0.1");
    let (code, out, err, ended) = w.finish();
    assert_eq!((code, out.as_str()), (Some(0), "10.7.0.1\n"), "{err}");
    assert!(ended - t < Duration::from_secs(1));

    let nic = ok(
        &h.dom0,
        &["wait", "web1", "--nic", "525400123405", "--timeout", "5"],
    );
    assert_eq!(nic, "enp0s5\n");

    b.assert_blocked();
    let t = Instant::now();
    h.xs.write(&format!("{WEB1}/data/xenbeacon/booted"), "1");
    let (code, out, err, ended) = b.finish();
    assert_eq!((code, out.as_str()), (Some(0), "booted\n"), "{err}");
    assert!(ended - t < Duration::from_secs(1));

    // XAPI-style guest: data/updated is "booted"; without a condition: its agent.
    assert_eq!(ok(&h.dom0, &["wait", "win", "--booted"]), "booted\n");
    assert_eq!(ok(&h.dom0, &["wait", "2"]), "xapi-style\n");

    let bad = run(&h.dom0, &["wait", "web1", "--nic", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// A guest cannot aim `wait --ip` at dom0 or anywhere a script should not go, nor put shell
/// syntax in what `wait --nic` prints.
#[test]
fn wait_prints_only_usable_addresses_and_safe_names() {
    let h = host("waitbad");
    h.xs.rm(&format!("{WEB1}/xenserver"));
    h.xs.rm(&format!("{WEB1}/attr/net"));
    for (i, a) in [
        "127.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.251",
        "169.254.1.1",
    ]
    .iter()
    .enumerate()
    {
        h.xs.write(&format!("{WEB1}/attr/vif/0/ipv4/{i}"), a);
    }
    let mut w = Waiter::start(&h.dom0, &["web1", "--ip", "--timeout", "20"]);
    thread::sleep(Duration::from_millis(400));
    w.assert_blocked();
    h.xs.write(&format!("{WEB1}/attr/vif/0/ipv4/9"), "10.0.0.9");
    let (code, out, err, _) = w.finish();
    assert_eq!((code, out.as_str()), (Some(0), "10.0.0.9\n"), "{err}");

    h.xs.write(
        &format!("{WEB1}/attr/net/0200000000bb/name"),
        "$(reboot) -oProxyCommand=x;id",
    );
    h.xs.write(&format!("{WEB1}/attr/net/0200000000bb/bus"), "usb");
    let nic = ok(
        &h.dom0,
        &[
            "wait",
            "web1",
            "--nic",
            "02:00:00:00:00:bb",
            "--timeout",
            "5",
        ],
    );
    assert_eq!(nic, "02:00:00:00:00:bb\n");
}

#[test]
fn wait_times_out() {
    let h = host("waitto");
    let t = Instant::now();
    let o = run(&h.dom0, &["wait", "bare", "--ip", "--timeout", "0.5"]);
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o)
            .contains("timed out after 0.5 s: domain 'bare' has not reported an IPv4 address"),
        "{}",
        stderr(&o)
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // A name no domain has: also a timeout, not an error.
    let o = run(&h.dom0, &["wait", "nosuch", "--timeout", "0.3"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // A domid that does not exist: an error at once.
    let o = run(&h.dom0, &["wait", "42", "--timeout", "5"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

/// A guest with 300 keys writing 100 times a second: `wait --timeout` still ends on time,
/// and each guest write costs dom0 a couple of requests at most (the path it touched), not a
/// re-read of the whole guest.
#[test]
fn wait_deadline_holds_and_requests_stay_few_under_a_write_storm() {
    let h = host("waitnoisy");
    xenbeacon_guest(&h.xs, 4, "noisy");
    // No IPv4 address: the wait can only time out.
    h.xs.rm("/local/domain/4/xenserver");
    h.xs.rm("/local/domain/4/attr/net");
    for i in 0..300 {
        h.xs.write(&format!("/local/domain/4/data/k{i}"), "0");
    }
    let stop = AtomicBool::new(false);
    let writes = std::sync::atomic::AtomicU64::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                h.xs.write(
                    &format!("/local/domain/4/data/k{}", i % 300),
                    &i.to_string(),
                );
                writes.fetch_add(1, Ordering::SeqCst);
                i += 1;
                thread::sleep(Duration::from_millis(10));
            }
        });
        thread::sleep(Duration::from_millis(300));
        h.xs.reset_stats();
        let w0 = writes.load(Ordering::SeqCst);
        let started = Instant::now();
        let mut w = Waiter::start(&h.dom0, &["noisy", "--ip", "--timeout", "3"]);
        let dom0_requests = || -> u64 {
            let stats = h.xs.stats();
            stats
                .0
                .iter()
                .filter(|(k, _)| k.0 == 0)
                .map(|(_, n)| n)
                .sum()
        };
        // After a second the first read is long done: from then on, count per guest write.
        thread::sleep(Duration::from_secs(1));
        w.assert_blocked();
        let (r1, w1) = (dom0_requests(), writes.load(Ordering::SeqCst));
        let (code, out, err, ended) = w.finish();
        stop.store(true, Ordering::SeqCst);
        let took = ended.duration_since(started);
        let guest_writes = writes.load(Ordering::SeqCst) - w0;
        let requests = dom0_requests();
        let steady = (requests - r1) as f64 / (writes.load(Ordering::SeqCst) - w1) as f64;
        println!(
            "wait --timeout 3 under {guest_writes} guest writes: ended after {took:?}, \
             {requests} requests in all ({r1} in the first second), {steady:.2} per guest \
             write after the first second"
        );
        assert_eq!(code, Some(1), "{out}{err}");
        assert!(err.contains("timed out after 3 s"), "{err}");
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_millis(4500),
            "{took:?}"
        );
        // The first read of the guest (~700 nodes, 2 requests each) is the bulk; each
        // write after it costs at most a READ and a DIRECTORY of the key it touched.
        assert!(guest_writes > 100, "the writer did not run: {guest_writes}");
        assert!(steady <= 2.5, "{steady:.2} requests per guest write");
        assert!(
            requests < 1600 + 2 * guest_writes,
            "{requests} requests for {guest_writes} guest writes"
        );
    });
}

/// What `wait` keeps of the guest between events follows removals too: an address removed
/// before the guest booted is not printed once it has.
#[test]
fn wait_forgets_what_the_guest_removed() {
    let h = host("waitrm");
    h.xs.rm(&format!("{WEB1}/xenserver"));
    h.xs.rm(&format!("{WEB1}/attr/net"));
    h.xs.write(&format!("{WEB1}/attr/vif/0/ipv4/0"), "10.0.0.5");
    let mut w = Waiter::start(&h.dom0, &["web1", "--booted", "--ip", "--timeout", "20"]);
    thread::sleep(Duration::from_millis(400));
    w.assert_blocked();
    h.xs.rm(&format!("{WEB1}/attr/vif/0/ipv4"));
    thread::sleep(Duration::from_millis(200));
    h.xs.write(&format!("{WEB1}/data/xenbeacon/booted"), "1");
    thread::sleep(Duration::from_millis(300));
    w.assert_blocked();
    h.xs.write(&format!("{WEB1}/attr/vif/0/ipv4/1"), "10.0.0.6");
    let (code, out, err, _) = w.finish();
    assert_eq!((code, out.as_str()), (Some(0), "10.0.0.6\n"), "{err}");
}

/// A listening socket nobody accepts on, with a backlog of 0, and the one connection that
/// fills it: xenstored hung before accept.
fn full_backlog(path: &Path) -> (UnixListener, UnixStream) {
    use std::os::fd::AsRawFd;
    let l = UnixListener::bind(path).unwrap();
    // SAFETY: a valid listening fd; listen again only changes its backlog.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let filler = UnixStream::connect(path).unwrap();
    (l, filler)
}

/// `wait --timeout` against a xenstored that hangs: it accepts and never answers, or never
/// accepts at all (listen backlog full). The timeout bounds both.
#[test]
fn wait_timeout_bounds_a_hung_xenstored() {
    let dir = tempdir("waithung");
    // Accepts, reads, never answers.
    let silent = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&silent).unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    for args in [
        &["web1", "--ip", "--timeout", "1"][..],
        &["7", "--timeout", "1"][..],
    ] {
        let t = Instant::now();
        let (code, out, err, ended) = Waiter::start(&silent, args).finish();
        let took = ended.duration_since(t);
        println!("{args:?} against a silent xenstored: exit {code:?} after {took:?}: {err}");
        assert_eq!(code, Some(1), "{out}{err}");
        assert!(err.contains("timed out after 1 s"), "{err}");
        assert!(err.contains("XenStore had not answered"), "{err}");
        assert!(took < Duration::from_millis(2000), "{took:?}");
    }

    // Answers nothing but sends watch events all the time (each cuts a poll short).
    let chatty = dir.path().join("chatty.sock");
    let listener = UnixListener::bind(&chatty).unwrap();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut event = Vec::new();
                let parts: [&[u8]; 2] = [b"/local/domain/1/data/x\0", b"xenbeacon-wait-home\0"];
                server_wire::emit_raw(wire::MsgType::WatchEvent, 0, 0, &parts, &mut event);
                while s.write_all(&event).is_ok() {
                    thread::sleep(Duration::from_millis(2));
                }
            });
        }
    });
    let t = Instant::now();
    let (code, out, err, ended) = Waiter::start(&chatty, &["7", "--timeout", "1"]).finish();
    let took = ended.duration_since(t);
    println!("against a xenstored that only sends events: exit {code:?} after {took:?}: {err}");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("XenStore had not answered"), "{err}");
    assert!(took < Duration::from_millis(2000), "{took:?}");

    // Never accepts.
    let full = dir.path().join("full.sock");
    let (_listener, _filler) = full_backlog(&full);
    let t = Instant::now();
    let (code, out, err, ended) = Waiter::start(&full, &["web1", "--timeout", "1"]).finish();
    let took = ended.duration_since(t);
    println!("against a xenstored that never accepts: exit {code:?} after {took:?}: {err}");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("xenstored accepted no connection"), "{err}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2000),
        "{took:?}"
    );
}

/// The reader asks for a directory's children in one batch (one write, replies read
/// together): watch events before every reply, and xenstored refusing some of a batch's nodes,
/// change nothing but what was refused.
#[test]
fn batched_reads_survive_events_and_errors_mid_batch() {
    use support::fault_injector::Fault;
    use xenbeacon::xenbus::wire::XsError;
    let h = host("batch");
    let baseline = ok(&h.dom0, &["list", "--json"]);
    h.xs.faults().add(Fault::SpuriousWatchEvent, None);
    h.xs.faults().add(Fault::EventFlood(3), None);
    assert_eq!(ok(&h.dom0, &["list", "--json"]), baseline);
    h.xs.faults().clear();
    // The USB NIC's directory, its siblings' and their children are asked for together.
    h.xs.faults().add(
        Fault::Errno {
            domid: None,
            msg_type: None,
            path_prefix: format!("{WEB1}/attr/net/525400123406"),
            error: XsError::Eacces,
        },
        None,
    );
    let out = ok(&h.dom0, &["show", "web1", "--json"]);
    assert!(
        out.contains(r#""access":"partial","denied":["attr/net/525400123406"]"#),
        "{out}"
    );
    assert!(
        out.contains(r#""name":"enp0s5","mac":"52:54:00:12:34:05""#),
        "{out}"
    );
    assert!(out.contains(r#""name":"end0""#), "{out}");
    assert!(!out.contains("usb0"), "{out}");
}

/// `list --timeout` in every format against a xenstored that hangs part way through the
/// listing (the fault injector holds every request below domain 3 for 60 s), that accepts and
/// never answers, and that never accepts: exit status 1 within the timeout, with what was read
/// before printed (JSON, Ansible) and the reason on stderr. Without --timeout each request
/// would wait 20 s.
#[test]
fn list_timeout_bounds_a_hung_xenstored() {
    use support::fault_injector::Fault;
    let h = host("listhung");
    let o = run(&h.dom0, &["list", "--format", "ansible", "--timeout", "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    h.xs.faults().add(
        Fault::DelayOn {
            path_prefix: "/local/domain/3".into(),
            delay: Duration::from_secs(60),
        },
        None,
    );
    for (fmt, printed) in [
        ("table", ""),
        ("json", r#"{"domains":[{"domid":0,"#),
        (
            "ansible",
            r#"{"_meta":{"hostvars":{"web1":{"ansible_host":"192.0.2.9","#,
        ),
    ] {
        let t = Instant::now();
        let o = run(&h.dom0, &["list", "--format", fmt, "--timeout", "1"]);
        let took = t.elapsed();
        let (out, err) = (stdout(&o), stderr(&o));
        println!(
            "list --format {fmt} --timeout 1, hung at domain 3: exit {:?} after {took:?}: {err}",
            o.status.code()
        );
        assert_eq!(o.status.code(), Some(1), "{out}{err}");
        assert_eq!(
            err,
            "xenbeacon list: timed out after 1 s: reading /local/domain/3: no reply from xenstore in time\n"
        );
        assert!(out.starts_with(printed), "{out}");
        if fmt != "table" {
            assert!(out.contains(r#""win""#) && !out.contains("bare"), "{out}");
        }
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_millis(2500),
            "{took:?}"
        );
    }
    h.xs.faults().clear();

    let dir = tempdir("listhung2");
    let silent = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&silent).unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let full = dir.path().join("full.sock");
    let (_listener, _filler) = full_backlog(&full);
    for (sock, why) in [
        (
            &silent,
            "reading /local/domain: no reply from xenstore in time",
        ),
        (&full, "(xenstored accepts no connections: hung?)"),
    ] {
        let t = Instant::now();
        let o = run(sock, &["list", "--timeout", "0.5"]);
        let took = t.elapsed();
        let err = stderr(&o);
        println!(
            "list --timeout 0.5: exit {:?} after {took:?}: {err}",
            o.status.code()
        );
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("xenbeacon list: timed out after 0.5 s: "),
            "{err}"
        );
        assert!(err.contains(why), "{err}");
        assert!(took < Duration::from_millis(2000), "{took:?}");
    }
    // Usage errors.
    for args in [
        &["list", "--format", "yaml"][..],
        &["list", "--json", "--format", "ansible"][..],
        &["list", "--host", "web1"][..],
    ] {
        assert_eq!(run(&h.dom0, args).status.code(), Some(2), "{args:?}");
    }
}

/// By name, for a domain created after `wait` started, and again after it is destroyed and
/// recreated under a new domid (as `xl reboot` does).
#[test]
fn wait_by_name_for_a_domain_that_does_not_exist_yet() {
    let h = host("waitlate");
    let mut w = Waiter::start(&h.dom0, &["late", "--ip", "--timeout", "20"]);
    thread::sleep(Duration::from_millis(400));
    w.assert_blocked();
    h.xs.add_domain(7);
    h.xs.write("/local/domain/7/name", "late");
    thread::sleep(Duration::from_millis(300));
    w.assert_blocked();
    // Destroyed before it got an address; recreated as domain 8.
    h.xs.rm("/local/domain/7");
    thread::sleep(Duration::from_millis(300));
    w.assert_blocked();
    h.xs.add_domain(8);
    h.xs.write("/local/domain/8/name", "late");
    h.xs.write("/local/domain/8/data/xenbeacon/layout", "1");
    thread::sleep(Duration::from_millis(300));
    w.assert_blocked();
    let t = Instant::now();
    h.xs.write("/local/domain/8/attr/vif/0/ipv4/0", "10.0.0.8");
    let (code, out, err, ended) = w.finish();
    assert_eq!((code, out.as_str()), (Some(0), "10.0.0.8\n"), "{err}");
    assert!(ended - t < Duration::from_secs(1));
}

/// By domid, the domain going away ends the wait with an error.
#[test]
fn wait_by_domid_for_a_destroyed_domain_fails() {
    let h = host("waitgone");
    let mut w = Waiter::start(&h.dom0, &["3", "--ip", "--timeout", "20"]);
    thread::sleep(Duration::from_millis(400));
    w.assert_blocked();
    h.xs.rm("/local/domain/3");
    let (code, _, err, _) = w.finish();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("domain 3 is gone"), "{err}");
}

#[test]
fn no_xenstore() {
    let dir = tempdir("noxs");
    let o = run(&dir.path().join("missing.sock"), &["list"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("cannot open"), "{}", stderr(&o));
}
