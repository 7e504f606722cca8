//! rtnetlink messages: zero-copy views over a receive buffer and validated representations of
//! the few payloads the agent reads (links and addresses), in the style of smoltcp's `wire`.
//!
//! Layouts and constants come from the Linux uapi (`linux/netlink.h`, `linux/rtnetlink.h`,
//! `linux/if_link.h`, `linux/if_addr.h`). Everything is host-endian; every access is bounds
//! checked, so a malformed message is an error, never a panic. Nothing here allocates.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

pub const RTMGRP_LINK: u32 = 0x1;
pub const RTMGRP_IPV4_IFADDR: u32 = 0x10;
pub const RTMGRP_IPV6_IFADDR: u32 = 0x100;

const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_CARRIER: u16 = 33;
const IFLA_PERM_ADDRESS: u16 = 54;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_VLAN_ID: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
/// Linux 6.1+: who added the address (`ifa_proto`); older kernels ignore it.
const IFA_PROTO: u16 = 11;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
pub const RT_TABLE_MAIN: u8 = 254;
const RTN_UNICAST: u8 = 1;
const RT_SCOPE_UNIVERSE: u8 = 0;

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_LOWER_UP: u32 = 0x1_0000;

/// `ifa_flags` bits (`linux/if_addr.h`).
pub const IFA_F_SECONDARY: u32 = 0x01;
/// Same bit as `IFA_F_SECONDARY`; it means "temporary" for IPv6 privacy addresses.
pub const IFA_F_TEMPORARY: u32 = 0x01;
pub const IFA_F_DADFAILED: u32 = 0x08;
pub const IFA_F_DEPRECATED: u32 = 0x20;
pub const IFA_F_TENTATIVE: u32 = 0x40;
pub const IFA_F_PERMANENT: u32 = 0x80;

crate::error_enum::error_enum! {
    /// A malformed netlink message or attribute.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum NlError {
        /// netlink message shorter than its declared length
        Truncated,
        /// netlink payload too short for its header
        ShortPayload,
        /// netlink attribute with the wrong size
        BadAttribute,
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One netlink message in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlMsg<'a> {
    buf: &'a [u8],
}

impl<'a> NlMsg<'a> {
    pub fn msg_type(&self) -> u16 {
        u16_at(self.buf, 4)
    }
    pub fn flags(&self) -> u16 {
        u16_at(self.buf, 6)
    }
    pub fn seq(&self) -> u32 {
        u32_at(self.buf, 8)
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[NLMSG_HDRLEN..]
    }
    /// For `NLMSG_ERROR`: the (negative) errno, 0 for an ACK.
    pub fn error_code(&self) -> Option<i32> {
        let p = self.payload();
        (self.msg_type() == NLMSG_ERROR && p.len() >= 4).then(|| u32_at(p, 0) as i32)
    }
}

/// Iterates the messages of one datagram. Stops (with an error item) at the first malformed
/// message, since nothing after it can be framed.
#[derive(Clone, Debug)]
pub struct NlMsgs<'a> {
    rest: &'a [u8],
}

impl<'a> NlMsgs<'a> {
    pub fn new(datagram: &'a [u8]) -> NlMsgs<'a> {
        NlMsgs { rest: datagram }
    }
}

impl<'a> Iterator for NlMsgs<'a> {
    type Item = Result<NlMsg<'a>, NlError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < NLMSG_HDRLEN {
            self.rest = &[];
            return Some(Err(NlError::Truncated));
        }
        let len = u32_at(self.rest, 0) as usize;
        if len < NLMSG_HDRLEN || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(NlError::Truncated));
        }
        let msg = NlMsg {
            buf: &self.rest[..len],
        };
        self.rest = self.rest.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(msg))
    }
}

/// Route attributes (`struct rtattr` + value), iterated; a malformed tail ends the iteration.
#[derive(Clone, Debug)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attrs<'a> {
    /// (type without the nested/byte-order bits, value)
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 4 {
            return None;
        }
        let len = u16_at(self.rest, 0) as usize;
        let ty = u16_at(self.rest, 2) & 0x3fff;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let value = &self.rest[4..len];
        self.rest = self.rest.get(align4(len)..).unwrap_or(&[]);
        Some((ty, value))
    }
}

fn attrs(b: &[u8]) -> Attrs<'_> {
    Attrs { rest: b }
}

/// A NUL-terminated attribute string; `None` unless it is valid UTF-8.
fn attr_str(v: &[u8]) -> Option<&str> {
    let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
    core::str::from_utf8(&v[..end]).ok()
}

fn attr_u32(v: &[u8]) -> Result<u32, NlError> {
    if v.len() == 4 {
        Ok(u32_at(v, 0))
    } else {
        Err(NlError::BadAttribute)
    }
}

/// An RTM_NEWLINK / RTM_DELLINK payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkRepr<'a> {
    pub index: u32,
    pub flags: u32,
    pub name: Option<&'a str>,
    /// `IFLA_ADDRESS`, when it is an Ethernet-size MAC.
    pub mac: Option<[u8; 6]>,
    /// `IFLA_PERM_ADDRESS` (Linux 5.6+), when it is an Ethernet-size MAC other than zero: the
    /// address the hardware came with. The kernel sends none for a random or software address.
    pub perm_mac: Option<[u8; 6]>,
    /// `IFLA_MASTER`: the bridge or bond this link is enslaved to.
    pub master: Option<u32>,
    /// `IFLA_LINK`: the lower device of a VLAN or macvlan.
    pub lower: Option<u32>,
    pub carrier: Option<bool>,
    /// `IFLA_INFO_KIND`: `bridge`, `vlan`, `bond`, `macvlan`, `veth`, ...
    pub kind: Option<&'a str>,
    pub vlan_id: Option<u16>,
}

impl<'a> LinkRepr<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<LinkRepr<'a>, NlError> {
        if payload.len() < IFINFOMSG_LEN {
            return Err(NlError::ShortPayload);
        }
        let mut link = LinkRepr {
            index: u32_at(payload, 4),
            flags: u32_at(payload, 8),
            name: None,
            mac: None,
            perm_mac: None,
            master: None,
            lower: None,
            carrier: None,
            kind: None,
            vlan_id: None,
        };
        for (ty, v) in attrs(&payload[IFINFOMSG_LEN..]) {
            match ty {
                IFLA_IFNAME => link.name = attr_str(v),
                IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(v).ok(),
                IFLA_PERM_ADDRESS => {
                    link.perm_mac = <[u8; 6]>::try_from(v).ok().filter(|m| *m != [0; 6]);
                }
                IFLA_MASTER => link.master = Some(attr_u32(v)?).filter(|&m| m != 0),
                IFLA_LINK => link.lower = Some(attr_u32(v)?).filter(|&l| l != 0),
                IFLA_CARRIER => link.carrier = v.first().map(|&c| c != 0),
                IFLA_LINKINFO => {
                    for (ity, iv) in attrs(v) {
                        match ity {
                            IFLA_INFO_KIND => link.kind = attr_str(iv),
                            IFLA_INFO_DATA if link.kind == Some("vlan") => {
                                for (vty, vv) in attrs(iv) {
                                    if vty == IFLA_VLAN_ID && vv.len() >= 2 {
                                        link.vlan_id = Some(u16_at(vv, 0));
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(link)
    }
}

/// An RTM_NEWADDR / RTM_DELADDR payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRepr {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub scope: u8,
    /// `IFA_FLAGS` when present (it carries the bits above 8), else `ifa_flags`.
    pub flags: u32,
}

impl AddrRepr {
    /// `Ok(None)` for families other than IPv4/IPv6 or a message without an address.
    pub fn parse(payload: &[u8]) -> Result<Option<AddrRepr>, NlError> {
        if payload.len() < IFADDRMSG_LEN {
            return Err(NlError::ShortPayload);
        }
        let family = payload[0];
        let mut flags = u32::from(payload[2]);
        let (mut local, mut address) = (None, None);
        for (ty, v) in attrs(&payload[IFADDRMSG_LEN..]) {
            let ip = match (family, v.len()) {
                (AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
                (AF_INET6, 16) => <[u8; 16]>::try_from(v)
                    .ok()
                    .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
                _ => None,
            };
            match ty {
                IFA_LOCAL => local = ip,
                IFA_ADDRESS => address = ip,
                IFA_FLAGS => flags = attr_u32(v)?,
                _ => {}
            }
        }
        // For IPv4 point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
        let Some(addr) = local.or(address) else {
            return Ok(None);
        };
        Ok(Some(AddrRepr {
            index: u32_at(payload, 4),
            addr,
            prefix_len: payload[1],
            scope: payload[3],
            flags,
        }))
    }
}

/// An address to add or remove: `RTM_NEWADDR` / `RTM_DELADDR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrChange {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// `ifa_proto` (`IFA_PROTO`), kept by Linux 6.1 and later.
    pub protocol: u8,
}

impl AddrChange {
    /// Appends the request (`msg_type` `RTM_NEWADDR` or `RTM_DELADDR`, `flags` besides
    /// `NLM_F_REQUEST`) to `out`. An IPv4 address below /31 gets its subnet's broadcast
    /// address, as `ip addr add ... brd +` and every network manager give it.
    pub fn emit(&self, msg_type: u16, flags: u16, seq: u32, out: &mut Vec<u8>) {
        let start = out.len();
        emit_header(msg_type, flags, seq, out);
        let (family, bytes) = ip_bytes(&self.addr);
        out.extend_from_slice(&[family, self.prefix_len, 0, RT_SCOPE_UNIVERSE]);
        out.extend_from_slice(&self.index.to_ne_bytes());
        emit_attr(IFA_LOCAL, bytes.as_slice(), out);
        emit_attr(IFA_ADDRESS, bytes.as_slice(), out);
        if let IpAddr::V4(v4) = self.addr {
            if self.prefix_len < 31 {
                let host = u32::MAX >> self.prefix_len;
                let brd = (u32::from(v4) | host).to_be_bytes();
                emit_attr(IFA_BROADCAST, &brd, out);
            }
        }
        if msg_type == RTM_NEWADDR {
            emit_attr(IFA_PROTO, &[self.protocol], out);
        }
        finish(start, out);
    }
}

/// A default route to add or remove: `RTM_NEWROUTE` / `RTM_DELROUTE`, main table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultRouteRepr {
    pub index: u32,
    pub gateway: IpAddr,
    pub protocol: u8,
}

impl DefaultRouteRepr {
    /// Appends the request to `out`. A delete names the protocol, so the kernel removes only a
    /// route with that protocol.
    pub fn emit(&self, msg_type: u16, flags: u16, seq: u32, out: &mut Vec<u8>) {
        let start = out.len();
        emit_header(msg_type, flags, seq, out);
        let (family, bytes) = ip_bytes(&self.gateway);
        out.extend_from_slice(&[
            family,
            0, // dst_len: default route
            0,
            0,
            RT_TABLE_MAIN,
            self.protocol,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        out.extend_from_slice(&0u32.to_ne_bytes());
        emit_attr(RTA_GATEWAY, bytes.as_slice(), out);
        emit_attr(RTA_OIF, &self.index.to_ne_bytes(), out);
        finish(start, out);
    }

    /// The default route of an `RTM_NEWROUTE` in the main table with a gateway and an output
    /// link; `Ok(None)` for every other route (prefixes, other tables, multipath, blackholes).
    pub fn parse(payload: &[u8]) -> Result<Option<DefaultRouteRepr>, NlError> {
        if payload.len() < RTMSG_LEN {
            return Err(NlError::ShortPayload);
        }
        let (family, dst_len, protocol, kind) = (payload[0], payload[1], payload[5], payload[7]);
        let mut table = u32::from(payload[4]);
        let (mut gateway, mut index, mut has_dst) = (None, None, false);
        for (ty, v) in attrs(&payload[RTMSG_LEN..]) {
            match ty {
                RTA_TABLE => table = attr_u32(v)?,
                RTA_OIF => index = Some(attr_u32(v)?),
                RTA_DST => has_dst = !v.iter().all(|&b| b == 0),
                RTA_GATEWAY => {
                    gateway = match (family, v.len()) {
                        (AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
                        (AF_INET6, 16) => <[u8; 16]>::try_from(v)
                            .ok()
                            .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
                        _ => return Err(NlError::BadAttribute),
                    }
                }
                _ => {}
            }
        }
        if dst_len != 0 || has_dst || kind != RTN_UNICAST || table != u32::from(RT_TABLE_MAIN) {
            return Ok(None);
        }
        Ok(match (gateway, index) {
            (Some(gateway), Some(index)) => Some(DefaultRouteRepr {
                index,
                gateway,
                protocol,
            }),
            _ => None,
        })
    }
}

fn ip_bytes(ip: &IpAddr) -> (u8, IpBytes) {
    match ip {
        IpAddr::V4(v) => (AF_INET, IpBytes::V4(v.octets())),
        IpAddr::V6(v) => (AF_INET6, IpBytes::V6(v.octets())),
    }
}

enum IpBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl IpBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            IpBytes::V4(b) => b,
            IpBytes::V6(b) => b,
        }
    }
}

/// A netlink header with the length left at 0 for [`finish`].
fn emit_header(msg_type: u16, flags: u16, seq: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&msg_type.to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
}

fn emit_attr(ty: u16, value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align4(out.len()), 0);
}

/// Writes the length of the message that starts at `start`.
fn finish(start: usize, out: &mut [u8]) {
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// Appends a dump request (`RTM_GETLINK`, `RTM_GETADDR` or `RTM_GETROUTE`, every family) to
/// `out`.
pub fn emit_dump_request(msg_type: u16, seq: u32, out: &mut Vec<u8>) {
    let payload_len = match msg_type {
        RTM_GETLINK => IFINFOMSG_LEN,
        RTM_GETROUTE => RTMSG_LEN,
        _ => IFADDRMSG_LEN,
    };
    let len = NLMSG_HDRLEN + payload_len;
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&msg_type.to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.resize(out.len() + payload_len, 0); // family AF_UNSPEC: everything
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, v: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(v);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    fn msg(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&7u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        m
    }

    fn link_payload() -> Vec<u8> {
        let mut p = vec![0u8; 16];
        p[4..8].copy_from_slice(&3u32.to_ne_bytes());
        p[8..12].copy_from_slice(&(IFF_UP | IFF_LOWER_UP).to_ne_bytes());
        attr(IFLA_IFNAME, b"eth0.100\0", &mut p);
        attr(IFLA_ADDRESS, &[0, 0x16, 0x3e, 0, 0, 1], &mut p);
        attr(IFLA_LINK, &2u32.to_ne_bytes(), &mut p);
        attr(IFLA_MASTER, &0u32.to_ne_bytes(), &mut p);
        attr(IFLA_CARRIER, &[1], &mut p);
        let mut vlan_data = Vec::new();
        attr(IFLA_VLAN_ID, &100u16.to_ne_bytes(), &mut vlan_data);
        let mut info = Vec::new();
        attr(IFLA_INFO_KIND, b"vlan\0", &mut info);
        attr(IFLA_INFO_DATA | 0x8000, &vlan_data, &mut info);
        attr(IFLA_LINKINFO | 0x8000, &info, &mut p);
        p
    }

    #[test]
    fn parses_a_vlan_link() {
        let payload = link_payload();
        let l = LinkRepr::parse(&payload).unwrap();
        assert_eq!(l.index, 3);
        assert_eq!(l.name, Some("eth0.100"));
        assert_eq!(l.mac, Some([0, 0x16, 0x3e, 0, 0, 1]));
        assert_eq!(l.lower, Some(2));
        assert_eq!(l.master, None);
        assert_eq!(l.carrier, Some(true));
        assert_eq!(l.kind, Some("vlan"));
        assert_eq!(l.vlan_id, Some(100));
        assert_eq!(l.perm_mac, None);
    }

    #[test]
    fn permanent_address_only_when_ethernet_sized_and_not_zero() {
        let perm = |v: &[u8]| {
            let mut p = link_payload();
            attr(IFLA_PERM_ADDRESS, v, &mut p);
            LinkRepr::parse(&p).unwrap().perm_mac
        };
        assert_eq!(
            perm(&[0x52, 0x54, 0, 0x12, 0x34, 5]),
            Some([0x52, 0x54, 0, 0x12, 0x34, 5])
        );
        assert_eq!(perm(&[0; 6]), None);
        assert_eq!(perm(&[1; 20]), None); // InfiniBand-size
    }

    #[test]
    fn parses_addresses() {
        let mut p = vec![AF_INET, 24, 0, 0, 3, 0, 0, 0];
        p[4..8].copy_from_slice(&3u32.to_ne_bytes());
        attr(IFA_ADDRESS, &[10, 0, 0, 2], &mut p);
        attr(IFA_LOCAL, &[10, 0, 0, 2], &mut p);
        attr(IFA_FLAGS, &IFA_F_PERMANENT.to_ne_bytes(), &mut p);
        let a = AddrRepr::parse(&p).unwrap().unwrap();
        assert_eq!(a.addr, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((a.index, a.prefix_len, a.flags), (3, 24, IFA_F_PERMANENT));

        let mut p6 = vec![AF_INET6, 64, IFA_F_TENTATIVE as u8, 0, 0, 0, 0, 0];
        p6[4..8].copy_from_slice(&9u32.to_ne_bytes());
        let ip: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
        attr(IFA_ADDRESS, &ip.octets(), &mut p6);
        let a = AddrRepr::parse(&p6).unwrap().unwrap();
        assert_eq!(a.addr, IpAddr::V6(ip));
        assert_eq!(a.flags, IFA_F_TENTATIVE);
    }

    #[test]
    fn iterates_messages_and_rejects_bad_framing() {
        let mut dgram = msg(RTM_NEWLINK, &link_payload());
        dgram.extend(msg(NLMSG_DONE, &[0, 0, 0, 0]));
        let msgs: Vec<_> = NlMsgs::new(&dgram).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].msg_type(), RTM_NEWLINK);
        assert_eq!(msgs[0].seq(), 7);
        assert_eq!(msgs[1].msg_type(), NLMSG_DONE);

        let mut bad = msg(RTM_NEWLINK, &link_payload());
        bad[0..4].copy_from_slice(&9999u32.to_ne_bytes());
        assert_eq!(NlMsgs::new(&bad).next(), Some(Err(NlError::Truncated)));
        assert_eq!(
            NlMsgs::new(&bad[..10]).next(),
            Some(Err(NlError::Truncated))
        );
        assert_eq!(LinkRepr::parse(&[0; 8]), Err(NlError::ShortPayload));
        assert_eq!(AddrRepr::parse(&[0; 4]), Err(NlError::ShortPayload));
    }

    #[test]
    fn garbage_attributes_do_not_panic() {
        for n in 0..64u8 {
            let mut p = vec![0u8; 16];
            p.extend((0..n).map(|i| i.wrapping_mul(37)));
            let _ = LinkRepr::parse(&p);
            let mut a = vec![AF_INET6, 64, 0, 0, 0, 0, 0, 0];
            a.extend((0..n).map(|i| i.wrapping_mul(91)));
            let _ = AddrRepr::parse(&a);
        }
    }

    #[test]
    fn address_changes_round_trip_through_the_parser() {
        let mut out = Vec::new();
        let change = AddrChange {
            index: 3,
            addr: "192.168.7.10".parse().unwrap(),
            prefix_len: 24,
            protocol: 0xb5,
        };
        change.emit(
            RTM_NEWADDR,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            9,
            &mut out,
        );
        let m = NlMsgs::new(&out).next().unwrap().unwrap();
        assert_eq!(m.msg_type(), RTM_NEWADDR);
        assert_eq!(m.flags(), 0x605);
        assert_eq!(m.seq(), 9);
        assert_eq!(out.len() % 4, 0);
        let a = AddrRepr::parse(m.payload()).unwrap().unwrap();
        assert_eq!((a.index, a.addr, a.prefix_len), (3, change.addr, 24));
        let brd = attrs(&m.payload()[IFADDRMSG_LEN..])
            .find(|(t, _)| *t == IFA_BROADCAST)
            .map(|(_, v)| v.to_vec());
        assert_eq!(brd, Some(vec![192, 168, 7, 255]));
        let mut v6 = Vec::new();
        AddrChange {
            addr: "2001:db8::2".parse().unwrap(),
            prefix_len: 64,
            ..change
        }
        .emit(RTM_DELADDR, NLM_F_ACK, 10, &mut v6);
        let m = NlMsgs::new(&v6).next().unwrap().unwrap();
        let a = AddrRepr::parse(m.payload()).unwrap().unwrap();
        assert_eq!(a.addr, "2001:db8::2".parse::<IpAddr>().unwrap());
        assert!(attrs(&m.payload()[IFADDRMSG_LEN..]).all(|(t, _)| t != IFA_PROTO));
    }

    #[test]
    fn default_routes_round_trip_and_others_are_not_default() {
        for gw in ["10.0.0.1", "fe80::1"] {
            let r = DefaultRouteRepr {
                index: 4,
                gateway: gw.parse().unwrap(),
                protocol: 0xb5,
            };
            let mut out = Vec::new();
            r.emit(
                RTM_NEWROUTE,
                NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                1,
                &mut out,
            );
            let m = NlMsgs::new(&out).next().unwrap().unwrap();
            assert_eq!(DefaultRouteRepr::parse(m.payload()), Ok(Some(r)));
            // a /24 is not a default route
            let mut p = m.payload().to_vec();
            p[1] = 24;
            assert_eq!(DefaultRouteRepr::parse(&p), Ok(None));
            // nor is one in another table
            let mut p = m.payload().to_vec();
            p[4] = 100;
            assert_eq!(DefaultRouteRepr::parse(&p), Ok(None));
        }
        assert_eq!(DefaultRouteRepr::parse(&[0; 4]), Err(NlError::ShortPayload));
        for n in 0..64u8 {
            let mut p = vec![AF_INET, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0];
            p.extend((0..n).map(|i| i.wrapping_mul(53)));
            let _ = DefaultRouteRepr::parse(&p);
        }
    }

    #[test]
    fn dump_request_layout() {
        let mut out = Vec::new();
        emit_dump_request(RTM_GETADDR, 5, &mut out);
        assert_eq!(out.len(), 24);
        let m = NlMsgs::new(&out).next().unwrap().unwrap();
        assert_eq!((m.msg_type(), m.flags(), m.seq()), (RTM_GETADDR, 0x301, 5));
    }
}
