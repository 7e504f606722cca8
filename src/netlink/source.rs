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

/// A netlink failure.
#[derive(Debug)]
pub enum NetlinkError {
    /// cannot open the rtnetlink socket
    Open(io::Error),
    /// reading or writing the rtnetlink socket failed
    Io(io::Error),
    /// the kernel answered a dump with an error
    Kernel(i32),
    /// a dump did not finish in time
    Timeout,
    /// dumps kept overrunning
    Overrun,
    /// a stop signal arrived during a dump
    Interrupted,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetlinkError::Open(e) => write!(f, "cannot open rtnetlink socket: {e}"),
            NetlinkError::Io(e) => write!(f, "rtnetlink I/O error: {e}"),
            NetlinkError::Kernel(e) => write!(f, "rtnetlink dump failed: errno {}", -e),
            NetlinkError::Timeout => f.write_str("rtnetlink dump did not finish in time"),
            NetlinkError::Overrun => f.write_str("rtnetlink dumps kept overrunning"),
            NetlinkError::Interrupted => f.write_str("rtnetlink dump interrupted by a signal"),
        }
    }
}

impl std::error::Error for NetlinkError {}

/// Counters for logs, tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetlinkMetrics {
    pub datagrams: u64,
    pub messages: u64,
    pub overruns: u64,
    pub dumps: u64,
    pub malformed: u64,
}

pub struct NetlinkSource {
    sock: NlSocket,
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
        Ok(NetlinkSource {
            sock,
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            req: Vec::with_capacity(32),
            seq: 0,
            interrupt: None,
            metrics: NetlinkMetrics::default(),
        })
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
            match self.sock.recv(&mut self.buf[..], Msg::empty()) {
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
        self.sock
            .send(&self.req, Msg::empty())
            .map_err(NetlinkError::Io)?;
        // The kernel builds the first part of a dump in the send itself, so the clock is only
        // read when the dump has to be waited for.
        let mut deadline = None;
        loop {
            match self.drain(state, Some(self.seq))? {
                Drained::Empty(true) => return Ok(true),
                Drained::Overrun => return Ok(false),
                Drained::Empty(false) => {
                    let at = *deadline.get_or_insert_with(|| Instant::now() + DUMP_TIMEOUT);
                    wait_readable(self.sock.as_raw_fd(), self.interrupt, at)?
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
            let n = match self.sock.recv(&mut self.buf[..], Msg::empty()) {
                Ok((n, _)) => n,
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
                        Some(e) => return Err(NetlinkError::Kernel(e)),
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

impl AsRawFd for NetlinkSource {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
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
