//! The guest's host and domain name, as the kernel holds them (`sethostname(2)`,
//! `setdomainname(2)`): no resolver, no DNS lookup, only what the guest knows locally.
//!
//! The names come from [`super::kernel::uts`], with the kernel release (one `uname(2)`).
//! xapi reads `data/host_name_dns` and `data/domain` into the VM's `netbios_name`
//! (docs/consumers.md). A host name given as a FQDN (`web1.example.com`) is split at its
//! first dot; otherwise the domain is the kernel's domain name, unless unset (`(none)`).
//!
//! Changes need no polling: /proc/sys/kernel/hostname and domainname raise `POLLPRI` on their
//! open files when either name changes ([`HostnameWatch`]).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::rooted;
use crate::model::HostIdentity;

const HOSTNAME: &str = "/proc/sys/kernel/hostname";
const DOMAINNAME: &str = "/proc/sys/kernel/domainname";

/// The identity from the kernel's two names; `(none)` and empty names are unset.
pub fn identity(hostname: &str, domainname: &str) -> HostIdentity {
    let set = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s != "(none)").then(|| s.to_owned())
    };
    let Some(hostname) = set(hostname) else {
        return HostIdentity::default();
    };
    match hostname.split_once('.') {
        Some((host, domain)) if !host.is_empty() => HostIdentity {
            host: Some(host.to_owned()),
            domain: set(domain.trim_end_matches('.')),
        },
        _ => HostIdentity {
            host: Some(hostname),
            domain: set(domainname),
        },
    }
}

/// The two procfs files, held open so that `poll(2)` reports `POLLPRI` when a name changes.
/// Polling resets the notification; nothing needs to be read from these fds.
#[derive(Debug)]
pub struct HostnameWatch {
    fds: [OwnedFd; 2],
}

impl HostnameWatch {
    pub fn open(root: &Path) -> io::Result<HostnameWatch> {
        let open = |abs: &str| {
            crate::sys::open(
                &rooted(root, abs),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
            )
        };
        Ok(HostnameWatch {
            fds: [open(HOSTNAME)?, open(DOMAINNAME)?],
        })
    }

    pub fn raw_fds(&self) -> [RawFd; 2] {
        [self.fds[0].as_raw_fd(), self.fds[1].as_raw_fd()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(host: Option<&str>, domain: Option<&str>) -> HostIdentity {
        HostIdentity {
            host: host.map(str::to_owned),
            domain: domain.map(str::to_owned),
        }
    }

    #[test]
    fn names() {
        assert_eq!(identity("web1\n", "(none)\n"), id(Some("web1"), None));
        assert_eq!(
            identity("web1", "corp.example"),
            id(Some("web1"), Some("corp.example"))
        );
        assert_eq!(
            identity("web1.example.com", "(none)"),
            id(Some("web1"), Some("example.com"))
        );
        // The FQDN's own domain wins over the kernel's domain name.
        assert_eq!(
            identity("web1.example.com.", "nis"),
            id(Some("web1"), Some("example.com"))
        );
        assert_eq!(identity("(none)", "x"), id(None, None));
        assert_eq!(identity("", ""), id(None, None));
        assert_eq!(identity(".odd", ""), id(Some(".odd"), None));
        assert_eq!(identity("a.", ""), id(Some("a"), None));
    }
}
