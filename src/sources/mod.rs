//! Sources: what the guest knows about itself, read from procfs, sysfs and os-release.
//!
//! Every source takes the root prefix (`--root`) so tests can point it at a fake tree.

pub mod balloon;
pub mod hypervisor;
pub mod kernel;
pub mod meminfo;
pub mod os_release;
pub mod stage;
pub mod sysfs_net;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// `root` joined with an absolute path such as `/proc/meminfo`.
pub fn rooted(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Reads at most `limit` bytes of a small text file into `buf` (cleared first), so that a
/// hostile or corrupt file cannot make the agent allocate without bound.
pub fn read_capped(path: &Path, buf: &mut Vec<u8>, limit: u64) -> io::Result<()> {
    buf.clear();
    std::fs::File::open(path)?.take(limit).read_to_end(buf)?;
    Ok(())
}
