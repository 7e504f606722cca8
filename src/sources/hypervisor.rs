//! Are we a Xen guest? `/sys/hypervisor/type` says `xen` when the kernel has sys-hypervisor
//! support; some embedded kernels lack it, so the xenbus device counts as evidence too.

use std::path::Path;

use super::{read_capped, rooted};

/// The hypervisor named by `/sys/hypervisor/type`, if the file exists.
pub fn hypervisor_type(root: &Path) -> Option<String> {
    let mut buf = Vec::with_capacity(64);
    read_capped(&rooted(root, "/sys/hypervisor/type"), &mut buf, 64).ok()?;
    Some(String::from_utf8_lossy(&buf).trim().to_owned())
}

/// True when `/sys/hypervisor/type` is `xen`.
pub fn is_xen(root: &Path) -> bool {
    hypervisor_type(root).as_deref() == Some("xen")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_type_under_root() {
        let dir = std::env::temp_dir().join(format!("xb-hv-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sys/hypervisor")).unwrap();
        assert!(!is_xen(&dir));
        std::fs::write(dir.join("sys/hypervisor/type"), "xen\n").unwrap();
        assert!(is_xen(&dir));
        std::fs::write(dir.join("sys/hypervisor/type"), "kvm\n").unwrap();
        assert!(!is_xen(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
