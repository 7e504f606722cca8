//! Each event's meaning, without an fd: an agent over a fake /proc and /sys tree.

use super::*;
use std::fs;

/// A fake root, removed when dropped.
struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Root {
        let dir = std::env::temp_dir().join(format!(
            "xb-agent-{name}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let root = Root(dir);
        root.file(
            "proc/meminfo",
            "MemTotal: 1000000 kB\nMemFree: 500000 kB\nMemAvailable: 600000 kB\n",
        );
        root.file("proc/sys/kernel/osrelease", "6.1.0-test\n");
        root.file("proc/sys/kernel/hostname", "web1\n");
        root.file("proc/sys/kernel/domainname", "(none)\n");
        root
    }

    fn file(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn balloon(&self, target_kb: u64, current_kb: u64) {
        let dir = "sys/devices/system/xen_memory/xen_memory0";
        self.file(&format!("{dir}/target_kb"), &format!("{target_kb}\n"));
        self.file(
            &format!("{dir}/info/current_kb"),
            &format!("{current_kb}\n"),
        );
    }

    fn agent(&self) -> Agent {
        self.agent_with(false)
    }

    fn agent_with(&self, apply_ip_settings: bool) -> Agent {
        Agent::new(AgentConfig {
            root: self.0.clone(),
            memory_threshold_kb: 1024,
            nics: NicOptions::default(),
            stage: Some(BootStage::Rootfs),
            booted: false,
            feature_balloon: true,
            balloon_stuck_after: Duration::from_secs(30),
            apply_ip_settings,
        })
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn desired(agent: &Agent, k: &str) -> Option<String> {
    agent.desired().get(k).map(str::to_owned)
}

const PUBLISH_ONLY: Reaction = Reaction::PUBLISH;

#[test]
fn the_first_connection_sends_what_is_known_before_opening_rtnetlink() {
    let root = Root::new("connect");
    let mut agent = root.agent();
    let r = agent.on_connected();
    assert_eq!(
        r,
        Reaction {
            publish_early: true,
            netlink: NetlinkStep::Open,
            read_hints: true,
            publish: true,
            settle_connection: true,
            ..Reaction::default()
        }
    );
}

#[test]
fn address_requests_are_checked_on_their_watch_and_reapplied_on_connect_and_sighup() {
    let root = Root::new("ip-settings");
    // a record an earlier run left, with a line that cannot be trusted
    root.file(
        "run/xenbeacon/netconfig",
        "xenopsd 0 4 2 10.0.0.2/24 10.0.0.1\ngarbage\n",
    );
    let mut agent = root.agent_with(true);
    assert_eq!(
        desired(&agent, key::FEATURE_STATIC_IP_SETTING).as_deref(),
        Some("1")
    );
    assert_eq!(agent.on_connected().ip_settings, IpStep::Reapply);
    let now = Instant::now();
    let r = agent.on_watch_event(ip_setting::XENOPSD_DIR, TOKEN_IP_SETTING, now);
    assert_eq!(r.ip_settings, IpStep::Check);
    assert!(!r.check_domain && !r.publish);
    assert_eq!(agent.on_hangup().ip_settings, IpStep::Reapply);
    let mut both = agent.on_connected();
    both |= Reaction {
        ip_settings: IpStep::Check,
        ..Reaction::default()
    };
    assert_eq!(both.ip_settings, IpStep::Reapply);
    assert_eq!(
        agent.ip.as_ref().map(|ip| ip.applied().entries.len()),
        Some(1)
    );

    // without the option: no key, no step, the token means nothing
    let mut off = root.agent();
    assert_eq!(desired(&off, key::FEATURE_STATIC_IP_SETTING), None);
    assert_eq!(off.on_connected().ip_settings, IpStep::Nothing);
    let r = off.on_watch_event(ip_setting::XENOPSD_DIR, TOKEN_IP_SETTING, now);
    assert_eq!(r, Reaction::default());
    assert_eq!(off.on_hangup().ip_settings, IpStep::Nothing);
}

#[test]
fn sighup_rereads_every_source_and_asks_for_a_dump_hints_and_a_round() {
    let root = Root::new("hup");
    let mut agent = root.agent();
    assert_eq!(desired(&agent, key::HOST_NAME).as_deref(), Some("web1"));
    root.file("proc/sys/kernel/hostname", "web2.example.com\n");
    let r = agent.on_hangup();
    assert_eq!(
        r,
        Reaction {
            netlink: NetlinkStep::Redump,
            read_hints: true,
            publish: true,
            ..Reaction::default()
        }
    );
    assert_eq!(desired(&agent, key::HOST_NAME).as_deref(), Some("web2"));
    assert_eq!(desired(&agent, key::DOMAIN).as_deref(), Some("example.com"));
}

#[test]
fn a_host_name_change_publishes_and_an_unchanged_name_does_not() {
    let root = Root::new("host");
    let mut agent = root.agent();
    assert_eq!(agent.on_host_name_changed(), Reaction::default());
    root.file("proc/sys/kernel/hostname", "db1\n");
    assert_eq!(agent.on_host_name_changed(), PUBLISH_ONLY);
    assert_eq!(desired(&agent, key::HOST_NAME).as_deref(), Some("db1"));
}

#[test]
fn a_new_balloon_target_publishes_and_rechecks_but_its_registration_event_does_not_recheck() {
    let root = Root::new("target");
    root.balloon(1000000, 1000000);
    let mut agent = root.agent();
    // The registration event of the agent's watch: nothing moved, no domain check.
    agent.watches.unseen = vec![TOKEN_TARGET, TOKEN_UDID];
    let r = agent.on_watch_event("memory/target", TOKEN_TARGET, Instant::now());
    assert_eq!(r, PUBLISH_ONLY);
    // A real event: the driver may not have started, so look again; and is the domain
    // still ours?
    root.balloon(800000, 1000000);
    let r = agent.on_watch_event("memory/target", TOKEN_TARGET, Instant::now());
    assert_eq!(
        r,
        Reaction {
            recheck_balloon: true,
            check_domain: true,
            publish: true,
            ..Reaction::default()
        }
    );
    assert_eq!(
        desired(&agent, key::BALLOON_STATE).as_deref(),
        Some("ballooning")
    );
}

#[test]
fn a_watch_event_with_a_foreign_token_means_nothing() {
    let root = Root::new("foreign");
    let mut agent = root.agent();
    let r = agent.on_watch_event("memory/target", "someone-else", Instant::now());
    assert_eq!(r, Reaction::default());
    // unique-domain-id fired again (after its registration): check the domain.
    let r = agent.on_watch_event("unique-domain-id", TOKEN_UDID, Instant::now());
    assert_eq!(
        r,
        Reaction {
            check_domain: true,
            ..Reaction::default()
        }
    );
}

#[test]
fn the_balloon_recheck_goes_on_while_the_balloon_moves() {
    let root = Root::new("recheck");
    root.balloon(800000, 1000000);
    let mut agent = root.agent();
    let t0 = Instant::now();
    root.balloon(800000, 900000);
    let r = agent.on_balloon_recheck(t0 + Duration::from_secs(1));
    assert!(r.recheck_balloon && r.publish, "{r:?}");
    root.balloon(800000, 800000);
    let r = agent.on_balloon_recheck(t0 + Duration::from_secs(2));
    assert_eq!(r, PUBLISH_ONLY);
    assert_eq!(
        desired(&agent, key::BALLOON_STATE).as_deref(),
        Some("reached")
    );
}

#[test]
fn the_memory_tick_publishes_and_checks_the_domain_only_for_a_refused_watch() {
    let root = Root::new("tick");
    let mut agent = root.agent();
    root.file(
        "proc/meminfo",
        "MemTotal: 1000000 kB\nMemAvailable: 300000 kB\n",
    );
    assert_eq!(agent.on_memory_tick(Instant::now()), PUBLISH_ONLY);
    assert_eq!(
        desired(&agent, key::MEMINFO_FREE).as_deref(),
        Some("300000")
    );
    agent.watches.unwatched = vec![TOKEN_UDID];
    let r = agent.on_memory_tick(Instant::now());
    assert!(r.publish && r.check_domain, "{r:?}");
}

#[test]
fn an_unreadable_meminfo_keeps_the_memory_keys() {
    let root = Root::new("nomem");
    let mut agent = root.agent();
    fs::remove_file(root.0.join("proc/meminfo")).unwrap();
    assert!(!agent.refresh_memory());
    assert!(agent.meminfo_fault.active());
    assert_eq!(
        desired(&agent, key::MEMINFO_TOTAL).as_deref(),
        Some("1000000")
    );
}

#[test]
fn dropped_watch_events_and_a_clock_jump_check_the_domain() {
    let root = Root::new("dropped");
    let mut agent = root.agent();
    let r = agent.on_events_dropped(40, Instant::now());
    assert_eq!(
        r,
        Reaction {
            check_domain: true,
            ..Reaction::default()
        }
    );
    assert!(agent.watches.overflow_logged);
    assert_eq!(agent.on_clock_jump(), r);
    // With a balloon driver, its target is read again too and a round goes out.
    root.balloon(1000000, 1000000);
    let r = agent.on_events_dropped(1, Instant::now());
    assert!(r.publish && r.check_domain, "{r:?}");
}

#[test]
fn reactions_combine_by_union_and_the_stronger_rtnetlink_step() {
    let mut r = Reaction {
        netlink: NetlinkStep::Redump,
        ..Reaction::default()
    };
    r |= Reaction {
        netlink: NetlinkStep::Open,
        recheck_balloon: true,
        ..Reaction::default()
    };
    r |= PUBLISH_ONLY;
    assert_eq!(
        r,
        Reaction {
            netlink: NetlinkStep::Redump,
            recheck_balloon: true,
            publish: true,
            ..Reaction::default()
        }
    );
}

#[test]
fn a_dry_run_plans_everything_once_with_data_updated() {
    let root = Root::new("dry");
    let agent = root.agent();
    let plan = agent.full_plan();
    assert!(plan
        .iter()
        .any(|op| op.key() == key::OS_UNAME && op.value() == Some("6.1.0-test")));
    assert!(plan.iter().any(|op| op.key() == key::UPDATED));
}
