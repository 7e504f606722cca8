//! Command line. The `--help` text is the manual.

use std::path::PathBuf;

use argh::FromArgs;

/// Publish what only a Xen guest knows (OS, kernel, memory) to XenStore, so that XAPI,
/// XCP-ng/XenServer, Xen Orchestra or plain `xl` users can see it. Runs in a domU as one small
/// static process: at start it reads the guest's keys back, writes only what differs, then keeps
/// them current on a timer and on signals.
#[derive(FromArgs, Debug)]
#[argh(
    example = "Show what would be published on this machine (no Xen needed):\n  $ xenbeacon --dry-run",
    example = "Run as the guest agent (systemd, OpenRC, BusyBox init):\n  $ xenbeacon",
    example = "Publish once and exit (initramfs, scripts):\n  $ xenbeacon --once",
    example = "Against a xenstored socket (dom0, tests):\n  $ xenbeacon --xenstore /run/xenstored/socket --once",
    note = "Keys written, relative to /local/domain/<domid> (docs/xenstore-layout.md has the details,\ndocs/consumers.md what xapi, Xen Orchestra and squeezed show from them):\n  data/os_name, data/os_distro, data/os_majorver, data/os_minorver, data/os_uname,\n  data/host_name_dns, data/domain (the kernel's names; no DNS lookup),\n  data/meminfo_total, data/meminfo_free (KiB), data/updated,\n  attr/PVAddons/{{Major,Minor,Micro,Build}}Version, attr/PVAddons/Installed,\n  attr/vif/<devid>/... (PV NICs, and a device NIC carrying a vif's MAC without netfront),\n  attr/net/<mac>/... (PCI, USB, platform NICs; <mac> is the permanent MAC when there is one),\n  xenserver/attr/net-sriov-vf/<vfid>/... (SR-IOV VFs under XAPI).\n\nNICs are found by sysfs topology, not by name; bridges and bonds report their addresses on\neach member NIC; VLANs, macvlans and ipvlans below the NIC they sit on.\n\nAlso data/xenbeacon/{{layout,version,stage,booted}},\ndata/xenbeacon/balloon/{{target_kb,current_kb,state,reason}}, and control/feature-balloon\n(refused under xl, which is logged once). With a balloon driver, control/feature-balloon and\na first data/updated wait until memory settled: squeezed calibrates the domain on either.\n\nWith --apply-ip-settings: control/feature-static-ip-setting = 1; the requests in\nxenserver/device/vif/<N>/static-ip-setting/* (XAPI's VIF.configure_ipv4/6, xenbeacon set-ip;\nwatched) and vm-data/networks/<N>/* (Ansible's xenserver_guest; read at start) are applied with\nrtnetlink, and answered in .../error-code (0 applied, 1 invalid, 2 no such NIC, 3 the kernel\nrefused) and .../error-msg. Only addresses and default routes the agent added are ever\nremoved; it records them in /run/xenbeacon/netconfig (below --root).\n\nFiles read (below --root): /etc/os-release, /usr/lib/os-release, /proc/meminfo,\n/proc/self/mountinfo, /proc/sys/kernel/{{osrelease,hostname,domainname}},\n/sys/hypervisor/type, /sys/class/net/*, /sys/devices/system/xen_memory/xen_memory0,\n/sys/firmware/devicetree (platform NICs).\n\nAfter a restore or migration (new domid, new unique-domain-id, watches firing again, the\nwall clock jumping) and after a xenstored reconnect, everything is published again.\n\nSignals: SIGTERM and SIGINT exit with status 0; SIGHUP re-reads every source, reads the\nkeys back from XenStore and rewrites whatever differs; SIGUSR1 logs one line of counters\n(rounds, writes, removals, refusals, xenstore requests, rtnetlink messages).\n\nEnvironment: XENBEACON_XENSTORE is used when --xenstore is not given.",
    error_code(0, "success (and after SIGTERM/SIGINT)"),
    error_code(
        1,
        "not a Xen guest, XenStore unreachable with --once, --xenstore neither the xenbus device nor a socket, or a setup failure"
    ),
    error_code(2, "bad command line")
)]
pub struct Args {
    /// where XenStore is: a xenbus device or a xenstored unix socket (anything else, such as
    /// /dev/zero or a plain file, exits 1). Default: the first of /dev/xen/xenbus and
    /// /proc/xen/xenbus (a guest waits for it to appear).
    #[argh(option, arg_name = "PATH")]
    pub xenstore: Option<PathBuf>,

    /// print the key/value set this machine would publish, in publication order, and exit.
    /// Needs neither Xen nor XenStore.
    #[argh(switch)]
    pub dry_run: bool,

    /// publish once and exit (initramfs, scripts); exits 1 if XenStore cannot be reached.
    #[argh(switch)]
    pub once: bool,

    /// seconds between memory readings (default 60). Nothing is written when nothing changed.
    #[argh(option, default = "60", arg_name = "SECS")]
    pub memory_interval: u32,

    /// smallest change of free memory, in KiB, that is worth a write (default 1024; 0 writes
    /// every change). The total is written on any change.
    #[argh(option, default = "1024", arg_name = "KIB")]
    pub memory_threshold: u64,

    /// report this interface even if it is virtual (lo, veth, dummy, a bridge without a
    /// reported member); a glob such as 'wg*', repeatable.
    #[argh(option, arg_name = "GLOB")]
    pub include_iface: Vec<String>,

    /// never report this interface (glob, repeatable); applies to VLANs and macvlans too.
    #[argh(option, arg_name = "GLOB")]
    pub exclude_iface: Vec<String>,

    /// also report link-local addresses (IPv4 169.254/16, IPv6 fe80::/10).
    #[argh(switch)]
    pub link_local: bool,

    /// also report IPv6 temporary (privacy) addresses.
    #[argh(switch)]
    pub temporary_addresses: bool,

    /// most addresses per NIC and address family (default 16); the rest are left out (logged
    /// once), permanent global addresses first. Keeps the guest under xenstored's node quota.
    #[argh(option, default = "16", arg_name = "N")]
    pub max_addresses: usize,

    /// boot stage to publish in data/xenbeacon/stage: initramfs, rootfs, or auto (default:
    /// initramfs when / is the kernel's rootfs mount).
    #[argh(option, default = "String::from(\"auto\")", arg_name = "STAGE")]
    pub stage: String,

    /// publish data/xenbeacon/booted = 1 at start: for an agent started last in the boot (a
    /// BusyBox S99 script). Otherwise `xenbeacon booted` says it when the boot is done.
    #[argh(switch)]
    pub booted: bool,

    /// never write control/feature-balloon (XAPI's squeezed reads it as "booted, you may
    /// balloon"; by default it is written once the balloon driver's memory has settled).
    #[argh(switch)]
    pub no_feature_balloon: bool,

    /// seconds a balloon may stand still short of its target before data/xenbeacon/balloon/state says
    /// stuck (default 30).
    #[argh(option, default = "30", arg_name = "SECS")]
    pub balloon_stuck_after: u32,

    /// apply the address requests of the toolstack to this guest's NICs (off by default: the
    /// agent then changes the guest's network): XAPI's VIF.configure_ipv4/6 and `xenbeacon
    /// set-ip` (xenserver/device/vif/<N>/static-ip-setting), and Ansible's xenserver_guest
    /// (vm-data/networks/<N>). Announces control/feature-static-ip-setting. Only addresses and
    /// default routes the agent added are ever removed.
    #[argh(switch)]
    pub apply_ip_settings: bool,

    /// log level: error, warn, info (default), debug or trace. Logs go to stderr.
    #[argh(option, default = "String::from(\"info\")", arg_name = "LEVEL")]
    pub log_level: String,

    /// prefix for /proc, /sys and /etc (default /); for tests and chroots.
    #[argh(option, default = "PathBuf::from(\"/\")", arg_name = "DIR")]
    pub root: PathBuf,

    /// print the version and exit.
    #[argh(switch, short = 'V')]
    pub version: bool,

    #[argh(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands; without one, xenbeacon is the guest agent.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Booted(BootedArgs),
    #[cfg(feature = "dom0")]
    List(crate::dom0::cli::ListArgs),
    #[cfg(feature = "dom0")]
    Show(crate::dom0::cli::ShowArgs),
    #[cfg(feature = "dom0")]
    Wait(crate::dom0::cli::WaitArgs),
    #[cfg(feature = "dom0")]
    SetIp(crate::dom0::cli::SetIpArgs),
    #[cfg(feature = "dom0")]
    Export(crate::dom0::cli::ExportArgs),
}

/// tell the toolstack that this guest has finished booting: writes data/xenbeacon/booted = 1.
/// Call it from a late systemd unit, a BusyBox S99 script or OpenRC's local service.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "booted")]
pub struct BootedArgs {
    /// where XenStore is (default: /dev/xen/xenbus, then /proc/xen/xenbus).
    #[argh(option, arg_name = "PATH")]
    pub xenstore: Option<PathBuf>,
}
