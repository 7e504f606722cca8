//! The Xen balloon driver's view of memory: `/sys/devices/system/xen_memory/xen_memory0/`
//! (`drivers/xen/xen-balloon.c`): the target it works towards and where it is now, in KiB.
//! No directory means no balloon driver.

use std::path::{Path, PathBuf};

use super::{read_capped, rooted};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalloonInfo {
    pub target_kb: u64,
    pub current_kb: u64,
}

pub struct BalloonReader {
    dir: PathBuf,
    buf: Vec<u8>,
}

impl BalloonReader {
    pub fn new(root: &Path) -> BalloonReader {
        BalloonReader {
            dir: rooted(root, "/sys/devices/system/xen_memory/xen_memory0"),
            buf: Vec::with_capacity(32),
        }
    }

    /// `None` without a balloon driver or when its files cannot be read.
    pub fn read(&mut self) -> Option<BalloonInfo> {
        let target_kb = self.read_kb("target_kb")?;
        let current_kb = self.read_kb("info/current_kb")?;
        Some(BalloonInfo {
            target_kb,
            current_kb,
        })
    }

    fn read_kb(&mut self, file: &str) -> Option<u64> {
        read_capped(&self.dir.join(file), &mut self.buf, 64).ok()?;
        std::str::from_utf8(&self.buf).ok()?.trim().parse().ok()
    }
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
