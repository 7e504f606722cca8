//! Scale and traffic benchmarks against the fake xenstored, with real rtnetlink in a network
//! namespace (root). Not tests: every one is `#[ignore]`d and prints `BENCH` lines that
//! tests/bench/run.sh collects into its report (docs/benchmarks.md has the numbers).
//!
//! ```sh
//! cargo test --release --test scale -- --ignored --nocapture --test-threads 1
//! ```
//!
//! * 1,000 addresses on one NIC (`--max-addresses 1000`, fake quota raised to 2,500 nodes);
//! * 64 NICs (veths classified as PV vifs by a fake sysfs), one address each, default quota;
//! * 10,000 address changes in 10 s on one NIC: the final state is exact, RSS stays bounded;
//! * XenStore requests per hour: idle, with free memory moving, with addresses churning.
//!
//! Each checks its end state exactly and that the agent's node count stays under the quota.

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::guest::{meminfo, Daemon, Guest, DOMID, HOME};
use support::netns::{setup, Netns};

/// The agent as a daemon, like `Guest::daemon`, but the binary may be another build:
/// `XENBEACON_BENCH_BIN` (tests/bench/run.sh points it at the static musl release build, the
/// one the footprint numbers are about); default: this test's own build.
fn daemon(g: &Guest, args: &[&str]) -> Daemon {
    let bin = std::env::var_os("XENBEACON_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_xenbeacon").into());
    let log = g.root.path().join("daemon.log");
    let mut c = Command::new("ip");
    c.args(["netns", "exec", g.netns.as_deref().expect("a netns")])
        .arg(&bin)
        .arg("--xenstore")
        .arg(&g.sock)
        .arg("--root")
        .arg(g.root.path())
        .args(args)
        .env_remove("XENBEACON_XENSTORE")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    Daemon {
        child: c.spawn().unwrap(),
        log,
    }
}

/// (VmRSS, VmHWM) in KiB.
fn rss(d: &Daemon) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
    let kib = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

/// utime + stime, seconds.
fn cpu_seconds(d: &Daemon) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", d.child.id())).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / hz
}

/// Published addresses (not prefixes) of `dir` (e.g. `attr/vif/0/ipv4`), sorted.
fn published_addrs(g: &Guest, dir: &str) -> Vec<String> {
    let prefix = format!("{HOME}/{dir}/");
    let mut v: Vec<String> =
        g.xs.dump(&format!("{HOME}/{dir}"))
            .into_iter()
            .filter(|(k, _)| k.strip_prefix(&prefix).is_some_and(|r| !r.contains('/')))
            .map(|(_, v)| v)
            .collect();
    v.sort();
    v
}

fn wait(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

fn requests(g: &Guest) -> String {
    let s = g.xs.stats();
    let mut parts: Vec<String> =
        s.0.iter()
            .filter(|((d, _), _)| *d == DOMID)
            .map(|((_, t), n)| format!("{t:?} {n}"))
            .collect();
    parts.sort();
    parts.join(", ")
}

fn total_requests(g: &Guest) -> u64 {
    g.xs.stats()
        .0
        .iter()
        .filter(|((d, _), _)| *d == DOMID)
        .map(|(_, n)| n)
        .sum()
}

#[test]
#[ignore]
fn thousand_addresses_on_one_nic() {
    let (g, ns, sys) = setup("k1000");
    ns.ip("link add eth0 type veth peer name eth0p");
    ns.ip("link set eth0 up");
    ns.ip("link set eth0p up");
    sys.add_vif("eth0", 0, &ns.macs()["eth0"]);
    let quota = 2500;
    g.xs.set_quota(DOMID, quota);
    let n = 1000;
    let adds: Vec<String> = (0..n)
        .map(|i| format!("addr add 10.60.{}.{}/32 dev eth0", i / 250, 1 + i % 250))
        .collect();
    ns.batch(&adds);
    let want = ns.addrs4("eth0");
    assert_eq!(want.len(), n);
    g.xs.reset_stats();
    let start = Instant::now();
    let d = daemon(&g, &["--max-addresses", "1000", "--log-level", "warn"]);
    wait("1000 addresses published", Duration::from_secs(120), || {
        published_addrs(&g, "attr/vif/0/ipv4").len() == n
    });
    let publish = start.elapsed();
    assert_eq!(published_addrs(&g, "attr/vif/0/ipv4"), want);
    let nodes = g.xs.node_count(DOMID);
    let (rss_kib, hwm) = rss(&d);
    let reqs = total_requests(&g);
    assert!(nodes <= quota, "{nodes} nodes > quota {quota}");
    println!(
        "BENCH scale-1000-addrs publish_ms={} nodes={nodes} quota={quota} rss_kib={rss_kib} hwm_kib={hwm} requests={reqs} cpu_s={:.2}",
        publish.as_millis(),
        cpu_seconds(&d)
    );
    println!("  requests: {}", requests(&g));
    // ... and all of them go away again.
    g.xs.reset_stats();
    let dels: Vec<String> = adds
        .iter()
        .map(|l| l.replacen("addr add", "addr del", 1))
        .collect();
    let start = Instant::now();
    ns.batch(&dels);
    wait("1000 addresses removed", Duration::from_secs(120), || {
        published_addrs(&g, "attr/vif/0/ipv4").is_empty()
    });
    let (_, hwm) = rss(&d);
    println!(
        "BENCH scale-1000-addrs-removed ms={} requests={} hwm_kib={hwm} nodes={}",
        start.elapsed().as_millis(),
        total_requests(&g),
        g.xs.node_count(DOMID)
    );
    let log = d.stop();
    assert!(!log.contains("WARN"), "{log}");
}

#[test]
#[ignore]
fn sixty_four_nics() {
    let (g, ns, sys) = setup("k64");
    let n = 64;
    let mut lines = Vec::new();
    for i in 0..n {
        lines.push(format!("link add eth{i} type veth peer name p{i}"));
        lines.push(format!("link set eth{i} up"));
        lines.push(format!("link set p{i} up"));
        lines.push(format!("addr add 10.61.{i}.2/24 dev eth{i}"));
        lines.push(format!("addr add 2001:db8:{i:x}::2/64 dev eth{i} nodad"));
    }
    ns.batch(&lines);
    let macs = ns.macs();
    for i in 0..n {
        sys.add_vif(&format!("eth{i}"), i, &macs[&format!("eth{i}")]);
    }
    g.xs.reset_stats();
    let start = Instant::now();
    let d = daemon(&g, &["--log-level", "warn"]);
    wait("64 NICs published", Duration::from_secs(60), || {
        (0..n).all(|i| g.get(&format!("attr/vif/{i}/ipv6/0")).is_some())
    });
    let publish = start.elapsed();
    for i in 0..n {
        assert_eq!(
            g.get(&format!("attr/vif/{i}/ipv4/0")),
            Some(format!("10.61.{i}.2"))
        );
        assert_eq!(
            g.get(&format!("attr/vif/{i}/name")),
            Some(format!("eth{i}"))
        );
    }
    let nodes = g.xs.node_count(DOMID);
    let (rss_kib, hwm) = rss(&d);
    println!(
        "BENCH scale-64-nics publish_ms={} nodes={nodes} quota={} rss_kib={rss_kib} hwm_kib={hwm} requests={} cpu_s={:.2}",
        publish.as_millis(),
        support::fake_xenstored::DEFAULT_NODE_QUOTA,
        total_requests(&g),
        cpu_seconds(&d)
    );
    assert!(nodes <= support::fake_xenstored::DEFAULT_NODE_QUOTA);
    // One address more on each: 64 changes in one batch.
    g.xs.reset_stats();
    let more: Vec<String> = (0..n)
        .map(|i| format!("addr add 10.62.{i}.2/24 dev eth{i}"))
        .collect();
    let start = Instant::now();
    ns.batch(&more);
    wait("64 more addresses", Duration::from_secs(60), || {
        (0..n).all(|i| g.get(&format!("attr/vif/{i}/ipv4/1")).is_some())
    });
    println!(
        "BENCH scale-64-nics-one-more-address-each ms={} requests={}",
        start.elapsed().as_millis(),
        total_requests(&g)
    );
    let log = d.stop();
    assert!(!log.contains("WARN"), "{log}");
}

/// 10,000 changes (5,000 adds, 5,000 deletes, about 20 addresses alive at any time) fed to
/// one `ip -batch` at 1,000 a second.
#[test]
#[ignore]
fn ten_thousand_address_changes_in_ten_seconds() {
    let (g, ns, sys) = setup("k10k");
    ns.ip("link add eth0 type veth peer name eth0p");
    ns.ip("link set eth0 up");
    ns.ip("link set eth0p up");
    sys.add_vif("eth0", 0, &ns.macs()["eth0"]);
    let d = daemon(&g, &["--max-addresses", "64", "--log-level", "info"]);
    g.wait_for("attr/vif/0/name", "eth0");
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, hwm0) = rss(&d);
    let cpu0 = cpu_seconds(&d);
    g.xs.reset_stats();
    let addr = |i: usize| format!("10.63.{}.{}/32", (i / 250) % 250, 1 + i % 250);
    let mut lines = Vec::new();
    for i in 0..5000 {
        lines.push(format!("addr add {} dev eth0", addr(i)));
        if i >= 20 {
            lines.push(format!("addr del {} dev eth0", addr(i - 20)));
        }
    }
    for i in 4980..5000 {
        lines.push(format!("addr del {} dev eth0", addr(i)));
    }
    // Leave five standing, so that the final state is not just "empty".
    for i in 0..5 {
        lines.push(format!("addr add 10.64.0.{}/32 dev eth0", i + 1));
    }
    assert_eq!(lines.len(), 10_005);
    let mut child = ns.batch_child();
    let mut stdin = child.stdin.take().unwrap();
    let start = Instant::now();
    let mut peak_hwm = hwm0;
    for (k, chunk) in lines.chunks(100).enumerate() {
        stdin
            .write_all((chunk.join("\n") + "\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
        peak_hwm = peak_hwm.max(rss(&d).1);
        let due = Duration::from_millis(100 * (k as u64 + 1));
        if let Some(left) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(left);
        }
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let fed = start.elapsed();
    let want = ns.addrs4("eth0");
    assert_eq!(want.len(), 5);
    let settle = wait("the exact final state", Duration::from_secs(60), || {
        published_addrs(&g, "attr/vif/0/ipv4") == want
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(published_addrs(&g, "attr/vif/0/ipv4"), want);
    let (rss1, hwm1) = rss(&d);
    let cpu = cpu_seconds(&d) - cpu0;
    let log = d.stop();
    let overruns = log.matches("rtnetlink overrun").count();
    println!(
        "BENCH scale-10k-changes fed_ms={} settle_after_feed_ms={} rss_start_kib={rss0} rss_end_kib={rss1} hwm_start_kib={hwm0} hwm_end_kib={hwm1} cpu_s={cpu:.2} requests={} overruns={overruns} nodes={}",
        fed.as_millis(),
        settle.as_millis(),
        total_requests(&g),
        g.xs.node_count(DOMID)
    );
    println!("  requests: {}", requests(&g));
    assert!(hwm1 < 8 * 1024, "VmHWM {hwm1} KiB");
    assert!(g.xs.node_count(DOMID) <= support::fake_xenstored::DEFAULT_NODE_QUOTA);
}

/// XenStore requests while nothing changes, while free memory moves, and while addresses
/// come and go every 200 ms (like tests/bench/churn.sh), each over `SECS` seconds, scaled to
/// an hour. The memory tick is 1 s here; at the default 60 s the memory figures are 60 times
/// smaller (address events are not tick-driven).
#[test]
#[ignore]
fn xenstore_requests_idle_and_churning() {
    const SECS: u64 = 20;
    let (g, ns, sys) = setup("kops");
    ns.ip("link add eth0 type veth peer name eth0p");
    ns.ip("link set eth0 up");
    ns.ip("link set eth0p up");
    sys.add_vif("eth0", 0, &ns.macs()["eth0"]);
    ns.ip("addr add 10.65.0.2/24 dev eth0");
    let d = daemon(
        &g,
        &[
            "--memory-interval",
            "1",
            "--memory-threshold",
            "1024",
            "--log-level",
            "warn",
        ],
    );
    g.wait_for("attr/vif/0/ipv4/0", "10.65.0.2");
    std::thread::sleep(Duration::from_millis(500));
    let per_hour = |n: u64| n * 3600 / SECS;

    g.xs.reset_stats();
    std::thread::sleep(Duration::from_secs(SECS));
    let idle = total_requests(&g);
    println!(
        "BENCH ops-idle window_s={SECS} requests={idle} per_hour={} ({})",
        per_hour(idle),
        requests(&g)
    );

    // Free memory moves by 2 MiB every second (above the 1 MiB threshold).
    g.xs.reset_stats();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(SECS) {
        i += 1;
        g.file(
            "proc/meminfo",
            &meminfo(8_000_000, 4_000_000 + (i % 2) * 2048),
        );
        std::thread::sleep(Duration::from_millis(1000));
    }
    let mem = total_requests(&g);
    println!(
        "BENCH ops-memory-moving window_s={SECS} requests={mem} per_hour_at_1s_tick={} per_hour_at_60s_tick={} ({})",
        per_hour(mem),
        per_hour(mem) / 60,
        requests(&g)
    );

    // Addresses: one added and one removed every 200 ms, memory still.
    g.xs.reset_stats();
    let start = Instant::now();
    let mut k = 0usize;
    let mut changes = 0;
    while start.elapsed() < Duration::from_secs(SECS) {
        k += 1;
        ns.ip(&format!(
            "addr add 10.66.{}.{}/32 dev eth0",
            k / 250 % 250,
            1 + k % 250
        ));
        changes += 1;
        if k > 10 {
            let j = k - 10;
            ns.ip(&format!(
                "addr del 10.66.{}.{}/32 dev eth0",
                j / 250 % 250,
                1 + j % 250
            ));
            changes += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let churn = total_requests(&g);
    println!(
        "BENCH ops-address-churn window_s={SECS} changes={changes} requests={churn} per_hour={} per_change={:.2} ({})",
        per_hour(churn),
        churn as f64 / changes as f64,
        requests(&g)
    );
    let want = ns.addrs4("eth0");
    wait("final state", Duration::from_secs(10), || {
        published_addrs(&g, "attr/vif/0/ipv4") == want
    });
    let log = d.stop();
    assert!(!log.contains("WARN"), "{log}");
    assert_eq!(idle, 0, "requests while idle");
}

/// Sum of voluntary and involuntary context switches over every thread of `pid`.
fn wakeups(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Idle cost side by side: xenbeacon (this build, or `XENBEACON_BENCH_BIN`) and, when
/// `XENBEACON_PEER` names one, another guest agent binary (`XENBEACON_PEER_ARGS`: its
/// arguments), each alone against a fresh fake xenstored as domain 5, in an empty network
/// namespace with a private tmpfs /sys that says `hypervisor/type` = `xen` (this machine is
/// not a Xen guest), with the machine's own /etc/os-release and /proc (so free memory moves as
/// it does). The peer finds the fake through `XENSTORED_PATH`, which libxenstore's `xs_open`
/// tries before the xenbus device; xenbeacon through `--xenstore`. Default intervals for both.
/// Window: `XENBEACON_PEER_SECS` (default 130 s: start plus two 60 s memory ticks).
/// `XENBEACON_PEER_PTY=1` is for agents that only open the xenbus device (xe-guest-utilities'
/// xe-daemon): the fake is then reached through a raw pty bridged to its socket, which the
/// private mount namespace shows as `/dev/xen/xenbus` (on a tmpfs /dev with null, zero,
/// urandom and the host's /dev/pts).
#[test]
#[ignore]
fn idle_cost_side_by_side() {
    let secs: u64 = std::env::var("XENBEACON_PEER_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(130);
    let ours = std::env::var("XENBEACON_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_xenbeacon").to_owned());
    let mut runs: Vec<(String, String, Vec<String>)> =
        vec![("xenbeacon".into(), ours, vec!["--root".into(), "/".into()])];
    if let Ok(peer) = std::env::var("XENBEACON_PEER") {
        let args = std::env::var("XENBEACON_PEER_ARGS").unwrap_or_default();
        let name = std::path::Path::new(&peer)
            .file_name()
            .map_or("peer".into(), |n| n.to_string_lossy().into_owned());
        runs.push((
            name,
            peer,
            args.split_whitespace().map(str::to_owned).collect(),
        ));
    }
    for (name, bin, mut args) in runs {
        let g = Guest::new("side");
        // As under XAPI (xe-daemon exits without it).
        g.xs.write(
            &format!("{HOME}/unique-domain-id"),
            "8c9a0f5e-1d2b-4c3d-9e8f-0a1b2c3d4e5f",
        );
        let ns = Netns::new();
        if name == "xenbeacon" {
            args.splice(0..0, ["--xenstore".into(), g.sock.display().to_string()]);
        }
        let log = g.root.path().join("agent.log");
        let pty =
            name != "xenbeacon" && std::env::var("XENBEACON_PEER_PTY").is_ok_and(|v| v == "1");
        let dev = if pty {
            format!(
                "P={pts}; T=$(mktemp -d) && mount --bind /dev/pts $T && mount -t tmpfs none /dev && \
                 mkdir /dev/pts /dev/xen && mount --move $T /dev/pts && rmdir $T && \
                 mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 && \
                 mknod -m 666 /dev/urandom c 1 9 && ln -s $P /dev/xen/xenbus && ",
                pts = pty_bridge(&g.sock)
            )
        } else {
            String::new()
        };
        let script = format!(
            "{dev}mount -t tmpfs none /sys && mkdir -p /sys/hypervisor /sys/class/net && \
             echo xen > /sys/hypervisor/type && exec \"$@\""
        );
        let mut c = Command::new("ip");
        c.args([
            "netns", "exec", &ns.name, "unshare", "-m", "sh", "-c", &script, "sh",
        ])
        .arg(&bin)
        .args(&args)
        .env("XENSTORED_PATH", &g.sock)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        let d = Daemon {
            child: c.spawn().unwrap(),
            log,
        };
        let pid = d.child.id();
        std::thread::sleep(Duration::from_secs(3));
        let start_requests = requests(&g);
        let start_total = total_requests(&g);
        let start_rss = rss(&d);
        g.xs.reset_stats();
        let (w0, c0) = (wakeups(pid), cpu_seconds(&d));
        std::thread::sleep(Duration::from_secs(secs));
        let (w1, c1) = (wakeups(pid), cpu_seconds(&d));
        let (rss_kib, hwm) = rss(&d);
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |t| t.count());
        let idle = total_requests(&g);
        let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
        println!(
            "BENCH side-by-side agent={name} bytes={size} start_requests={start_total} start_rss_kib={} window_s={secs} requests={idle} per_hour={} wakeups={} cpu_s={:.2} rss_kib={rss_kib} hwm_kib={hwm} threads={threads}",
            start_rss.0,
            idle * 3600 / secs,
            w1 - w0,
            c1 - c0
        );
        println!("  start: {start_requests}");
        println!("  window: {}", requests(&g));
        let mut d = d;
        assert!(
            d.child.try_wait().unwrap().is_none(),
            "{name} exited: {}",
            d.log()
        );
        println!(
            "  published: {:?}",
            g.published().keys().collect::<Vec<_>>()
        );
    }
}

/// A raw pty whose master is copied to and from a new connection to `sock`; returns the
/// slave's path. Both stay open for the life of the test process.
fn pty_bridge(sock: &std::path::Path) -> String {
    use std::io::Read as _;
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty fills two fds; the name, termios and winsize arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: termios is plain old data, filled by tcgetattr on a valid fd.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave, &mut t), 0);
        libc::cfmakeraw(&mut t);
        assert_eq!(libc::tcsetattr(slave, libc::TCSANOW, &t), 0);
    }
    let path = std::fs::read_link(format!("/proc/self/fd/{slave}"))
        .unwrap()
        .display()
        .to_string();
    // SAFETY: `master` is an fd openpty just returned, owned by nobody else.
    let mut from_agent = unsafe { std::fs::File::from_raw_fd(master) };
    let mut to_agent = from_agent.try_clone().unwrap();
    let mut to_xs = std::os::unix::net::UnixStream::connect(sock).unwrap();
    let mut from_xs = to_xs.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from_agent.read(&mut buf) {
            if n == 0 || to_xs.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from_xs.read(&mut buf) {
            if n == 0 || to_agent.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    path
}

/// One guest of [`fleet`]: xenbeacon's layout with `vifs` vifs of `addrs` addresses each
/// (half IPv4, half IPv6, each with its prefix), as the agent publishes them.
fn fleet_guest(xs: &support::fake_xenstored::FakeXenstored, domid: u32, vifs: u32, addrs: u32) {
    let h = format!("/local/domain/{domid}");
    let name = format!("guest{domid}");
    let mut keys: Vec<(String, String)> = [
        ("domid", domid.to_string().as_str()),
        ("name", &name),
        ("vm", &format!("/vm/00000000-0000-4000-8000-{domid:012}")),
        ("memory/static-max", "2097152"),
        ("memory/target", "2097152"),
        ("data/os_name", "Debian GNU/Linux 12 (bookworm)"),
        ("data/os_distro", "debian"),
        ("data/os_majorver", "12"),
        ("data/os_minorver", "8"),
        ("data/os_uname", "6.1.0-28-amd64"),
        ("data/meminfo_total", "2013232"),
        ("data/meminfo_free", "1503232"),
        ("data/updated", "1795511149"),
        ("data/host_name_dns", &name),
        ("data/domain", "example.com"),
        ("data/xenbeacon/layout", "1"),
        ("data/xenbeacon/version", "1.0.0"),
        ("data/xenbeacon/stage", "rootfs"),
        ("data/xenbeacon/booted", "1"),
        ("data/balloon_target_kb", "2097152"),
        ("data/balloon_current_kb", "2097152"),
        ("data/balloon_state", "reached"),
        ("attr/PVAddons/MajorVersion", "1"),
        ("attr/PVAddons/MinorVersion", "0"),
        ("attr/PVAddons/MicroVersion", "0"),
        ("attr/PVAddons/Installed", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for v in 0..vifs {
        let mac = format!("00:16:3e:{:02x}:{:02x}:{v:02x}", domid >> 8, domid & 0xff);
        let d = format!("attr/vif/{v}");
        keys.push((format!("{d}/name"), format!("eth{v}")));
        keys.push((format!("{d}/mac/0"), mac.clone()));
        keys.push((format!("{d}/carrier"), "1".into()));
        keys.push((format!("device/vif/{v}/mac"), mac));
        for a in 0..addrs {
            let (fam, addr, prefix) = if a % 2 == 0 {
                let o = (domid * 16 + v * 4 + a) as u16;
                let addr = format!("10.{}.{}.{}", v, o >> 8, (o & 0xff).max(1));
                ("ipv4", addr, "24")
            } else {
                ("ipv6", format!("fd00:{domid:x}:{v:x}::{a:x}"), "64")
            };
            keys.push((format!("{d}/{fam}/{}", a / 2), addr));
            keys.push((format!("{d}/{fam}/{}/prefix", a / 2), prefix.into()));
        }
    }
    for (k, v) in keys {
        xs.write(&format!("{h}/{k}"), &v);
    }
}

/// Builds `guests` domains of [`fleet_guest`] (domids 1..=guests) and dom0.
fn fleet(xs: &support::fake_xenstored::FakeXenstored, guests: u32, vifs: u32, addrs: u32) {
    xs.write("/local/domain/0/name", "Domain-0");
    xs.write("/local/domain/0/domid", "0");
    for d in 1..=guests {
        fleet_guest(xs, d, vifs, addrs);
    }
}

/// `xenbeacon list` in every format over 500 guests × 4 vifs × 4 addresses (issue 22): CPU
/// (user + system) and peak RSS of the command, measured by GNU time (`time` package) so that
/// the figure is the command's own, not inherited from this process's fork. With
/// `XENBEACON_BENCH_HOLD=SECS` the fake xenstored stays up that long after the measurement
/// and its socket is printed, for `valgrind --tool=callgrind xenbeacon list --xenstore SOCK`.
#[test]
#[ignore]
fn list_500_guests() {
    let bin = std::env::var_os("XENBEACON_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_xenbeacon").into());
    assert!(
        std::path::Path::new("/usr/bin/time").exists(),
        "/usr/bin/time missing (apt-get install time)"
    );
    let dir = support::tempdir("list500");
    let xs = support::fake_xenstored::FakeXenstored::start(dir.path());
    let t = Instant::now();
    fleet(&xs, 500, 4, 4);
    let sock = xs.dom0_socket();
    println!(
        "fleet of 500 guests built in {:?}: {} nodes",
        t.elapsed(),
        xs.dump("/local/domain").len()
    );
    let formats: [&[&str]; 3] = [
        &["list"],
        &["list", "--json"],
        &["list", "--format", "ansible"],
    ];
    for args in formats {
        let stats = dir.path().join("time.out");
        let o = Command::new("/usr/bin/time")
            .arg("-o")
            .arg(&stats)
            .args(["-f", "%U %S %M %e"])
            .arg(&bin)
            .args(args)
            .arg("--xenstore")
            .arg(&sock)
            .env_remove("XENBEACON_XENSTORE")
            .output()
            .unwrap();
        let f = std::fs::read_to_string(&stats).unwrap();
        let f: Vec<&str> = f.lines().last().unwrap().split(' ').collect();
        let cpu = f[0].parse::<f64>().unwrap() + f[1].parse::<f64>().unwrap();
        let what = args[1..].join("_");
        let what = if what.is_empty() { "table" } else { &what };
        println!(
            "BENCH list-500-guests format={what} exit={:?} cpu_s={cpu:.2} user_s={} sys_s={} maxrss_kib={} wall_s={} out_bytes={} requests={}",
            o.status.code(),
            f[0],
            f[1],
            f[2],
            f[3],
            o.stdout.len(),
            xs.stats().0.values().sum::<u64>(),
        );
        xs.reset_stats();
        if !o.status.success() {
            println!("  {}", String::from_utf8_lossy(&o.stderr).trim());
        }
    }
    if let Some(secs) = std::env::var("XENBEACON_BENCH_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        println!("holding {} for {secs} s", sock.display());
        std::thread::sleep(Duration::from_secs(secs));
    }
}
