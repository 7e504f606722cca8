//! A network namespace for tests that need real rtnetlink (`ip netns`, root), and the guest
//! set up to run its agent inside it with a fake sysfs describing the links.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use super::fake_sysfs::FakeSysfs;
use super::guest::Guest;

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        require_ip();
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "xbt{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// `ip -n <ns> <args>` (split at whitespace), which must succeed.
    pub fn ip(&self, args: &str) {
        self.ip_args(&args.split_whitespace().collect::<Vec<_>>());
    }

    /// What `ip -n <ns> <args>` prints (its status is not checked: an empty listing is an
    /// answer).
    pub fn ip_output(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    /// The interface index of `dev` in the namespace.
    pub fn ifindex(&self, dev: &str) -> u32 {
        let out = self.ip_output(&["-o", "link", "show", "dev", dev]);
        out.split(':').next().unwrap().trim().parse().unwrap()
    }

    /// `ip -n <ns> <args>`, for arguments that must stay whole.
    pub fn ip_args(&self, args: &[&str]) {
        let mut argv = vec!["ip", "-n", &self.name];
        argv.extend(args);
        run(&argv);
    }

    /// A veth pair `name` / `peer`, both up; returns the MAC of `name`.
    pub fn veth_pair(&self, name: &str, peer: &str) -> String {
        self.ip_args(&["link", "add", name, "type", "veth", "peer", "name", peer]);
        self.ip_args(&["link", "set", name, "up"]);
        self.ip_args(&["link", "set", peer, "up"]);
        self.mac(name)
    }

    /// A veth pair `name` / `<name>p`, both up; returns the MAC of `name`.
    pub fn veth(&self, name: &str) -> String {
        self.veth_pair(name, &format!("{name}p"))
    }

    pub fn mac(&self, ifname: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-br", "link", "show", "dev", ifname])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_whitespace().nth(2).unwrap().to_owned()
    }

    /// MAC of every link, by name.
    pub fn macs(&self) -> BTreeMap<String, String> {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-br", "link"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let name = f.first()?.split('@').next()?.to_owned();
                Some((name, f.get(2)?.to_string()))
            })
            .collect()
    }

    /// The IPv4 addresses of `dev`, sorted.
    pub fn addrs4(&self, dev: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-4", "-o", "addr", "show", "dev", dev])
            .output()
            .unwrap();
        let mut v: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| Some(l.split_whitespace().nth(3)?.split('/').next()?.to_owned()))
            .collect();
        v.sort();
        v
    }

    /// `ip -n <ns> -force -batch -` with `lines`, at once; must succeed.
    pub fn batch(&self, lines: &[String]) {
        let mut child = self.batch_child();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(lines.join("\n").as_bytes()).unwrap();
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }

    /// The `ip -batch` process, for a caller that feeds it over time.
    pub fn batch_child(&self) -> Child {
        Command::new("ip")
            .args(["-n", &self.name, "-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Fails the test with one line naming the package when `ip` (iproute2) is missing: a fresh
/// Debian 12 has none, and every netns test would otherwise die on an unwrap deep inside.
fn require_ip() {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| Command::new("ip").arg("-V").output().is_ok());
    assert!(
        found,
        "`ip` not found: the network-namespace tests need iproute2 (apt-get install iproute2) and root"
    );
}

/// Runs a command that must succeed.
pub fn run(argv: &[&str]) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A guest whose agent runs in a fresh namespace, with a fake sysfs under its root.
pub fn setup(name: &str) -> (Guest, Netns, FakeSysfs) {
    let mut g = Guest::new(name);
    let ns = Netns::new();
    g.netns = Some(ns.name.clone());
    let sys = FakeSysfs::new(g.root.path());
    (g, ns, sys)
}
