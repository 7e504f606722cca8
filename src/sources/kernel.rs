//! The running kernel's release (`uname -r`).

use std::path::Path;

use super::{read_attr, rooted};

/// `uname(2)`'s release for the real root (one system call); under another root (a test's
/// fake tree) `/proc/sys/kernel/osrelease` there, which holds the same string.
pub fn release(root: &Path) -> String {
    if root == Path::new("/") {
        if let Some(r) = uname_release() {
            return r;
        }
    }
    let mut buf = Vec::new();
    if read_attr(&rooted(root, "/proc/sys/kernel/osrelease"), &mut buf, 256).is_ok() {
        let s = String::from_utf8_lossy(&buf);
        let s = s.trim();
        if !s.is_empty() {
            return s.to_owned();
        }
    }
    String::from("unknown")
}

fn uname_release() -> Option<String> {
    // SAFETY: utsname is plain old data; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname for the whole call; uname writes only into it.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_release_matches_uname() {
        let r = release(Path::new("/"));
        assert_eq!(Some(r), uname_release());
    }

    #[test]
    fn missing_file_under_fake_root_is_unknown() {
        assert_eq!(release(Path::new("/nonexistent-xenbeacon-root")), "unknown");
    }
}
