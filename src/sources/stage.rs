//! Boot stage: is the agent running from the initramfs or from the real root filesystem?
//!
//! The initramfs is the kernel's `rootfs` mount; after `switch_root` the root is whatever the
//! real root is (ext4, a tmpfs, NFS...). `/proc/self/mountinfo` names the type of the mount on
//! `/` as seen by this process.

use std::path::Path;

use super::{read_capped, rooted};
use crate::model::BootStage;

/// The stage from mountinfo; the real root when it cannot be told.
pub fn detect(root: &Path) -> BootStage {
    // Sized for a typical mountinfo: grown in small steps, mallocng maps and unmaps a page
    // for every step (20 system calls at start-up).
    let mut buf = Vec::with_capacity(16 * 1024);
    if read_capped(&rooted(root, "/proc/self/mountinfo"), &mut buf, 1 << 20).is_err() {
        return BootStage::Rootfs;
    }
    match root_fs_type(&String::from_utf8_lossy(&buf)) {
        Some("rootfs") => BootStage::Initramfs,
        _ => BootStage::Rootfs,
    }
}

/// The file system type of the last mount on `/` in a mountinfo text.
pub fn root_fs_type(mountinfo: &str) -> Option<&str> {
    mountinfo.lines().rev().find_map(|l| {
        let mut fields = l.split(' ');
        let mount_point = fields.nth(4)?;
        // the optional fields end at a lone "-"; the type follows it
        let fstype = fields.skip_while(|f| *f != "-").nth(1)?;
        (mount_point == "/").then_some(fstype)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initramfs_and_real_roots() {
        let initramfs = "1 1 0:2 / / rw - rootfs rootfs rw,size=61124k\n\
                         22 1 0:21 / /proc rw,relatime - proc proc rw\n";
        assert_eq!(root_fs_type(initramfs), Some("rootfs"));
        let switched = "31 30 0:32 / / rw,relatime - tmpfs tmpfs rw,size=65536k\n\
                        32 31 0:21 / /proc rw - proc proc rw\n";
        assert_eq!(root_fs_type(switched), Some("tmpfs"));
        let debian = "26 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n";
        assert_eq!(root_fs_type(debian), Some("ext4"));
        assert_eq!(root_fs_type("garbage\n\n- - -"), None);
    }

    #[test]
    fn this_machine_is_not_in_an_initramfs() {
        assert_eq!(detect(Path::new("/")), BootStage::Rootfs);
    }
}
