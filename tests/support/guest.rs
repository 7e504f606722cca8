//! A guest for the agent's integration tests: the fake xenstored with domain 5, a fake root
//! tree (/proc, /sys, /etc) behind `--root`, optionally a network namespace the agent runs in,
//! and helpers to run the agent once or as a daemon and to wait for keys.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::fake_xenstored::FakeXenstored;
use super::{tempdir, TempDir};

pub const DOMID: u32 = 5;
pub const HOME: &str = "/local/domain/5";

pub const DEBIAN: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                      VERSION_ID=\"12\"\nID=debian\n";

pub fn meminfo(total: u64, avail: u64) -> String {
    format!("MemTotal: {total} kB\nMemFree: 1000 kB\nMemAvailable: {avail} kB\nBuffers: 1 kB\n")
}

/// A guest: the fake xenstored with domain 5, and a fake root tree.
pub struct Guest {
    pub xs: FakeXenstored,
    pub sock: PathBuf,
    pub root: TempDir,
    /// Network namespace the agent runs in (`ip netns exec`), if any.
    pub netns: Option<String>,
    /// A program the agent runs under, with its arguments (strace for fault injection).
    pub wrapper: Vec<String>,
    _dir: TempDir,
}

impl Guest {
    pub fn new(name: &str) -> Guest {
        let dir = tempdir(name);
        let xs = FakeXenstored::start(dir.path());
        let sock = xs.add_domain(DOMID);
        let root = tempdir(&format!("{name}-root"));
        let g = Guest {
            xs,
            sock,
            root,
            netns: None,
            wrapper: Vec::new(),
            _dir: dir,
        };
        g.file("etc/os-release", DEBIAN);
        g.file("proc/meminfo", &meminfo(8_000_000, 4_000_000));
        g.file("proc/sys/kernel/osrelease", "6.1.0-test\n");
        g.file("sys/hypervisor/type", "xen\n");
        g
    }

    /// Writes a file of the fake tree in one step, as procfs and sysfs files change: the
    /// content goes to a file at the top of the tree and is renamed into place, so that the
    /// agent never reads one half written (an empty /proc/meminfo would be a fault it logs).
    pub fn file(&self, rel: &str, content: &str) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let p = self.root.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.root.path().join(format!(".file-{n}.tmp"));
        fs::write(&tmp, content).unwrap();
        fs::rename(&tmp, p).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_at(&self.sock, args)
    }

    /// The agent's command line, with `--xenstore xenstore`.
    pub fn command_at(&self, xenstore: &std::path::Path, args: &[&str]) -> Command {
        let mut argv: Vec<&str> = match &self.netns {
            Some(ns) => vec!["ip", "netns", "exec", ns],
            None => Vec::new(),
        };
        argv.extend(self.wrapper.iter().map(String::as_str));
        argv.push(env!("CARGO_BIN_EXE_xenbeacon"));
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c.arg("--xenstore")
            .arg(xenstore)
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .env_remove("XENBEACON_XENSTORE");
        c
    }

    pub fn once(&self, args: &[&str]) -> Output {
        let out = self
            .command(&[&["--once"], args].concat())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "--once failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn daemon(&self, args: &[&str]) -> Daemon {
        self.daemon_at(&self.sock, args)
    }

    /// The daemon, connecting to `xenstore` instead of the guest's socket.
    pub fn daemon_at(&self, xenstore: &std::path::Path, args: &[&str]) -> Daemon {
        let log = self.root.path().join("daemon.log");
        let child = self
            .command_at(xenstore, args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.xs.read(&format!("{HOME}/{key}"))
    }

    /// Every node under data/ and attr/, relative to the home.
    pub fn published(&self) -> BTreeMap<String, String> {
        let mut all = self.xs.dump(&format!("{HOME}/data"));
        all.extend(self.xs.dump(&format!("{HOME}/attr")));
        all.into_iter()
            .map(|(k, v)| (k.trim_start_matches(&format!("{HOME}/")).to_owned(), v))
            .filter(|(k, _)| k != "data" && k != "attr")
            .collect()
    }

    /// Every node below `dir` (relative to the home), relative to `dir`.
    pub fn tree(&self, dir: &str) -> BTreeMap<String, String> {
        let prefix = format!("{HOME}/{dir}/");
        self.xs
            .dump(&format!("{HOME}/{dir}"))
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_owned(), v)))
            .collect()
    }

    /// Waits until `key` has `value`, then until the round that wrote it is over: a round is
    /// a sequence of requests, not one transaction, so keys written after `key` in the same
    /// round may not be there yet when `key` is.
    pub fn wait_for(&self, key: &str, value: &str) {
        wait_until(&format!("{key} = {value}"), || {
            self.get(key).as_deref() == Some(value)
        });
        self.settle();
    }

    /// Waits until the store has had no request for 100 ms.
    pub fn settle(&self) {
        let requests = || -> u64 { self.xs.stats().0.values().sum() };
        let mut before = requests();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = requests();
            if now == before {
                return;
            }
            before = now;
        }
    }
}

pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// The agent's own pid: the child itself, or the xenbeacon process below a wrapper.
    pub fn agent_pid(&self) -> u32 {
        let mut pid = self.child.id();
        for _ in 0..4 {
            let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.to_string_lossy().contains("xenbeacon") {
                return pid;
            }
            let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
            match children.unwrap_or_default().split_whitespace().next() {
                Some(c) => pid = c.parse().unwrap(),
                None => break,
            }
        }
        panic!("no xenbeacon process below pid {}", self.child.id());
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status must be 0.
    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().unwrap();
        let log = self.log();
        assert!(status.success(), "exit status {status:?}; log:\n{log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
