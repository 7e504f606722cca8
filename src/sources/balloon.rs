//! The Xen balloon driver's view of memory: `/sys/devices/system/xen_memory/xen_memory0/`
//! (`drivers/xen/xen-balloon.c`): the target it works towards and where it is now, in KiB.
//! No directory means no balloon driver.

use std::path::{Path, PathBuf};

use super::{read_attr, rooted};
use crate::model::BalloonInfo;

/// Paths joined once: the memory timer reads these every tick, and a path built per read
/// costs an allocation (with musl, an mmap/munmap pair) each time.
pub struct BalloonReader {
    target: PathBuf,
    current: PathBuf,
    buf: Vec<u8>,
}

impl BalloonReader {
    pub fn new(root: &Path) -> BalloonReader {
        let dir = rooted(root, "/sys/devices/system/xen_memory/xen_memory0");
        BalloonReader {
            target: dir.join("target_kb"),
            current: dir.join("info/current_kb"),
            buf: Vec::with_capacity(32),
        }
    }

    /// `None` without a balloon driver or when its files cannot be read.
    pub fn read(&mut self) -> Option<BalloonInfo> {
        let target_kb = read_kb(&self.target, &mut self.buf)?;
        let current_kb = read_kb(&self.current, &mut self.buf)?;
        Some(BalloonInfo {
            target_kb,
            current_kb,
        })
    }
}

fn read_kb(path: &Path, buf: &mut Vec<u8>) -> Option<u64> {
    read_attr(path, buf, 64).ok()?;
    std::str::from_utf8(buf).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_target_and_current() {
        let dir = std::env::temp_dir().join(format!("xb-balloon-{}", std::process::id()));
        let b = dir.join("sys/devices/system/xen_memory/xen_memory0");
        let mut r = BalloonReader::new(&dir);
        assert_eq!(r.read(), None);
        std::fs::create_dir_all(b.join("info")).unwrap();
        std::fs::write(b.join("target_kb"), "98304\n").unwrap();
        std::fs::write(b.join("info/current_kb"), "131072\n").unwrap();
        assert_eq!(
            r.read(),
            Some(BalloonInfo {
                target_kb: 98304,
                current_kb: 131072
            })
        );
        std::fs::write(b.join("target_kb"), "garbage").unwrap();
        assert_eq!(r.read(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
