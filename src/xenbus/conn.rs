//! One connection to XenStore: the xenbus device of a guest or a xenstored unix socket.
//!
//! Requests are synchronous: write one message, then read until the reply with our `req_id`
//! arrives. Watch events that arrive meanwhile are queued, and replies we did not ask for
//! (left over from a request that timed out) are dropped. The fd stays non-blocking so that
//! the event loop can `poll(2)` it for watch events between requests; [`XenbusConn::pending_event`]
//! must be drained before polling, because a request may already have read events into the
//! buffer.
//!
//! Relative paths are sent as they are: xenstored resolves them against the home of the domain
//! the connection belongs to (`/local/domain/<domid>`), which is what keeps them right after a
//! restore or migration gives the guest a new domid.
//!
//! Quirks of the Linux device (`drivers/xen/xenbus/xenbus_dev_frontend.c`) handled here: it
//! answers WATCH/UNWATCH itself with `req_id` 0, never reports `POLLOUT`, and buffers at most
//! 4096 bytes of one message including its header.
//!
//! The connection owns the protocol state (request ids, the receive buffer, the event queue,
//! deadlines) and reaches the bytes through a [`Transport`]: [`FdTransport`] for the device
//! or socket, a scripted one in the unit tests.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use self::endpoint::open_device;
pub use self::endpoint::{Endpoint, DEVICE_PATHS};
use super::transport::{Direction, FdTransport, Transport, Wake};
use super::wire::{
    self, message_len, MsgType, Packet, Reply, Request, WireError, XsError, HEADER_LEN, PAYLOAD_MAX,
};

crate::error_enum::error_enum! {
    /// A failed xenstore request or connection.
    #[derive(Debug)]
    pub enum Error {
        /// xenstored refused: {0}
        Xs(XsError),
        /// cannot open xenstore: {0}
        Open(io::Error),
        /// xenstore connection I/O error: {0}
        Io(io::Error),
        /// xenstore closed the connection
        Closed,
        /// malformed message from xenstore: {0}
        Wire(WireError),
        /// no reply from xenstore in time
        Timeout,
        /// request larger than one xenbus message
        TooLarge,
        /// path not allowed by xenstore
        InvalidPath,
        /// interrupted by a stop signal
        Interrupted,
        /// {0} is neither the xenbus device (a misc character device such as /dev/xen/xenbus, or /proc/xen/xenbus on xenfs) nor a xenstored socket
        NotXenstore(NotXenstore),
    }
}

/// A path that was to be xenstore and is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotXenstore(pub PathBuf);

/// What [`XenbusConn::read_and_directory`] got of one node: its value and its child names,
/// each as xenstored answered (an `Error::Xs` is an answer).
#[cfg(feature = "dom0")]
pub type NodeAndChildren = (Result<String, Error>, Result<Vec<String>, Error>);

impl fmt::Display for NotXenstore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

impl Error {
    /// True when the connection can no longer be trusted and must be reopened.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Open(_)
            | Error::Io(_)
            | Error::Closed
            | Error::Timeout
            | Error::Interrupted
            | Error::NotXenstore(_) => true,
            Error::Wire(w) => matches!(w, WireError::PayloadTooLong | WireError::Truncated),
            Error::Xs(_) | Error::TooLarge | Error::InvalidPath => false,
        }
    }

    /// The xenstored error name, if this is one.
    pub fn xs(&self) -> Option<XsError> {
        match self {
            Error::Xs(e) => Some(*e),
            _ => None,
        }
    }
}

/// A watch event: `path` changed, for the watch registered with `token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

/// How long a request waits for its reply before the connection is considered dead.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// Most watch events the agent queues at once (see [`XenbusConn::limit_events`]).
pub const EVENT_QUEUE_MAX: usize = 32;

/// Room for two whole messages, so a reply and a following event never need a resize.
const INBUF_LEN: usize = 2 * (HEADER_LEN + PAYLOAD_MAX);

/// A connection to XenStore, over the device or socket unless a test gives it another
/// [`Transport`].
pub struct XenbusConn<T = FdTransport> {
    transport: T,
    endpoint: Endpoint,
    next_req_id: u32,
    tx_id: u32,
    inbuf: Box<[u8]>,
    filled: usize,
    /// Bytes at the start of `inbuf` holding the last returned reply, dropped on the next read.
    consumed: usize,
    outbuf: Vec<u8>,
    events: VecDeque<WatchEvent>,
    /// Events dropped because the queue was full, since the last [`XenbusConn::take_overflow`].
    events_dropped: u64,
    /// `Some(n)`: events are coalesced by token and at most `n` are queued.
    event_limit: Option<usize>,
    reply_timeout: Duration,
    /// No request waits past this (a dom0 command's `--timeout`).
    deadline: Option<Instant>,
    /// Requests sent and stray replies dropped, for metrics and tests.
    pub requests_sent: u64,
    pub stray_replies: u64,
}

impl XenbusConn<FdTransport> {
    /// Opens `endpoint` non-blocking. A device must be the xenbus device
    /// ([`Error::NotXenstore`] otherwise).
    pub fn open(endpoint: &Endpoint) -> Result<XenbusConn, Error> {
        let file = match endpoint {
            Endpoint::Device(p) => open_device(p)?,
            Endpoint::Socket(p) => {
                let s = UnixStream::connect(p).map_err(Error::Open)?;
                s.set_nonblocking(true).map_err(Error::Open)?;
                File::from(OwnedFd::from(s))
            }
        };
        Ok(XenbusConn::with_transport(FdTransport::new(file), endpoint))
    }

    /// Like [`XenbusConn::open`], but never blocks: a xenstored socket whose listen backlog is
    /// full (a hung xenstored) fails at once with `Error::Open` of kind `WouldBlock` instead of
    /// waiting in connect(2); the caller retries until its own deadline.
    pub fn open_nonblocking(endpoint: &Endpoint) -> Result<XenbusConn, Error> {
        match endpoint {
            Endpoint::Socket(p) => {
                let s = crate::sys::connect_unix_nonblocking(p).map_err(Error::Open)?;
                Ok(XenbusConn::with_transport(
                    FdTransport::new(File::from(OwnedFd::from(s))),
                    endpoint,
                ))
            }
            Endpoint::Device(_) => XenbusConn::open(endpoint),
        }
    }

    /// The agent's open: never blocks (a full backlog fails at once and is said so), and
    /// every wait of the connection ends with [`Error::Interrupted`] when `interrupt` (the
    /// stop signalfd) becomes readable.
    pub fn open_interruptible(
        endpoint: &Endpoint,
        interrupt: Option<RawFd>,
    ) -> Result<XenbusConn, Error> {
        let mut conn = XenbusConn::open_nonblocking(endpoint).map_err(|e| match e {
            Error::Open(io) if io.kind() == io::ErrorKind::WouldBlock => {
                Error::Open(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "xenstored is not accepting connections (listen backlog full)",
                ))
            }
            e => e,
        })?;
        conn.set_interrupt(interrupt);
        Ok(conn)
    }

    /// Makes every wait for xenstore end with [`Error::Interrupted`] once `fd` is readable.
    pub fn set_interrupt(&mut self, fd: Option<RawFd>) {
        self.transport.set_interrupt(fd);
    }
}

impl<T: Transport> XenbusConn<T> {
    /// A connection over `transport`; `endpoint` says which protocol limits and quirks apply
    /// (the device's message size and its WATCH replies with `req_id` 0).
    pub fn with_transport(transport: T, endpoint: &Endpoint) -> XenbusConn<T> {
        XenbusConn {
            transport,
            endpoint: endpoint.clone(),
            next_req_id: 0,
            tx_id: 0,
            inbuf: vec![0u8; INBUF_LEN].into_boxed_slice(),
            filled: 0,
            consumed: 0,
            outbuf: Vec::with_capacity(HEADER_LEN + PAYLOAD_MAX),
            events: VecDeque::new(),
            events_dropped: 0,
            event_limit: None,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            deadline: None,
            requests_sent: 0,
            stray_replies: 0,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn set_reply_timeout(&mut self, t: Duration) {
        self.reply_timeout = t;
    }

    /// From now on no request waits past `at`: it fails there with `Error::Timeout`, however
    /// xenstored behaves (silent, or sending events but never the reply).
    pub fn set_deadline(&mut self, at: Option<Instant>) {
        self.deadline = at;
    }

    /// Sends `req` and waits for its reply. Errors from xenstored come back as `Error::Xs`.
    pub fn request(&mut self, req: &Request<'_>) -> Result<Reply<'_>, Error> {
        self.outbuf.clear();
        let id = self.queue(req)?;
        let mut deadline = Deadline::new(self.reply_timeout, self.deadline);
        self.send_outbuf(&mut deadline)?;
        self.requests_sent += 1;
        self.reply(id, req.msg_type(), &mut deadline)
    }

    /// Checks `req` and appends it to the output buffer under a new request id.
    fn queue(&mut self, req: &Request<'_>) -> Result<u32, Error> {
        if let Some(p) = req.path() {
            if !wire::is_valid_path(p) {
                return Err(Error::InvalidPath);
            }
        }
        if req.payload_len() > self.endpoint.payload_max() {
            return Err(Error::TooLarge);
        }
        self.next_req_id = self.next_req_id.wrapping_add(1).max(1);
        let id = self.next_req_id;
        req.emit(id, self.tx_id, &mut self.outbuf);
        Ok(id)
    }

    /// Waits for the reply to request `id` (of type `ty`), queueing watch events and dropping
    /// stray replies on the way.
    fn reply(&mut self, id: u32, ty: MsgType, deadline: &mut Deadline) -> Result<Reply<'_>, Error> {
        // The device answers WATCH/UNWATCH itself and may leave req_id at 0.
        let zero_ok = matches!(ty, MsgType::Watch | MsgType::Unwatch)
            && matches!(self.endpoint, Endpoint::Device(_));
        let len = loop {
            let len = self.recv_message(deadline)?;
            self.consumed = len;
            let packet = Packet::new_unchecked(&self.inbuf[..len]);
            let ty = packet.msg_type_raw();
            if ty == MsgType::WatchEvent.to_u32() {
                self.queue_event(len);
                continue;
            }
            let rid = packet.req_id();
            if rid == id || (rid == 0 && zero_ok) {
                break len;
            }
            self.stray_replies += 1;
            log::debug!("dropping stray xenstore reply (req_id {rid}, waiting for {id})");
        };
        let packet = Packet::new_unchecked(&self.inbuf[..len]);
        let reply_ty = packet.msg_type().map_err(Error::Wire)?;
        match Reply::parse(reply_ty, Some(ty), &self.inbuf[HEADER_LEN..len]) {
            Ok(Reply::Error(e)) => Err(Error::Xs(e)),
            Ok(reply) => Ok(reply),
            Err(e) => Err(Error::Wire(e)),
        }
    }

    /// READ and DIRECTORY of `dir/<name>` for each of `names` (of `dir` itself when `names`
    /// is `None`), what the dom0 reader asks of every node, in order. On a xenstored socket all of them go in one write(2) before any reply is awaited
    /// (xenstored answers a connection's requests in order), which cuts the system calls and
    /// round trips of a listing to a few per directory; the caller keeps a batch small enough
    /// for the socket's send buffer. The xenbus device takes one message per write(2) and
    /// gets them one after the other.
    #[cfg(feature = "dom0")]
    pub fn read_and_directory(
        &mut self,
        dir: &str,
        names: Option<&[String]>,
    ) -> Result<Vec<NodeAndChildren>, Error> {
        let value = |r: Result<Reply<'_>, Error>| match r? {
            Reply::Value(v) => Ok(String::from_utf8_lossy(v).into_owned()),
            _ => Err(Error::Wire(WireError::UnexpectedType)),
        };
        let children = |r: Result<Reply<'_>, Error>| {
            r.map(|r| r.entries().map(str::to_owned).collect::<Vec<_>>())
        };
        // xenstored's answer is data; any other failure (the connection, the deadline) ends
        // the whole batch.
        fn answer<T>(r: Result<T, Error>) -> Result<Result<T, Error>, Error> {
            match r {
                Err(e) if !matches!(e, Error::Xs(_) | Error::InvalidPath | Error::TooLarge) => {
                    Err(e)
                }
                r => Ok(r),
            }
        }
        let n = names.map_or(1, <[String]>::len);
        let mut path = String::with_capacity(dir.len() + 64);
        path.push_str(dir);
        // The path of the i-th node, in `path`.
        let at = |path: &mut String, i: usize| {
            if let Some(names) = names {
                path.truncate(dir.len());
                path.push('/');
                path.push_str(&names[i]);
            }
        };
        let mut out = Vec::with_capacity(n);
        if matches!(self.endpoint, Endpoint::Device(_)) {
            for i in 0..n {
                at(&mut path, i);
                let p = path.as_str();
                let v = answer(value(self.request(&Request::Read(p))))?;
                let d = answer(children(self.request(&Request::Directory(p))))?;
                out.push((v, d));
            }
            return Ok(out);
        }
        self.outbuf.clear();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            at(&mut path, i);
            let p = path.as_str();
            ids.push(match self.queue(&Request::Read(p)) {
                Ok(read_id) => Ok((read_id, self.queue(&Request::Directory(p))?)),
                Err(e) => Err(e),
            });
        }
        let mut deadline = Deadline::new(self.reply_timeout, self.deadline);
        self.send_outbuf(&mut deadline)?;
        self.requests_sent += 2 * ids.iter().filter(|id| id.is_ok()).count() as u64;
        for id in ids {
            out.push(match id {
                Ok((read_id, dir_id)) => {
                    let v = answer(value(self.reply(read_id, MsgType::Read, &mut deadline)))?;
                    let d = answer(children(self.reply(
                        dir_id,
                        MsgType::Directory,
                        &mut deadline,
                    )))?;
                    (v, d)
                }
                // Not sent: what xenstored would have refused.
                Err(e) => (Err(e), Err(Error::InvalidPath)),
            });
        }
        Ok(out)
    }

    fn send_outbuf(&mut self, deadline: &mut Deadline) -> Result<(), Error> {
        let mut sent = 0;
        while sent < self.outbuf.len() {
            match self.transport.write(&self.outbuf[sent..]) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Only sockets get here: the device accepts every write at once.
                    self.wait(Direction::Writable, deadline)?;
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Err(Error::Closed),
                Err(e) => return Err(Error::Io(e)),
            }
        }
        Ok(())
    }

    /// Drops the last returned message and compacts the buffer.
    fn discard_consumed(&mut self) {
        if self.consumed > 0 {
            self.inbuf.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
    }

    /// Length of the complete message at the start of the buffer, if there is one.
    fn buffered_message(&mut self) -> Result<Option<usize>, Error> {
        self.discard_consumed();
        match message_len(&self.inbuf[..self.filled]) {
            Ok(Some(n)) if n <= self.filled => Ok(Some(n)),
            Ok(_) => Ok(None),
            Err(e) => Err(Error::Wire(e)),
        }
    }

    /// Reads what the transport has; `Ok(false)` if it had nothing.
    fn read_available(&mut self) -> Result<bool, Error> {
        debug_assert!(self.filled < self.inbuf.len(), "no room to read into");
        loop {
            match self.transport.read(&mut self.inbuf[self.filled..]) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => {
                    self.filled += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Err(Error::Closed),
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// The next whole message. xenstored (in another domain, or another process) has rarely
    /// answered by the time the request is written, so this polls before it reads: a read
    /// that would only say EAGAIN is a wasted system call, and in a PV guest each one is a
    /// trip through Xen.
    fn recv_message(&mut self, deadline: &mut Deadline) -> Result<usize, Error> {
        loop {
            if let Some(n) = self.buffered_message()? {
                return Ok(n);
            }
            self.wait(Direction::Readable, deadline)?;
            self.read_available()?;
        }
    }

    /// Waits until the transport is ready for `dir`, within the deadline.
    fn wait(&mut self, dir: Direction, deadline: &mut Deadline) -> Result<(), Error> {
        loop {
            let left = deadline.left();
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            match self.transport.wait(dir, left) {
                Ok(Wake::Ready) => return Ok(()),
                Ok(Wake::TimedOut) => return Err(Error::Timeout),
                Ok(Wake::Interrupted) => return Err(Error::Interrupted),
                // A signal: wait again for what is left.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Queues an event; with a limit ([`XenbusConn::limit_events`]), not when one with its
    /// token waits already (coalesced) or the queue is full (counted as dropped).
    fn queue_event(&mut self, len: usize) {
        let limit = self.event_limit;
        match Reply::parse(MsgType::WatchEvent, None, &self.inbuf[HEADER_LEN..len]) {
            Ok(Reply::WatchEvent { token, .. })
                if limit.is_some() && self.events.iter().any(|e| e.token == token) => {}
            Ok(Reply::WatchEvent { .. }) if limit.is_some_and(|n| self.events.len() >= n) => {
                self.events_dropped += 1;
            }
            Ok(Reply::WatchEvent { path, token }) => self.events.push_back(WatchEvent {
                path: path.to_owned(),
                token: token.to_owned(),
            }),
            _ => log::debug!("dropping malformed watch event"),
        }
    }

    /// Bounds the event queue for a client that acts on which watch fired, not on how often
    /// or where: events are coalesced by token and at most `max` are queued, so a store that
    /// floods events while it holds a reply costs no memory. What does not fit is dropped
    /// and counted for [`XenbusConn::take_overflow`].
    pub fn limit_events(&mut self, max: usize) {
        self.event_limit = Some(max);
    }

    /// How many watch events did not fit in the queue since the last call. When it is not
    /// zero, any watch may have fired: the caller re-checks what all its watches cover.
    pub fn take_overflow(&mut self) -> u64 {
        std::mem::take(&mut self.events_dropped)
    }

    /// Reads everything the fd has now and queues the watch events in it. Call when `poll`
    /// reports the fd readable. Fails with `Error::Closed` when xenstored went away.
    pub fn receive(&mut self) -> Result<(), Error> {
        // What a request left in the buffer goes first: a largest reply and a largest event
        // fill it, and a read into no room returns 0, which reads as a close.
        self.queue_buffered()?;
        while self.read_available()? {
            self.queue_buffered()?;
        }
        Ok(())
    }

    fn queue_buffered(&mut self) -> Result<(), Error> {
        while let Some(len) = self.buffered_message()? {
            self.consumed = len;
            if Packet::new_unchecked(&self.inbuf[..len]).msg_type_raw()
                == MsgType::WatchEvent.to_u32()
            {
                self.queue_event(len);
            } else {
                self.stray_replies += 1;
                log::debug!("dropping unsolicited xenstore message");
            }
        }
        Ok(())
    }

    /// The next queued watch event, including events already buffered by a request.
    pub fn pending_event(&mut self) -> Option<WatchEvent> {
        if self.has_pending_event() {
            self.events.pop_front()
        } else {
            None
        }
    }

    /// True when a watch event waits, read already (by a request) but not yet taken. The fd
    /// does not report those as readable, so check this before sleeping in `poll`.
    pub fn has_pending_event(&mut self) -> bool {
        if self.events.is_empty() {
            // A malformed buffered message surfaces on the next read; nothing to do here.
            let _ = self.queue_buffered();
        }
        !self.events.is_empty()
    }
}

impl<T: Transport> AsRawFd for XenbusConn<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.transport.raw_fd()
    }
}

/// The reply timeout of one request. The clock is only read when a wait is cut short (a
/// signal, a watch event before the reply): the first wait polls for the whole timeout, so a
/// request costs no clock read, which in a PV guest without a vDSO clock is a system call.
/// A request that waits more than once gets up to twice the timeout in all. A `hard` deadline
/// (set with [`XenbusConn::set_deadline`]) bounds every wait, at the cost of a clock read each.
struct Deadline {
    timeout: Duration,
    at: Option<Instant>,
    waited: bool,
    hard: Option<Instant>,
}

impl Deadline {
    fn new(timeout: Duration, hard: Option<Instant>) -> Deadline {
        Deadline {
            timeout,
            at: None,
            waited: false,
            hard,
        }
    }

    /// How long the next wait may take.
    fn left(&mut self) -> Duration {
        let soft = if !self.waited {
            self.waited = true;
            self.timeout
        } else {
            let at = *self.at.get_or_insert_with(|| Instant::now() + self.timeout);
            at.saturating_duration_since(Instant::now())
        };
        match self.hard {
            Some(h) => soft.min(h.saturating_duration_since(Instant::now())),
            None => soft,
        }
    }
}

mod endpoint;
mod requests;
#[cfg(test)]
mod tests;
