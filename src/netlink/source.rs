//! The rtnetlink source: one non-blocking socket subscribed to link and IPv4/IPv6 address
//! events, and dumps of links and addresses at start and whenever the kernel reports an
//! overrun (`ENOBUFS`: events were dropped, so only a fresh dump tells the truth).
//!
//! The event loop calls [`NetlinkSource::receive`] when the fd is readable; it drains every
//! pending datagram into the [`NetState`] before returning, so a burst of changes becomes one
//! publication round.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::{Duration, Instant};

use neli::consts::socket::Msg;
use neli::socket::NlSocket;

use super::wire::{
    emit_dump_request, AddrRepr, LinkRepr, NlError, NlMsg, NlMsgs, IFA_F_DADFAILED,
    IFA_F_DEPRECATED, IFA_F_PERMANENT, IFA_F_TEMPORARY, IFA_F_TENTATIVE, IFF_LOOPBACK,
    IFF_LOWER_UP, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK, RTM_DELADDR, RTM_DELLINK, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK,
};
use crate::layout::Mac;
use crate::net::{AddrFlags, LinkFacts, NetState};

/// Receive buffer: larger than the biggest datagram a dump sends (NLMSG_GOODSIZE, <= 32 KiB).
const RECV_BUF: usize = 64 * 1024;
/// Socket receive buffer asked for; the kernel caps it at `net.core.rmem_max`.
const SO_RCVBUF: usize = 1 << 20;
/// How long a dump may take before the source gives up on it.
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);
/// Dumps restarted after overruns before giving up for this round.
const DUMP_ATTEMPTS: u32 = 5;

crate::error_enum::error_enum! {
    /// A netlink failure.
    #[derive(Debug)]
    pub enum NetlinkError {
        /// cannot open rtnetlink socket: {0}
        Open(io::Error),
        /// rtnetlink I/O error: {0}
        Io(io::Error),
        /// rtnetlink dump failed: {0}
        Kernel(KernelErrno),
        /// rtnetlink dump did not finish in time
        Timeout,
        /// rtnetlink dumps kept overrunning
        Overrun,
        /// rtnetlink dump interrupted by a signal
        Interrupted,
    }
}

/// The error the kernel answered a netlink request with (`NLMSG_ERROR`'s negative errno).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelErrno(pub i32);

impl fmt::Display for KernelErrno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", io::Error::from_raw_os_error(-self.0))
    }
}

/// Counters for logs, tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetlinkMetrics {
    pub datagrams: u64,
    pub messages: u64,
    pub overruns: u64,
    pub dumps: u64,
    pub malformed: u64,
}

/// What the source needs of its socket: the kernel's (a non-blocking rtnetlink socket), or
/// in unit tests a scripted one, so that overruns, interrupted and failed reads, and malformed
/// datagrams run without root and without an fd.
pub trait RouteSocket {
    /// Sends one request.
    fn send(&mut self, req: &[u8]) -> io::Result<()>;
    /// Reads one datagram; `WouldBlock` when none is pending, `ENOBUFS` after an overrun.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Waits until a datagram is pending: [`NetlinkError::Timeout`] at `deadline`,
    /// [`NetlinkError::Interrupted`] once `interrupt` is readable.
    fn wait_readable(
        &mut self,
        interrupt: Option<RawFd>,
        deadline: Instant,
    ) -> Result<(), NetlinkError>;
    /// The fd the event loop polls.
    fn raw_fd(&self) -> RawFd;
}

/// The kernel's rtnetlink socket.
pub struct KernelSocket(NlSocket);

impl RouteSocket for KernelSocket {
    fn send(&mut self, req: &[u8]) -> io::Result<()> {
        self.0.send(req, Msg::empty()).map(drop)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf, Msg::empty()).map(|(n, _)| n)
    }

    fn wait_readable(
        &mut self,
        interrupt: Option<RawFd>,
        deadline: Instant,
    ) -> Result<(), NetlinkError> {
        wait_readable(self.0.as_raw_fd(), interrupt, deadline)
    }

    fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

pub struct NetlinkSource<S: RouteSocket = KernelSocket> {
    sock: S,
    buf: Box<[u8]>,
    req: Vec<u8>,
    seq: u32,
    /// An fd (the stop signalfd) whose readability ends a dump's wait at once.
    interrupt: Option<RawFd>,
    pub metrics: NetlinkMetrics,
}

/// What draining the socket found.
enum Drained {
    /// Everything read; `true` if a dump with this sequence number finished.
    Empty(bool),
    Overrun,
}

impl NetlinkSource {
    pub fn open() -> Result<NetlinkSource, NetlinkError> {
        let sock = open_route_socket(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
            .map_err(NetlinkError::Open)?;
        if let Err(e) = sock.set_recv_buffer_size(SO_RCVBUF) {
            log::debug!("cannot enlarge the rtnetlink receive buffer: {e}");
        }
        Ok(NetlinkSource::with_socket(KernelSocket(sock)))
    }
}

impl<S: RouteSocket> NetlinkSource<S> {
    /// A source reading from `sock`.
    pub fn with_socket(sock: S) -> NetlinkSource<S> {
        NetlinkSource {
            sock,
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            req: Vec::with_capacity(32),
            seq: 0,
            interrupt: None,
            metrics: NetlinkMetrics::default(),
        }
    }

    /// The socket, for tests that script it.
    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    /// Makes a dump's wait for the kernel end with [`NetlinkError::Interrupted`] once `fd`
    /// is readable.
    pub fn set_interrupt(&mut self, fd: Option<RawFd>) {
        self.interrupt = fd;
    }

    /// Replaces `state` with a fresh dump of links, then addresses. Events that arrive
    /// meanwhile are applied too; an overrun restarts the dump. The dump is built apart and
    /// only replaces `state` once it is whole: after a failure `state` is what it was, so a
    /// failed dump never becomes an empty or partial NIC set.
    pub fn dump(&mut self, state: &mut NetState) -> Result<(), NetlinkError> {
        for _ in 0..DUMP_ATTEMPTS {
            // Events still queued are older than the dump: applied after it they would bring
            // back what no longer exists.
            self.discard_pending()?;
            let mut fresh = NetState::default();
            self.metrics.dumps += 1;
            if self.dump_one(RTM_GETLINK, &mut fresh)? && self.dump_one(RTM_GETADDR, &mut fresh)? {
                *state = fresh;
                return Ok(());
            }
            self.metrics.overruns += 1;
            log::debug!("rtnetlink overrun during a dump; dumping again");
        }
        Err(NetlinkError::Overrun)
    }

    /// Reads and drops everything queued on the socket.
    fn discard_pending(&mut self) -> Result<(), NetlinkError> {
        loop {
            match self.sock.recv(&mut self.buf[..]) {
                Ok(_) => self.metrics.datagrams += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(NetlinkError::Io(e)),
            }
        }
    }

    /// One dump; `Ok(false)` if it was overrun.
    fn dump_one(&mut self, msg_type: u16, state: &mut NetState) -> Result<bool, NetlinkError> {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.req.clear();
        emit_dump_request(msg_type, self.seq, &mut self.req);
        self.sock.send(&self.req).map_err(NetlinkError::Io)?;
        // The kernel builds the first part of a dump in the send itself, so the clock is only
        // read when the dump has to be waited for.
        let mut deadline = None;
        loop {
            match self.drain(state, Some(self.seq))? {
                Drained::Empty(true) => return Ok(true),
                Drained::Overrun => return Ok(false),
                Drained::Empty(false) => {
                    let at = *deadline.get_or_insert_with(|| Instant::now() + DUMP_TIMEOUT);
                    self.sock.wait_readable(self.interrupt, at)?
                }
            }
        }
    }

    /// Applies every pending event; true if the state changed. After an overrun the state is
    /// rebuilt from a dump (and counts as changed).
    pub fn receive(&mut self, state: &mut NetState) -> Result<bool, NetlinkError> {
        let mut changed = false;
        match self.drain_inner(state, None, &mut changed)? {
            Drained::Empty(_) => Ok(changed),
            Drained::Overrun => {
                self.metrics.overruns += 1;
                log::info!(
                    "rtnetlink overrun (events were dropped): dumping links and addresses again"
                );
                self.dump(state)?;
                Ok(true)
            }
        }
    }

    fn drain(
        &mut self,
        state: &mut NetState,
        dump_seq: Option<u32>,
    ) -> Result<Drained, NetlinkError> {
        let mut changed = false;
        self.drain_inner(state, dump_seq, &mut changed)
    }

    fn drain_inner(
        &mut self,
        state: &mut NetState,
        dump_seq: Option<u32>,
        changed: &mut bool,
    ) -> Result<Drained, NetlinkError> {
        let mut done = false;
        loop {
            let n = match self.sock.recv(&mut self.buf[..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drained::Empty(done)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Drained::Overrun),
                Err(e) => return Err(NetlinkError::Io(e)),
            };
            self.metrics.datagrams += 1;
            for msg in NlMsgs::new(&self.buf[..n]) {
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        self.metrics.malformed += 1;
                        log::debug!("dropping malformed rtnetlink datagram: {e}");
                        break;
                    }
                };
                self.metrics.messages += 1;
                let ours = dump_seq.is_some_and(|s| msg.seq() == s);
                match msg.msg_type() {
                    NLMSG_DONE if ours => done = true,
                    NLMSG_OVERRUN => return Ok(Drained::Overrun),
                    NLMSG_ERROR if ours => match msg.error_code() {
                        Some(0) | None => {}
                        Some(e) if -e == libc::EBUSY || -e == libc::EINTR => {
                            return Ok(Drained::Overrun)
                        }
                        Some(e) => return Err(NetlinkError::Kernel(KernelErrno(e))),
                    },
                    _ => match apply(state, &msg) {
                        Ok(c) => *changed |= c,
                        Err(e) => {
                            self.metrics.malformed += 1;
                            log::debug!("dropping malformed rtnetlink message: {e}");
                        }
                    },
                }
            }
            if done {
                return Ok(Drained::Empty(true));
            }
        }
    }
}

/// Applies one rtnetlink message to what the agent knows of the network: the wire's flags
/// and attributes become typed facts here, so the model never sees the wire format. True if
/// the state changed.
pub fn apply(state: &mut NetState, msg: &NlMsg<'_>) -> Result<bool, NlError> {
    match msg.msg_type() {
        RTM_NEWLINK => {
            let l = LinkRepr::parse(msg.payload())?;
            Ok(state.update_link(&LinkFacts {
                index: l.index,
                name: l.name,
                mac: l.mac.map(Mac),
                perm_mac: l.perm_mac.map(Mac),
                loopback: l.flags & IFF_LOOPBACK != 0,
                lower_up: l.flags & IFF_LOWER_UP != 0,
                carrier: l.carrier,
                master: l.master,
                lower: l.lower,
                kind: l.kind,
                vlan_id: l.vlan_id,
            }))
        }
        RTM_DELLINK => Ok(state.remove_link(LinkRepr::parse(msg.payload())?.index)),
        RTM_NEWADDR => Ok(match AddrRepr::parse(msg.payload())? {
            Some(a) => {
                let flags = AddrFlags {
                    tentative: a.flags & IFA_F_TENTATIVE != 0,
                    dad_failed: a.flags & IFA_F_DADFAILED != 0,
                    deprecated: a.flags & IFA_F_DEPRECATED != 0,
                    temporary: a.flags & IFA_F_TEMPORARY != 0,
                    permanent: a.flags & IFA_F_PERMANENT != 0,
                };
                state.update_addr(a.index, a.addr, a.prefix_len, a.scope, flags)
            }
            None => false,
        }),
        RTM_DELADDR => Ok(match AddrRepr::parse(msg.payload())? {
            Some(a) => state.remove_addr(a.index, a.addr),
            None => false,
        }),
        _ => Ok(false),
    }
}

impl<S: RouteSocket> AsRawFd for NetlinkSource<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.raw_fd()
    }
}

/// A non-blocking, close-on-exec rtnetlink socket bound to the multicast `groups` (a
/// `RTMGRP_*` mask) in two system calls: neli's `connect` and `nonblock` take a setsockopt
/// per group and two fcntl, and in a PV guest each system call is a trip through Xen.
fn open_route_socket(groups: u32) -> io::Result<NlSocket> {
    // SAFETY: socket(2) takes no pointers.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nothing else owns; the socket closes it when dropped.
    let sock = unsafe { NlSocket::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = groups;
    // SAFETY: `addr` is a valid sockaddr_nl of the size passed.
    let r = unsafe {
        libc::bind(
            fd,
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}

fn wait_readable(
    fd: RawFd,
    interrupt: Option<RawFd>,
    deadline: Instant,
) -> Result<(), NetlinkError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(NetlinkError::Timeout);
    }
    let pollfd = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut pfd = [pollfd(fd), pollfd(interrupt.unwrap_or(-1))];
    crate::sys::poll(&mut pfd, Some(left)).map_err(NetlinkError::Io)?;
    if pfd[1].revents != 0 {
        return Err(NetlinkError::Interrupted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::net::IpAddr;

    use super::*;

    /// One thing the scripted socket does on a `recv`.
    enum Step {
        Datagram(Vec<u8>),
        Error(i32),
    }

    /// A socket that answers each dump request with a scripted reply and otherwise plays
    /// what the test queued; records what was sent.
    #[derive(Default)]
    struct ScriptedSocket {
        pending: VecDeque<Step>,
        /// Per dump request, in order: what follows it (the `seq` of the request is patched
        /// into every message of the reply whose seq is 0).
        replies: VecDeque<Vec<Step>>,
        sent: Vec<(u16, u32)>,
    }

    impl RouteSocket for ScriptedSocket {
        fn send(&mut self, req: &[u8]) -> io::Result<()> {
            let ty = u16::from_ne_bytes([req[4], req[5]]);
            let seq = u32::from_ne_bytes([req[8], req[9], req[10], req[11]]);
            self.sent.push((ty, seq));
            for step in self.replies.pop_front().unwrap_or_default() {
                self.pending.push_back(match step {
                    Step::Datagram(mut d) => {
                        patch_seq(&mut d, seq);
                        Step::Datagram(d)
                    }
                    e => e,
                });
            }
            Ok(())
        }

        fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.pending.pop_front() {
                Some(Step::Datagram(d)) => {
                    buf[..d.len()].copy_from_slice(&d);
                    Ok(d.len())
                }
                Some(Step::Error(e)) => Err(io::Error::from_raw_os_error(e)),
                None => Err(io::ErrorKind::WouldBlock.into()),
            }
        }

        fn wait_readable(&mut self, _: Option<RawFd>, _: Instant) -> Result<(), NetlinkError> {
            if self.pending.is_empty() {
                Err(NetlinkError::Timeout)
            } else {
                Ok(())
            }
        }

        fn raw_fd(&self) -> RawFd {
            -1
        }
    }

    /// Sets the seq of every message of a datagram that has seq 0.
    fn patch_seq(d: &mut [u8], seq: u32) {
        let mut at = 0;
        while at + 16 <= d.len() {
            let len = u32::from_ne_bytes(d[at..at + 4].try_into().unwrap()) as usize;
            if d[at + 8..at + 12] == [0; 4] {
                d[at + 8..at + 12].copy_from_slice(&seq.to_ne_bytes());
            }
            at += (len + 3) & !3;
        }
    }

    fn msg(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0x2u16.to_ne_bytes()); // NLM_F_MULTI
        m.extend_from_slice(&0u32.to_ne_bytes()); // seq, patched
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn attr(ty: u16, v: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(v);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn link(ty: u16, index: u32, name: &str) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        p[4..8].copy_from_slice(&index.to_ne_bytes());
        p.extend(attr(3, format!("{name}\0").as_bytes())); // IFLA_IFNAME
        p.extend(attr(1, &[0, 0x16, 0x3e, 0, 0, index as u8])); // IFLA_ADDRESS
        msg(ty, &p)
    }

    fn addr(ty: u16, index: u32, ip: [u8; 4], prefix: u8) -> Vec<u8> {
        let mut p = vec![libc::AF_INET as u8, prefix, 0, 0];
        p.extend_from_slice(&index.to_ne_bytes());
        p.extend(attr(2, &ip)); // IFA_LOCAL
        msg(ty, &p)
    }

    fn done() -> Vec<u8> {
        msg(NLMSG_DONE, &0i32.to_ne_bytes())
    }

    fn error(errno: i32) -> Vec<u8> {
        let mut p = (-errno).to_ne_bytes().to_vec();
        p.extend_from_slice(&[0u8; 16]); // the request's header
        msg(NLMSG_ERROR, &p)
    }

    /// A dump that finds eth0 with 10.0.0.2/24.
    fn good_dump() -> [Vec<Step>; 2] {
        [
            vec![Step::Datagram(
                [link(RTM_NEWLINK, 2, "eth0"), done()].concat(),
            )],
            vec![Step::Datagram(
                [addr(RTM_NEWADDR, 2, [10, 0, 0, 2], 24), done()].concat(),
            )],
        ]
    }

    fn source(replies: impl IntoIterator<Item = Vec<Step>>) -> NetlinkSource<ScriptedSocket> {
        NetlinkSource::with_socket(ScriptedSocket {
            replies: replies.into_iter().collect(),
            ..ScriptedSocket::default()
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_dump_fills_the_state() {
        let mut src = source(good_dump());
        let mut state = NetState::default();
        src.dump(&mut state).unwrap();
        assert_eq!(state.links[&2].name, "eth0");
        assert_eq!(state.addrs_of(2)[0].0, ip("10.0.0.2"));
        assert_eq!(state.addrs_of(2)[0].1.prefix_len, 24);
        let sent: Vec<u16> = src.socket_mut().sent.iter().map(|s| s.0).collect();
        assert_eq!(sent, [RTM_GETLINK, RTM_GETADDR]);
    }

    #[test]
    fn an_overrun_dump_is_done_again_and_a_busy_kernel_too() {
        let [l, a] = good_dump();
        // the first link dump overruns (ENOBUFS), the second is refused with EBUSY
        let mut src = source([
            vec![Step::Error(libc::ENOBUFS)],
            vec![Step::Datagram(error(libc::EBUSY))],
            l,
            a,
        ]);
        let mut state = NetState::default();
        src.dump(&mut state).unwrap();
        assert_eq!(state.addrs_of(2).len(), 1);
        assert_eq!(src.metrics.dumps, 3);
        assert_eq!(src.metrics.overruns, 2);
    }

    #[test]
    fn a_failed_dump_leaves_the_state_as_it_was() {
        let mut src = source(good_dump());
        let mut state = NetState::default();
        src.dump(&mut state).unwrap();
        let before = state.clone();
        // the link part of the next dump arrives, the address part never finishes
        let [l, _] = good_dump();
        src.socket_mut().replies.extend([l, vec![]]);
        assert!(matches!(src.dump(&mut state), Err(NetlinkError::Timeout)));
        assert_eq!(state, before);
        // a kernel error is an error, and changes nothing either
        src.socket_mut()
            .replies
            .push_back(vec![Step::Datagram(error(libc::EPERM))]);
        assert!(matches!(
            src.dump(&mut state),
            Err(NetlinkError::Kernel(KernelErrno(e))) if e == -libc::EPERM
        ));
        assert_eq!(state, before);
    }

    #[test]
    fn events_apply_malformed_ones_are_dropped_and_eintr_is_retried() {
        let mut src = source(good_dump());
        let mut state = NetState::default();
        src.dump(&mut state).unwrap();
        let mut truncated = addr(RTM_NEWADDR, 2, [10, 0, 0, 9], 24);
        truncated.truncate(20); // shorter than ifaddrmsg: the message says 28 bytes
        let short_payload = msg(RTM_NEWADDR, &[libc::AF_INET as u8, 24]);
        let pending = &mut src.socket_mut().pending;
        pending.push_back(Step::Error(libc::EINTR));
        pending.push_back(Step::Datagram(addr(RTM_NEWADDR, 2, [10, 0, 0, 3], 24)));
        pending.push_back(Step::Datagram(truncated));
        pending.push_back(Step::Datagram(short_payload));
        pending.push_back(Step::Datagram(addr(RTM_DELADDR, 2, [10, 0, 0, 2], 24)));
        assert!(src.receive(&mut state).unwrap());
        let addrs: Vec<IpAddr> = state.addrs_of(2).iter().map(|a| a.0).collect();
        assert_eq!(addrs, [ip("10.0.0.3")]);
        assert_eq!(src.metrics.malformed, 2);
        // nothing pending: no change
        assert!(!src.receive(&mut state).unwrap());
    }

    #[test]
    fn an_overrun_between_events_is_a_fresh_dump() {
        let mut src = source(good_dump());
        let mut state = NetState::default();
        src.dump(&mut state).unwrap();
        // events were lost: eth1 appeared and eth0 went, and only the dump says so
        src.socket_mut()
            .pending
            .push_back(Step::Error(libc::ENOBUFS));
        src.socket_mut().replies.extend([
            vec![Step::Datagram(
                [link(RTM_NEWLINK, 3, "eth1"), done()].concat(),
            )],
            vec![Step::Datagram(done())],
        ]);
        assert!(src.receive(&mut state).unwrap());
        assert!(state.links.contains_key(&3));
        assert!(!state.links.contains_key(&2));
        assert!(state.addrs.is_empty());
    }

    #[test]
    fn a_socket_error_is_an_error() {
        let mut src = source(good_dump());
        let mut state = NetState::default();
        src.dump(&mut state).unwrap();
        src.socket_mut().pending.push_back(Step::Error(libc::EIO));
        assert!(matches!(
            src.receive(&mut state),
            Err(NetlinkError::Io(e)) if e.raw_os_error() == Some(libc::EIO)
        ));
    }
}
