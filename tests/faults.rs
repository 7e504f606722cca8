//! Persistent faults of xenstored while the agent daemon runs, through the fake xenstored's
//! fault injector: EAGAIN on TRANSACTION_END (through the client), EAGAIN on every WRITE, a
//! 4 KiB reply to every READ, each kind of malformed reply, closing the connection mid-request,
//! spurious watch events and a slow store.
//!
//! For each, while the fault lasts (a few seconds, with a 1 s memory tick and free memory
//! moving so that every tick has something to write): the agent does not panic or exit, does
//! not spin (its CPU time from /proc/<pid>/stat stays small), logs each distinct warning once;
//! once the fault is cleared, XenStore ends up exactly as a fresh `--once` publishes it.
//!
//! tests/agent.rs covers one-shot faults (a refused key, quota, a lost connection, one of each
//! malformed reply); this file covers the same failures when they persist.
//!
//! Also the faults of issue 14: SIGTERM while a reply is held or the listen backlog is full,
//! FIFOs in the tree, an event flood while a reply is held (peak RSS), an incomplete read-back,
//! a refused WATCH, a `--xenstore` that is no xenstore, a first-round EACCES, connection drops
//! on some writes (log lines) and events on the agent's own token (requests per second).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::fault_injector::{Fault, MalformedKind};
use support::guest::{meminfo, wait_until, Daemon, Guest, DOMID, HOME};
use support::tempdir;
use xenbeacon::xenbus::conn::{Endpoint, XenbusConn};
use xenbeacon::xenbus::wire::{MsgType, XsError};

/// How long each fault is held.
const FAULT_FOR: Duration = Duration::from_secs(4);
/// Most CPU the agent may use while a fault persists: 5% of the window.
const CPU_BUDGET: f64 = 0.05;

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // state is field 3 of stat(5); utime and stime are 14 and 15.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

fn alive(d: &mut Daemon) {
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the agent exited; log:\n{}",
        d.log()
    );
}

/// Holds the current fault for [`FAULT_FOR`] while free memory moves every tick; checks that
/// the agent stays alive and does not spin. Returns the CPU time used.
fn hold(g: &Guest, d: &mut Daemon, what: &str) -> f64 {
    let pid = d.child.id();
    let t0 = cpu_seconds(pid);
    let start = Instant::now();
    let mut free = 3_500_000;
    while start.elapsed() < FAULT_FOR {
        free += 1;
        g.file("proc/meminfo", &meminfo(8_000_000, free));
        std::thread::sleep(Duration::from_millis(250));
        alive(d);
    }
    let used = cpu_seconds(pid) - t0;
    let window = start.elapsed().as_secs_f64();
    eprintln!("{what}: agent CPU {used:.3} s over {window:.1} s of persistent fault");
    assert!(
        used <= CPU_BUDGET * window,
        "{what}: the agent used {used:.3} s of CPU in {window:.1} s (spinning?); log:\n{}",
        d.log()
    );
    used
}

/// WARN lines of a log, without the timestamp, and how often each was logged.
fn warnings(log: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for l in log.lines().filter(|l| l.contains("WARN")) {
        let msg = l.split_once("WARN").map_or(l, |(_, m)| m).trim().to_owned();
        *seen.entry(msg).or_insert(0) += 1;
    }
    seen
}

fn assert_each_warning_once(what: &str, log: &str) {
    let w = warnings(log);
    assert!(
        w.values().all(|&n| n == 1),
        "{what}: a warning was repeated: {w:#?}\nlog:\n{log}"
    );
    assert!(!log.contains("panicked"), "{what}: {log}");
}

/// What a fresh `--once` on the same guest files publishes, without `data/updated`.
fn reference(g: &Guest) -> BTreeMap<String, String> {
    let r = Guest::new("ref");
    for rel in [
        "etc/os-release",
        "proc/meminfo",
        "proc/sys/kernel/osrelease",
    ] {
        let text = std::fs::read_to_string(g.root.path().join(rel)).unwrap();
        r.file(rel, &text);
    }
    r.once(&[]);
    without_updated(r.published())
}

fn without_updated(mut p: BTreeMap<String, String>) -> BTreeMap<String, String> {
    p.remove("data/updated");
    p
}

/// After the fault is cleared: everything as a fresh publication has it.
fn settles(g: &Guest, what: &str, d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(40);
    let want = reference(g);
    loop {
        let got = without_updated(g.published());
        if got == want && g.get("data/updated").is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: state after the fault cleared:\n{got:#?}\nwant:\n{want:#?}\nlog:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the daemon (1 s memory tick, every change written) and waits for a publication.
fn start(g: &Guest) -> Daemon {
    let d = g.daemon(&[
        "--memory-interval",
        "1",
        "--memory-threshold",
        "0",
        "--log-level",
        "info",
    ]);
    g.wait_for("attr/PVAddons/Installed", "1");
    d
}

/// Runs the agent through a persistent `fault`, clears it, checks the end state and the log.
fn persistent(name: &str, fault: Fault, sighup: bool) -> String {
    let g = Guest::new(name);
    let mut d = start(&g);
    g.xs.faults().add(fault, None);
    if sighup {
        // forces a full read-back through the fault
        d.signal(libc::SIGHUP);
    }
    hold(&g, &mut d, name);
    g.xs.faults().clear();
    settles(&g, name, &d);
    let log = d.stop();
    assert_each_warning_once(name, &log);
    log
}

#[test]
fn eagain_on_commit_through_the_client() {
    let dir = tempdir("eagain-tx");
    let xs = support::fake_xenstored::FakeXenstored::start(dir.path());
    let sock = xs.add_domain(DOMID);
    let mut c = XenbusConn::open(&Endpoint::Socket(sock)).unwrap();
    xs.faults().add(Fault::EagainOnCommit, None);
    for i in 0..5 {
        c.transaction_start().unwrap();
        c.write("data/tx", format!("{i}").as_bytes()).unwrap();
        let e = c.transaction_end(true).unwrap_err();
        assert_eq!(e.xs(), Some(XsError::Eagain), "{e}");
        assert!(!e.is_connection_lost());
        assert!(
            !xs.exists(&format!("{HOME}/data/tx")),
            "a failed commit applied"
        );
    }
    // An abort is not a commit: not refused.
    c.transaction_start().unwrap();
    c.transaction_end(false).unwrap();
    // Outside a transaction the connection works normally.
    c.write("data/plain", b"1").unwrap();
    xs.faults().clear();
    c.transaction_start().unwrap();
    c.write("data/tx", b"ok").unwrap();
    c.transaction_end(true).unwrap();
    assert_eq!(xs.read(&format!("{HOME}/data/tx")).as_deref(), Some("ok"));
    assert_eq!(xs.stats().count(DOMID, MsgType::TransactionEnd), 7);
}

#[test]
fn persistent_eagain_on_every_write_is_retried_and_logged_once() {
    let fault = Fault::Errno {
        domid: Some(DOMID),
        msg_type: Some(MsgType::Write),
        path_prefix: String::new(),
        error: XsError::Eagain,
    };
    let log = persistent("eagain", fault, false);
    let w = warnings(&log);
    assert!(w.keys().any(|m| m.contains("EAGAIN")), "{log}");
}

#[test]
fn a_4k_reply_to_every_read() {
    // Read-back, domid, unique-domain-id and the pcifront backend all read 4096 bytes of
    // `x`: the agent must neither trust nor write any of it, nor build paths from it that
    // it then writes to.
    let g = Guest::new("oversize");
    let mut d = start(&g);
    g.xs.faults().add(Fault::OversizeReply, None);
    g.xs.reset_stats();
    d.signal(libc::SIGHUP);
    hold(&g, &mut d, "oversize");
    assert!(g.xs.stats().count(DOMID, MsgType::Read) > 0);
    // Even during the fault, every key has its real value. Free memory is left out: hold()
    // changes it every 250 ms and the agent reads it every second, so at any instant the two
    // may differ by design (settles() below waits for it).
    let moving = |mut p: BTreeMap<String, String>| {
        let free = p.remove("data/meminfo_free");
        assert!(free.is_some_and(|f| f.parse::<u64>().is_ok()));
        p
    };
    assert_eq!(
        moving(without_updated(g.published())),
        moving(reference(&g))
    );
    assert!(g.xs.dump("/").values().all(|v| !v.contains("xxxxxxxx")));
    g.xs.faults().clear();
    settles(&g, "oversize", &d);
    assert_each_warning_once("oversize", &d.stop());
}

#[test]
fn persistent_wrong_length_replies() {
    let log = persistent(
        "wronglen",
        Fault::Malformed(MalformedKind::WrongLength),
        false,
    );
    assert!(log.contains("republished"), "{log}");
}

#[test]
fn persistent_unknown_type_replies() {
    let log = persistent(
        "unktype",
        Fault::Malformed(MalformedKind::UnknownType),
        false,
    );
    assert!(log.contains("malformed"), "{log}");
}

#[test]
fn persistent_missing_nul_in_listings() {
    // Only DIRECTORY/GET_PERMS replies are corrupted: the read-back of the owned subtrees
    // fails (SIGHUP forces one), single keys still work.
    persistent(
        "missingnul",
        Fault::Malformed(MalformedKind::MissingNul),
        true,
    );
}

#[test]
fn persistent_close_mid_request() {
    let log = persistent("closemid", Fault::CloseMidRequest, false);
    assert!(log.contains("republished"), "{log}");
}

#[test]
fn persistent_spurious_watch_events() {
    // A WATCH_EVENT with a token the agent never registered before every reply. Today every
    // such event starts a domain check, whose three READs bring three more events, which
    // `has_pending_event` turns into a poll without sleeping: ~40% of a core.
    persistent("spurious", Fault::SpuriousWatchEvent, true);
}

#[test]
fn a_slow_store() {
    // 200 ms before every reply: rounds get slow, nothing times out or breaks.
    persistent("slow", Fault::Delay(Duration::from_millis(200)), true);
}

#[test]
fn every_fault_at_once_from_the_start() {
    // The faults armed before the agent starts, one-shot, all mixed: the first connection,
    // read-back and publication all go through them.
    let g = Guest::new("mixed");
    for (f, n) in [
        (Fault::CloseMidRequest, 3),
        (Fault::Malformed(MalformedKind::WrongLength), 2),
        (Fault::Malformed(MalformedKind::UnknownType), 4),
        (Fault::Malformed(MalformedKind::MissingNul), 3),
        (Fault::OversizeReply, 10),
        (Fault::SpuriousWatchEvent, 30),
        (Fault::EagainOnCommit, 1),
        (
            Fault::Errno {
                domid: Some(DOMID),
                msg_type: Some(MsgType::Write),
                path_prefix: String::new(),
                error: XsError::Eagain,
            },
            5,
        ),
    ] {
        g.xs.faults().add(f, Some(n));
    }
    let d = g.daemon(&["--memory-interval", "1", "--memory-threshold", "0"]);
    wait_until("every one-shot fault consumed", || {
        g.xs.faults().armed() <= 1 // EagainOnCommit: the agent uses no transactions
    });
    settles(&g, "mixed", &d);
    assert_each_warning_once("mixed", &d.stop());
}

/// Waits until the process blocks SIGTERM (its signalfd is set up), so that a SIGTERM sent
/// now goes through the agent's own handling, not the default action.
fn wait_sigterm_blocked(pid: u32) {
    wait_until("SIGTERM blocked", || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0)
    });
}

/// SIGTERM, then how long until the process is gone (at most `limit`, else the test fails).
fn exit_time(d: &mut Daemon, limit: Duration) -> Duration {
    let t0 = Instant::now();
    d.signal(libc::SIGTERM);
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "exit status {status:?}; log:\n{}",
                d.log()
            );
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "still running {:?} after SIGTERM; log:\n{}",
            t0.elapsed(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sigterm_ends_a_wait_for_a_held_reply() {
    let g = Guest::new("heldreply");
    let mut d = start(&g);
    g.xs.faults()
        .add(Fault::Delay(Duration::from_secs(60)), None);
    g.xs.reset_stats();
    g.file("proc/meminfo", &meminfo(8_000_000, 3_000_000));
    // The next tick's round sends a request, which the store holds.
    wait_until("a request held", || {
        g.xs.stats().0.values().sum::<u64>() > 0
    });
    let took = exit_time(&mut d, Duration::from_secs(1));
    eprintln!("exited {took:?} after SIGTERM while a reply was held");
}

#[test]
fn sigterm_ends_a_connect_to_a_full_backlog() {
    use std::os::unix::ffi::OsStrExt;
    let g = Guest::new("backlog");
    let path = g.root.path().join("full.sock");
    // A listener with a backlog of 0 that never accepts, then filled until connect says EAGAIN.
    let listener = unix_socket(0);
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(path.as_os_str().as_bytes()) {
        *d = *s as libc::c_char;
    }
    let sa = &addr as *const libc::sockaddr_un as *const libc::sockaddr;
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: valid fds and a valid sockaddr_un of `len` bytes.
    unsafe {
        assert_eq!(libc::bind(listener, sa, len), 0);
        assert_eq!(libc::listen(listener, 0), 0);
    }
    let mut queued = Vec::new();
    loop {
        let c = unix_socket(libc::SOCK_NONBLOCK);
        // SAFETY: as above.
        if unsafe { libc::connect(c, sa, len) } != 0 {
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EAGAIN)
            );
            break;
        }
        queued.push(c);
        assert!(queued.len() < 100, "the backlog never filled");
    }
    let mut d = g.daemon_at(&path, &["--log-level", "debug"]);
    wait_sigterm_blocked(d.child.id());
    let took = exit_time(&mut d, Duration::from_secs(1));
    eprintln!("exited {took:?} after SIGTERM while xenstored's backlog was full");
    assert!(d.log().contains("backlog full"), "{}", d.log());
}

fn unix_socket(flags: libc::c_int) -> libc::c_int {
    // SAFETY: socket(2) takes no pointers; the test leaks these fds on purpose.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | flags, 0) };
    assert!(fd >= 0);
    fd
}

fn mkfifo(g: &Guest, rel: &str) {
    use std::os::unix::ffi::OsStrExt;
    let p = g.root.path().join(rel);
    let _ = std::fs::remove_file(&p);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn a_fifo_for_os_release_or_mountinfo_does_not_hang_once() {
    let g = Guest::new("fifo-once");
    mkfifo(&g, "etc/os-release");
    mkfifo(&g, "proc/self/mountinfo");
    let t0 = Instant::now();
    let mut child = g
        .command(&["--once"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("--once still running after 10 s with FIFOs in the tree");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("os-release is not a regular file"), "{log}");
    assert_eq!(g.get("data/os_uname").as_deref(), Some("6.1.0-test"));
    assert_eq!(g.get("data/xenbeacon/stage").as_deref(), Some("rootfs"));
    eprintln!("--once with FIFOs took {:?}", t0.elapsed());
}

#[test]
fn a_fifo_that_appears_later_does_not_wedge_sighup() {
    let g = Guest::new("fifo-hup");
    let d = start(&g);
    mkfifo(&g, "etc/os-release");
    d.signal(libc::SIGHUP);
    // Still publishing after the SIGHUP: a memory change goes out on the next tick.
    g.file("proc/meminfo", &meminfo(8_000_000, 2_222_222));
    g.wait_for("data/meminfo_free", "2222222");
    assert!(d.log().contains("not a regular file"), "{}", d.log());
    d.stop();
}

/// `VmHWM` (peak RSS) and `VmRSS` of a process, KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
fn an_event_flood_while_a_reply_is_held_keeps_memory_flat() {
    const EVENTS: u32 = 500_000;
    let g = Guest::new("evflood");
    let d = start(&g);
    let pid = d.child.id();
    let (peak_before, _) = rss_kib(pid);
    g.xs.faults().add(Fault::EventFlood(EVENTS), Some(1));
    g.file("proc/meminfo", &meminfo(8_000_000, 3_333_333));
    g.wait_for("data/meminfo_free", "3333333");
    assert_eq!(g.xs.faults().armed(), 0, "the flood was not sent");
    let (peak, rss) = rss_kib(pid);
    eprintln!(
        "{EVENTS} watch events before one reply: peak RSS {peak_before} -> {peak} KiB, now {rss} KiB"
    );
    assert!(
        peak < peak_before + 4096,
        "peak RSS grew from {peak_before} to {peak} KiB; log:\n{}",
        d.log()
    );
    // Still working: the next change goes out too.
    g.file("proc/meminfo", &meminfo(8_000_000, 3_444_444));
    g.wait_for("data/meminfo_free", "3444444");
    let log = d.stop();
    assert_eq!(log.matches("watch events dropped").count(), 1, "{log}");
}

#[test]
fn a_read_back_error_is_retried_and_stale_keys_go() {
    let g = Guest::new("readback");
    g.file(
        "etc/os-release",
        "ID=debian\nNAME=Debian\nVERSION_ID=\"12.5\"\n",
    );
    g.once(&[]);
    assert_eq!(g.get("data/os_minorver").as_deref(), Some("5"));
    // An earlier run's NIC, and an os-release without a minor version now.
    g.xs.write(&format!("{HOME}/attr/vif/9/name"), "eth9");
    g.file(
        "etc/os-release",
        "ID=debian\nNAME=Debian\nVERSION_ID=\"12\"\n",
    );
    for (t, key) in [
        (MsgType::Read, "data/os_minorver"),
        (MsgType::Directory, "attr/vif"),
    ] {
        let fault = Fault::Errno {
            domid: Some(DOMID),
            msg_type: Some(t),
            path_prefix: format!("{HOME}/{key}"),
            error: XsError::Eio,
        };
        g.xs.faults().add(fault, Some(1));
    }
    let t0 = Instant::now();
    let d = start(&g);
    wait_until("the stale keys removed", || {
        g.get("data/os_minorver").is_none() && !g.xs.exists(&format!("{HOME}/attr/vif/9"))
    });
    eprintln!(
        "stale keys removed {:?} after the agent started, after one incomplete read-back",
        t0.elapsed()
    );
    assert_eq!(g.xs.faults().armed(), 0);
    settles(&g, "readback", &d);
    let log = d.stop();
    assert_each_warning_once("readback", &log);
    assert!(log.contains("read-back complete after 1"), "{log}");
}

#[test]
fn a_refused_watch_keeps_the_connection_and_falls_back_to_the_tick() {
    let g = Guest::new("nowatch");
    g.xs.write(&format!("{HOME}/unique-domain-id"), "uuid-1");
    let fault = Fault::Errno {
        domid: Some(DOMID),
        msg_type: Some(MsgType::Watch),
        path_prefix: String::new(),
        error: XsError::Eacces,
    };
    g.xs.faults().add(fault, None);
    let mut d = start(&g);
    hold(&g, &mut d, "nowatch");
    let watches = g.xs.stats().count(DOMID, MsgType::Watch);
    eprintln!("WATCH requests in {FAULT_FOR:?} of refused watches: {watches}");
    assert_eq!(
        watches,
        2,
        "one per watch, on one connection; log:\n{}",
        d.log()
    );
    // What the unique-domain-id watch covered is checked on the tick: a new domain is seen.
    g.xs.write(&format!("{HOME}/unique-domain-id"), "uuid-2");
    wait_until("the new domain noticed", || d.log().contains("new domain"));
    let log = d.stop();
    assert_each_warning_once("nowatch", &log);
    assert!(!log.contains("republished"), "{log}");
}

#[test]
fn a_xenstore_path_that_is_no_xenstore_is_a_clear_error() {
    let g = Guest::new("devzero");
    g.file("plain", "not xenstore\n");
    let plain = g.root.path().join("plain");
    for (path, once) in [
        (std::path::Path::new("/dev/zero"), false),
        (std::path::Path::new("/dev/zero"), true),
        (plain.as_path(), false),
    ] {
        let args: &[&str] = if once { &["--once"] } else { &[] };
        let t0 = Instant::now();
        let mut child = g
            .command_at(path, args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            if t0.elapsed() > Duration::from_secs(5) {
                let cpu = cpu_seconds(child.id());
                let _ = child.kill();
                panic!(
                    "--xenstore {path:?} (once: {once}) still running after 5 s, {cpu:.2} s CPU"
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{log}");
        assert!(
            log.contains("is neither the xenbus device") && log.contains("nor a xenstored socket"),
            "{log}"
        );
        eprintln!(
            "--xenstore {path:?} (once: {once}): exit 1 after {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn a_key_refused_with_eacces_in_the_first_round_is_retried() {
    // The first round's write of data/os_name is refused once (a toolstack that sets the
    // home's permissions late); the value never changes, so only the slow retry publishes it.
    let g = Guest::new("eacces1st");
    let fault = Fault::Errno {
        domid: Some(DOMID),
        msg_type: Some(MsgType::Write),
        path_prefix: format!("{HOME}/data/os_name"),
        error: XsError::Eacces,
    };
    g.xs.faults().add(fault, Some(1));
    let t0 = Instant::now();
    let d = start(&g);
    assert_eq!(g.xs.faults().armed(), 0, "the refusal did not happen");
    wait_until("data/os_name published", || g.get("data/os_name").is_some());
    eprintln!(
        "data/os_name published {:?} after start, after one EACCES",
        t0.elapsed()
    );
    settles(&g, "eacces1st", &d);
    let log = d.stop();
    assert_each_warning_once("eacces1st", &log);
}

#[test]
fn connection_drops_on_some_writes_are_logged_once() {
    // Every other change, the write of data/meminfo_free drops the connection; the
    // reconnect republishes it. Before: a warning, "connected to", "reachable again" for
    // every change.
    const CHANGES: u64 = 6;
    let g = Guest::new("dropsome");
    let d = start(&g);
    let lines_before = d.log().lines().count();
    for i in 0..CHANGES {
        if i % 2 == 0 {
            let fault = Fault::CloseOn {
                msg_type: MsgType::Write,
                path_prefix: format!("{HOME}/data/meminfo_free"),
            };
            g.xs.faults().add(fault, Some(1));
        }
        let free = 3_100_000 + i;
        g.file("proc/meminfo", &meminfo(8_000_000, free));
        g.wait_for("data/meminfo_free", &free.to_string());
        assert_eq!(g.xs.faults().armed(), 0);
    }
    let log = d.stop();
    let new_lines: Vec<&str> = log
        .lines()
        .skip(lines_before)
        .filter(|l| !l.contains("exiting"))
        .collect();
    eprintln!(
        "{} lines logged for {CHANGES} changes, {} of them dropping the connection",
        new_lines.len(),
        CHANGES / 2
    );
    assert_eq!(new_lines.len(), 2, "{new_lines:#?}");
    assert!(
        new_lines[0].contains("WARN") && new_lines[0].contains("closed"),
        "{log}"
    );
    assert!(new_lines[1].contains("reachable again"), "{log}");
}

#[test]
fn an_event_on_the_agents_own_token_for_every_request_is_rate_limited() {
    // Every request brings an event on the unique-domain-id watch, so every domain check
    // (three READs) asks for three more.
    let g = Guest::new("owntoken");
    let mut d = start(&g);
    let fault = Fault::EventWithToken("xenbeacon:unique-domain-id".into());
    g.xs.faults().add(fault, None);
    g.xs.reset_stats();
    let t0 = Instant::now();
    let cpu = hold(&g, &mut d, "owntoken");
    let requests: u64 = g.xs.stats().0.values().sum();
    let rate = requests as f64 / t0.elapsed().as_secs_f64();
    eprintln!(
        "own-token storm: {requests} requests in {:?} ({rate:.0}/s), CPU {cpu:.3} s",
        t0.elapsed()
    );
    assert!(rate < 20.0, "{rate:.0} requests/s; log:\n{}", d.log());
    g.xs.faults().clear();
    settles(&g, "owntoken", &d);
    assert_each_warning_once("owntoken", &d.stop());
}
