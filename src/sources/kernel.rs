//! What `uname(2)` says: the running kernel's release (`uname -r`) and the host and domain
//! name the kernel holds. One system call serves all three.

use std::path::Path;

use super::{read_attr, rooted};

/// The kernel's release and names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uts {
    /// `uname -r`; `unknown` when it cannot be read.
    pub release: String,
    /// `sethostname(2)`'s name, as the kernel keeps it (`(none)` when unset).
    pub nodename: String,
    /// `setdomainname(2)`'s name (`(none)` when unset).
    pub domainname: String,
}

/// `uname(2)` for the real root (one system call); under another root (a test's fake tree)
/// `/proc/sys/kernel/{osrelease,hostname,domainname}` there, which hold the same strings.
pub fn uts(root: &Path) -> Uts {
    let mut uts = if root == Path::new("/") {
        uname().unwrap_or_default()
    } else {
        let mut buf = Vec::new();
        let mut file = |name: &str| {
            read_attr(
                &rooted(root, &format!("/proc/sys/kernel/{name}")),
                &mut buf,
                256,
            )
            .map(|()| String::from_utf8_lossy(&buf).trim().to_owned())
            .unwrap_or_default()
        };
        Uts {
            release: file("osrelease"),
            nodename: file("hostname"),
            domainname: file("domainname"),
        }
    };
    if uts.release.is_empty() {
        uts.release = String::from("unknown");
    }
    uts
}

fn uname() -> Option<Uts> {
    // SAFETY: utsname is arrays of C chars, for which all zeroes is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname for the whole call; uname writes only into it.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let text = |field: &[libc::c_char]| {
        let bytes: Vec<u8> = field
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(Uts {
        release: text(&u.release),
        nodename: text(&u.nodename),
        domainname: text(&u.domainname),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_root_matches_procfs() {
        let mut buf = Vec::new();
        let mut file = |name: &str| {
            read_attr(
                Path::new(&format!("/proc/sys/kernel/{name}")),
                &mut buf,
                256,
            )
            .unwrap();
            String::from_utf8_lossy(&buf).trim().to_owned()
        };
        let want = Uts {
            release: file("osrelease"),
            nodename: file("hostname"),
            domainname: file("domainname"),
        };
        assert_eq!(uts(Path::new("/")), want);
    }

    #[test]
    fn missing_files_under_fake_root_are_unknown_and_empty() {
        let u = uts(Path::new("/nonexistent-xenbeacon-root"));
        assert_eq!(u.release, "unknown");
        assert_eq!((u.nodename.as_str(), u.domainname.as_str()), ("", ""));
    }
}
