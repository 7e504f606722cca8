//! The error names of an `XS_ERROR` reply.

use core::fmt;

/// Error names xenstored sends in an `XS_ERROR` reply (`xsd_errors` in `xs_wire.h`, plus
/// `EQUOTA`, which oxenstored uses for quota errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum XsError {
    Einval,
    Eacces,
    Eexist,
    Eisdir,
    Enoent,
    Enomem,
    Enospc,
    Eio,
    Enotempty,
    Enosys,
    Erofs,
    Ebusy,
    Eagain,
    Eisconn,
    E2big,
    Eperm,
    Equota,
    /// A name this build does not know; the raw name is logged where it was received.
    Unknown,
}

pub(super) const ERROR_NAMES: [(XsError, &str); 17] = [
    (XsError::Einval, "EINVAL"),
    (XsError::Eacces, "EACCES"),
    (XsError::Eexist, "EEXIST"),
    (XsError::Eisdir, "EISDIR"),
    (XsError::Enoent, "ENOENT"),
    (XsError::Enomem, "ENOMEM"),
    (XsError::Enospc, "ENOSPC"),
    (XsError::Eio, "EIO"),
    (XsError::Enotempty, "ENOTEMPTY"),
    (XsError::Enosys, "ENOSYS"),
    (XsError::Erofs, "EROFS"),
    (XsError::Ebusy, "EBUSY"),
    (XsError::Eagain, "EAGAIN"),
    (XsError::Eisconn, "EISCONN"),
    (XsError::E2big, "E2BIG"),
    (XsError::Eperm, "EPERM"),
    (XsError::Equota, "EQUOTA"),
];

impl XsError {
    /// The name as sent on the wire (without the trailing NUL).
    pub fn name(self) -> &'static str {
        ERROR_NAMES
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("EUNKNOWN", |(_, n)| n)
    }

    /// Parses an error name; unknown names map to [`XsError::Unknown`].
    pub fn from_name(name: &[u8]) -> XsError {
        ERROR_NAMES
            .iter()
            .find(|(_, n)| n.as_bytes() == name)
            .map_or(XsError::Unknown, |(e, _)| *e)
    }

    /// True for errors that may go away by themselves (busy store, quota freed by another
    /// write, a transaction conflict): worth another try on a later round.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            XsError::Eagain
                | XsError::Ebusy
                | XsError::Enomem
                | XsError::Enospc
                | XsError::Equota
                | XsError::Eio
        )
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            XsError::Einval => "invalid argument",
            XsError::Eacces => "permission denied",
            XsError::Eexist => "already exists",
            XsError::Eisdir => "is a directory",
            XsError::Enoent => "no such node",
            XsError::Enomem => "out of memory",
            XsError::Enospc => "no space (quota)",
            XsError::Eio => "I/O error",
            XsError::Enotempty => "not empty",
            XsError::Enosys => "not supported",
            XsError::Erofs => "read-only",
            XsError::Ebusy => "busy",
            XsError::Eagain => "try again (transaction conflict)",
            XsError::Eisconn => "already connected",
            XsError::E2big => "too big",
            XsError::Eperm => "not permitted",
            XsError::Equota => "quota exceeded",
            XsError::Unknown => "unknown error",
        };
        write!(f, "{} ({})", what, self.name())
    }
}
