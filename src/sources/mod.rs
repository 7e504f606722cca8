//! Sources: what the guest knows about itself, read from procfs, sysfs and os-release.
//!
//! Every source takes the root prefix (`--root`) so tests can point it at a fake tree.

pub mod balloon;
pub mod hostname;
pub mod hypervisor;
pub mod kernel;
pub mod meminfo;
pub mod os_release;
pub mod stage;
pub mod sysfs_net;

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// `root` joined with an absolute path such as `/proc/meminfo`.
pub fn rooted(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Reads at most `limit` bytes of a small text file into `buf` (cleared first), so that a
/// hostile or corrupt file cannot make the agent allocate without bound. Opening never blocks
/// and anything but a regular file (a FIFO, a device, a socket) is refused, so that a hostile
/// tree cannot stall the agent.
pub fn read_capped(path: &Path, buf: &mut Vec<u8>, limit: u64) -> io::Result<()> {
    buf.clear();
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    let file = std::fs::File::from(crate::sys::open(path, flags)?);
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    file.take(limit).read_to_end(buf)?;
    Ok(())
}

/// Reads a file the kernel produces whole on the first read (a sysfs attribute, a
/// single-value procfs file such as /proc/meminfo) in one `read`, with no second read to see
/// end-of-file: a short first read is the whole file. Up to `limit` bytes land in `buf`
/// (cleared first). The last component is not followed if it is a symlink, and opening never
/// blocks (a FIFO in a fake tree reads as empty), so a hostile tree can neither redirect nor
/// stall the agent.
pub fn read_attr(path: &Path, buf: &mut Vec<u8>, limit: usize) -> io::Result<()> {
    buf.clear();
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    let mut file = std::fs::File::from(crate::sys::open(path, flags)?);
    buf.resize(limit, 0);
    let n = loop {
        match file.read(buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.clear();
                return Err(e);
            }
        }
    };
    buf.truncate(n);
    Ok(())
}

/// `path` with every symlink resolved and no `.` or `..`, like `fs::canonicalize`, in three
/// system calls instead of a `readlink` per component: the kernel resolves the whole path in
/// one `open(O_PATH)` and `/proc/self/fd` names what it found. Classifying a NIC follows a
/// dozen sysfs links ten components deep, and in a PV guest every system call is a trip
/// through Xen. Falls back to `fs::canonicalize` when /proc is not mounted.
pub fn canonicalize(path: &Path) -> io::Result<PathBuf> {
    let file = crate::sys::open(path, libc::O_PATH)?;
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        // Not a plain path: a deleted node (" (deleted)") is not worth guessing about.
        Ok(p) if p.is_absolute() && !p.as_os_str().as_encoded_bytes().ends_with(b" (deleted)") => {
            Ok(p)
        }
        _ => std::fs::canonicalize(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn canonicalize_agrees_with_std() {
        let dir = std::env::temp_dir().join(format!("xb-canon-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("devices/pci0/0000:00:03.0/net/eth0")).unwrap();
        std::fs::create_dir_all(dir.join("class/net")).unwrap();
        symlink(
            "../../devices/pci0/0000:00:03.0/net/eth0",
            dir.join("class/net/eth0"),
        )
        .unwrap();
        symlink(
            "../../../0000:00:03.0",
            dir.join("devices/pci0/0000:00:03.0/net/eth0/device"),
        )
        .unwrap();
        symlink("nowhere", dir.join("class/net/dangling")).unwrap();
        for p in [
            "class/net/eth0",
            "class/net/eth0/device",
            "class/net/eth0/device/net",
            ".",
        ] {
            let p = dir.join(p);
            assert_eq!(
                canonicalize(&p).unwrap(),
                std::fs::canonicalize(&p).unwrap()
            );
        }
        let e = canonicalize(&dir.join("class/net/dangling")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
