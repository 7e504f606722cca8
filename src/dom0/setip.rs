//! `xenbeacon set-ip`: for xl users, what xenopsd does for XAPI's `VIF.configure_ipv4/6`.
//!
//! It writes `xenserver/device/vif/<devid>/static-ip-setting/*` in the guest's home the way
//! xenopsd does (xen-api `ocaml/xenopsd/xc/xenops_server_xen.ml`:4869-4914 and 5287-5325,
//! `device.ml`:161-163 at e2ee48d6): the vif's directory owned by the guest with no access for
//! others (`rwperm_for_guest`), `mac`, `enabled` 1 + `address` (CIDR) + `gateway` (removed
//! when not given), or `enabled` 2 (and `address`/`gateway` removed), the same with `6`, in
//! one transaction. Unlike xenopsd it also removes `error-code`/`error-msg` in that
//! transaction, so that the guest's next answer cannot be mistaken for an older one; then it
//! waits on a watch for the guest's `error-code`.
//!
//! [`Change::entries`] is pure; [`set_ip`] does the I/O.

use std::os::fd::AsRawFd;
use std::time::Instant;

use super::reader::Reader;
use super::tree::home;
use crate::layout::{ip_setting, Mac};
use crate::netconfig::request::{parse_cidr, RequestError, StaticAddr};
use crate::sys;
use crate::xenbus::conn::Error;
use crate::xenbus::wire::{Request, XsError};

const TOKEN: &str = "xenbeacon-set-ip";
/// Transactions redone after a conflict before giving up.
const TX_ATTEMPTS: u32 = 8;

/// One family's part of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Not asked: its keys are left as they are.
    Keep,
    /// `enabled` 0: the agent removes what it had added.
    Unspecified,
    /// `enabled` 2: DHCP or autoconf, the OS's job.
    Dynamic,
    Static(StaticAddr),
}

/// What `set-ip` writes, validated before anything is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub v4: Family,
    pub v6: Family,
}

/// A bad command line, found before anything was written.
pub type UsageError = String;

impl Change {
    /// From the command-line values. At least one family must be given.
    #[allow(clippy::too_many_arguments)]
    pub fn from_args(
        ipv4: Option<&str>,
        gateway: Option<&str>,
        dhcp: bool,
        ipv6: Option<&str>,
        gateway6: Option<&str>,
        autoconf6: bool,
        unset: bool,
    ) -> Result<Change, UsageError> {
        let family = |cidr: Option<&str>, gw: Option<&str>, dynamic: bool, v4: bool| {
            let (opt, gwopt, dynopt) = if v4 {
                ("--ipv4", "--gateway", "--dhcp")
            } else {
                ("--ipv6", "--gateway6", "--autoconf6")
            };
            match (cidr, dynamic) {
                (Some(_), true) => Err(format!("{opt} and {dynopt} exclude each other")),
                (None, _) if gw.is_some() => Err(format!("{gwopt} needs {opt}")),
                (None, true) => Ok(Family::Dynamic),
                (None, false) => Ok(if unset {
                    Family::Unspecified
                } else {
                    Family::Keep
                }),
                (Some(c), false) => {
                    let (addr, prefix) = parse_cidr(c, v4).map_err(|e| e.to_string())?;
                    let gw = match gw {
                        Some(g) => Some(g.parse().map_err(|_| {
                            RequestError::BadValue {
                                key: if v4 { "gateway" } else { "gateway6" },
                                value: g.to_owned(),
                            }
                            .to_string()
                        })?),
                        None => None,
                    };
                    let s = StaticAddr::new(addr, prefix, gw).map_err(|e| e.to_string())?;
                    if s.gateway().is_some_and(|g| g.is_ipv4() != v4) {
                        return Err(format!("{gwopt}: wrong address family"));
                    }
                    Ok(Family::Static(s))
                }
            }
        };
        let v4 = family(ipv4, gateway, dhcp, true)?;
        let v6 = family(ipv6, gateway6, autoconf6, false)?;
        if v4 == Family::Keep && v6 == Family::Keep {
            return Err(
                "nothing to set: give --ipv4 CIDR or --dhcp, --ipv6 CIDR or --autoconf6, or --unset"
                    .into(),
            );
        }
        Ok(Change { v4, v6 })
    }

    /// The writes (`Some(value)`) and removals (`None`), relative to the `static-ip-setting`
    /// directory, in xenopsd's order.
    pub fn entries(&self, mac: Option<Mac>) -> Vec<(&'static str, Option<String>)> {
        let mut out = Vec::new();
        if let Some(m) = mac {
            out.push((ip_setting::MAC, Some(m.to_string())));
        }
        out.push((ip_setting::ERROR_CODE, None));
        out.push((ip_setting::ERROR_MSG, None));
        let keys = [
            (
                self.v4,
                ip_setting::ENABLED,
                ip_setting::ADDRESS,
                ip_setting::GATEWAY,
            ),
            (
                self.v6,
                ip_setting::ENABLED6,
                ip_setting::ADDRESS6,
                ip_setting::GATEWAY6,
            ),
        ];
        for (fam, enabled, address, gateway) in keys {
            match fam {
                Family::Keep => {}
                Family::Unspecified | Family::Dynamic => {
                    let mode = if fam == Family::Dynamic { "2" } else { "0" };
                    out.push((enabled, Some(mode.into())));
                    out.push((address, None));
                    out.push((gateway, None));
                }
                Family::Static(s) => {
                    out.push((enabled, Some("1".into())));
                    out.push((address, Some(format!("{}/{}", s.addr(), s.prefix()))));
                    out.push((gateway, s.gateway().map(|g| g.to_string())));
                }
            }
        }
        out
    }

    /// For the success line: `192.168.7.10/24 via 192.168.7.1, IPv6 autoconf`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (fam, v6) in [(self.v4, false), (self.v6, true)] {
            match (fam, v6) {
                (Family::Keep, _) => {}
                (Family::Unspecified, false) => parts.push("IPv4 unspecified".to_owned()),
                (Family::Unspecified, true) => parts.push("IPv6 unspecified".to_owned()),
                (Family::Dynamic, false) => parts.push("IPv4 DHCP".to_owned()),
                (Family::Dynamic, true) => parts.push("IPv6 autoconf".to_owned()),
                (Family::Static(s), _) => parts.push(s.to_string()),
            }
        }
        parts.join(", ")
    }
}

/// Why `set-ip` failed.
#[derive(Debug)]
pub enum SetIpError {
    /// XenStore could not be reached, read or written
    Xenstore(String),
    /// the domain has no such vif
    NoVif(u32, u32),
    /// the guest did not answer before the deadline
    Timeout,
    /// the guest answered with a non-zero error-code
    Guest { code: String, msg: String },
}

impl std::fmt::Display for SetIpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetIpError::Xenstore(e) => f.write_str(e),
            SetIpError::NoVif(d, v) => write!(f, "domain {d} has no vif {v} (device/vif/{v})"),
            SetIpError::Timeout => f.write_str("the guest did not answer"),
            SetIpError::Guest { code, msg } => {
                write!(f, "the guest refused it (error-code {code}): {msg}")
            }
        }
    }
}

impl std::error::Error for SetIpError {}

fn xs(what: &str, e: Error) -> SetIpError {
    SetIpError::Xenstore(format!("{what}: {e}"))
}

/// What the guest had announced, for a warning before writing.
pub fn announced(reader: &mut Reader, domid: u32) -> bool {
    let path = format!("{}/{}", home(domid), ip_setting::FEATURE);
    matches!(reader.conn().read(&path), Ok(v) if v == b"1")
}

/// Writes `change` for vif `devid` of `domid`, then (unless `wait` is false) waits until
/// `deadline` for the guest's answer: `Ok` when it answered `error-code` 0.
pub fn set_ip(
    reader: &mut Reader,
    domid: u32,
    devid: u32,
    change: &Change,
    wait: bool,
    deadline: Option<Instant>,
) -> Result<(), SetIpError> {
    let home = home(domid);
    let mac_path = format!("{home}/device/vif/{devid}/mac");
    let mac = match reader.conn().read_string(&mac_path) {
        Ok(m) => Mac::parse(&m),
        Err(Error::Xs(XsError::Enoent)) => return Err(SetIpError::NoVif(domid, devid)),
        Err(e) => return Err(xs(&format!("read {mac_path}"), e)),
    };
    let vif_dir = format!("{home}/{}/{devid}", ip_setting::XENOPSD_DIR);
    let dir = format!("{vif_dir}/{}", ip_setting::SUBDIR);
    let code_path = format!("{dir}/{}", ip_setting::ERROR_CODE);
    let conn = reader.conn();
    // xenopsd creates the vif's directory at plug time, owned by the guest (rwperm_for_guest);
    // under xl nobody has, so it is made here the same way.
    match conn.read(&vif_dir) {
        Ok(_) => {}
        Err(Error::Xs(XsError::Enoent)) => {
            conn.mkdir(&vif_dir)
                .map_err(|e| xs(&format!("mkdir {vif_dir}"), e))?;
            let perms = format!("n{domid}\0");
            conn.request(&Request::SetPerms {
                path: &vif_dir,
                perms: perms.as_bytes(),
            })
            .map_err(|e| xs(&format!("set permissions of {vif_dir}"), e))?;
        }
        Err(e) => return Err(xs(&format!("read {vif_dir}"), e)),
    }
    if wait {
        conn.watch(&code_path, TOKEN)
            .map_err(|e| xs(&format!("watch {code_path}"), e))?;
    }
    let entries = change.entries(mac);
    let mut attempt = 0;
    loop {
        attempt += 1;
        conn.transaction_start()
            .map_err(|e| xs("start a transaction", e))?;
        let mut result = Ok(());
        for (key, value) in &entries {
            let path = format!("{dir}/{key}");
            let r = match value {
                Some(v) => conn.write(&path, v.as_bytes()),
                None => conn.rm(&path),
            };
            if let Err(e) = r {
                result = Err(xs(&format!("write {path}"), e));
                break;
            }
        }
        if let Err(e) = result {
            let _ = conn.transaction_end(false);
            return Err(e);
        }
        match conn.transaction_end(true) {
            Ok(()) => break,
            Err(Error::Xs(XsError::Eagain)) if attempt < TX_ATTEMPTS => continue,
            Err(e) => return Err(xs("commit", e)),
        }
    }
    if !wait {
        return Ok(());
    }
    // The watch fired once when it was set; every later event is a change of error-code.
    loop {
        match conn.read_string(&code_path) {
            Ok(code) => {
                let msg_path = format!("{dir}/{}", ip_setting::ERROR_MSG);
                let msg = conn.read_string(&msg_path).unwrap_or_default();
                return if code.trim() == "0" {
                    Ok(())
                } else {
                    Err(SetIpError::Guest { code, msg })
                };
            }
            Err(Error::Xs(XsError::Enoent)) => {}
            Err(Error::Timeout) => return Err(SetIpError::Timeout),
            Err(e) => return Err(xs(&format!("read {code_path}"), e)),
        }
        while conn.pending_event().is_none() {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(SetIpError::Timeout);
            }
            let mut pfd = [libc::pollfd {
                fd: conn.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            if sys::poll(&mut pfd, left).map_err(|e| SetIpError::Xenstore(e.to_string()))? > 0 {
                conn.receive().map_err(|e| xs("watch events", e))?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(args: &[&str]) -> Result<Change, UsageError> {
        let get = |name: &str| args.iter().position(|a| *a == name).map(|i| args[i + 1]);
        let has = |name: &str| args.contains(&name);
        Change::from_args(
            get("--ipv4"),
            get("--gateway"),
            has("--dhcp"),
            get("--ipv6"),
            get("--gateway6"),
            has("--autoconf6"),
            has("--unset"),
        )
    }

    #[test]
    fn static_writes_what_xenopsd_writes() {
        let c = change(&["--ipv4", "192.168.7.10/24", "--gateway", "192.168.7.1"]).unwrap();
        let mac = Mac::parse("00:16:3e:01:02:03");
        let e = c.entries(mac);
        let e: Vec<(&str, Option<&str>)> = e.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        assert_eq!(
            e,
            [
                ("mac", Some("00:16:3e:01:02:03")),
                ("error-code", None),
                ("error-msg", None),
                ("enabled", Some("1")),
                ("address", Some("192.168.7.10/24")),
                ("gateway", Some("192.168.7.1")),
            ]
        );
        assert_eq!(c.describe(), "192.168.7.10/24 via 192.168.7.1");
    }

    #[test]
    fn dhcp_autoconf_and_unset_remove_address_and_gateway() {
        let c = change(&["--dhcp", "--autoconf6"]).unwrap();
        let e = c.entries(None);
        assert!(e.contains(&("enabled", Some("2".into()))));
        assert!(e.contains(&("enabled6", Some("2".into()))));
        assert!(e.contains(&("address", None)) && e.contains(&("gateway6", None)));
        assert_eq!(c.describe(), "IPv4 DHCP, IPv6 autoconf");
        let c = change(&["--ipv6", "2001:db8::5/64", "--unset"]).unwrap();
        assert_eq!(c.v4, Family::Unspecified);
        let e = c.entries(None);
        assert!(e.contains(&("enabled", Some("0".into()))));
        assert!(e.contains(&("address6", Some("2001:db8::5/64".into()))));
        // only IPv6 given: the IPv4 keys are left alone
        let c = change(&["--autoconf6"]).unwrap();
        assert!(c
            .entries(None)
            .iter()
            .all(|(k, _)| !k.starts_with("enabled") || *k == "enabled6"));
    }

    #[test]
    fn bad_command_lines_write_nothing() {
        assert!(change(&[]).is_err());
        assert!(change(&["--ipv4", "10.0.0.1/24", "--dhcp"]).is_err());
        assert!(change(&["--gateway", "10.0.0.1"]).is_err());
        assert_eq!(
            change(&["--ipv4", "10.0.0.300/24"]).unwrap_err(),
            "address: '10.0.0.300/24' is not valid"
        );
        assert!(change(&["--ipv4", "10.0.0.2"]).is_err());
        assert!(change(&["--ipv4", "10.0.0.2/24", "--gateway", "10.1.0.1"]).is_err());
        assert!(change(&["--ipv4", "10.0.0.2/24", "--gateway", "bogus"]).is_err());
        assert!(change(&["--ipv6", "10.0.0.2/24"]).is_err());
    }
}
