//! What xenstored sends: replies, validated for the request they answer, and watch events.

use super::{is_valid_path, take_cstr, take_str, MsgType, WireError, XsError};

/// A message from xenstored, validated for the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `OK\0`: WRITE, MKDIR, RM, SET_PERMS, WATCH, UNWATCH, TRANSACTION_END.
    Ok,
    /// READ: the value bytes as stored.
    Value(&'a [u8]),
    /// DIRECTORY: NUL-separated child names; iterate with [`Reply::entries`].
    Directory(&'a [u8]),
    /// GET_PERMS: NUL-separated permission entries (owner first).
    Perms(&'a [u8]),
    /// TRANSACTION_START: the new transaction id.
    TransactionId(u32),
    /// GET_DOMAIN_PATH: the domain's home path.
    DomainPath(&'a str),
    /// XS_ERROR.
    Error(XsError),
    /// XS_WATCH_EVENT, unsolicited: a watched node changed.
    WatchEvent { path: &'a str, token: &'a str },
}

impl<'a> Reply<'a> {
    /// Parses a message from xenstored. `expected` is the type of the request it answers; watch
    /// events and errors parse whatever was expected.
    pub fn parse(
        msg_type: MsgType,
        expected: Option<MsgType>,
        payload: &'a [u8],
    ) -> Result<Reply<'a>, WireError> {
        match msg_type {
            MsgType::Error => {
                let name = match take_cstr(payload) {
                    Ok((name, _)) => name,
                    Err(_) => payload,
                };
                return Ok(Reply::Error(XsError::from_name(name)));
            }
            MsgType::WatchEvent => {
                let (path, rest) = take_str(payload)?;
                if !is_valid_path(path) {
                    return Err(WireError::BadString);
                }
                let (token, _) = take_str(rest)?;
                return Ok(Reply::WatchEvent { path, token });
            }
            _ => {}
        }
        if let Some(e) = expected {
            if e != msg_type {
                return Err(WireError::UnexpectedType);
            }
        }
        Ok(match msg_type {
            MsgType::Read => Reply::Value(payload),
            MsgType::Directory => {
                if !payload.is_empty() && payload.last() != Some(&0) {
                    return Err(WireError::MissingNul);
                }
                Reply::Directory(payload)
            }
            MsgType::GetPerms => {
                if payload.last() != Some(&0) {
                    return Err(WireError::MissingNul);
                }
                Reply::Perms(payload)
            }
            MsgType::TransactionStart => {
                let (s, _) = take_str(payload)?;
                Reply::TransactionId(s.parse().map_err(|_| WireError::BadPayload)?)
            }
            MsgType::GetDomainPath => Reply::DomainPath(take_str(payload)?.0),
            MsgType::Write
            | MsgType::Mkdir
            | MsgType::Rm
            | MsgType::SetPerms
            | MsgType::Watch
            | MsgType::Unwatch
            | MsgType::TransactionEnd
            | MsgType::ResetWatches => match payload {
                b"OK\0" | b"OK" => Reply::Ok,
                _ => return Err(WireError::BadPayload),
            },
            _ => return Err(WireError::UnexpectedType),
        })
    }

    /// Child names of a DIRECTORY reply, or entries of a GET_PERMS reply.
    pub fn entries(&self) -> Entries<'a> {
        match *self {
            Reply::Directory(b) | Reply::Perms(b) => Entries { rest: b },
            _ => Entries { rest: &[] },
        }
    }
}

/// Iterator over NUL-terminated strings; non-UTF-8 entries are skipped.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        while !self.rest.is_empty() {
            let nul = self
                .rest
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(self.rest.len());
            let item = &self.rest[..nul];
            self.rest = self.rest.get(nul + 1..).unwrap_or(&[]);
            if let Ok(s) = core::str::from_utf8(item) {
                if !s.is_empty() {
                    return Some(s);
                }
            }
        }
        None
    }
}
