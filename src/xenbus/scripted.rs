//! A [`Transport`] that plays a script instead of talking to xenstored: the bytes that arrive
//! and how (split anywhere, one byte per read), the errors the system calls return (EAGAIN,
//! EINTR, ECONNRESET, EPIPE), short writes and interrupted waits. Everything written is kept
//! for the test to check. Like smoltcp's fault injector, it needs no fd, thread or root.
//!
//! A wait for reading ends at once: with [`Wake::Ready`] while the script has a read step
//! next, with [`Wake::TimedOut`] when the script is used up (xenstored has gone silent).

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::transport::{Direction, Transport, Wake};

/// What the reading side does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Bytes that arrive; one read takes as many as fit and leaves the rest for the next.
    Bytes(Vec<u8>),
    /// The next read fails with this errno.
    ReadError(i32),
    /// The peer closed: every read from now on returns 0.
    Eof,
    /// The next wait fails with this errno (EINTR: a signal arrived).
    WaitError(i32),
    /// The next wait ends because the stop signal arrived.
    Interrupt,
}

/// What the writing side does with the next write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    /// Takes at most this many bytes.
    Accept(usize),
    /// Fails with this errno.
    Error(i32),
}

/// Bytes written in all after which every write fails with EFBIG: a connection that keeps
/// writing the same request fails its test instead of hanging it.
const WRITTEN_MAX: usize = 1 << 20;

/// A transport that plays [`Step`]s for reads and [`WriteStep`]s for writes; writes with no
/// step left take everything.
#[derive(Debug, Default)]
pub struct ScriptedTransport {
    steps: VecDeque<Step>,
    write_steps: VecDeque<WriteStep>,
    written: Vec<u8>,
    reads: usize,
    waits: usize,
}

impl ScriptedTransport {
    pub fn new() -> ScriptedTransport {
        ScriptedTransport::default()
    }

    /// Appends a read-side step.
    pub fn then(&mut self, step: Step) -> &mut ScriptedTransport {
        match step {
            Step::Bytes(b) if b.is_empty() => {}
            step => self.steps.push_back(step),
        }
        self
    }

    /// Appends `bytes` as arriving in pieces of `size` bytes, one read each.
    pub fn then_in_pieces(&mut self, bytes: &[u8], size: usize) -> &mut ScriptedTransport {
        for piece in bytes.chunks(size.max(1)) {
            self.then(Step::Bytes(piece.to_vec()));
        }
        self
    }

    /// Appends a write-side step.
    pub fn then_write(&mut self, step: WriteStep) -> &mut ScriptedTransport {
        self.write_steps.push_back(step);
        self
    }

    /// Everything written so far.
    pub fn written(&self) -> &[u8] {
        &self.written
    }

    /// Read steps not played yet.
    pub fn steps_left(&self) -> usize {
        self.steps.len()
    }

    /// Read calls so far (each successful or failed `read`).
    pub fn reads(&self) -> usize {
        self.reads
    }

    /// Wait calls so far.
    pub fn waits(&self) -> usize {
        self.waits
    }
}

impl Transport for ScriptedTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        if buf.is_empty() {
            // What read(2) does with a count of 0, whatever the fd holds.
            return Ok(0);
        }
        match self.steps.front_mut() {
            Some(Step::Bytes(bytes)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                if bytes.is_empty() {
                    self.steps.pop_front();
                }
                Ok(n)
            }
            Some(&mut Step::ReadError(errno)) => {
                self.steps.pop_front();
                Err(io::Error::from_raw_os_error(errno))
            }
            Some(Step::Eof) => Ok(0),
            Some(Step::WaitError(_) | Step::Interrupt) | None => {
                Err(io::Error::from(io::ErrorKind::WouldBlock))
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written.len() > WRITTEN_MAX {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        let n = match self.write_steps.pop_front() {
            None => buf.len(),
            Some(WriteStep::Accept(n)) => n.min(buf.len()),
            Some(WriteStep::Error(errno)) => return Err(io::Error::from_raw_os_error(errno)),
        };
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn wait(&mut self, dir: Direction, _timeout: Duration) -> io::Result<Wake> {
        self.waits += 1;
        if dir == Direction::Writable {
            return Ok(Wake::Ready);
        }
        match self.steps.front() {
            Some(&Step::WaitError(errno)) => {
                self.steps.pop_front();
                Err(io::Error::from_raw_os_error(errno))
            }
            Some(Step::Interrupt) => {
                self.steps.pop_front();
                Ok(Wake::Interrupted)
            }
            Some(_) => Ok(Wake::Ready),
            None => Ok(Wake::TimedOut),
        }
    }

    fn raw_fd(&self) -> RawFd {
        -1
    }
}
