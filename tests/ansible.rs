//! `xenbeacon list --format ansible` and the shipped inventory script
//! (packaging/ansible/xenbeacon-ansible-inventory) under the real Ansible: Debian's
//! `ansible-core` runs the script with `-i` against the fake xenstored, with well-behaved and
//! hostile guests, and what Ansible made of it is checked (`ansible-inventory --list`,
//! `--graph`, and `ansible HOST -m debug`, which templates variables as a play would).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::fake_xenstored::FakeXenstored;
use support::{tempdir, TempDir};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/ansible/xenbeacon-ansible-inventory"
);

/// A host with dom0 and five guests:
/// 1 web1: xenbeacon, booted, a link-local and then a usable address on vif 0, a PCI NIC;
/// 2 win: another agent (XAPI-style keys), 10.0.0.50 on vif 0;
/// 3 bare: no agent, no address;
/// 4 a name Ansible cannot use, and every value hostile (Jinja, quotes, newlines, 4 KiB);
/// 5 another "web1": left out, not merged with domain 1.
struct Fleet {
    xs: FakeXenstored,
    dir: TempDir,
}

const EVIL_NAME: &str = "evil host\n{{ 6 * 7 }}";
const JINJA: &str = "{{ 7 * 7 }}";

fn fleet(name: &str) -> Fleet {
    let dir = tempdir(name);
    let xs = FakeXenstored::start(dir.path());
    xs.write("/local/domain/0/name", "Domain-0");
    let long = "x".repeat(4000);
    let guests: [(u32, &[(&str, &str)]); 5] = [
        (
            1,
            &[
                ("name", "web1"),
                ("vm", "/vm/5e3c0f5e-4a1f-4a4c-9a5e-0c1e2f3a4b5c"),
                ("data/os_name", "Debian GNU/Linux 12 (bookworm)"),
                ("data/os_distro", "debian"),
                ("data/os_majorver", "12"),
                ("data/os_uname", "6.1.0-28-amd64"),
                ("data/meminfo_total", "2013232"),
                ("data/meminfo_free", "1503232"),
                ("data/xenbeacon/layout", "1"),
                ("data/xenbeacon/version", "1.0.0"),
                ("data/xenbeacon/stage", "rootfs"),
                ("data/xenbeacon/booted", "1"),
                ("attr/vif/0/name", "eth0"),
                ("attr/vif/0/mac/0", "00:16:3e:00:00:01"),
                ("attr/vif/0/ipv4/0", "169.254.7.7"),
                ("attr/vif/0/ipv4/1", "10.0.0.2"),
                ("attr/vif/0/ipv4/1/prefix", "24"),
                ("attr/net/525400123405/name", "enp0s5"),
                ("attr/net/525400123405/bus", "pci"),
                ("attr/net/525400123405/ipv4/0", "192.0.2.15"),
                ("device/vif/0/mac", "00:16:3e:00:00:01"),
            ],
        ),
        (
            2,
            &[
                ("name", "win"),
                ("data/os_name", "Microsoft Windows Server 2019 Standard"),
                ("data/os_distro", "windows"),
                ("data/updated", "1"),
                ("attr/PVAddons/MajorVersion", "9"),
                ("attr/vif/0/ipv4/0", "10.0.0.50"),
            ],
        ),
        (
            3,
            &[("name", "bare"), ("device/vif/0/mac", "00:16:3e:00:00:03")],
        ),
        (
            4,
            &[
                ("name", EVIL_NAME),
                ("data/os_name", JINJA),
                ("data/os_distro", "Ubuntu\n\"Core\" {{ x }}"),
                ("data/os_uname", &long),
                ("data/xenbeacon/layout", "1"),
                ("data/xenbeacon/stage", "../initramfs"),
                (
                    "attr/vif/0/name",
                    "{{ lookup('pipe', 'touch /tmp/xb-pwned') }}",
                ),
                ("attr/vif/0/ipv4/0", "10.0.0.4\n"),
                ("attr/vif/0/ipv4/1", "127.0.0.1"),
                ("attr/vif/1/ipv4/0", "010.0.0.4"),
                ("attr/vif/2/ipv4/0", "10.0.0.44"),
            ],
        ),
        (
            5,
            &[
                ("name", "web1"),
                ("data/xenbeacon/layout", "1"),
                ("attr/vif/0/ipv4/0", "10.6.6.6"),
            ],
        ),
    ];
    for (domid, keys) in guests {
        xs.add_domain(domid);
        for (k, v) in keys {
            xs.write(&format!("/local/domain/{domid}/{k}"), v);
        }
    }
    Fleet { xs, dir }
}

/// A command of the Ansible suite, fails with the package to install when it is missing.
fn ansible_cmd(f: &Fleet, program: &str) -> Command {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    assert!(
        found,
        "{program} missing (apt-get install ansible-core; tests/run-all.sh installs it)"
    );
    let home = f.dir.path().join("home");
    let mut c = Command::new(program);
    c.env("XENBEACON", env!("CARGO_BIN_EXE_xenbeacon"))
        .env("XENBEACON_XENSTORE", f.xs.dom0_socket())
        .env("HOME", &home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        // Only the script plugin, and an inventory it cannot parse is an error, not a warning.
        .env("ANSIBLE_INVENTORY_ENABLED", "script")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
        .env_remove("ANSIBLE_CONFIG");
    c
}

fn run(mut c: Command) -> (String, String) {
    let o: Output = c.output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "{c:?}: {:?}\n{out}\n{err}", o.status);
    (out, err)
}

/// Every leaf of a JSON document as a `path=value` line (Python's json, which ansible-core
/// itself needs), so that the checks below do not depend on how Ansible indents.
fn flatten(json: &str, dir: &Path) -> Vec<String> {
    let input = dir.join("flatten.json");
    std::fs::write(&input, json).unwrap();
    let o = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import json, sys
def walk(p, v):
    if isinstance(v, dict):
        for k in sorted(v): walk(p + [str(k)], v[k])
    elif isinstance(v, list):
        for i, x in enumerate(v): walk(p + [str(i)], x)
    else:
        print(".".join(p) + "=" + json.dumps(v))
walk([], json.load(open(sys.argv[1])))
"#,
        )
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l == want)
}

#[test]
fn ansible_inventory_lists_guests_with_hosts_groups_and_vars() {
    let f = fleet("ainv");
    let mut c = ansible_cmd(&f, "ansible-inventory");
    c.args(["-i", SCRIPT, "--list"]);
    let (out, err) = run(c);
    println!("{out}\n{err}");
    assert!(!err.contains("WARNING"), "{err}");
    let l = flatten(&out, f.dir.path());
    for want in [
        // the usable address of vif 0, not the link-local one before it
        r#"_meta.hostvars.web1.ansible_host="10.0.0.2""#,
        r#"_meta.hostvars.web1.xenbeacon_domid=1"#,
        r#"_meta.hostvars.web1.xenbeacon_agent="xenbeacon""#,
        r#"_meta.hostvars.web1.xenbeacon_os_distro.__ansible_unsafe="debian""#,
        r#"_meta.hostvars.web1.xenbeacon_kernel.__ansible_unsafe="6.1.0-28-amd64""#,
        r#"_meta.hostvars.web1.xenbeacon_booted=true"#,
        r#"_meta.hostvars.web1.xenbeacon_memory_total_kb=2013232"#,
        r#"_meta.hostvars.web1.xenbeacon_uuid.__ansible_unsafe="5e3c0f5e-4a1f-4a4c-9a5e-0c1e2f3a4b5c""#,
        r#"_meta.hostvars.web1.xenbeacon_ipv4.0="10.0.0.2""#,
        r#"_meta.hostvars.web1.xenbeacon_ipv4.1="192.0.2.15""#,
        r#"_meta.hostvars.web1.xenbeacon_nics.0.name.__ansible_unsafe="eth0""#,
        r#"_meta.hostvars.web1.xenbeacon_nics.1.kind.__ansible_unsafe="pci""#,
        r#"_meta.hostvars.win.ansible_host="10.0.0.50""#,
        r#"_meta.hostvars.win.xenbeacon_agent="xapi-style""#,
        r#"_meta.hostvars.bare.xenbeacon_agent="none""#,
        // hostile: a name Ansible cannot use, values kept as written, unusable addresses skipped
        r#"_meta.hostvars.domain-4.ansible_host="10.0.0.44""#,
        r#"_meta.hostvars.domain-4.xenbeacon_name.__ansible_unsafe="evil host\n{{ 6 * 7 }}""#,
        r#"_meta.hostvars.domain-4.xenbeacon_os_name.__ansible_unsafe="{{ 7 * 7 }}""#,
        r#"_meta.hostvars.domain-4.xenbeacon_nics.0.name.__ansible_unsafe="{{ lookup('pipe', 'touch /tmp/xb-pwned') }}""#,
        r#"all.children.0="ungrouped""#,
        // ansible-inventory prints the marker back: the values stay unsafe inside Ansible
        r#"_meta.hostvars.web1.xenbeacon_nics.0.path.__ansible_unsafe="attr/vif/0""#,
        r#"xenbeacon_agent_xenbeacon.hosts.0="web1""#,
        r#"xenbeacon_agent_xenbeacon.hosts.1="domain-4""#,
        r#"xenbeacon_agent_xapi_style.hosts.0="win""#,
        r#"xenbeacon_agent_none.hosts.0="bare""#,
        r#"xenbeacon_booted.hosts.0="web1""#,
        r#"xenbeacon_booted.hosts.1="win""#,
        r#"xenbeacon_not_booted.hosts.0="bare""#,
        r#"xenbeacon_distro_debian.hosts.0="web1""#,
        r#"xenbeacon_distro_windows.hosts.0="win""#,
        r#"xenbeacon_distro_ubuntu__core_____x___.hosts.0="domain-4""#,
        r#"xenbeacon_stage_rootfs.hosts.0="web1""#,
        r#"xenbeacon_stage____initramfs.hosts.0="domain-4""#,
    ] {
        assert!(has(&l, want), "missing {want}\nin\n{}", l.join("\n"));
    }
    let long = l
        .iter()
        .find(|x| x.starts_with("_meta.hostvars.domain-4.xenbeacon_kernel."))
        .unwrap();
    let key = "_meta.hostvars.domain-4.xenbeacon_kernel.__ansible_unsafe=";
    assert_eq!(long.len(), key.len() + 4002);
    // Domain 5 is also "web1": left out, not merged into domain 1.
    assert!(!out.contains("10.6.6.6"), "{out}");
    assert!(!has(&l, "_meta.hostvars.web1.xenbeacon_domid=5"));
    // Domain-0 is not a guest.
    assert!(!out.contains("Domain-0"), "{out}");
    assert!(!has(&l, r#"_meta.hostvars.bare.ansible_host="#));
    assert!(!l
        .iter()
        .any(|x| x.starts_with("_meta.hostvars.bare.ansible_host")));

    let mut c = ansible_cmd(&f, "ansible-inventory");
    c.args(["-i", SCRIPT, "--graph"]);
    let (graph, _) = run(c);
    println!("{graph}");
    assert!(
        graph.contains("  |--@xenbeacon_booted:\n  |  |--web1\n  |  |--win\n"),
        "{graph}"
    );
}

/// The variables as a play sees them: `ansible HOST -m debug -a var=...` templates the
/// variable, so a guest's `{{ 7 * 7 }}` would print 49 if it were not marked unsafe. And
/// the same inventory without the marker does print 49: the check can fail.
#[test]
fn ansible_uses_ansible_host_and_never_templates_guest_values() {
    let f = fleet("adebug");
    let _ = std::fs::remove_file("/tmp/xb-pwned");
    let debug = |inventory: &str, host: &str, var: &str, file: Option<&PathBuf>| {
        let mut c = ansible_cmd(&f, "ansible");
        c.args(["-i", inventory, host, "-m", "debug", "-a"])
            .arg(format!("var={var}"));
        if let Some(file) = file {
            c.env("XENBEACON_INVENTORY", file);
        }
        let (out, _) = run(c);
        println!("{out}");
        out
    };
    let out = debug(SCRIPT, "web1", "ansible_host", None);
    assert!(out.contains(r#""ansible_host": "10.0.0.2""#), "{out}");
    let out = debug(SCRIPT, "domain-4", "xenbeacon_os_name", None);
    assert!(
        out.contains(r#""xenbeacon_os_name": "{{ 7 * 7 }}""#),
        "{out}"
    );
    let out = debug(SCRIPT, "domain-4", "xenbeacon_nics", None);
    assert!(out.contains("touch /tmp/xb-pwned"), "{out}");
    assert!(!Path::new("/tmp/xb-pwned").exists());

    // What the binary printed, with the unsafe marker taken off one value: Ansible templates
    // it. (XENBEACON_INVENTORY: the script prints a file instead of asking XenStore.)
    let o = Command::new(SCRIPT)
        .arg("--list")
        .env("XENBEACON", env!("CARGO_BIN_EXE_xenbeacon"))
        .env("XENBEACON_XENSTORE", f.xs.dom0_socket())
        .output()
        .unwrap();
    assert!(o.status.success());
    let inv = String::from_utf8(o.stdout).unwrap();
    let marked = r#"{"__ansible_unsafe":"{{ 7 * 7 }}"}"#;
    assert_eq!(inv.matches(marked).count(), 1, "{inv}");
    let file = f.dir.path().join("unmarked.json");
    std::fs::write(&file, inv.replace(marked, r#""{{ 7 * 7 }}""#)).unwrap();
    let out = debug(SCRIPT, "domain-4", "xenbeacon_os_name", Some(&file));
    assert!(out.contains(r#""xenbeacon_os_name": "49""#), "{out}");
}

/// The script's `--host NAME` (Ansible does not call it when `_meta` is there, but other
/// consumers of inventory scripts do), and its usage errors.
#[test]
fn inventory_script_host_and_usage() {
    let f = fleet("ahost");
    let script = |args: &[&str]| {
        Command::new(SCRIPT)
            .args(args)
            .env("XENBEACON", env!("CARGO_BIN_EXE_xenbeacon"))
            .env("XENBEACON_XENSTORE", f.xs.dom0_socket())
            .output()
            .unwrap()
    };
    let o = script(&["--host", "win"]);
    assert!(o.status.success());
    let l = flatten(&String::from_utf8_lossy(&o.stdout), f.dir.path());
    assert!(has(&l, r#"ansible_host="10.0.0.50""#), "{l:?}");
    assert!(has(&l, r#"xenbeacon_domid=2"#), "{l:?}");
    let o = script(&["--host", "nosuch"]);
    assert_eq!((o.status.code(), &o.stdout[..]), (Some(0), &b"{}\n"[..]));
    for bad in [
        &[][..],
        &["--host"][..],
        &["--list", "x"][..],
        &["--graph"][..],
    ] {
        let o = script(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("usage:"));
    }
    // XenStore not there: xenbeacon's status, not an empty inventory.
    let o = Command::new(SCRIPT)
        .arg("--list")
        .env("XENBEACON", env!("CARGO_BIN_EXE_xenbeacon"))
        .env("XENBEACON_XENSTORE", f.dir.path().join("missing.sock"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(o.stdout.is_empty());
}
