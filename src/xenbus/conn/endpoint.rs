//! Where XenStore is reached: the guest's xenbus device or a xenstored unix socket, and how
//! a device is told from a file that only looks like one.

use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::Error;
use crate::xenbus::wire::{DEVICE_MSG_MAX, HEADER_LEN, PAYLOAD_MAX};

/// Where XenStore is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A xenbus character device (`/dev/xen/xenbus`, `/proc/xen/xenbus`).
    Device(PathBuf),
    /// A xenstored unix socket (`/run/xenstored/socket`, or a test server).
    Socket(PathBuf),
}

/// Device nodes tried, in order, when no endpoint is given.
pub const DEVICE_PATHS: [&str; 2] = ["/dev/xen/xenbus", "/proc/xen/xenbus"];

impl Endpoint {
    /// A socket if `path` is one, a device otherwise.
    pub fn for_path(path: &Path) -> Endpoint {
        match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_socket() => Endpoint::Socket(path.to_path_buf()),
            _ => Endpoint::Device(path.to_path_buf()),
        }
    }

    /// The endpoint the user chose: `explicit` (a `--xenstore` option), else the
    /// `XENBEACON_XENSTORE` environment variable; `None` when neither is set.
    pub fn chosen(explicit: Option<&Path>) -> Option<Endpoint> {
        let path = explicit
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("XENBEACON_XENSTORE").map(PathBuf::from))?;
        Some(Endpoint::for_path(&path))
    }

    /// The first xenbus device that exists, if any.
    pub fn discover() -> Option<Endpoint> {
        DEVICE_PATHS
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .map(|p| Endpoint::Device(p.to_path_buf()))
    }

    pub fn path(&self) -> &Path {
        match self {
            Endpoint::Device(p) | Endpoint::Socket(p) => p,
        }
    }

    /// Largest payload one request may carry on this transport.
    pub fn payload_max(&self) -> usize {
        match self {
            Endpoint::Device(_) => DEVICE_MSG_MAX - HEADER_LEN,
            Endpoint::Socket(_) => PAYLOAD_MAX,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Device(p) => write!(f, "xenbus device {}", p.display()),
            Endpoint::Socket(p) => write!(f, "xenstored socket {}", p.display()),
        }
    }
}

/// True for what the xenbus device can be: the misc character device (`/dev/xen/xenbus`)
/// or the file xenfs serves (`/proc/xen/xenbus`). Anything else (`/dev/zero`, a regular
/// file, a FIFO) would be read as an endless stream of messages.
fn is_xenbus_device(file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    const MISC_MAJOR: u32 = 10;
    const XENFS_SUPER_MAGIC: i64 = 0xabba1974;
    let Ok(meta) = file.metadata() else {
        return false;
    };
    if meta.file_type().is_char_device() {
        return libc::major(meta.rdev()) == MISC_MAJOR;
    }
    if !meta.file_type().is_file() {
        return false;
    }
    // SAFETY: statfs is plain old data, filled in by fstatfs on a valid fd.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a valid statfs to write.
    let r = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) };
    r == 0 && st.f_type as i64 == XENFS_SUPER_MAGIC
}

/// Opens the xenbus device at `path`, refusing what is not one.
pub(super) fn open_device(path: &Path) -> Result<File, Error> {
    let file =
        File::from(crate::sys::open(path, libc::O_RDWR | libc::O_NONBLOCK).map_err(Error::Open)?);
    if !is_xenbus_device(&file) {
        return Err(Error::NotXenstore(super::NotXenstore(path.to_path_buf())));
    }
    Ok(file)
}
