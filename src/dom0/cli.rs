//! Command-line arguments of the dom0 subcommands. Each takes its own `--xenstore`, so that
//! `xenbeacon list --xenstore PATH` reads like every other option of the subcommand.

use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

/// list domains and what their guests report: agent, OS and kernel, boot stage, memory and
/// balloon, and every NIC with its kind and addresses. Guests without an agent, with another
/// (XAPI-style) agent, or that this domain may not read are listed too.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "list",
    example = "In dom0:\n  $ xenbeacon list\n  $ xenbeacon list --json | jq '.domains[].name'\n  $ xenbeacon list --format prometheus | grep ^xenbeacon_nic_address_info",
    example = "Ansible, over every guest of this host (the packages ship the inventory script):\n  $ ansible -i /usr/bin/xenbeacon-ansible-inventory xenbeacon_booted -m ping",
    note = "XenStore is found at /run/xenstored/socket, then /dev/xen/xenbus and /proc/xen/xenbus\n(XENBEACON_XENSTORE or --xenstore override it). Reading other domains needs dom0 (or a\ndomain the tree grants read access); what may not be read is shown as \"no access\".\n\nGuests decide how much they write, so what is read of each is capped (4096 nodes, 10\nlevels, 256 KiB in each of data/, attr/, xenserver/attr/ and device/vif/; \"truncated\" in\nJSON) and domains are read and printed one at a time. The tables show at most 32 NIC rows\nper domain and 8 addresses per NIC; xenbeacon show DOMAIN has all of them.\n\n--format ansible prints an Ansible dynamic inventory (what an inventory script answers to\n--list): one host per guest (dom0 left out), named after the domain if the name is 1-63 of\nA-Z a-z 0-9 _ - . not starting with - or . (else domain-<domid>; a name already taken is left\nout, with a warning); ansible_host is the first usable IPv4 address, chosen as by wait --ip;\nevery fact is a variable named xenbeacon_*; every string a guest wrote is marked unsafe\n(Ansible never templates it); groups: xenbeacon_agent_<kind>, xenbeacon_booted or\nxenbeacon_not_booted, xenbeacon_distro_<os_distro>, xenbeacon_stage_<stage>, values\nlower-cased, every character other than a-z 0-9 _ made _, cut to 63. --host NAME prints only\nthat host's variables (an empty object if there is none), for the inventory script's --host.\n\n--format prometheus prints Prometheus' text format (what xenbeacon export keeps current for\nnode_exporter): every series labelled domid and name; label values escaped, other control\ncharacters as ?, cut at 128 bytes; at most 64 NIC and 256 address series per guest, only valid\naddresses. What was left out is counted (xenbeacon_scrape_dropped_series) and said on stderr.",
    error_code(0, "listed"),
    error_code(
        1,
        "timed out: XenStore did not accept or answer before --timeout (what was printed is incomplete)"
    ),
    error_code(2, "bad command line"),
    error_code(
        3,
        "XenStore could not be reached or read (with --json, what was printed is incomplete)"
    )
)]
pub struct ListArgs {
    /// where XenStore is: a xenstored unix socket or a xenbus device. Default:
    /// /run/xenstored/socket if it exists, else /dev/xen/xenbus, /proc/xen/xenbus.
    #[argh(option, arg_name = "PATH")]
    pub xenstore: Option<PathBuf>,

    /// print one JSON document instead of the tables (the same as --format json).
    #[argh(switch)]
    pub json: bool,

    /// table (the default), json, prometheus (the text format of node_exporter's textfile
    /// collector; see xenbeacon export) or ansible (a dynamic inventory; see below).
    #[argh(option, arg_name = "FORMAT")]
    pub format: Option<ListFormat>,

    /// with --format ansible: only the variables of this inventory host.
    #[argh(option, arg_name = "NAME")]
    pub host: Option<String>,

    /// give up after this many seconds (fractions allowed; default: 20 s for each XenStore
    /// request). It bounds everything: connecting and every request.
    #[argh(option, arg_name = "SECS", from_str_fn(parse_secs))]
    pub timeout: Option<Duration>,
}

/// What `list` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    /// Tables for people.
    Table,
    /// One JSON document (`--json`).
    Json,
    /// Prometheus' text exposition format ([`super::prometheus`]).
    Prometheus,
    /// An Ansible dynamic inventory ([`super::ansible`]).
    Ansible,
}

impl std::str::FromStr for ListFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<ListFormat, String> {
        match s {
            "table" => Ok(ListFormat::Table),
            "json" => Ok(ListFormat::Json),
            "prometheus" => Ok(ListFormat::Prometheus),
            "ansible" => Ok(ListFormat::Ansible),
            _ => Err(format!(
                "'{s}' is not a format (table, json, prometheus, ansible)"
            )),
        }
    }
}

impl ListArgs {
    /// `--format`, with `--json` as `--format json`; an error if they disagree, or for
    /// `--host` without `--format ansible`.
    pub fn format(&self) -> Result<ListFormat, String> {
        let f = match (self.format, self.json) {
            (None, false) => ListFormat::Table,
            (None, true) | (Some(ListFormat::Json), _) => ListFormat::Json,
            (Some(f), false) => f,
            (Some(_), true) => return Err("--json and --format disagree".into()),
        };
        if self.host.is_some() && f != ListFormat::Ansible {
            return Err("--host goes with --format ansible".into());
        }
        Ok(f)
    }
}

/// everything one guest publishes, grouped: identity, boot, memory, NICs, other keys.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "show",
    example = "  $ xenbeacon show web1\n  $ xenbeacon show 3 --json",
    error_code(0, "shown"),
    error_code(1, "no such domain"),
    error_code(3, "XenStore could not be reached or read, or no access to the domain")
)]
pub struct ShowArgs {
    /// domid or name.
    #[argh(positional)]
    pub domain: String,

    /// where XenStore is (default: /run/xenstored/socket if it exists, else /dev/xen/xenbus,
    /// /proc/xen/xenbus).
    #[argh(option, arg_name = "PATH")]
    pub xenstore: Option<PathBuf>,

    /// print JSON instead of text.
    #[argh(switch)]
    pub json: bool,
}

/// wait until a guest reports something, then print it. Blocks on XenStore watches (no
/// polling). Without a condition: until the guest's agent is detected.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "wait",
    example = "Log in as soon as the guest has an address:\n  $ ssh root@$(xenbeacon wait web1 --ip --timeout 120)",
    example = "Create, then wait until the boot is done:\n  $ xl create web1.cfg && xenbeacon wait web1 --booted",
    note = "A name that no domain has yet is waited for: xenbeacon watches /local/domain until a\ndomain with that name appears (and again if it is destroyed and recreated, as by xl reboot),\nthen only that domain's home.\n\n--ip prints the first usable IPv4 address: lowest vif devid, lowest index, then SR-IOV VFs,\nthen the other NICs (attr/net). Usable is a plain dotted quad that another host can reach the\nguest at: not 0.0.0.0/8, loopback 127.0.0.0/8, link-local 169.254.0.0/16, multicast or\nreserved (224.0.0.0 and up, 255.255.255.255 included); those are skipped as if absent, and\nthe address is printed in canonical form. --booted is data/xenbeacon/booted = 1, or for\nXAPI-style agents (no data/xenbeacon/layout) the existence of data/updated. --nic MAC waits\nfor that NIC (the permanent MAC that names attr/net/<mac>, else the current mac key) and\nprints its interface name if the name is 1-15 of A-Z a-z 0-9 _ - . and does not start with\n- or . (else the MAC); with --ip, its first usable IPv4 address. Conditions combine. The\nguest wrote what is read: nothing it wrote is printed unless it passed these checks.",
    error_code(0, "the guest reported it (printed on stdout)"),
    error_code(
        1,
        "timed out (also when XenStore did not accept or answer before --timeout)"
    ),
    error_code(2, "bad command line"),
    error_code(
        3,
        "XenStore could not be reached or read, no access, or the domain (by domid) is gone"
    )
)]
pub struct WaitArgs {
    /// domid or name.
    #[argh(positional)]
    pub domain: String,

    /// until the guest has finished booting.
    #[argh(switch)]
    pub booted: bool,

    /// until the guest reports a usable IPv4 address (see below); prints it.
    #[argh(switch)]
    pub ip: bool,

    /// until the guest reports the NIC with this MAC (aa:bb:cc:dd:ee:ff or aabbccddeeff).
    #[argh(option, arg_name = "MAC")]
    pub nic: Option<String>,

    /// give up after this many seconds (fractions allowed); default: wait forever. It bounds
    /// everything: connecting, every XenStore request, however fast the guest writes.
    #[argh(option, arg_name = "SECS", from_str_fn(parse_secs))]
    pub timeout: Option<Duration>,

    /// where XenStore is (default: /run/xenstored/socket if it exists, else /dev/xen/xenbus,
    /// /proc/xen/xenbus).
    #[argh(option, arg_name = "PATH")]
    pub xenstore: Option<PathBuf>,
}

/// set the address of a guest's NIC, the way XAPI's VIF.configure_ipv4/6 does: writes
/// xenserver/device/vif/<N>/static-ip-setting/* in the guest's home (as xenopsd does, with its
/// permissions), then waits for the guest's agent to answer in error-code. For xl users; the
/// guest must run xenbeacon --apply-ip-settings (or another agent that announces
/// control/feature-static-ip-setting).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "set-ip",
    example = "Static address and default route on the guest's first NIC:\n  $ xenbeacon set-ip web1 --vif 0 --ipv4 192.168.7.10/24 --gateway 192.168.7.1",
    example = "Back to DHCP (the agent removes what it added; the guest's DHCP client does the rest):\n  $ xenbeacon set-ip web1 --vif 0 --dhcp",
    example = "IPv6 only:\n  $ xenbeacon set-ip web1 --vif 0 --ipv6 2001:db8::10/64 --gateway6 fe80::1",
    note = "A family that is not given keeps its keys (--unset sets it to unspecified: the agent\nremoves what it had added for it). The guest never removes an address it did not add, and\nstarts no DHCP client: --dhcp and --autoconf6 leave the NIC to the guest's OS.\n\nThe guest answers in error-code (0 = applied) and error-msg: 1 the request is invalid, 2 no\nNIC with the vif's MAC, 3 the guest's kernel refused the change.",
    error_code(0, "the guest applied it (or --no-wait: written)"),
    error_code(1, "timed out waiting for the guest, or no such domain or vif"),
    error_code(2, "bad command line (nothing was written)"),
    error_code(3, "XenStore could not be reached, read or written"),
    error_code(4, "the guest refused it (its error-msg is printed)")
)]
pub struct SetIpArgs {
    /// domid or name.
    #[argh(positional)]
    pub domain: String,

    /// the vif's devid (the N of device/vif/N; 0 is the first NIC).
    #[argh(option, arg_name = "N")]
    pub vif: u32,

    /// static IPv4 address with its prefix length, e.g. 192.168.7.10/24.
    #[argh(option, arg_name = "CIDR")]
    pub ipv4: Option<String>,

    /// IPv4 default gateway (inside the --ipv4 subnet).
    #[argh(option, arg_name = "IP")]
    pub gateway: Option<String>,

    /// IPv4 by DHCP (enabled = 2): the agent removes the address it had set.
    #[argh(switch)]
    pub dhcp: bool,

    /// static IPv6 address with its prefix length, e.g. 2001:db8::10/64.
    #[argh(option, arg_name = "CIDR")]
    pub ipv6: Option<String>,

    /// IPv6 default gateway (inside the --ipv6 subnet, or link-local).
    #[argh(option, arg_name = "IP")]
    pub gateway6: Option<String>,

    /// IPv6 by autoconfiguration (enabled6 = 2).
    #[argh(switch)]
    pub autoconf6: bool,

    /// set the families not given to unspecified (enabled/enabled6 = 0).
    #[argh(switch)]
    pub unset: bool,

    /// seconds to wait for the guest's answer (default 30, fractions allowed).
    #[argh(option, arg_name = "SECS", from_str_fn(parse_secs))]
    pub timeout: Option<Duration>,

    /// write and exit without waiting for the guest.
    #[argh(switch)]
    pub no_wait: bool,

    /// where XenStore is (default: /run/xenstored/socket if it exists, else /dev/xen/xenbus,
    /// /proc/xen/xenbus).
    #[argh(option, arg_name = "PATH")]
    pub xenstore: Option<PathBuf>,
}

/// keep a Prometheus textfile of what every guest reports current, for node_exporter's
/// textfile collector: the series of `list --format prometheus`, rewritten (atomically)
/// whenever a guest's report changes. Follows XenStore watches; never polls.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "export",
    example = "With Debian's prometheus-node-exporter (its textfile directory):\n  $ xenbeacon export --textfile-dir /var/lib/prometheus/node-exporter",
    note = "Writes DIR/xenbeacon.prom: first DIR/.xenbeacon.prom.tmp, then rename(2), so node_exporter\nnever reads half a file. At start, and when xenstored reports a domain introduced or released\n(@introduceDomain, @releaseDomain), the domains are listed; each domain's home is watched,\nand a change re-reads that domain only. Re-reads are at least --min-interval apart (a guest\nthat writes all the time costs one re-read of itself per interval, capped as in list), and\nthe file is rewritten only when what it says changed. The file is removed when the export\nends (SIGTERM, SIGINT, or an error), so that nothing shows stale values as current.\n\nxenbeacon.service runs the guest agent; xenbeacon-export.service runs this in dom0 (not\nenabled by the packages: systemctl enable --now xenbeacon-export; the directory is set in\n/etc/default/xenbeacon-export or /etc/sysconfig/xenbeacon-export).",
    error_code(0, "stopped by SIGTERM or SIGINT"),
    error_code(1, "the textfile directory cannot be written"),
    error_code(2, "bad command line"),
    error_code(
        3,
        "XenStore could not be reached or read, did not answer within --timeout, or went away"
    )
)]
pub struct ExportArgs {
    /// the directory node_exporter's --collector.textfile.directory reads.
    #[argh(option, arg_name = "DIR")]
    pub textfile_dir: PathBuf,

    /// least time between two re-reads of the guests that changed, in seconds (default 1;
    /// fractions allowed). A change after a quiet spell is exported at once.
    #[argh(
        option,
        arg_name = "SECS",
        default = "Duration::from_secs(1)",
        from_str_fn(parse_secs)
    )]
    pub min_interval: Duration,

    /// give up (exit 3, file removed) when connecting to XenStore or a round of re-reads takes
    /// longer than this many seconds (default 10): a hung xenstored never hangs the export.
    #[argh(
        option,
        arg_name = "SECS",
        default = "Duration::from_secs(10)",
        from_str_fn(parse_secs)
    )]
    pub timeout: Duration,

    /// where XenStore is (default: /run/xenstored/socket if it exists, else /dev/xen/xenbus,
    /// /proc/xen/xenbus).
    #[argh(option, arg_name = "PATH")]
    pub xenstore: Option<PathBuf>,
}

/// Seconds as a decimal number (`20`, `0.5`); at most a year.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a number of seconds");
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    if secs > 366 * 24 * 3600 {
        return Err(format!("{s} seconds is more than a year"));
    }
    let mut nanos = 0u32;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_secs("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_secs(".25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_secs("1."), Ok(Duration::from_secs(1)));
        assert_eq!(parse_secs("1.0000000019"), Ok(Duration::new(1, 1)));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "1.2.3",
            "abc",
            " 1",
            "99999999999999999999",
        ] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
    }
}
