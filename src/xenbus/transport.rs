//! What a [`XenbusConn`](super::conn::XenbusConn) reads from and writes to: the seam between
//! the protocol state and the file descriptor, as smoltcp's `phy::Device` is for its stack.
//!
//! [`FdTransport`] is the real one (the xenbus device or a xenstored socket, non-blocking);
//! tests put a scripted one in its place, so that EAGAIN, EINTR, short reads and writes and
//! malformed streams reach the connection without a socket, a thread or root.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use crate::sys;

/// Which way a wait waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Readable,
    Writable,
}

/// What ended a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The transport is ready (or failed: the next read or write says how).
    Ready,
    /// The timeout passed first.
    TimedOut,
    /// The interrupt (the agent's stop signal) arrived first.
    Interrupted,
}

/// A non-blocking byte stream to xenstored.
pub trait Transport {
    /// Reads what is there: `Ok(0)` when the peer closed, an error of kind `WouldBlock`
    /// when nothing is there yet.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes what fits now: an error of kind `WouldBlock` when nothing does.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;

    /// Waits at most `timeout` until `dir` would not block. An error of kind `Interrupted`
    /// (a signal) means the caller may wait again.
    fn wait(&mut self, dir: Direction, timeout: Duration) -> io::Result<Wake>;

    /// The fd an event loop polls for watch events between requests; -1 if there is none.
    fn raw_fd(&self) -> RawFd;
}

/// The xenbus device or a xenstored unix socket, opened non-blocking.
#[derive(Debug)]
pub struct FdTransport {
    file: File,
    /// An fd (the event loop's stop signalfd) whose readability ends every wait at once.
    interrupt: Option<RawFd>,
}

impl FdTransport {
    /// `file` must be non-blocking.
    pub fn new(file: File) -> FdTransport {
        FdTransport {
            file,
            interrupt: None,
        }
    }

    /// Makes every wait end with [`Wake::Interrupted`] once `fd` is readable.
    pub fn set_interrupt(&mut self, fd: Option<RawFd>) {
        self.interrupt = fd;
    }
}

impl Transport for FdTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn wait(&mut self, dir: Direction, timeout: Duration) -> io::Result<Wake> {
        let events = match dir {
            Direction::Readable => libc::POLLIN,
            Direction::Writable => libc::POLLOUT,
        };
        let mut pfd = [
            libc::pollfd {
                fd: self.file.as_raw_fd(),
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: self.interrupt.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // fd -1 (no interrupt) is ignored by poll(2); the timeout is rounded up, so a wait never
        // ends before its deadline. xenbeacon installs no signal handler (the agent reads its
        // signals from a signalfd), so no EINTR ends a wait early.
        if sys::poll(&mut pfd, Some(timeout))? == 0 {
            return Ok(Wake::TimedOut);
        }
        if pfd[1].revents != 0 {
            return Ok(Wake::Interrupted);
        }
        // POLLHUP/POLLERR: the next read or write reports what happened.
        Ok(Wake::Ready)
    }

    fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
