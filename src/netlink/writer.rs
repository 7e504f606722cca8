//! The rtnetlink writer: carries out [`NetOp`]s and says what the kernel answered, one result
//! per operation with the kernel's errno. It decides nothing: which operations to run, and
//! what a refusal means, is the agent's (`netconfig::plan`). It also reads what the planner
//! needs from the kernel, the addresses and default routes ([`RouteWriter::kernel_state`]).
//!
//! Its own socket, bound to no multicast group, so that only answers to its requests arrive
//! there and the source's event stream is not disturbed. Every request asks for an ACK; the
//! answer is waited for with a deadline (the kernel answers at once: a change of address or
//! route is done in the send).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use neli::consts::socket::Msg;
use neli::socket::NlSocket;

use super::wire::{
    emit_dump_request, AddrChange, AddrRepr, DefaultRouteRepr, NlMsgs, NLMSG_DONE, NLMSG_ERROR,
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, RTM_DELADDR, RTM_DELROUTE, RTM_GETADDR, RTM_GETROUTE,
    RTM_NEWADDR, RTM_NEWROUTE,
};
use crate::netconfig::plan::{DefaultRoute, NetOp, RTPROT_XENBEACON};

/// How long one answer may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
const RECV_BUF: usize = 32 * 1024;

crate::error_enum::error_enum! {
    /// Why the writer could not get an answer (the kernel's refusals are results, not this).
    #[derive(Debug)]
    pub enum WriterError {
        /// cannot open an rtnetlink socket for changes: {0}
        Open(io::Error),
        /// rtnetlink I/O error: {0}
        Io(io::Error),
        /// the kernel did not answer an rtnetlink request
        Timeout,
        /// the kernel refused an rtnetlink dump: errno {0}
        Dump(i32),
    }
}

/// The outcome of one operation: `Err(errno)` when the kernel refused it.
pub type OpResult = Result<(), i32>;

/// What the kernel has, for the planner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelState {
    /// `(ifindex, address, prefix)`.
    pub addrs: Vec<(u32, IpAddr, u8)>,
    pub routes: Vec<DefaultRoute>,
}

pub struct RouteWriter {
    sock: NlSocket,
    buf: Box<[u8]>,
    req: Vec<u8>,
    seq: u32,
}

impl RouteWriter {
    pub fn open() -> Result<RouteWriter, WriterError> {
        // SAFETY: socket(2) takes no pointers.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(WriterError::Open(io::Error::last_os_error()));
        }
        // SAFETY: a fresh fd nothing else owns; the socket closes it when dropped. An unbound
        // netlink socket is bound by the kernel on its first send.
        let sock = unsafe { NlSocket::from_raw_fd(fd) };
        Ok(RouteWriter {
            sock,
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            req: Vec::with_capacity(128),
            seq: 0,
        })
    }

    /// Runs `ops` in order, each to its answer. A refusal does not stop the rest: the caller's
    /// plan is ordered so that a later operation never depends on an earlier refused one
    /// doing harm (a route whose address was refused is refused in turn).
    pub fn execute(&mut self, ops: &[NetOp]) -> Result<Vec<(NetOp, OpResult)>, WriterError> {
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            self.next_seq();
            let create = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
            match *op {
                NetOp::AddAddr {
                    index,
                    addr,
                    prefix,
                }
                | NetOp::DelAddr {
                    index,
                    addr,
                    prefix,
                } => {
                    let add = matches!(op, NetOp::AddAddr { .. });
                    let change = AddrChange {
                        index,
                        addr,
                        prefix_len: prefix,
                        protocol: RTPROT_XENBEACON,
                    };
                    let (ty, flags) = if add {
                        (RTM_NEWADDR, create)
                    } else {
                        (RTM_DELADDR, NLM_F_ACK)
                    };
                    change.emit(ty, flags, self.seq, &mut self.req);
                }
                NetOp::AddRoute { index, gateway } | NetOp::DelRoute { index, gateway } => {
                    let add = matches!(op, NetOp::AddRoute { .. });
                    let route = DefaultRouteRepr {
                        index,
                        gateway,
                        protocol: RTPROT_XENBEACON,
                    };
                    let (ty, flags) = if add {
                        (RTM_NEWROUTE, create)
                    } else {
                        (RTM_DELROUTE, NLM_F_ACK)
                    };
                    route.emit(ty, flags, self.seq, &mut self.req);
                }
            }
            self.send()?;
            results.push((*op, self.answer()?));
        }
        Ok(results)
    }

    /// Every address and default route the kernel has.
    pub fn kernel_state(&mut self) -> Result<KernelState, WriterError> {
        let mut state = KernelState::default();
        for ty in [RTM_GETADDR, RTM_GETROUTE] {
            self.next_seq();
            emit_dump_request(ty, self.seq, &mut self.req);
            self.send()?;
            let deadline = Instant::now() + ANSWER_TIMEOUT;
            'dump: loop {
                let n = self.recv(deadline)?;
                for msg in NlMsgs::new(&self.buf[..n]) {
                    let Ok(msg) = msg else { break };
                    if msg.seq() != self.seq {
                        continue;
                    }
                    match msg.msg_type() {
                        NLMSG_DONE => break 'dump,
                        NLMSG_ERROR => match msg.error_code() {
                            Some(0) | None => {}
                            Some(e) => return Err(WriterError::Dump(-e)),
                        },
                        RTM_NEWADDR => {
                            if let Ok(Some(a)) = AddrRepr::parse(msg.payload()) {
                                state.addrs.push((a.index, a.addr, a.prefix_len));
                            }
                        }
                        RTM_NEWROUTE => {
                            if let Ok(Some(r)) = DefaultRouteRepr::parse(msg.payload()) {
                                state.routes.push(DefaultRoute {
                                    index: r.index,
                                    gateway: r.gateway,
                                    protocol: r.protocol,
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(state)
    }

    fn next_seq(&mut self) {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.req.clear();
    }

    fn send(&mut self) -> Result<(), WriterError> {
        self.sock
            .send(&self.req, Msg::empty())
            .map(drop)
            .map_err(WriterError::Io)
    }

    /// The ACK or error for the request just sent.
    fn answer(&mut self) -> Result<OpResult, WriterError> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let n = self.recv(deadline)?;
            for msg in NlMsgs::new(&self.buf[..n]).flatten() {
                if msg.seq() == self.seq && msg.msg_type() == NLMSG_ERROR {
                    return Ok(match msg.error_code() {
                        Some(0) | None => Ok(()),
                        Some(e) => Err(-e),
                    });
                }
            }
        }
    }

    /// One datagram, waiting for it until `deadline`.
    fn recv(&mut self, deadline: Instant) -> Result<usize, WriterError> {
        loop {
            match self.sock.recv(&mut self.buf[..], Msg::empty()) {
                Ok((n, _)) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(WriterError::Timeout);
                    }
                    let mut pfd = [libc::pollfd {
                        fd: self.sock.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    crate::sys::poll(&mut pfd, Some(left)).map_err(WriterError::Io)?;
                }
                Err(e) => return Err(WriterError::Io(e)),
            }
        }
    }
}
