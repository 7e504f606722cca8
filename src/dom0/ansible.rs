//! `list --format ansible`: the guests of this host as an Ansible dynamic inventory, the JSON
//! an inventory script prints for `--list` (hosts by group, their variables under
//! `_meta.hostvars`, so that Ansible never asks `--host` for each), or for `--host NAME`.
//!
//! Ansible runs what it reads: a string variable holding `{{ ... }}` is a Jinja template,
//! evaluated on the control node whenever a play uses the variable. Every string here came
//! from a guest (or, for names, from whoever configured the domain), so each is written as
//! `{"__ansible_unsafe": "..."}`, the marker Ansible's JSON decoder turns into an unsafe
//! string that is never templated (ansible-core `parsing/ajson.py`, `AnsibleJSONDecoder`).
//! What is not a guest's string is validated and plain: `ansible_host` is an address that
//! `wait --ip` would print, in canonical form; host and group names are checked or rewritten
//! to what Ansible accepts without a warning (group names: `[A-Za-z_][A-Za-z0-9_]*`).
//!
//! Memory: host variables are written as each domain is read; only host and group names stay
//! until the end (at most [`MAX_NAME`] bytes each, four groups per host).

use std::collections::{BTreeMap, BTreeSet};

use super::json::{self, Obj};
use super::report::{Agent, GuestReport};
use super::wait::{first_usable_ipv4, usable_ipv4};

/// Longest host name used as is, and longest value in a group name.
pub const MAX_NAME: usize = 63;
/// Prefix of every variable and group this inventory makes.
pub const PREFIX: &str = "xenbeacon_";

/// The inventory host name of a domain: its `name` if that is 1-63 ASCII letters, digits,
/// `_`, `-`, `.` not starting with `-` or `.` (usable in a host pattern and on a command line),
/// else `domain-<domid>`.
pub fn host_name(r: &GuestReport) -> String {
    match r.name.as_deref() {
        Some(n)
            if (1..=MAX_NAME).contains(&n.len())
                && !n.starts_with(['-', '.'])
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) =>
        {
            n.to_owned()
        }
        _ => format!("domain-{}", r.domid),
    }
}

/// `xenbeacon_<what>_<value>`: `value` lower-cased, every character other than `a-z`, `0-9`
/// and `_` replaced by `_`, cut to [`MAX_NAME`] characters; `None` for an empty value.
pub fn group_name(what: &str, value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    let mut g = format!("{PREFIX}{what}_");
    g.extend(value.chars().take(MAX_NAME).map(|c| match c {
        'a'..='z' | '0'..='9' | '_' => c,
        'A'..='Z' => c.to_ascii_lowercase(),
        _ => '_',
    }));
    Some(g)
}

/// The groups a guest is in.
pub fn groups(r: &GuestReport) -> Vec<String> {
    let agent = match r.agent {
        Agent::Xenbeacon { .. } => "xenbeacon",
        Agent::XapiStyle { .. } => "xapi_style",
        Agent::None => "none",
        Agent::NoAccess => "no_access",
    };
    let booted = if r.booted() { "booted" } else { "not_booted" };
    let mut g = vec![
        format!("{PREFIX}agent_{agent}"),
        format!("{PREFIX}{booted}"),
    ];
    g.extend(r.os.distro.as_deref().and_then(|d| group_name("distro", d)));
    g.extend(r.stage.as_deref().and_then(|s| group_name("stage", s)));
    g
}

/// A guest's string: marked unsafe (never templated), or `null`.
fn unsafe_str(o: &mut Obj<'_>, k: &str, v: Option<&str>) {
    let out = o.key(k);
    match v {
        Some(v) => {
            out.push_str(r#"{"__ansible_unsafe":"#);
            json::string(out, v);
            out.push('}');
        }
        None => out.push_str("null"),
    }
}

/// The host variables of one guest, as a JSON object.
pub fn host_vars(out: &mut String, r: &GuestReport) {
    let mut o = Obj::new(out);
    if let Some(ip) = first_usable_ipv4(r) {
        o.str("ansible_host", Some(&ip.to_string()));
    }
    o.num("xenbeacon_domid", Some(u64::from(r.domid)));
    unsafe_str(&mut o, "xenbeacon_name", r.name.as_deref());
    unsafe_str(&mut o, "xenbeacon_uuid", r.uuid.as_deref());
    o.str("xenbeacon_access", Some(r.access()));
    let (kind, layout, version, pv) = match &r.agent {
        Agent::Xenbeacon { layout, version } => {
            ("xenbeacon", Some(layout.as_str()), version.as_deref(), None)
        }
        Agent::XapiStyle { pv_version } => ("xapi-style", None, None, pv_version.as_deref()),
        Agent::None => ("none", None, None, None),
        Agent::NoAccess => ("no-access", None, None, None),
    };
    o.str("xenbeacon_agent", Some(kind));
    unsafe_str(&mut o, "xenbeacon_agent_layout", layout);
    unsafe_str(&mut o, "xenbeacon_agent_version", version);
    unsafe_str(&mut o, "xenbeacon_pv_version", pv);
    unsafe_str(&mut o, "xenbeacon_os_name", r.os.name.as_deref());
    unsafe_str(&mut o, "xenbeacon_os_distro", r.os.distro.as_deref());
    unsafe_str(&mut o, "xenbeacon_os_major", r.os.major.as_deref());
    unsafe_str(&mut o, "xenbeacon_os_minor", r.os.minor.as_deref());
    unsafe_str(&mut o, "xenbeacon_kernel", r.os.kernel.as_deref());
    unsafe_str(&mut o, "xenbeacon_host_name", r.os.host_name.as_deref());
    unsafe_str(&mut o, "xenbeacon_stage", r.stage.as_deref());
    o.bool("xenbeacon_booted", Some(r.booted()));
    unsafe_str(&mut o, "xenbeacon_updated", r.updated.as_deref());
    o.num("xenbeacon_memory_total_kb", r.memory.total_kb)
        .num("xenbeacon_memory_free_kb", r.memory.free_kb)
        .num("xenbeacon_memory_target_kb", r.memory.target_kb)
        .num("xenbeacon_memory_static_max_kb", r.memory.static_max_kb);
    let b = r.balloon.as_ref();
    unsafe_str(
        &mut o,
        "xenbeacon_balloon_state",
        b.and_then(|b| b.state.as_deref()),
    );
    unsafe_str(
        &mut o,
        "xenbeacon_balloon_reason",
        b.and_then(|b| b.reason.as_deref()),
    );
    o.num("xenbeacon_balloon_target_kb", b.and_then(|b| b.target_kb))
        .num("xenbeacon_balloon_current_kb", b.and_then(|b| b.current_kb));
    {
        // Validated and canonical, like ansible_host: plain strings.
        let mut a = o.arr("xenbeacon_ipv4");
        for n in r.nics.iter().filter(|n| n.reported) {
            for ip in n.ipv4.iter().filter_map(usable_ipv4) {
                a.str(&ip.to_string());
            }
        }
    }
    {
        // Every NIC as `show --json` has it, the whole list marked unsafe (Ansible wraps
        // every string inside).
        let out = o.key("xenbeacon_nics");
        let mut wrapper = Obj::new(out);
        let mut a = wrapper.arr("__ansible_unsafe");
        for n in &r.nics {
            json::nic(&mut a.obj(), n);
        }
    }
    o.bool("xenbeacon_truncated", Some(r.truncated));
}

/// An inventory being written: `{"_meta":{"hostvars":{` first, one host at a time, then the
/// groups. With a host given (`--host NAME`), only that host's variables.
pub struct Inventory {
    /// `--host NAME`.
    only: Option<String>,
    /// Host names given out, in order.
    hosts: BTreeSet<String>,
    /// Hosts by group.
    groups: BTreeMap<String, Vec<String>>,
    /// With `only`: its variables, once found.
    found: Option<String>,
    /// Domains left out, with why, for stderr.
    pub skipped: Vec<String>,
}

impl Inventory {
    pub fn new(only: Option<&str>) -> Inventory {
        Inventory {
            only: only.map(str::to_owned),
            hosts: BTreeSet::new(),
            groups: BTreeMap::new(),
            found: None,
            skipped: Vec::new(),
        }
    }

    /// What comes before the first host.
    pub fn begin(&self, out: &mut String) {
        if self.only.is_none() {
            out.push_str(r#"{"_meta":{"hostvars":{"#);
        }
    }

    /// Adds one domain (dom0, which is not a guest, is left out).
    pub fn add(&mut self, out: &mut String, r: &GuestReport) {
        if r.domid == 0 {
            return;
        }
        let name = host_name(r);
        if self.hosts.contains(&name) {
            self.skipped.push(format!(
                "domain {} left out: inventory host name '{name}' is taken by a lower domid",
                r.domid
            ));
            return;
        }
        match &self.only {
            Some(only) if *only == name => {
                let mut vars = String::new();
                host_vars(&mut vars, r);
                self.found = Some(vars);
            }
            Some(_) => {}
            None => {
                if !self.hosts.is_empty() {
                    out.push(',');
                }
                json::string(out, &name);
                out.push(':');
                host_vars(out, r);
                for g in groups(r) {
                    self.groups.entry(g).or_default().push(name.clone());
                }
            }
        }
        self.hosts.insert(name);
    }

    /// What comes after the last host: the groups (or the one host's variables).
    pub fn finish(self, out: &mut String) {
        if self.only.is_some() {
            out.push_str(self.found.as_deref().unwrap_or("{}"));
            out.push('\n');
            return;
        }
        out.push_str("}}");
        for (g, hosts) in &self.groups {
            out.push(',');
            json::string(out, g);
            out.push(':');
            let mut o = Obj::new(out);
            let mut a = o.arr("hosts");
            for h in hosts {
                a.str(h);
            }
        }
        out.push_str("}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::DomainTree;
    use super::*;

    fn guest(domid: u32, name: &str) -> DomainTree {
        let mut t = DomainTree::new(domid);
        t.set("name", name)
            .set("data/xenbeacon/layout", "1")
            .set("data/xenbeacon/stage", "rootfs")
            .set("data/os_distro", "debian")
            .set("attr/vif/0/ipv4/0", "169.254.1.1")
            .set("attr/vif/0/ipv4/1", "10.0.0.2")
            .set("attr/vif/0/ipv4/1/prefix", "24");
        t
    }

    fn list(trees: &[DomainTree]) -> String {
        let mut inv = Inventory::new(None);
        let mut out = String::new();
        inv.begin(&mut out);
        for t in trees {
            inv.add(&mut out, &GuestReport::parse(t));
        }
        inv.finish(&mut out);
        out
    }

    #[test]
    fn host_names_are_checked() {
        let name = |n: &str| host_name(&GuestReport::parse(DomainTree::new(7).set("name", n)));
        assert_eq!(name("web1.example_com-2"), "web1.example_com-2");
        for bad in [
            "",
            "-rf",
            ".hidden",
            "web 1",
            "a:b",
            "web[1:3]",
            "{{x}}",
            "grüße",
            &"x".repeat(64),
        ] {
            assert_eq!(name(bad), "domain-7", "{bad:?}");
        }
        assert_eq!(
            host_name(&GuestReport::parse(&DomainTree::new(8))),
            "domain-8"
        );
    }

    #[test]
    fn group_names_are_valid() {
        assert_eq!(
            group_name("distro", "Debian").as_deref(),
            Some("xenbeacon_distro_debian")
        );
        assert_eq!(
            group_name("stage", "init-ramfs\n\"x\"ü").as_deref(),
            Some("xenbeacon_stage_init_ramfs__x__")
        );
        assert_eq!(group_name("stage", ""), None);
        let long = group_name("distro", &"a".repeat(5000)).unwrap();
        assert_eq!(long.len(), "xenbeacon_distro_".len() + MAX_NAME);
        let valid = |g: &str| {
            g.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        assert!(valid(
            &group_name("x", "{{ lookup('pipe','id') }}").unwrap()
        ));
    }

    #[test]
    fn inventory_has_hosts_groups_and_unsafe_vars() {
        let mut evil = guest(5, "evil");
        evil.set("data/os_name", "{{ lookup('pipe', 'id') }}\"\n")
            .set("data/os_distro", "Ubuntu Core!")
            .set("data/xenbeacon/stage", "../../etc")
            .set("data/xenbeacon/booted", "1");
        let mut dom0 = DomainTree::new(0);
        dom0.set("name", "Domain-0");
        let out = list(&[dom0, guest(1, "web1"), guest(2, "web1"), evil]);
        assert!(out.starts_with(r#"{"_meta":{"hostvars":{"web1":{"ansible_host":"10.0.0.2","xenbeacon_domid":1,"xenbeacon_name":{"__ansible_unsafe":"web1"}"#), "{out}");
        assert!(!out.contains("Domain-0"), "{out}");
        assert!(
            out.contains(r#""evil":{"ansible_host":"10.0.0.2","xenbeacon_domid":5"#),
            "{out}"
        );
        assert!(
            out.contains(
                r#""xenbeacon_os_name":{"__ansible_unsafe":"{{ lookup('pipe', 'id') }}\"\n"}"#
            ),
            "{out}"
        );
        assert!(out.contains(r#""xenbeacon_ipv4":["10.0.0.2"]"#), "{out}");
        assert!(
            out.contains(r#""xenbeacon_nics":{"__ansible_unsafe":[{"kind":"vif","id":"0""#),
            "{out}"
        );
        assert!(
            out.ends_with(concat!(
                r#"}}},"xenbeacon_agent_xenbeacon":{"hosts":["web1","evil"]},"#,
                r#""xenbeacon_booted":{"hosts":["evil"]},"#,
                r#""xenbeacon_distro_debian":{"hosts":["web1"]},"#,
                r#""xenbeacon_distro_ubuntu_core_":{"hosts":["evil"]},"#,
                r#""xenbeacon_not_booted":{"hosts":["web1"]},"#,
                r#""xenbeacon_stage_______etc":{"hosts":["evil"]},"#,
                r#""xenbeacon_stage_rootfs":{"hosts":["web1"]}}"#,
                "\n"
            )),
            "{out}"
        );
        // The second "web1" (domain 2) is left out, not merged into the first.
        assert_eq!(out.matches(r#""xenbeacon_domid":2"#).count(), 0, "{out}");
    }

    #[test]
    fn one_host() {
        let mut inv = Inventory::new(Some("web2"));
        let mut out = String::new();
        inv.begin(&mut out);
        inv.add(&mut out, &GuestReport::parse(&guest(1, "web1")));
        inv.add(&mut out, &GuestReport::parse(&guest(2, "web2")));
        inv.finish(&mut out);
        assert!(
            out.starts_with(r#"{"ansible_host":"10.0.0.2","xenbeacon_domid":2,"#),
            "{out}"
        );
        assert!(out.ends_with("\"xenbeacon_truncated\":false}\n"), "{out}");
        let mut none = Inventory::new(Some("nosuch"));
        let mut out = String::new();
        none.begin(&mut out);
        none.add(&mut out, &GuestReport::parse(&guest(1, "web1")));
        none.finish(&mut out);
        assert_eq!(out, "{}\n");
    }

    #[test]
    fn no_usable_address_no_ansible_host() {
        let mut t = DomainTree::new(3);
        t.set("name", "quiet").set("attr/vif/0/ipv4/0", "127.0.0.1");
        let mut out = String::new();
        host_vars(&mut out, &GuestReport::parse(&t));
        assert!(out.starts_with(r#"{"xenbeacon_domid":3,"#), "{out}");
        assert!(!out.contains("ansible_host"), "{out}");
    }
}
