//! `list --format prometheus` and `xenbeacon export` against the fake xenstored, checked by the
//! real Prometheus tools (Debian 12's `prometheus` and `prometheus-node-exporter`):
//! `promtool check metrics` on every output, `promtool test rules` on the shipped alert rules,
//! and a real node_exporter (textfile collector on the export's directory) scraped by a real
//! Prometheus, both on 127.0.0.1, with hostile guests among the good ones. Every wait is for a
//! state, with a deadline.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::fake_xenstored::FakeXenstored;
use support::{tempdir, TempDir};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The path of a program the test needs, or a one-line failure naming its Debian package.
fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: apt-get install {package}");
}

fn promtool() -> PathBuf {
    tool("promtool", "prometheus")
}

/// Waits until `cond` holds, polling every 20 ms; fails after `limit` with `what`.
fn wait_for<T>(what: &str, limit: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Host {
    xs: FakeXenstored,
    dom0: PathBuf,
    _dir: TempDir,
}

const WEB1_TOTAL_KB: u64 = 2013232;

/// dom0, web1 (xenbeacon, 10.0.0.2 on vif 0), win (another agent), bare (no agent), evil
/// (hostile values), stuck (balloon stuck).
fn host(name: &str) -> Host {
    let dir = tempdir(name);
    let xs = FakeXenstored::start(dir.path());
    xs.write("/local/domain/0/name", "Domain-0");
    xs.write("/local/domain/0/domid", "0");
    let guest = |domid: u32, kv: &[(&str, &str)]| {
        xs.add_domain(domid);
        for (k, v) in kv {
            xs.write(&format!("/local/domain/{domid}/{k}"), v);
        }
    };
    let total = WEB1_TOTAL_KB.to_string();
    let xenbeacon = [
        ("data/os_name", "Debian GNU/Linux 12 (bookworm)"),
        ("data/os_distro", "debian"),
        ("data/os_majorver", "12"),
        ("data/os_uname", "6.1.0-28-amd64"),
        ("data/meminfo_total", total.as_str()),
        ("data/meminfo_free", "1503232"),
        ("data/updated", "1795511149"),
        ("data/xenbeacon/layout", "2"),
        ("data/xenbeacon/version", "1.0.0"),
        ("data/xenbeacon/stage", "rootfs"),
        ("data/xenbeacon/booted", "1"),
        ("attr/vif/0/name", "eth0"),
        ("attr/vif/0/mac", "00:16:3e:00:00:01"),
        ("attr/vif/0/ipv4/0", "10.0.0.2"),
        ("attr/vif/0/ipv4/0/prefix", "24"),
        ("attr/vif/0/ipv6/0", "2001:db8::2"),
    ];
    let mut web1 = vec![("name", "web1")];
    web1.extend(xenbeacon);
    guest(1, &web1);
    guest(
        2,
        &[
            ("name", "win"),
            ("data/os_name", "Microsoft Windows Server 2019 Standard"),
            ("data/updated", "Mon Nov 24 09:41:09 2026"),
            ("attr/PVAddons/MajorVersion", "9"),
            ("attr/PVAddons/MinorVersion", "3"),
            ("attr/vif/0/ipv4/0", "10.0.0.50"),
        ],
    );
    guest(
        3,
        &[("name", "bare"), ("device/vif/0/mac", "00:16:3e:00:00:03")],
    );
    let mut stuck = vec![("name", "stuck")];
    stuck.extend(xenbeacon);
    stuck.extend([
        ("data/xenbeacon/version", "0.9.1"),
        ("data/xenbeacon/balloon/target_kb", "1048576"),
        ("data/xenbeacon/balloon/current_kb", "1900000"),
        ("data/xenbeacon/balloon/state", "stuck"),
        ("attr/vif/0/ipv4/0", "10.0.0.5"),
    ]);
    guest(5, &stuck);
    hostile(&xs, 4);
    let dom0 = xs.dom0_socket();
    Host {
        xs,
        dom0,
        _dir: dir,
    }
}

/// A series for another guest, and a line break, in every value a guest writes.
const FORGED: &str = "x\"} 1\nxenbeacon_guest_memory_total_bytes{domid=\"1\",name=\"web1\"} 1\n# TYPE xenbeacon_guest_booted counter\n\\";

/// A guest at its worst: forged series, 2 KiB values, escape sequences, invalid UTF-8
/// (replaced when read), thousands of addresses, a hundred VLANs.
fn hostile(xs: &FakeXenstored, domid: u32) {
    xs.add_domain(domid);
    let h = format!("/local/domain/{domid}");
    let long = "ü".repeat(1000);
    for (k, v) in [
        ("data/xenbeacon/layout", "2"),
        ("data/os_name", FORGED),
        ("data/os_distro", long.as_str()),
        ("data/os_uname", "6.1\u{2028}\u{1b}[31m\r\u{feff}\u{fffd}"),
        ("data/xenbeacon/version", "1.0.0\"}"),
        ("data/xenbeacon/stage", FORGED),
        ("data/meminfo_total", "99999999999999999999"),
        ("data/meminfo_free", "-1"),
        ("data/updated", "1795511149\n"),
        ("attr/vif/0/name", FORGED),
        ("attr/vif/0/mac", FORGED),
        ("attr/vif/0/ipv4/0", "10.0.0.1\"} 1\n"),
    ] {
        xs.write(&format!("{h}/{k}"), v);
    }
    xs.write_bytes(&format!("{h}/data/host_name_dns"), b"\xff\xfe\x80evil\"}\n");
    xs.write_bytes(&format!("{h}/attr/vif/1/name"), b"eth\xc3\x28\"} 1\n");
    // 500 to a directory: the fake xenstored has no DIRECTORY_PART for longer listings.
    for i in 0..2000 {
        xs.write(
            &format!("{h}/attr/vif/{}/ipv4/{}", 1 + i / 500, i % 500),
            &format!("10.1.{}.{}", i / 256, i % 256),
        );
    }
    for i in 0..100 {
        xs.write(
            &format!("{h}/attr/vif/0/vlan/{i}/name"),
            &format!("{long}{i}"),
        );
    }
}

fn xenbeacon(sock: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xenbeacon"));
    c.args(args)
        .arg("--xenstore")
        .arg(sock)
        .env_remove("XENBEACON_XENSTORE");
    c
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `promtool check metrics` on `text`: no error and no lint problem.
fn check_metrics(text: &str) {
    let mut c = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
}

/// The lines of `name` for domain `domid`.
fn series<'a>(text: &'a str, name: &str, domid: u32) -> Vec<&'a str> {
    let start = format!("{name}{{domid=\"{domid}\",");
    text.lines().filter(|l| l.starts_with(&start)).collect()
}

#[test]
fn list_format_prometheus_is_clean_and_json_stays() {
    let h = host("list");
    let o = xenbeacon(&h.dom0, &["list", "--format", "prometheus"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let text = ok(o);
    check_metrics(&text);
    let total = WEB1_TOTAL_KB * 1024;
    assert_eq!(
        series(&text, "xenbeacon_guest_memory_total_bytes", 1),
        [format!(
            "xenbeacon_guest_memory_total_bytes{{domid=\"1\",name=\"web1\"}} {total}"
        )]
    );
    assert_eq!(
        series(&text, "xenbeacon_guest_memory_total_bytes", 4),
        Vec::<&str>::new()
    );
    assert!(text.contains(r#"xenbeacon_nic_address_info{domid="1",name="web1",nic="eth0",mac="00:16:3e:00:00:01",family="ipv4",address="10.0.0.2",prefix="24"} 1"#), "{text}");
    assert!(
        text.contains(r#"xenbeacon_guest_info{domid="3",name="bare",uuid="",agent="none","#),
        "{text}"
    );
    assert!(
        text.contains(r#"xenbeacon_guest_info{domid="2",name="win",uuid="",agent="other","#),
        "{text}"
    );
    assert_eq!(
        series(&text, "xenbeacon_guest_balloon_stuck", 5),
        ["xenbeacon_guest_balloon_stuck{domid=\"5\",name=\"stuck\"} 1"]
    );
    // The hostile guest: its series only, capped, and it says what was left out.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let forged = l.starts_with("xenbeacon_guest_memory_total_bytes{domid=\"1\"");
        assert!(!forged || l.ends_with(&format!(" {total}")), "{l}");
    }
    assert_eq!(series(&text, "xenbeacon_nic_address_info", 4).len(), 256);
    assert_eq!(
        series(&text, "xenbeacon_scrape_truncated", 4),
        ["xenbeacon_scrape_truncated{domid=\"4\",name=\"guest4\"} 1"]
    );
    assert!(stderr.contains("xenbeacon list: domain 4: "), "{stderr}");
    // Bytes that are not UTF-8 arrive as U+FFFD, the rest escaped.
    assert!(
        text.contains(r#",nic="eth�(\"} 1\n",kind="vif","#),
        "{text}"
    );
    // --json and --format json are the same; the tables stay the default.
    let json = ok(xenbeacon(&h.dom0, &["list", "--json"]).output().unwrap());
    let format_json = ok(xenbeacon(&h.dom0, &["list", "--format", "json"])
        .output()
        .unwrap());
    assert_eq!(json, format_json);
    assert!(json.starts_with(r#"{"domains":["#));
    let table = ok(xenbeacon(&h.dom0, &["list"]).output().unwrap());
    assert_eq!(
        table,
        ok(xenbeacon(&h.dom0, &["list", "--format", "table"])
            .output()
            .unwrap())
    );
    let bad = xenbeacon(&h.dom0, &["list", "--format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'yaml' is not a format"));
}

#[test]
fn alert_rules_pass_promtool() {
    let dir = Path::new(REPO).join("packaging/prometheus");
    for args in [
        &["check", "rules", "xenbeacon.rules.yml"][..],
        &["test", "rules", "xenbeacon.rules.test.yml"][..],
    ] {
        let o = Command::new(promtool())
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// `xenbeacon export` running in the background; stopped (SIGTERM) on drop.
struct Export {
    child: Child,
    file: PathBuf,
}

impl Export {
    fn start(sock: &Path, dir: &Path, extra: &[&str]) -> Export {
        let mut args = vec!["export", "--textfile-dir", dir.to_str().unwrap()];
        args.extend(extra);
        let child = xenbeacon(sock, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Export {
            child,
            file: dir.join("xenbeacon.prom"),
        }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }

    /// Waits until the file has `line`; its text then.
    fn wait_line(&self, line: &str) -> String {
        wait_for(line, Duration::from_secs(10), || {
            let t = self.text();
            t.lines().any(|l| l == line).then_some(t)
        })
    }

    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let mut err = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
        let status = self.child.wait().unwrap();
        (status.code(), err)
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn export_follows_guests_and_removes_its_file() {
    let h = host("export");
    let out = tempdir("export-out");
    let e = Export::start(&h.dom0, out.path(), &["--min-interval", "0.05"]);
    let free = |kb: u64| {
        format!(
            "xenbeacon_guest_memory_free_bytes{{domid=\"1\",name=\"web1\"}} {}",
            kb * 1024
        )
    };
    let text = e.wait_line(&free(1503232));
    check_metrics(&text);
    assert_eq!(series(&text, "xenbeacon_nic_address_info", 4).len(), 256);
    // No temporary file left behind.
    let names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["xenbeacon.prom"]);

    // A guest's change, a new domain, a removed one.
    h.xs.write("/local/domain/1/data/meminfo_free", "1000000");
    check_metrics(&e.wait_line(&free(1000000)));
    h.xs.add_domain(7);
    h.xs.write("/local/domain/7/attr/vif/0/ipv4/0", "192.0.2.7");
    let text = e.wait_line(r#"xenbeacon_nic_address_info{domid="7",name="guest7",nic="",mac="",family="ipv4",address="192.0.2.7",prefix=""} 1"#);
    check_metrics(&text);
    h.xs.rm("/local/domain/3");
    let text = wait_for("domain 3 gone", Duration::from_secs(10), || {
        let t = e.text();
        (!t.contains("domid=\"3\"")).then_some(t)
    });
    assert!(text.contains("domid=\"1\""));
    // A hostile guest writing all the time: the others' changes still arrive.
    h.xs.write("/local/domain/4/data/os_name", "changed\n");
    h.xs.write("/local/domain/1/data/meminfo_free", "900000");
    check_metrics(&e.wait_line(&free(900000)));

    let (code, err) = e.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("export: domain 4: "), "{err}");
    assert!(!out.path().join("xenbeacon.prom").exists());
}

#[test]
fn export_timeout_bounds_a_hung_xenstored() {
    let dir = tempdir("export-hung");
    // Accepts, never answers.
    let sock = dir.path().join("hung.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let out = tempdir("export-hung-out");
    let start = Instant::now();
    let e = Export::start(&sock, out.path(), &["--timeout", "0.5"]);
    let (_peer, _) = listener.accept().unwrap();
    let mut e = e;
    let status = wait_for("the export to give up", Duration::from_secs(10), || {
        e.child.try_wait().unwrap()
    });
    let mut err = String::new();
    let _ = e.child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("did not answer within 0.5 s"), "{err}");
    println!("gave up after {:?}", start.elapsed());
    // Not a directory: exit 1, named.
    let o = xenbeacon(&sock, &["export", "--textfile-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent is not a directory"));
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0); the body, if the status is 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    let (head, body) = r.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_owned())
}

/// Percent-encodes a PromQL query for a URL.
fn url(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The values of an instant query's result, as strings (`[]` when it has none yet).
fn query(port: u16, q: &str) -> Option<Vec<String>> {
    let body = http_get(port, &format!("/api/v1/query?query={}", url(q)))?;
    if !body.contains(r#""status":"success""#) {
        return None;
    }
    // "value":[1700000000.123,"42"]
    Some(
        body.split(r#""value":["#)
            .skip(1)
            .filter_map(|v| v.split_once(",\"")?.1.split('"').next().map(str::to_owned))
            .collect(),
    )
}

/// A program the test started, killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn daemon(what: &'static str, c: &mut Command, log: &Path) -> Daemon {
    let log = std::fs::File::create(log).unwrap();
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    Daemon(child)
}

/// The whole path: fake xenstored -> xenbeacon export -> node_exporter's textfile collector ->
/// Prometheus, asked over its HTTP API, with the shipped alert rules loaded.
#[test]
fn node_exporter_and_prometheus_scrape_the_export() {
    let node_exporter = tool("prometheus-node-exporter", "prometheus-node-exporter");
    let prometheus = tool("prometheus", "prometheus");
    let h = host("prom");
    let work = tempdir("prom-work");
    let textfiles = work.path().join("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    let e = Export::start(&h.dom0, &textfiles, &["--min-interval", "0.05"]);
    e.wait_line("xenbeacon_guest_booted{domid=\"1\",name=\"web1\"} 1");

    let node_port = free_port();
    let _node = daemon(
        "prometheus-node-exporter",
        Command::new(node_exporter).args([
            &format!("--web.listen-address=127.0.0.1:{node_port}"),
            "--collector.disable-defaults",
            "--collector.textfile",
            &format!("--collector.textfile.directory={}", textfiles.display()),
        ]),
        &work.path().join("node_exporter.log"),
    );
    let metrics = wait_for("node_exporter to serve", Duration::from_secs(20), || {
        http_get(node_port, "/metrics")
    });
    assert!(metrics.contains("xenbeacon_guest_info{"), "{metrics}");
    check_metrics(&metrics);

    let prom_port = free_port();
    let config = work.path().join("prometheus.yml");
    let rules = Path::new(REPO).join("packaging/prometheus/xenbeacon.rules.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{node_port}']\n",
            rules.display()
        ),
    )
    .unwrap();
    let _prom = daemon(
        "prometheus",
        Command::new(prometheus).args([
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", work.path().join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ]),
        &work.path().join("prometheus.log"),
    );
    let value = |q: &str, want: &str| {
        wait_for(&format!("{q} = {want}"), Duration::from_secs(60), || {
            query(prom_port, q).filter(|v| v == &[want.to_owned()])
        })
    };
    value(r#"up{job="node"}"#, "1");
    let total = (WEB1_TOTAL_KB * 1024).to_string();
    value(r#"xenbeacon_guest_memory_total_bytes{name="web1"}"#, &total);
    value(
        r#"xenbeacon_nic_address_info{name="web1",address="10.0.0.2",family="ipv4",prefix="24"}"#,
        "1",
    );
    value(r#"xenbeacon_guest_balloon_stuck{name="stuck"}"#, "1");
    value(r#"xenbeacon_guest_info{name="bare",agent="none"}"#, "1");
    // The hostile guest: its capped series, nothing forged for web1, no textfile error.
    value(r#"count(xenbeacon_nic_address_info{domid="4"})"#, "256");
    value(r#"xenbeacon_scrape_truncated{domid="4"}"#, "1");
    value(
        r#"count(xenbeacon_guest_memory_total_bytes{domid="1"})"#,
        "1",
    );
    value(r#"node_textfile_scrape_error"#, "0");
    // The version alert's expression finds the older guest (0.9.1 < this build).
    value(
        r#"count(xenbeacon_guest_agent_version < ignoring(domid, name) group_left xenbeacon_host_agent_version)"#,
        "1",
    );

    // A change in a guest reaches Prometheus; the target stays up while the hostile guest
    // rewrites its values.
    h.xs.write("/local/domain/1/data/meminfo_total", "4000000");
    h.xs.write("/local/domain/4/data/os_name", &format!("{FORGED}2"));
    value(
        r#"xenbeacon_guest_memory_total_bytes{name="web1"}"#,
        &(4000000u64 * 1024).to_string(),
    );
    value(r#"up{job="node"}"#, "1");
    value(r#"node_textfile_scrape_error"#, "0");
    // The shipped rules load and evaluate without error.
    let rules = wait_for("the rules evaluated", Duration::from_secs(30), || {
        let b = http_get(prom_port, "/api/v1/rules")?;
        (b.matches(r#""health":"ok""#).count() == 4).then_some(b)
    });
    assert!(!rules.contains(r#""health":"err""#), "{rules}");
    // The balloon alert is pending (its 5 minutes have begun) for the stuck guest only.
    let alerts = wait_for(
        "XenbeaconBalloonStuck pending",
        Duration::from_secs(30),
        || {
            let b = http_get(prom_port, "/api/v1/alerts")?;
            b.contains(r#""alertname":"XenbeaconBalloonStuck""#)
                .then_some(b)
        },
    );
    assert!(alerts.contains(r#""state":"pending""#), "{alerts}");
    drop(e);
}

/// VmHWM (peak resident memory) of a running process, KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// 30 guests filled to their node quota with the largest values they may write, and one
/// writing as fast as it can: the export keeps only the series (memory does not grow with
/// what the guests wrote), and re-reads the busy guest at most once per --min-interval while
/// the other guests' changes still arrive.
#[test]
fn export_memory_and_rereads_are_bounded_against_hostile_guests() {
    use support::fake_xenstored::{DEFAULT_NODE_QUOTA, NODE_SIZE_MAX};
    use xenbeacon::xenbus::wire::MsgType;
    let h = host("bounded");
    for d in 10..40u32 {
        h.xs.add_domain(d);
        h.xs.write(&format!("/local/domain/{d}/data/xenbeacon/layout"), "2");
        let used = h.xs.node_count(d);
        // 100 to a directory, so that each DIRECTORY reply fits in one message.
        for i in 0..DEFAULT_NODE_QUOTA - used - 10 {
            let path = format!("/local/domain/{d}/data/d{}/k{}", i / 100, i % 100);
            let len = NODE_SIZE_MAX - path.len();
            h.xs.write(&path, &"x".repeat(len));
        }
    }
    let out = tempdir("bounded-out");
    let e = Export::start(&h.dom0, out.path(), &["--min-interval", "0.2"]);
    e.wait_line(r#"xenbeacon_scrape_truncated{domid="39",name="guest39"} 1"#);
    let rss = peak_rss_kib(e.child.id());
    println!("export of 35 domains, 30 at their quota: peak RSS {rss} KiB");
    assert!(rss < 16 * 1024, "peak RSS {rss} KiB");

    h.xs.reset_stats();
    let start = Instant::now();
    for i in 0..3000 {
        h.xs.write("/local/domain/10/data/xenbeacon/stage", &format!("s{i}"));
    }
    h.xs.write("/local/domain/1/data/meminfo_free", "777");
    e.wait_line(r#"xenbeacon_guest_memory_free_bytes{domid="1",name="web1"} 795648"#);
    e.wait_line(r#"xenbeacon_guest_info{domid="10",name="guest10",uuid="",agent="xenbeacon",agent_version="",os_name="",os_distro="",os_version="",kernel="",stage="s2999"} 1"#);
    let elapsed = start.elapsed();
    let rereads =
        h.xs.requests(0)
            .iter()
            .filter(|(t, p)| *t == MsgType::Directory && p == "/local/domain/10")
            .count();
    let most = (elapsed.as_secs_f64() / 0.2).ceil() as usize + 2;
    println!("3000 writes in {elapsed:?}: guest 10 re-read {rereads} times (at most {most})");
    assert!(
        rereads >= 1 && rereads <= most,
        "{rereads} re-reads in {elapsed:?}"
    );
    let rss = peak_rss_kib(e.child.id());
    assert!(rss < 16 * 1024, "peak RSS {rss} KiB");
}

/// CPU seconds (user + system) of a running process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / hz
}

/// Benchmark, not a test (docs/benchmarks.md, "Prometheus"): 500 guests × 4 vifs × 4
/// addresses. `list --format prometheus` (CPU, peak RSS, bytes), the export's first full
/// read, and from one guest's key change to the renamed file (inotify IN_MOVED_TO).
///
/// ```sh
/// cargo test --release --test prometheus -- --ignored --nocapture bench_500_guests
/// ```
#[test]
#[ignore = "benchmark: prints BENCH lines"]
fn bench_500_guests() {
    let h = host("bench");
    for d in 100..600u32 {
        h.xs.add_domain(d);
        let p = format!("/local/domain/{d}");
        for (k, v) in [
            ("data/xenbeacon/layout", "2"),
            ("data/xenbeacon/version", "1.0.0"),
            ("data/xenbeacon/stage", "rootfs"),
            ("data/xenbeacon/booted", "1"),
            ("data/os_name", "Debian GNU/Linux 12 (bookworm)"),
            ("data/os_distro", "debian"),
            ("data/os_majorver", "12"),
            ("data/os_uname", "6.1.0-28-amd64"),
            ("data/meminfo_total", "2013232"),
            ("data/meminfo_free", "1503232"),
            ("data/updated", "1795511149"),
        ] {
            h.xs.write(&format!("{p}/{k}"), v);
        }
        for v in 0..4 {
            let n = format!("{p}/attr/vif/{v}");
            h.xs.write(&format!("{n}/name"), &format!("eth{v}"));
            h.xs.write(
                &format!("{n}/mac"),
                &format!("00:16:3e:{:02x}:{:02x}:{v:02x}", d >> 8, d & 255),
            );
            for a in 0..4 {
                h.xs.write(
                    &format!("{n}/ipv4/{a}"),
                    &format!("10.{v}.{}.{}", d % 250, a + 1),
                );
                h.xs.write(&format!("{n}/ipv4/{a}/prefix"), "24");
            }
        }
    }
    for format in ["prometheus", "json", "table"] {
        let (cpu, wall, bytes, rss) = measured(&h.dom0, &["list", "--format", format]);
        println!(
            "BENCH list --format {format}: 505 domains, {cpu:.2} s CPU, {wall:.2} s wall, {bytes} bytes, peak RSS {rss} KiB"
        );
    }
    let text = ok(xenbeacon(&h.dom0, &["list", "--format", "prometheus"])
        .output()
        .unwrap());
    check_metrics(&text);
    let addresses = text
        .lines()
        .filter(|l| l.starts_with("xenbeacon_nic_address_info{"))
        .count();
    assert!(addresses > 500 * 16, "{addresses}");

    let out = tempdir("bench-out");
    // SAFETY: inotify on a directory we own; the fd is closed at the end.
    let ino = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    assert!(ino >= 0);
    let dir = std::ffi::CString::new(out.path().to_str().unwrap()).unwrap();
    // SAFETY: a valid C string for the call.
    assert!(unsafe { libc::inotify_add_watch(ino, dir.as_ptr(), libc::IN_MOVED_TO) } >= 0);
    let renamed = || {
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a local buffer of the given length; blocks until an event.
        let n = unsafe { libc::read(ino, buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n > 0);
        Instant::now()
    };
    let start = Instant::now();
    let e = Export::start(&h.dom0, out.path(), &["--min-interval", "0.1"]);
    renamed();
    let first = start.elapsed();
    let pid = e.child.id();
    println!(
        "BENCH export first file: 505 domains in {:.2} s wall, {:.2} s CPU, peak RSS {} KiB",
        first.as_secs_f64(),
        cpu_seconds(pid),
        peak_rss_kib(pid)
    );
    // Let the registration events settle, then measure single changes.
    std::thread::sleep(Duration::from_millis(500));
    let mut lat: Vec<Duration> = Vec::new();
    let cpu0 = cpu_seconds(pid);
    for i in 0..40u32 {
        let d = 100 + (i * 37) % 500;
        let t = Instant::now();
        h.xs.write(
            &format!("/local/domain/{d}/data/meminfo_free"),
            &(1_000_000 + i).to_string(),
        );
        let at = renamed();
        lat.push(at - t);
        // Past --min-interval, so that each change is a quiet spell's first.
        std::thread::sleep(Duration::from_millis(120));
    }
    let cpu = cpu_seconds(pid) - cpu0;
    lat.sort();
    println!(
        "BENCH export key change -> renamed file, 40 changes: median {:.1} ms, max {:.1} ms; {:.3} s CPU for the 40 rounds, peak RSS {} KiB",
        lat[20].as_secs_f64() * 1e3,
        lat[39].as_secs_f64() * 1e3,
        cpu,
        peak_rss_kib(pid)
    );
    check_metrics(&e.text());
    // SAFETY: our fd.
    unsafe { libc::close(ino) };
}

/// Runs xenbeacon with `args` from a fresh small process (this test binary again, as
/// [`measure_helper`]): a child's peak RSS counts the memory of the process that forked it,
/// and this one holds the fake xenstored's tree. (CPU s, wall s, stdout bytes, peak RSS KiB.)
fn measured(sock: &Path, args: &[&str]) -> (f64, f64, usize, i64) {
    let o = Command::new(std::env::current_exe().unwrap())
        .args(["measure_helper", "--exact", "--ignored", "--nocapture"])
        .env("XB_MEASURE_SOCK", sock)
        .env("XB_MEASURE_ARGS", args.join("\u{1f}"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("MEASURED "))
        .unwrap_or_else(|| panic!("{out}{}", String::from_utf8_lossy(&o.stderr)));
    let f: Vec<&str> = line.split(' ').collect();
    (
        f[0].parse().unwrap(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
    )
}

/// Not a test: the helper process of [`measured`].
#[test]
#[ignore = "the helper process of measured(), not a test on its own"]
fn measure_helper() {
    let Some(sock) = std::env::var_os("XB_MEASURE_SOCK") else {
        return;
    };
    let args = std::env::var("XB_MEASURE_ARGS").unwrap();
    let args: Vec<&str> = args.split('\u{1f}').collect();
    let start = Instant::now();
    // Reaped by wait4 below, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let mut child = xenbeacon(Path::new(&sock), &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut bytes = Vec::new();
    stdout.read_to_end(&mut bytes).unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: valid pointers for the whole call; the child is ours and not reaped yet.
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut u) }, pid);
    let wall = start.elapsed().as_secs_f64();
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    println!(
        "MEASURED {:.3} {wall:.3} {} {}",
        s(u.ru_utime) + s(u.ru_stime),
        bytes.len(),
        u.ru_maxrss
    );
}

/// xenstored going away (a restart): the export ends with status 3 and removes its file, for
/// systemd to start it again (Restart=on-failure), rather than showing values nobody follows.
#[test]
fn export_ends_when_xenstored_goes_away() {
    let h = host("export-gone");
    let out = tempdir("export-gone-out");
    let mut e = Export::start(&h.dom0, out.path(), &[]);
    e.wait_line("xenbeacon_guest_booted{domid=\"1\",name=\"web1\"} 1");
    h.xs.disconnect_all();
    let status = wait_for("the export to end", Duration::from_secs(10), || {
        e.child.try_wait().unwrap()
    });
    let mut err = String::new();
    let _ = e.child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.starts_with("xenbeacon export: "), "{err}");
    assert!(!out.path().join("xenbeacon.prom").exists());
}
