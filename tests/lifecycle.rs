//! Balloon state, control/feature-balloon, boot stage and "booted", and republishing after the
//! domain changed under the agent (new unique-domain-id, a rebuilt tree), against the fake
//! xenstored with a fake balloon driver in sysfs.

mod support;

use std::process::Command;

use support::guest::{meminfo, wait_until, Guest, DOMID, HOME};
use xenbeacon::xenbus::wire::MsgType;

const BALLOON: &str = "sys/devices/system/xen_memory/xen_memory0";

fn balloon(g: &Guest, target: u64, current: u64) {
    g.file(&format!("{BALLOON}/target_kb"), &format!("{target}\n"));
    g.file(
        &format!("{BALLOON}/info/current_kb"),
        &format!("{current}\n"),
    );
}

/// Makes control/ writable by the guest, as xenopsd (XAPI) does; libxl leaves it read-only.
fn xapi_control(g: &Guest) {
    g.xs.set_perms(&format!("{HOME}/control"), &format!("n{DOMID}"));
}

#[test]
fn balloon_keys_follow_the_driver_and_a_new_target() {
    let g = Guest::new("balloon");
    xapi_control(&g);
    balloon(&g, 131072, 131072);
    let d = g.daemon(&["--balloon-stuck-after", "2"]);
    g.wait_for("data/xenbeacon/balloon/state", "reached");
    assert_eq!(
        g.get("data/xenbeacon/balloon/target_kb").as_deref(),
        Some("131072")
    );
    assert_eq!(
        g.get("data/xenbeacon/balloon/current_kb").as_deref(),
        Some("131072")
    );
    assert_eq!(g.get("control/feature-balloon").as_deref(), Some("1"));
    assert_eq!(g.get("data/xenbeacon/balloon/reason"), None);

    // The toolstack sets a new target; the driver moves part of the way, then stops.
    balloon(&g, 98304, 110000);
    g.xs.write(&format!("{HOME}/memory/target"), "98304");
    g.wait_for("data/xenbeacon/balloon/state", "ballooning");
    assert_eq!(
        g.get("data/xenbeacon/balloon/target_kb").as_deref(),
        Some("98304")
    );
    g.wait_for("data/xenbeacon/balloon/state", "stuck");
    let reason = g.get("data/xenbeacon/balloon/reason").unwrap();
    assert!(reason.starts_with("above target by 11696 kB"), "{reason}");
    // ... and finally gets there.
    balloon(&g, 98304, 98304);
    g.xs.write(&format!("{HOME}/memory/target"), "98304");
    g.wait_for("data/xenbeacon/balloon/state", "reached");
    wait_until("reason removed", || {
        g.get("data/xenbeacon/balloon/reason").is_none()
    });
    assert_eq!(g.get("control/feature-balloon").as_deref(), Some("1"));
    d.stop();
}

#[test]
fn meminfo_total_is_written_once_the_balloon_stops() {
    let g = Guest::new("total");
    balloon(&g, 131072, 131072);
    g.file("proc/meminfo", &meminfo(120_000, 60_000));
    let d = g.daemon(&[]);
    g.wait_for("data/xenbeacon/balloon/state", "reached");
    g.wait_for("data/meminfo_total", "120000");
    g.xs.reset_stats();
    // A new target; once the balloon moves, the driver gives memory back in steps, MemTotal
    // following each one (written before the balloon's numbers: an agent that read memory
    // before the balloon would publish each step's total).
    balloon(&g, 98304, 131072);
    g.xs.write(&format!("{HOME}/memory/target"), "98304");
    g.wait_for("data/xenbeacon/balloon/state", "ballooning");
    for (current, total) in [(120_000, 112_000), (110_000, 102_000), (100_000, 92_000)] {
        g.file("proc/meminfo", &meminfo(total, 60_000));
        balloon(&g, 98304, current);
        g.wait_for("data/xenbeacon/balloon/current_kb", &current.to_string());
        assert_eq!(
            g.get("data/meminfo_total").as_deref(),
            Some("120000"),
            "the total changed while the balloon moved"
        );
    }
    g.file("proc/meminfo", &meminfo(90_000, 60_000));
    balloon(&g, 98304, 98304);
    g.wait_for("data/xenbeacon/balloon/state", "reached");
    g.wait_for("data/meminfo_total", "90000");
    d.stop();
    let total = format!("{HOME}/data/meminfo_total");
    let writes = g.xs.requests(DOMID);
    let writes = writes
        .iter()
        .filter(|(t, p)| *t == MsgType::Write && *p == total);
    assert_eq!(writes.count(), 1);
}

#[test]
fn feature_balloon_waits_for_memory_to_settle() {
    let g = Guest::new("settle");
    xapi_control(&g);
    balloon(&g, 131072, 120000);
    let d = g.daemon(&["--memory-interval", "1"]);
    g.wait_for("data/xenbeacon/balloon/state", "ballooning");
    assert_eq!(g.get("control/feature-balloon"), None);
    // squeezed takes data/updated as "booted" too: held while the balloon moves
    assert_eq!(g.get("data/updated"), None);
    // current_kb stops moving: settled, even short of the target
    wait_until("feature-balloon", || {
        g.get("control/feature-balloon").is_some()
    });
    wait_until("data/updated", || g.get("data/updated").is_some());
    d.stop();
}

#[test]
fn under_xl_feature_balloon_is_refused_once_and_never_retried() {
    let g = Guest::new("xl");
    balloon(&g, 131072, 131072);
    let d = g.daemon(&["--memory-interval", "1", "--memory-threshold", "0"]);
    g.wait_for("data/xenbeacon/balloon/state", "reached");
    for free in [1, 2, 3] {
        g.file(
            "proc/meminfo",
            &support::guest::meminfo(8_000_000, 4_000_000 + free),
        );
        g.wait_for("data/meminfo_free", &(4_000_000 + free).to_string());
    }
    d.signal(libc::SIGHUP);
    // the SIGHUP round is over once a change made after it was handled is published
    wait_until("the SIGHUP", || d.log().contains("SIGHUP: re-reading"));
    g.file(
        "proc/meminfo",
        &support::guest::meminfo(8_000_000, 4_000_004),
    );
    g.wait_for("data/meminfo_free", "4000004");
    assert_eq!(g.get("control/feature-balloon"), None);
    let log = d.stop();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("feature-balloon"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].starts_with("INFO"), "{log}");
    assert!(!log.contains("WARN"), "{log}");
}

#[test]
fn no_feature_balloon_option() {
    let g = Guest::new("nofeature");
    xapi_control(&g);
    balloon(&g, 131072, 131072);
    g.once(&["--no-feature-balloon"]);
    assert_eq!(
        g.get("data/xenbeacon/balloon/state").as_deref(),
        Some("reached")
    );
    assert_eq!(g.get("control/feature-balloon"), None);
}

#[test]
fn without_a_balloon_driver_there_are_no_balloon_keys() {
    let g = Guest::new("noballoon");
    xapi_control(&g);
    g.once(&[]);
    assert_eq!(g.get("data/xenbeacon/balloon/state"), None);
    assert_eq!(g.get("control/feature-balloon"), None);
}

#[test]
fn booted_subcommand_and_flag() {
    let g = Guest::new("booted");
    g.once(&[]);
    assert_eq!(g.get("data/xenbeacon/booted"), None);
    let out = Command::new(env!("CARGO_BIN_EXE_xenbeacon"))
        .args(["booted", "--xenstore"])
        .arg(&g.sock)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(g.get("data/xenbeacon/booted").as_deref(), Some("1"));
    // the agent never removes it, and a restart rewrites nothing
    g.xs.reset_stats();
    g.once(&[]);
    assert_eq!(g.get("data/xenbeacon/booted").as_deref(), Some("1"));
    assert_eq!(
        g.xs.stats()
            .count(DOMID, xenbeacon::xenbus::wire::MsgType::Write),
        0
    );

    let g = Guest::new("bootedflag");
    g.once(&["--booted"]);
    assert_eq!(g.get("data/xenbeacon/booted").as_deref(), Some("1"));
}

#[test]
fn boot_stage_from_mountinfo_or_option() {
    let g = Guest::new("stage");
    g.file(
        "proc/self/mountinfo",
        "1 1 0:2 / / rw - rootfs rootfs rw\n22 1 0:21 / /proc rw - proc proc rw\n",
    );
    g.once(&[]);
    assert_eq!(g.get("data/xenbeacon/stage").as_deref(), Some("initramfs"));
    // after switch_root the root-filesystem instance takes over
    g.file(
        "proc/self/mountinfo",
        "31 30 0:32 / / rw - tmpfs tmpfs rw\n",
    );
    g.xs.reset_stats();
    g.once(&[]);
    assert_eq!(g.get("data/xenbeacon/stage").as_deref(), Some("rootfs"));
    // only the stage and data/updated were written: xenopsd does not read
    // data/xenbeacon/stage, so no attr/ nudge follows
    assert_eq!(
        g.xs.stats()
            .count(DOMID, xenbeacon::xenbus::wire::MsgType::Write),
        2
    );
    g.once(&["--stage", "initramfs"]);
    assert_eq!(g.get("data/xenbeacon/stage").as_deref(), Some("initramfs"));
}

#[test]
fn a_new_unique_domain_id_republishes_everything() {
    let g = Guest::new("udid");
    g.xs.write(&format!("{HOME}/unique-domain-id"), "11111111-aaaa");
    let d = g.daemon(&[]);
    g.wait_for("attr/PVAddons/Installed", "1");
    // The toolstack rebuilt the home for a new domain (same domid, new unique-domain-id).
    g.xs.rm(&format!("{HOME}/data"));
    g.xs.rm(&format!("{HOME}/attr"));
    g.xs.write(&format!("{HOME}/data"), "");
    g.xs.set_perms(&format!("{HOME}/data"), &format!("n{DOMID}"));
    g.xs.write(&format!("{HOME}/attr"), "");
    g.xs.set_perms(&format!("{HOME}/attr"), &format!("n{DOMID}"));
    g.xs.write(&format!("{HOME}/unique-domain-id"), "22222222-bbbb");
    g.wait_for("attr/PVAddons/Installed", "1");
    g.wait_for("data/os_name", "Debian GNU/Linux 12 (bookworm)");
    let log = d.stop();
    assert!(log.contains("new domain"), "{log}");
}

#[test]
fn watches_firing_again_with_keys_gone_republish() {
    let g = Guest::new("refire");
    let d = g.daemon(&[]);
    g.wait_for("attr/PVAddons/Installed", "1");
    g.xs.rm(&format!("{HOME}/data/xenbeacon"));
    g.xs.rm(&format!("{HOME}/data/os_name"));
    // what a resume looks like to the agent: its watches fire again
    g.xs.write(&format!("{HOME}/memory/target"), "131072");
    g.wait_for("data/xenbeacon/layout", xenbeacon::layout::LAYOUT_VERSION);
    g.wait_for("data/os_name", "Debian GNU/Linux 12 (bookworm)");
    let log = d.stop();
    assert!(log.contains("published keys are gone"), "{log}");
}

#[test]
fn under_xl_a_restart_with_a_balloon_driver_writes_nothing() {
    let g = Guest::new("xlrestart");
    balloon(&g, 131072, 131072);
    g.once(&[]);
    g.xs.reset_stats();
    // control/feature-balloon is tried again (and refused) by the new process: that alone is
    // no change, so data/updated must not be rewritten
    g.once(&[]);
    let stats = g.xs.stats();
    assert_eq!(
        stats.count(DOMID, xenbeacon::xenbus::wire::MsgType::Write),
        1
    );
    assert_eq!(g.get("control/feature-balloon"), None);
    assert!(g.xs.dump(&format!("{HOME}/data")).len() > 5);
}
