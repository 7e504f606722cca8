//! Thin safe wrappers over the Linux fds the event loop polls: signalfd, timerfd, poll(2).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

mod sealed {
    /// Types for which every bit pattern of their size is a valid value (plain integers and C
    /// structs made only of them), so the kernel may fill one with any bytes. Sealed: a type
    /// with invalid bit patterns (`bool`, an enum, a reference) cannot be added from outside.
    pub trait PlainData: Copy {}
    impl PlainData for u64 {}
    impl PlainData for libc::signalfd_siginfo {}
}
use sealed::PlainData;

/// Reads exactly one fixed-size record from a non-blocking fd; `Ok(None)` if none is ready.
fn read_record<T: PlainData>(fd: RawFd, rec: &mut T) -> io::Result<Option<()>> {
    let size = std::mem::size_of::<T>();
    loop {
        // SAFETY: `rec` is a valid, writable T of `size` bytes, and T is `PlainData`: any
        // bytes the kernel writes there (a whole record, or part of one on a short read) make
        // a valid T.
        let n = unsafe { libc::read(fd, rec as *mut T as *mut libc::c_void, size) };
        if n == size as isize {
            return Ok(Some(()));
        }
        if n >= 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// A signalfd for a set of signals, which are blocked for normal delivery while it lives.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    pub fn new(signals: &[libc::c_int]) -> io::Result<SignalFd> {
        // SAFETY: `set` is a local sigset_t, plain data: zeroed is a valid value, and
        // sigemptyset/sigaddset write it through a pointer valid for the whole call.
        // sigprocmask and signalfd only read it (no old mask is asked for), and the fd that
        // signalfd returns is new and owned by nothing else.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            cvt(libc::sigprocmask(
                libc::SIG_BLOCK,
                &set,
                std::ptr::null_mut(),
            ))?;
            let fd = cvt(libc::signalfd(
                -1,
                &set,
                libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
            ))?;
            Ok(SignalFd {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The next pending signal number, if any.
    pub fn read(&self) -> io::Result<Option<libc::c_int>> {
        // SAFETY: signalfd_siginfo is plain data.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        Ok(read_record(self.fd.as_raw_fd(), &mut info)?.map(|()| info.ssi_signo as libc::c_int))
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A timerfd on `CLOCK_MONOTONIC`.
pub struct TimerFd {
    fd: OwnedFd,
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

impl TimerFd {
    /// A timer on `CLOCK_MONOTONIC`.
    pub fn new() -> io::Result<TimerFd> {
        TimerFd::on_clock(libc::CLOCK_MONOTONIC)
    }

    /// A timer on `CLOCK_REALTIME` that reports wall-clock jumps: armed with
    /// [`TimerFd::arm_clock_jump`], its reads fail with `ECANCELED` whenever the clock is set
    /// (settimeofday, NTP steps, and the jump a Xen guest sees after resume or migration).
    pub fn clock_jump_detector() -> io::Result<TimerFd> {
        let t = TimerFd::on_clock(libc::CLOCK_REALTIME)?;
        t.arm_clock_jump()?;
        Ok(t)
    }

    /// (Re-)arms a clock-jump detector: an absolute expiry far in the future.
    pub fn arm_clock_jump(&self) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: timespec(Duration::ZERO),
            it_value: libc::timespec {
                tv_sec: i32::MAX as _,
                tv_nsec: 0,
            },
        };
        let flags = libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET;
        // SAFETY: valid itimerspec; old value not requested.
        cvt(unsafe {
            libc::timerfd_settime(self.fd.as_raw_fd(), flags, &spec, std::ptr::null_mut())
        })?;
        Ok(())
    }

    fn on_clock(clock: libc::clockid_t) -> io::Result<TimerFd> {
        // SAFETY: plain syscall; the fd is owned from here on.
        let fd =
            cvt(unsafe { libc::timerfd_create(clock, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) })?;
        Ok(TimerFd {
            // SAFETY: fd was just created and is not owned elsewhere.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Fires after `first`, then every `interval` (zero: once).
    pub fn arm(&self, first: Duration, interval: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: timespec(interval),
            it_value: timespec(first.max(Duration::from_nanos(1))),
        };
        // SAFETY: valid itimerspec; old value not requested.
        cvt(unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) })?;
        Ok(())
    }

    /// Expirations since the last read (0 if none).
    pub fn read(&self) -> io::Result<u64> {
        let mut n: u64 = 0;
        Ok(read_record(self.fd.as_raw_fd(), &mut n)?.map_or(0, |()| n))
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// poll(2) over `fds` (fd -1 entries are ignored by the kernel). `None` waits forever.
/// Returns the number of fds with events; EINTR counts as zero.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    // Rounded up to whole milliseconds: a poll never returns before its timeout, so a caller
    // waiting for a deadline does not spin through its last millisecond.
    let ms = timeout.map_or(-1, |t| {
        let ms = t
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(t.subsec_nanos().div_ceil(1_000_000)));
        i32::try_from(ms).unwrap_or(i32::MAX)
    });
    // SAFETY: `fds` is a valid slice of pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_jump_detector_arms_and_stays_quiet() {
        let t = TimerFd::clock_jump_detector().unwrap();
        assert_eq!(t.read().unwrap(), 0);
    }

    #[test]
    fn timer_fires() {
        let t = TimerFd::new().unwrap();
        assert_eq!(t.read().unwrap(), 0);
        t.arm(Duration::from_millis(5), Duration::ZERO).unwrap();
        let mut p = [libc::pollfd {
            fd: t.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        assert_eq!(poll(&mut p, Some(Duration::from_secs(5))).unwrap(), 1);
        assert_eq!(t.read().unwrap(), 1);
    }

    #[test]
    fn poll_never_returns_before_its_timeout() {
        let idle = TimerFd::new().unwrap();
        let mut p = [libc::pollfd {
            fd: idle.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let timeout = Duration::from_micros(300);
        let start = std::time::Instant::now();
        assert_eq!(poll(&mut p, Some(timeout)).unwrap(), 0);
        assert!(start.elapsed() >= timeout);
    }
}

/// Opens `path` close-on-exec in one system call. musl's `open` follows every `O_CLOEXEC`
/// open with an `fcntl(F_SETFD)` for kernels older than 2.6.23; in a PV guest each system
/// call is a trip through Xen, and the agent opens a few dozen files before its first write.
pub fn open(path: &std::path::Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    use std::ffi::{CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte");
    let mut stack = [0u8; 256];
    let heap;
    let cpath: &CStr = if bytes.len() < stack.len() {
        stack[..bytes.len()].copy_from_slice(bytes);
        CStr::from_bytes_with_nul(&stack[..=bytes.len()]).map_err(|_| invalid())?
    } else {
        heap = CString::new(bytes).map_err(|_| invalid())?;
        &heap
    };
    let flags = flags | libc::O_CLOEXEC | libc::O_LARGEFILE;
    loop {
        // SAFETY: `cpath` is NUL-terminated and outlives the call; openat takes no other
        // pointers.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                cpath.as_ptr(),
                flags,
                0 as libc::c_uint,
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just returned this fd and nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Connects a non-blocking, close-on-exec unix stream socket to `path`. A listener whose
/// backlog is full fails at once with `WouldBlock` (EAGAIN): a unix socket's connect either
/// completes at once or fails, it is never in progress.
pub fn connect_unix_nonblocking(path: &std::path::Path) -> io::Result<UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid (unnamed) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long or contains a NUL byte",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &b) in addr.sun_path.iter_mut().zip(bytes) {
        *d = b as libc::c_char;
    }
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain system call; the fd is owned from here on.
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, flags, 0) })?;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_un of at least `len` bytes for the whole call.
    cvt(unsafe {
        libc::connect(
            sock.as_raw_fd(),
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            len,
        )
    })?;
    Ok(UnixStream::from(sock))
}

#[cfg(test)]
mod open_tests {
    use super::*;

    /// A listening unix socket with a backlog of `backlog` (std's bind takes no backlog).
    fn listen(path: &std::path::Path, backlog: libc::c_int) -> OwnedFd {
        let l = std::os::unix::net::UnixListener::bind(path).unwrap();
        // SAFETY: a valid listening fd; listen again only changes its backlog.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), backlog) }, 0);
        OwnedFd::from(l)
    }

    #[test]
    fn nonblocking_connect_fails_at_once_on_a_full_backlog() {
        let dir = std::env::temp_dir().join(format!("xb-sys-connect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let _listener = listen(&path, 0);
        // Backlog 0 holds one connection that nobody accepts; the next one has no room.
        let first = connect_unix_nonblocking(&path).unwrap();
        let t = std::time::Instant::now();
        let e = connect_unix_nonblocking(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
        assert!(t.elapsed() < Duration::from_secs(1));
        // SAFETY: a valid fd.
        let fl = unsafe { libc::fcntl(first.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(fl & libc::O_NONBLOCK, libc::O_NONBLOCK);
        let e = connect_unix_nonblocking(&dir.join("missing")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn open_sets_cloexec_and_reports_errors() {
        let fd = open(std::path::Path::new("/proc/self/status"), libc::O_RDONLY).unwrap();
        // SAFETY: a valid fd.
        let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(fl & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        let e = open(std::path::Path::new("/nonexistent/x"), libc::O_RDONLY).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = open(std::path::Path::new("/tmp/a\0b"), libc::O_RDONLY).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let long = format!("/{}", "x/".repeat(200));
        let e = open(std::path::Path::new(&long), libc::O_RDONLY).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
