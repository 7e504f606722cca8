//! The xenbus wire format: `struct xsd_sockmsg` followed by its payload.
//!
//! Constants and layout come from Xen's `xen/include/public/io/xs_wire.h` (MIT) and
//! `docs/misc/xenstore.txt`. Two layers, as in smoltcp's `wire` module:
//!
//! * [`Packet`] is a zero-copy view over a byte buffer that checks only what is needed to read
//!   it without panicking (the header is there, the payload length fits the buffer).
//! * [`Request`] and [`Reply`] are validated representations: a client emits requests and
//!   parses replies into typed fields (paths are UTF-8 and NUL-terminated, error names are
//!   known). The other direction (parse a request, emit a reply) is a server's and lives in
//!   `server_wire`, built only for tests and fuzzing.
//!
//! Everything borrows from the buffer it was parsed from; nothing here allocates.

use crate::decimal::{format_u64, U64_DIGITS};

mod reply;
mod xs_error;

pub use self::reply::{Entries, Reply};
pub use self::xs_error::XsError;

/// Bytes in the fixed header: type, req_id, tx_id, len, each a host-endian `u32`.
pub const HEADER_LEN: usize = 16;
/// Largest payload either side may send (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;
/// The Linux xenbus device buffers one whole message, header included, in this many bytes,
/// so a request written to `/dev/xen/xenbus` may carry at most `DEVICE_MSG_MAX - HEADER_LEN`.
pub const DEVICE_MSG_MAX: usize = 4096;
/// Longest absolute path xenstored accepts (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;
/// Longest relative path xenstored accepts (`XENSTORE_REL_PATH_MAX`).
pub const REL_PATH_MAX: usize = 2048;

/// Message types of `enum xsd_sockmsg_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgType {
    Control,
    Directory,
    Read,
    GetPerms,
    Watch,
    Unwatch,
    TransactionStart,
    TransactionEnd,
    Introduce,
    Release,
    GetDomainPath,
    Write,
    Mkdir,
    Rm,
    SetPerms,
    WatchEvent,
    Error,
    IsDomainIntroduced,
    Resume,
    SetTarget,
    ResetWatches,
    DirectoryPart,
}

impl MsgType {
    /// The numeric value on the wire.
    pub const fn to_u32(self) -> u32 {
        match self {
            MsgType::Control => 0,
            MsgType::Directory => 1,
            MsgType::Read => 2,
            MsgType::GetPerms => 3,
            MsgType::Watch => 4,
            MsgType::Unwatch => 5,
            MsgType::TransactionStart => 6,
            MsgType::TransactionEnd => 7,
            MsgType::Introduce => 8,
            MsgType::Release => 9,
            MsgType::GetDomainPath => 10,
            MsgType::Write => 11,
            MsgType::Mkdir => 12,
            MsgType::Rm => 13,
            MsgType::SetPerms => 14,
            MsgType::WatchEvent => 15,
            MsgType::Error => 16,
            MsgType::IsDomainIntroduced => 17,
            MsgType::Resume => 18,
            MsgType::SetTarget => 19,
            MsgType::ResetWatches => 21,
            MsgType::DirectoryPart => 22,
        }
    }

    /// The type for a wire value; `None` for values `xs_wire.h` does not define (20 was
    /// `XS_RESTRICT`, removed).
    pub const fn from_u32(v: u32) -> Option<MsgType> {
        Some(match v {
            0 => MsgType::Control,
            1 => MsgType::Directory,
            2 => MsgType::Read,
            3 => MsgType::GetPerms,
            4 => MsgType::Watch,
            5 => MsgType::Unwatch,
            6 => MsgType::TransactionStart,
            7 => MsgType::TransactionEnd,
            8 => MsgType::Introduce,
            9 => MsgType::Release,
            10 => MsgType::GetDomainPath,
            11 => MsgType::Write,
            12 => MsgType::Mkdir,
            13 => MsgType::Rm,
            14 => MsgType::SetPerms,
            15 => MsgType::WatchEvent,
            16 => MsgType::Error,
            17 => MsgType::IsDomainIntroduced,
            18 => MsgType::Resume,
            19 => MsgType::SetTarget,
            21 => MsgType::ResetWatches,
            22 => MsgType::DirectoryPart,
            _ => return None,
        })
    }
}

crate::error_enum::error_enum! {
    /// Why a buffer is not a well-formed xenbus message.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum WireError {
        /// message shorter than its header or declared length
        Truncated,
        /// payload longer than 4096 bytes
        PayloadTooLong,
        /// message type not defined by xs_wire.h
        UnknownType,
        /// message type not valid in this direction
        UnexpectedType,
        /// string argument without terminating NUL
        MissingNul,
        /// path or token is not valid
        BadString,
        /// payload does not match its message type
        BadPayload,
    }
}

/// How many bytes the message at the start of `buf` occupies, once its header is there.
///
/// `Ok(None)`: fewer than [`HEADER_LEN`] bytes so far. Lets a stream reader know when a whole
/// message has arrived without trusting anything but the length field.
pub fn message_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_ne_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
    if len > PAYLOAD_MAX {
        return Err(WireError::PayloadTooLong);
    }
    Ok(Some(HEADER_LEN + len))
}

/// A read/write view of one message in a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checks; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer holding at least one whole message with a valid length field.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the header and the declared payload fit the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        match message_len(self.buffer.as_ref())? {
            Some(n) if n <= self.buffer.as_ref().len() => Ok(()),
            _ => Err(WireError::Truncated),
        }
    }

    fn field(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    pub fn msg_type_raw(&self) -> u32 {
        self.field(0)
    }
    pub fn req_id(&self) -> u32 {
        self.field(4)
    }
    pub fn tx_id(&self) -> u32 {
        self.field(8)
    }
    pub fn payload_len(&self) -> usize {
        self.field(12) as usize
    }
    /// Header plus payload.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }
    pub fn msg_type(&self) -> Result<MsgType, WireError> {
        MsgType::from_u32(self.msg_type_raw()).ok_or(WireError::UnknownType)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_field(&mut self, at: usize, v: u32) {
        self.buffer.as_mut()[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    pub fn set_header(&mut self, msg_type: MsgType, req_id: u32, tx_id: u32, len: usize) {
        self.set_field(0, msg_type.to_u32());
        self.set_field(4, req_id);
        self.set_field(8, tx_id);
        self.set_field(12, len as u32);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// Characters xenstore allows in a path (`xenstore.txt`: alphanumerics and `-/_@`).
#[inline]
pub fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

/// A path xenstored will accept: allowed characters, no empty component, within the length
/// limit for its kind (absolute `/...`, relative, or a special `@...` watch path).
pub fn is_valid_path(path: &str) -> bool {
    let b = path.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    let max = if first == b'/' {
        ABS_PATH_MAX
    } else {
        REL_PATH_MAX
    };
    if b.len() > max {
        return false;
    }
    if first == b'@' {
        return b.iter().all(|&c| is_path_char(c));
    }
    if path == "/" {
        return true;
    }
    // One pass (the dom0 reader checks ~100,000 paths in a listing of 500 guests): allowed
    // bytes, no empty component (no `//`, no `/` at the end).
    let mut prev = 0u8;
    for &c in b {
        if !is_path_char(c) || (c == b'/' && prev == b'/') {
            return false;
        }
        prev = c;
    }
    prev != b'/'
}

/// Splits off the NUL-terminated string at the start of `buf`.
fn take_cstr(buf: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let nul = buf
        .iter()
        .position(|&c| c == 0)
        .ok_or(WireError::MissingNul)?;
    Ok((&buf[..nul], &buf[nul + 1..]))
}

pub(super) fn take_str(buf: &[u8]) -> Result<(&str, &[u8]), WireError> {
    let (s, rest) = take_cstr(buf)?;
    let s = core::str::from_utf8(s).map_err(|_| WireError::BadString)?;
    Ok((s, rest))
}

/// A request from a client, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    Read(&'a str),
    Write {
        path: &'a str,
        value: &'a [u8],
    },
    Mkdir(&'a str),
    Rm(&'a str),
    Directory(&'a str),
    GetPerms(&'a str),
    /// `perms` holds NUL-terminated entries such as `n0\0r5\0` (owner first).
    SetPerms {
        path: &'a str,
        perms: &'a [u8],
    },
    Watch {
        path: &'a str,
        token: &'a str,
    },
    Unwatch {
        path: &'a str,
        token: &'a str,
    },
    TransactionStart,
    TransactionEnd {
        commit: bool,
    },
    GetDomainPath(u32),
}

impl<'a> Request<'a> {
    pub fn msg_type(&self) -> MsgType {
        match self {
            Request::Read(_) => MsgType::Read,
            Request::Write { .. } => MsgType::Write,
            Request::Mkdir(_) => MsgType::Mkdir,
            Request::Rm(_) => MsgType::Rm,
            Request::Directory(_) => MsgType::Directory,
            Request::GetPerms(_) => MsgType::GetPerms,
            Request::SetPerms { .. } => MsgType::SetPerms,
            Request::Watch { .. } => MsgType::Watch,
            Request::Unwatch { .. } => MsgType::Unwatch,
            Request::TransactionStart => MsgType::TransactionStart,
            Request::TransactionEnd { .. } => MsgType::TransactionEnd,
            Request::GetDomainPath(_) => MsgType::GetDomainPath,
        }
    }

    /// The path the request acts on, if it has one.
    pub fn path(&self) -> Option<&'a str> {
        match *self {
            Request::Read(p)
            | Request::Mkdir(p)
            | Request::Rm(p)
            | Request::Directory(p)
            | Request::GetPerms(p) => Some(p),
            Request::Write { path, .. }
            | Request::SetPerms { path, .. }
            | Request::Watch { path, .. }
            | Request::Unwatch { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Payload bytes [`Request::emit_payload`] writes.
    pub fn payload_len(&self) -> usize {
        match self {
            Request::Read(p)
            | Request::Mkdir(p)
            | Request::Rm(p)
            | Request::Directory(p)
            | Request::GetPerms(p) => p.len() + 1,
            Request::Write { path, value } => path.len() + 1 + value.len(),
            Request::SetPerms { path, perms } => path.len() + 1 + perms.len(),
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                path.len() + 1 + token.len() + 1
            }
            Request::TransactionStart => 1,
            Request::TransactionEnd { .. } => 2,
            Request::GetDomainPath(d) => format_u64(u64::from(*d), &mut [0; U64_DIGITS]).len() + 1,
        }
    }

    /// Writes the payload into `out`, which must be exactly [`Request::payload_len`] long.
    pub fn emit_payload(&self, out: &mut [u8]) {
        let mut w = Cursor { buf: out, at: 0 };
        match *self {
            Request::Read(p)
            | Request::Mkdir(p)
            | Request::Rm(p)
            | Request::Directory(p)
            | Request::GetPerms(p) => w.cstr(p.as_bytes()),
            Request::Write { path, value } => {
                w.cstr(path.as_bytes());
                w.put(value);
            }
            Request::SetPerms { path, perms } => {
                w.cstr(path.as_bytes());
                w.put(perms);
            }
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                w.cstr(path.as_bytes());
                w.cstr(token.as_bytes());
            }
            Request::TransactionStart => w.put(b"\0"),
            Request::TransactionEnd { commit } => w.put(if commit { b"T\0" } else { b"F\0" }),
            Request::GetDomainPath(d) => {
                w.cstr(format_u64(u64::from(d), &mut [0; U64_DIGITS]).as_bytes());
            }
        }
    }

    /// Appends header and payload to `out`.
    pub fn emit(&self, req_id: u32, tx_id: u32, out: &mut Vec<u8>) {
        let start = out.len();
        let len = self.payload_len();
        out.resize(start + HEADER_LEN + len, 0);
        let mut packet = Packet::new_unchecked(&mut out[start..]);
        packet.set_header(self.msg_type(), req_id, tx_id, len);
        self.emit_payload(packet.payload_mut());
    }
}

struct Cursor<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn cstr(&mut self, bytes: &[u8]) {
        self.put(bytes);
        self.put(b"\0");
    }
}

#[cfg(test)]
mod tests {
    use super::xs_error::ERROR_NAMES;
    use super::*;
    use crate::xenbus::server_wire::emit_raw;

    #[test]
    fn write_payload_layout_matches_xenstore_txt() {
        let mut buf = Vec::new();
        Request::Write {
            path: "data/a",
            value: b"v",
        }
        .emit(1, 0, &mut buf);
        assert_eq!(&buf[HEADER_LEN..], b"data/a\0v");
        assert_eq!(u32::from_ne_bytes(buf[0..4].try_into().unwrap()), 11);
        assert_eq!(u32::from_ne_bytes(buf[12..16].try_into().unwrap()), 8);
    }

    #[test]
    fn message_len_needs_header_and_rejects_oversize() {
        assert_eq!(message_len(&[0; 15]), Ok(None));
        let mut hdr = [0u8; 16];
        hdr[12..16].copy_from_slice(&4096u32.to_ne_bytes());
        assert_eq!(message_len(&hdr), Ok(Some(16 + 4096)));
        hdr[12..16].copy_from_slice(&4097u32.to_ne_bytes());
        assert_eq!(message_len(&hdr), Err(WireError::PayloadTooLong));
        hdr[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(message_len(&hdr), Err(WireError::PayloadTooLong));
    }

    #[test]
    fn packet_checks_declared_length() {
        let mut buf = Vec::new();
        emit_raw(MsgType::Read, 1, 0, &[b"abc"], &mut buf);
        assert!(Packet::new_checked(&buf[..]).is_ok());
        assert_eq!(
            Packet::new_checked(&buf[..buf.len() - 1]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&buf[..10]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn replies_parse() {
        assert_eq!(
            Reply::parse(MsgType::Write, Some(MsgType::Write), b"OK\0"),
            Ok(Reply::Ok)
        );
        assert_eq!(
            Reply::parse(MsgType::Read, Some(MsgType::Read), b"12"),
            Ok(Reply::Value(b"12"))
        );
        assert_eq!(
            Reply::parse(MsgType::Error, Some(MsgType::Read), b"ENOENT\0"),
            Ok(Reply::Error(XsError::Enoent))
        );
        assert_eq!(
            Reply::parse(MsgType::Error, None, b"EWHATEVER\0"),
            Ok(Reply::Error(XsError::Unknown))
        );
        assert_eq!(
            Reply::parse(MsgType::TransactionStart, None, b"42\0"),
            Ok(Reply::TransactionId(42))
        );
        let dir = Reply::parse(MsgType::Directory, None, b"a\0bb\0c\0").unwrap();
        assert_eq!(dir.entries().collect::<Vec<_>>(), ["a", "bb", "c"]);
        let empty = Reply::parse(MsgType::Directory, None, b"").unwrap();
        assert_eq!(empty.entries().count(), 0);
        assert_eq!(
            Reply::parse(MsgType::WatchEvent, None, b"data/x\0tok\0"),
            Ok(Reply::WatchEvent {
                path: "data/x",
                token: "tok"
            })
        );
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert_eq!(
            Reply::parse(MsgType::Read, Some(MsgType::Write), b"x"),
            Err(WireError::UnexpectedType)
        );
        assert_eq!(
            Reply::parse(MsgType::Write, Some(MsgType::Write), b"KO\0"),
            Err(WireError::BadPayload)
        );
        assert_eq!(
            Reply::parse(MsgType::WatchEvent, None, b"no-nul"),
            Err(WireError::MissingNul)
        );
        assert_eq!(
            Reply::parse(MsgType::WatchEvent, None, b"bad path!\0t\0"),
            Err(WireError::BadString)
        );
        assert_eq!(
            Reply::parse(MsgType::TransactionStart, None, b"x\0"),
            Err(WireError::BadPayload)
        );
        assert_eq!(
            Reply::parse(MsgType::Directory, None, b"a\0b"),
            Err(WireError::MissingNul)
        );
        assert_eq!(MsgType::from_u32(20), None);
        assert_eq!(MsgType::from_u32(99), None);
    }

    #[test]
    fn path_rules() {
        assert!(is_valid_path("data/os_name"));
        assert!(is_valid_path("/local/domain/7/attr/vif/0/ipv4/0"));
        assert!(is_valid_path("/"));
        assert!(is_valid_path("@releaseDomain"));
        assert!(!is_valid_path(""));
        assert!(!is_valid_path("data/"));
        assert!(!is_valid_path("data//x"));
        assert!(!is_valid_path("data/a b"));
        assert!(!is_valid_path("data/é"));
        assert!(!is_valid_path(&"a".repeat(REL_PATH_MAX + 1)));
        assert!(is_valid_path(&format!("/{}", "a".repeat(ABS_PATH_MAX - 1))));
    }

    /// The one-pass check says what the earlier split-based one said, for every string of up
    /// to 6 characters over an alphabet with each case in it.
    #[test]
    fn valid_path_one_pass_matches_the_split_rule() {
        fn by_split(path: &str) -> bool {
            let b = path.as_bytes();
            if b.is_empty() || !b.iter().all(|&c| is_path_char(c)) {
                return false;
            }
            if b[0] == b'@' || path == "/" {
                return true;
            }
            let body = path.strip_prefix('/').unwrap_or(path);
            !body.ends_with('/') && body.split('/').all(|c| !c.is_empty())
        }
        let alphabet = ['a', '/', '@', '-', ' '];
        let mut s = String::new();
        fn all(s: &mut String, alphabet: &[char], left: usize, check: &dyn Fn(&str)) {
            check(s);
            if left == 0 {
                return;
            }
            for &c in alphabet {
                s.push(c);
                all(s, alphabet, left - 1, check);
                s.pop();
            }
        }
        all(&mut s, &alphabet, 6, &|p| {
            assert_eq!(is_valid_path(p), by_split(p), "{p:?}");
        });
    }

    #[test]
    fn error_names_roundtrip() {
        for (e, n) in ERROR_NAMES {
            assert_eq!(XsError::from_name(n.as_bytes()), e);
            assert_eq!(e.name(), n);
        }
        assert!(XsError::Eagain.is_transient());
        assert!(!XsError::Eacces.is_transient());
    }
}
