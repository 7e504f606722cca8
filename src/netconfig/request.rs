//! What the toolstack asks of one NIC, parsed and validated: xenopsd's
//! `xenserver/device/vif/<devid>/static-ip-setting/*` (XAPI's `VIF.configure_ipv4/6`, and
//! `xenbeacon set-ip` for xl) and Ansible's `vm-data/networks/<device>/*`
//! (`community.general.xenserver_guest` without a "native" agent).
//!
//! A [`NicRequest`] that exists is valid: a static setting always carries an address of its own
//! family, a prefix that fits it, and a gateway (if any) inside the subnet. Everything that
//! cannot be applied is a [`RequestError`], whose message goes to `error-msg` as it is.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::layout::{ip_setting, Mac};

/// Longest value read: an IPv6 CIDR is at most 43 characters. Longer values (a 4 KiB one from a
/// confused or hostile writer) are refused whole, never cut.
pub const VALUE_MAX: usize = 64;

/// Why a request cannot be applied. The `Display` text is what `error-msg` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// a key holds a value longer than [`VALUE_MAX`] bytes
    TooLong { key: &'static str, len: usize },
    /// a key holds something other than printable ASCII (a newline, a control or a non-ASCII
    /// byte)
    NotPrintable { key: &'static str },
    /// `enabled`/`enabled6`/`type`/`type6` holds an unknown mode
    BadMode { key: &'static str, value: String },
    /// an address, prefix, netmask or gateway does not parse
    BadValue { key: &'static str, value: String },
    /// a static setting without an address
    MissingAddress { key: &'static str },
    /// an IPv4 address where IPv6 is expected, or the other way round
    WrongFamily { key: &'static str, value: String },
    /// an address no host may have: unspecified, loopback, multicast, broadcast, or the
    /// network or broadcast address of its own subnet
    UnusableAddress { addr: IpAddr, prefix: u8 },
    /// the gateway is not inside the address's subnet, or is the address itself
    GatewayOutsideSubnet {
        gateway: IpAddr,
        addr: IpAddr,
        prefix: u8,
    },
    /// `prefix` and `netmask` disagree
    PrefixMismatch { prefix: u8, netmask_prefix: u8 },
    /// the MAC is not a MAC
    BadMac { value: String },
    /// no NIC of this guest carries the MAC (or the vif devid)
    NoSuchNic { what: String },
    /// the kernel refused an address or route change
    Kernel { what: String, errno: i32 },
}

impl RequestError {
    /// The `error-code` written back: 0 is success, so every error is non-zero. One code per
    /// kind of fault, so that a script can tell "fix the request" from "fix the guest":
    /// 1 invalid request, 2 no such NIC, 3 the kernel refused.
    pub fn code(&self) -> u32 {
        match self {
            RequestError::NoSuchNic { .. } => 2,
            RequestError::Kernel { .. } => 3,
            _ => 1,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::TooLong { key, len } => {
                write!(
                    f,
                    "{key}: value of {len} bytes is too long (at most {VALUE_MAX})"
                )
            }
            RequestError::NotPrintable { key } => {
                write!(f, "{key}: value is not printable ASCII")
            }
            RequestError::BadMode { key, value } => write!(f, "{key}: unknown mode '{value}'"),
            RequestError::BadValue { key, value } => write!(f, "{key}: '{value}' is not valid"),
            RequestError::MissingAddress { key } => {
                write!(f, "static setting without an address ({key} is missing)")
            }
            RequestError::WrongFamily { key, value } => {
                write!(f, "{key}: '{value}' is of the wrong address family")
            }
            RequestError::UnusableAddress { addr, prefix } => {
                write!(f, "{addr}/{prefix} is not an address a host can use")
            }
            RequestError::GatewayOutsideSubnet {
                gateway,
                addr,
                prefix,
            } => write!(f, "gateway {gateway} is not inside {addr}/{prefix}"),
            RequestError::PrefixMismatch {
                prefix,
                netmask_prefix,
            } => write!(
                f,
                "prefix {prefix} and netmask (/{netmask_prefix}) disagree"
            ),
            RequestError::BadMac { value } => write!(f, "mac: '{value}' is not a MAC address"),
            RequestError::NoSuchNic { what } => write!(f, "no NIC with {what} in this guest"),
            RequestError::Kernel { what, errno } => {
                let e = std::io::Error::from_raw_os_error(*errno);
                write!(f, "the kernel refused to {what}: {e}")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// A static address with its prefix and an optional default gateway. Only [`StaticAddr::new`]
/// makes one, so every value is usable as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StaticAddr {
    addr: IpAddr,
    prefix: u8,
    gateway: Option<IpAddr>,
}

impl StaticAddr {
    pub fn new(
        addr: IpAddr,
        prefix: u8,
        gateway: Option<IpAddr>,
    ) -> Result<StaticAddr, RequestError> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > bits || !usable(addr, prefix) {
            return Err(RequestError::UnusableAddress { addr, prefix });
        }
        if let Some(gw) = gateway {
            let inside = gw.is_ipv4() == addr.is_ipv4()
                && gw != addr
                && network(gw, prefix) == network(addr, prefix)
                && usable(gw, prefix);
            // An IPv6 default route via a link-local router is the common case (RAs give one).
            let link_local_v6 = matches!(gw, IpAddr::V6(g) if addr.is_ipv6() && is_link_local6(g));
            if !inside && !link_local_v6 {
                return Err(RequestError::GatewayOutsideSubnet {
                    gateway: gw,
                    addr,
                    prefix,
                });
            }
        }
        Ok(StaticAddr {
            addr,
            prefix,
            gateway,
        })
    }
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    pub fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }
}

impl fmt::Display for StaticAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)?;
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        Ok(())
    }
}

fn is_link_local6(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The address with the host bits cleared.
fn network(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & mask))
        }
        IpAddr::V6(v) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & mask))
        }
    }
}

fn usable(a: IpAddr, prefix: u8) -> bool {
    match a {
        IpAddr::V4(v) => {
            let host = u32::from(v) & !u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            let host_max = !u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            // /31 and /32 have no network or broadcast address (RFC 3021).
            let edge = prefix < 31 && (host == 0 || host == host_max);
            !(v.is_unspecified()
                || v.is_loopback()
                || v.is_multicast()
                || v.is_broadcast()
                || u32::from(v) >> 28 == 0xf
                || edge)
        }
        IpAddr::V6(v) => !(v.is_unspecified() || v.is_loopback() || v.is_multicast()),
    }
}

/// What to do with one address family of one NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Nothing asked: whatever the agent had added goes, the rest stays as the OS has it.
    #[default]
    Unspecified,
    /// DHCP (IPv4) or autoconfiguration (IPv6): the OS's job; the agent removes what it had
    /// added and starts no client.
    Dynamic,
    Static(StaticAddr),
}

/// Where a request came from, for logs and for where its result is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// `xenserver/device/vif/<devid>/static-ip-setting` (xenopsd, `xenbeacon set-ip`).
    Xenopsd(u32),
    /// `vm-data/networks/<device>` (Ansible's `xenserver_guest`).
    VmData(u32),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Xenopsd(d) => write!(f, "xenserver/device/vif/{d}/static-ip-setting"),
            Origin::VmData(d) => write!(f, "vm-data/networks/{d}"),
        }
    }
}

/// One NIC's request: which NIC (by MAC, else by the vif's devid) and both families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NicRequest {
    pub origin: Origin,
    pub mac: Option<Mac>,
    v4: Mode,
    v6: Mode,
}

impl NicRequest {
    /// Both families; fails if a static setting is of the wrong family.
    pub fn new(
        origin: Origin,
        mac: Option<Mac>,
        v4: Mode,
        v6: Mode,
    ) -> Result<NicRequest, RequestError> {
        let keys = [
            (v4, true, ip_setting::ADDRESS),
            (v6, false, ip_setting::ADDRESS6),
        ];
        for (mode, want_v4, key) in keys {
            if let Mode::Static(s) = mode {
                if s.addr.is_ipv4() != want_v4 {
                    return Err(RequestError::WrongFamily {
                        key,
                        value: s.to_string(),
                    });
                }
            }
        }
        Ok(NicRequest {
            origin,
            mac,
            v4,
            v6,
        })
    }
    pub fn v4(&self) -> Mode {
        self.v4
    }
    pub fn v6(&self) -> Mode {
        self.v6
    }
}

/// Reads one key of a request directory: `None` when absent. The caller's XenStore reads.
pub trait Keys {
    fn get(&self, key: &str) -> Option<&[u8]>;
}

/// The keys of a request directory, read into a small map (names to values).
impl Keys for [(&str, Vec<u8>)] {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// A value as text: absent or empty is `None` (Ansible clears a key by writing ""); too long or
/// not printable ASCII is an error.
fn text<'a, K: Keys + ?Sized>(
    keys: &'a K,
    key: &'static str,
) -> Result<Option<&'a str>, RequestError> {
    let Some(v) = keys.get(key) else {
        return Ok(None);
    };
    if v.len() > VALUE_MAX {
        return Err(RequestError::TooLong { key, len: v.len() });
    }
    if !v.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        return Err(RequestError::NotPrintable { key });
    }
    // Printable ASCII is UTF-8.
    let s = core::str::from_utf8(v).unwrap_or_default().trim();
    Ok((!s.is_empty()).then_some(s))
}

fn bad(key: &'static str, value: &str) -> RequestError {
    RequestError::BadValue {
        key,
        value: value.to_owned(),
    }
}

fn ip<K: Keys + ?Sized>(
    keys: &K,
    key: &'static str,
    v4: bool,
) -> Result<Option<IpAddr>, RequestError> {
    let Some(s) = text(keys, key)? else {
        return Ok(None);
    };
    let a: IpAddr = s.parse().map_err(|_| bad(key, s))?;
    if a.is_ipv4() != v4 {
        return Err(RequestError::WrongFamily {
            key,
            value: s.to_owned(),
        });
    }
    Ok(Some(a))
}

fn prefix_of(key: &'static str, s: &str, v4: bool) -> Result<u8, RequestError> {
    let max = if v4 { 32 } else { 128 };
    // Decimal digits only: `+24`, ` 24` and `024`-style surprises stay errors of their own.
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(key, s));
    }
    s.parse::<u8>()
        .ok()
        .filter(|&p| p <= max)
        .ok_or_else(|| bad(key, s))
}

/// `a.b.c.d/p` or `x::y/p` of the right family.
fn cidr(key: &'static str, s: &str, v4: bool) -> Result<(IpAddr, u8), RequestError> {
    let (a, p) = s.split_once('/').ok_or_else(|| bad(key, s))?;
    let addr: IpAddr = a.parse().map_err(|_| bad(key, s))?;
    if addr.is_ipv4() != v4 {
        return Err(RequestError::WrongFamily {
            key,
            value: s.to_owned(),
        });
    }
    Ok((addr, prefix_of(key, p, v4)?))
}

/// A dotted netmask as a prefix length; only contiguous masks.
fn netmask(key: &'static str, s: &str) -> Result<u8, RequestError> {
    let m: Ipv4Addr = s.parse().map_err(|_| bad(key, s))?;
    let m = u32::from(m);
    let ones = m.leading_ones();
    if m.checked_shl(ones).unwrap_or(0) != 0 {
        return Err(bad(key, s));
    }
    Ok(ones as u8)
}

/// Parses xenopsd's `static-ip-setting` directory of vif `devid`: `mac`, `enabled` (0
/// unspecified, 1 static, 2 DHCP), `address` (CIDR), `gateway`, and the same with `6` (2 is
/// autoconf). `error-code`/`error-msg` are the guest's answer and not read.
/// (xen-api `ocaml/xenopsd/xc/xenops_server_xen.ml`:4869-4914 at e2ee48d6.)
pub fn from_xenopsd<K: Keys + ?Sized>(devid: u32, keys: &K) -> Result<NicRequest, RequestError> {
    let mac = match text(keys, ip_setting::MAC)? {
        Some(m) => Some(Mac::parse(m).ok_or_else(|| RequestError::BadMac {
            value: m.to_owned(),
        })?),
        None => None,
    };
    let family = |enabled: &'static str,
                  address: &'static str,
                  gateway: &'static str,
                  v4: bool|
     -> Result<Mode, RequestError> {
        match text(keys, enabled)? {
            None | Some("0") => Ok(Mode::Unspecified),
            Some("2") => Ok(Mode::Dynamic),
            Some("1") => {
                let s =
                    text(keys, address)?.ok_or(RequestError::MissingAddress { key: address })?;
                let (a, p) = cidr(address, s, v4)?;
                Ok(Mode::Static(StaticAddr::new(a, p, ip(keys, gateway, v4)?)?))
            }
            Some(other) => Err(RequestError::BadMode {
                key: enabled,
                value: other.to_owned(),
            }),
        }
    };
    let v4 = family(
        ip_setting::ENABLED,
        ip_setting::ADDRESS,
        ip_setting::GATEWAY,
        true,
    )?;
    let v6 = family(
        ip_setting::ENABLED6,
        ip_setting::ADDRESS6,
        ip_setting::GATEWAY6,
        false,
    )?;
    NicRequest::new(Origin::Xenopsd(devid), mac, v4, v6)
}

/// Parses Ansible's `vm-data/networks/<device>` directory: `type` (static, dhcp, none; absent
/// with an `ip` means static), `ip` (plain or with `/prefix`), `prefix` or `netmask`, `gateway`,
/// and `type6`, `ip6`, `prefix6`, `gateway6`; `mac` when present. An empty value is absent
/// (the module clears keys by writing "").
/// (community.general `plugins/modules/xenserver_guest.py`, the `vm-data/networks` writes.)
pub fn from_vm_data<K: Keys + ?Sized>(device: u32, keys: &K) -> Result<NicRequest, RequestError> {
    let mac = match text(keys, "mac")? {
        Some(m) => Some(Mac::parse(m).ok_or_else(|| RequestError::BadMac {
            value: m.to_owned(),
        })?),
        None => None,
    };
    let mode = |ty: &'static str, has_ip: bool| -> Result<Option<bool>, RequestError> {
        // Some(true) static, Some(false) dhcp, None unspecified
        match text(keys, ty)? {
            Some("static") => Ok(Some(true)),
            Some("dhcp") => Ok(Some(false)),
            Some("none") => Ok(None),
            None if has_ip => Ok(Some(true)),
            None => Ok(None),
            Some(other) => Err(RequestError::BadMode {
                key: ty,
                value: other.to_owned(),
            }),
        }
    };

    let v4 = match mode("type", text(keys, "ip")?.is_some())? {
        None => Mode::Unspecified,
        Some(false) => Mode::Dynamic,
        Some(true) => {
            let s = text(keys, "ip")?.ok_or(RequestError::MissingAddress { key: "ip" })?;
            let (addr, inline) = match s.split_once('/') {
                Some(_) => {
                    let (a, p) = cidr("ip", s, true)?;
                    (a, Some(p))
                }
                None => (ip(keys, "ip", true)?.ok_or_else(|| bad("ip", s))?, None),
            };
            let given = match text(keys, "prefix")? {
                Some(p) => Some(prefix_of("prefix", p, true)?),
                None => None,
            };
            let masked = match text(keys, "netmask")? {
                Some(m) => Some(netmask("netmask", m)?),
                None => None,
            };
            let prefix = match (inline.or(given), masked) {
                (Some(p), Some(m)) if p != m => {
                    return Err(RequestError::PrefixMismatch {
                        prefix: p,
                        netmask_prefix: m,
                    })
                }
                (Some(p), _) | (None, Some(p)) => p,
                (None, None) => return Err(RequestError::MissingAddress { key: "prefix" }),
            };
            Mode::Static(StaticAddr::new(addr, prefix, ip(keys, "gateway", true)?)?)
        }
    };
    let v6 = match mode("type6", text(keys, "ip6")?.is_some())? {
        None => Mode::Unspecified,
        Some(false) => Mode::Dynamic,
        Some(true) => {
            let s = text(keys, "ip6")?.ok_or(RequestError::MissingAddress { key: "ip6" })?;
            let (addr, prefix) = match s.split_once('/') {
                Some(_) => cidr("ip6", s, false)?,
                None => {
                    let a = ip(keys, "ip6", false)?.ok_or_else(|| bad("ip6", s))?;
                    let p = text(keys, "prefix6")?
                        .ok_or(RequestError::MissingAddress { key: "prefix6" })?;
                    (a, prefix_of("prefix6", p, false)?)
                }
            };
            Mode::Static(StaticAddr::new(addr, prefix, ip(keys, "gateway6", false)?)?)
        }
    };
    NicRequest::new(Origin::VmData(device), mac, v4, v6)
}

/// Parses `CIDR` for the command line (`xenbeacon set-ip --ipv4`): the same rules as xenopsd's
/// `address`.
pub fn parse_cidr(s: &str, v4: bool) -> Result<(IpAddr, u8), RequestError> {
    let key = if v4 {
        ip_setting::ADDRESS
    } else {
        ip_setting::ADDRESS6
    };
    cidr(key, s, v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(kv: &[(&'static str, &str)]) -> Vec<(&'static str, Vec<u8>)> {
        kv.iter()
            .map(|(k, v)| (*k, v.as_bytes().to_vec()))
            .collect()
    }

    fn xo(kv: &[(&'static str, &str)]) -> Result<NicRequest, RequestError> {
        from_xenopsd(0, keys(kv).as_slice())
    }

    fn vm(kv: &[(&'static str, &str)]) -> Result<NicRequest, RequestError> {
        from_vm_data(0, keys(kv).as_slice())
    }

    fn st(a: &str, p: u8, gw: Option<&str>) -> Mode {
        Mode::Static(
            StaticAddr::new(a.parse().unwrap(), p, gw.map(|g| g.parse().unwrap())).unwrap(),
        )
    }

    #[test]
    fn xenopsd_as_written_at_plug_time() {
        // xenstore_of_static_ip_setting: mac, error-code 0, error-msg "", enabled 0, enabled6 0
        let r = xo(&[
            ("mac", "00:16:3e:12:34:56"),
            ("error-code", "0"),
            ("error-msg", ""),
            ("enabled", "0"),
            ("enabled6", "0"),
        ])
        .unwrap();
        assert_eq!(r.mac, Mac::parse("00:16:3e:12:34:56"));
        assert_eq!((r.v4(), r.v6()), (Mode::Unspecified, Mode::Unspecified));
        assert_eq!(r.origin, Origin::Xenopsd(0));
    }

    #[test]
    fn xenopsd_static_dhcp_and_autoconf() {
        let r = xo(&[
            ("mac", "00:16:3e:12:34:56"),
            ("enabled", "1"),
            ("address", "192.168.7.10/24"),
            ("gateway", "192.168.7.1"),
            ("enabled6", "1"),
            ("address6", "2001:db8::10/64"),
            ("gateway6", "2001:db8::1"),
        ])
        .unwrap();
        assert_eq!(r.v4(), st("192.168.7.10", 24, Some("192.168.7.1")));
        assert_eq!(r.v6(), st("2001:db8::10", 64, Some("2001:db8::1")));
        let r = xo(&[("enabled", "2"), ("enabled6", "2")]).unwrap();
        assert_eq!(
            (r.v4(), r.v6(), r.mac),
            (Mode::Dynamic, Mode::Dynamic, None)
        );
        // no gateway; an IPv6 gateway that is link-local is fine
        let r = xo(&[
            ("enabled", "1"),
            ("address", "10.0.0.2/8"),
            ("enabled6", "1"),
            ("address6", "2001:db8::10/64"),
            ("gateway6", "fe80::1"),
        ])
        .unwrap();
        assert_eq!(r.v4(), st("10.0.0.2", 8, None));
        assert_eq!(r.v6(), st("2001:db8::10", 64, Some("fe80::1")));
        // /31 and /32 have no network or broadcast address
        assert_eq!(
            xo(&[("enabled", "1"), ("address", "10.0.0.0/31")])
                .unwrap()
                .v4(),
            st("10.0.0.0", 31, None)
        );
    }

    #[test]
    fn xenopsd_bad_values_are_errors_with_a_clear_message() {
        let err = |kv: &[(&'static str, &str)]| xo(kv).unwrap_err();
        let e = err(&[("enabled", "1"), ("address", "192.168.7.300/24")]);
        assert_eq!(e.to_string(), "address: '192.168.7.300/24' is not valid");
        assert_eq!(e.code(), 1);
        assert!(matches!(
            err(&[("enabled", "1"), ("address", "192.168.7.3")]),
            RequestError::BadValue { key: "address", .. }
        ));
        assert!(matches!(
            err(&[("enabled", "1"), ("address", "192.168.7.3/33")]),
            RequestError::BadValue { .. }
        ));
        assert!(matches!(
            err(&[("enabled", "1"), ("address", "192.168.7.3/+4")]),
            RequestError::BadValue { .. }
        ));
        assert_eq!(
            err(&[("enabled", "1")]),
            RequestError::MissingAddress { key: "address" }
        );
        let e = err(&[
            ("enabled", "1"),
            ("address", "192.168.7.10/24"),
            ("gateway", "192.168.8.1"),
        ]);
        assert_eq!(
            e.to_string(),
            "gateway 192.168.8.1 is not inside 192.168.7.10/24"
        );
        assert!(matches!(
            err(&[
                ("enabled", "1"),
                ("address", "192.168.7.10/24"),
                ("gateway", "192.168.7.10")
            ]),
            RequestError::GatewayOutsideSubnet { .. }
        ));
        assert!(matches!(
            err(&[("enabled", "1"), ("address", "192.168.7.0/24")]),
            RequestError::UnusableAddress { .. }
        ));
        assert!(matches!(
            err(&[("enabled", "1"), ("address", "192.168.7.255/24")]),
            RequestError::UnusableAddress { .. }
        ));
        for a in [
            "0.0.0.0/8",
            "127.0.0.1/8",
            "224.0.0.1/4",
            "255.255.255.255/32",
        ] {
            assert!(
                matches!(
                    err(&[("enabled", "1"), ("address", a)]),
                    RequestError::UnusableAddress { .. }
                ),
                "{a}"
            );
        }
        assert!(matches!(
            err(&[("enabled", "1"), ("address", "2001:db8::1/64")]),
            RequestError::WrongFamily { .. }
        ));
        assert!(matches!(
            err(&[("enabled6", "1"), ("address6", "10.0.0.1/8")]),
            RequestError::WrongFamily { .. }
        ));
        assert!(matches!(
            err(&[
                ("enabled", "1"),
                ("address", "10.0.0.2/8"),
                ("gateway", "2001:db8::1")
            ]),
            RequestError::WrongFamily { .. }
        ));
        assert_eq!(
            err(&[("enabled", "3")]).to_string(),
            "enabled: unknown mode '3'"
        );
        assert!(matches!(
            err(&[("mac", "nope")]),
            RequestError::BadMac { .. }
        ));
    }

    #[test]
    fn hostile_values_are_refused_whole() {
        let long = "1".repeat(4096);
        let e = xo(&[("enabled", "1"), ("address", &long)]).unwrap_err();
        assert_eq!(
            e,
            RequestError::TooLong {
                key: "address",
                len: 4096
            }
        );
        assert!(e.to_string().contains("4096 bytes"));
        let e = xo(&[("enabled", "1"), ("address", "10.0.0.2/8\n")]).unwrap_err();
        assert_eq!(e, RequestError::NotPrintable { key: "address" });
        let e = xo(&[("enabled", "1"), ("address", "10.0.0.2/８")]).unwrap_err();
        assert_eq!(e, RequestError::NotPrintable { key: "address" });
        let raw: Vec<(&'static str, Vec<u8>)> =
            vec![("enabled", b"1".to_vec()), ("address", vec![0xff, 0xfe])];
        assert!(matches!(
            from_xenopsd(0, raw.as_slice()),
            Err(RequestError::NotPrintable { .. })
        ));
        // garbage never panics
        for n in 0..80u8 {
            let v: String = (0..n)
                .map(|i| (b' ' + i.wrapping_mul(7) % 90) as char)
                .collect();
            for k in [
                "address", "gateway", "address6", "gateway6", "enabled", "mac",
            ] {
                let _ = xo(&[("enabled", "1"), ("enabled6", "1"), (k, &v)]);
                let _ = vm(&[
                    ("type", "static"),
                    ("type6", "static"),
                    ("ip", &v),
                    ("netmask", &v),
                ]);
            }
        }
    }

    #[test]
    fn ansible_vm_data() {
        // as xenserver_guest writes it: ip without prefix, prefix and netmask both
        let r = vm(&[
            ("name", "Pool-wide network"),
            ("mac", "00:16:3e:aa:bb:cc"),
            ("type", "static"),
            ("ip", "192.168.0.42"),
            ("prefix", "25"),
            ("netmask", "255.255.255.128"),
            ("gateway", "192.168.0.1"),
            ("type6", "static"),
            ("ip6", "2001:db8::42"),
            ("prefix6", "64"),
            ("gateway6", "2001:db8::1"),
        ])
        .unwrap();
        assert_eq!(r.origin, Origin::VmData(0));
        assert_eq!(r.mac, Mac::parse("00163eaabbcc"));
        assert_eq!(r.v4(), st("192.168.0.42", 25, Some("192.168.0.1")));
        assert_eq!(r.v6(), st("2001:db8::42", 64, Some("2001:db8::1")));
        // netmask alone, empty gateway (cleared), ip with its prefix, ip without type
        let r = vm(&[
            ("ip", "10.1.2.3"),
            ("netmask", "255.255.0.0"),
            ("gateway", ""),
        ])
        .unwrap();
        assert_eq!(r.v4(), st("10.1.2.3", 16, None));
        let r = vm(&[("type", "static"), ("ip", "10.1.2.3/16")]).unwrap();
        assert_eq!(r.v4(), st("10.1.2.3", 16, None));
        let r = vm(&[("type6", "static"), ("ip6", "2001:db8::5/48")]).unwrap();
        assert_eq!(r.v6(), st("2001:db8::5", 48, None));
        // none and dhcp; type none with a stale ip (the module writes ip "" then)
        let r = vm(&[("type", "dhcp"), ("type6", "none"), ("ip6", "")]).unwrap();
        assert_eq!((r.v4(), r.v6()), (Mode::Dynamic, Mode::Unspecified));
        let r = vm(&[("type", "none"), ("ip", "")]).unwrap();
        assert_eq!(r.v4(), Mode::Unspecified);
    }

    #[test]
    fn ansible_bad_values() {
        let e = vm(&[
            ("type", "static"),
            ("ip", "10.1.2.3"),
            ("prefix", "24"),
            ("netmask", "255.255.0.0"),
        ]);
        assert_eq!(
            e.unwrap_err(),
            RequestError::PrefixMismatch {
                prefix: 24,
                netmask_prefix: 16
            }
        );
        let e = vm(&[
            ("type", "static"),
            ("ip", "10.1.2.3"),
            ("netmask", "255.0.255.0"),
        ]);
        assert!(matches!(
            e,
            Err(RequestError::BadValue { key: "netmask", .. })
        ));
        let e = vm(&[("type", "static"), ("ip", "10.1.2.3")]);
        assert_eq!(
            e.unwrap_err(),
            RequestError::MissingAddress { key: "prefix" }
        );
        let e = vm(&[("type", "static")]);
        assert_eq!(e.unwrap_err(), RequestError::MissingAddress { key: "ip" });
        let e = vm(&[("type", "manual")]);
        assert!(matches!(e, Err(RequestError::BadMode { key: "type", .. })));
        let e = vm(&[("type6", "static"), ("ip6", "2001:db8::5")]);
        assert_eq!(
            e.unwrap_err(),
            RequestError::MissingAddress { key: "prefix6" }
        );
    }

    #[test]
    fn kernel_errors_carry_the_errno_text() {
        let e = RequestError::Kernel {
            what: "add 10.0.0.2/24 to eth0".into(),
            errno: libc::EEXIST,
        };
        assert_eq!(e.code(), 3);
        assert!(e
            .to_string()
            .starts_with("the kernel refused to add 10.0.0.2/24 to eth0: File exists"));
        assert_eq!(
            RequestError::NoSuchNic {
                what: "MAC 00:16:3e:00:00:01".into()
            }
            .code(),
            2
        );
    }
}
