//! The xenbus wire as xenstored sees it: requests parsed from a client, replies emitted to it.
//!
//! The agent is a client: it emits [`Request`]s and parses [`Reply`](super::wire::Reply)s, all
//! in [`super::wire`]. Only servers need the other direction, and the only servers here are the
//! test suite's fake xenstored and the fuzz targets, so this module is built for the crate's
//! own tests and with the `test-support` feature, never into the shipped binary.

use super::wire::{is_valid_path, take_str, MsgType, Packet, Request, WireError, HEADER_LEN};

fn take_path(buf: &[u8]) -> Result<(&str, &[u8]), WireError> {
    let (s, rest) = take_str(buf)?;
    if !is_valid_path(s) {
        return Err(WireError::BadString);
    }
    Ok((s, rest))
}

fn only_path(payload: &[u8]) -> Result<&str, WireError> {
    let (p, rest) = take_path(payload)?;
    if !rest.is_empty() {
        return Err(WireError::BadPayload);
    }
    Ok(p)
}

impl<'a> Request<'a> {
    /// Parses the payload of a request of type `msg_type`.
    pub fn parse(msg_type: MsgType, payload: &'a [u8]) -> Result<Request<'a>, WireError> {
        Ok(match msg_type {
            MsgType::Read => Request::Read(only_path(payload)?),
            MsgType::Mkdir => Request::Mkdir(only_path(payload)?),
            MsgType::Rm => Request::Rm(only_path(payload)?),
            MsgType::Directory => Request::Directory(only_path(payload)?),
            MsgType::GetPerms => Request::GetPerms(only_path(payload)?),
            MsgType::Write => {
                let (path, value) = take_path(payload)?;
                Request::Write { path, value }
            }
            MsgType::SetPerms => {
                let (path, perms) = take_path(payload)?;
                if perms.is_empty() || perms.last() != Some(&0) {
                    return Err(WireError::BadPayload);
                }
                Request::SetPerms { path, perms }
            }
            MsgType::Watch | MsgType::Unwatch => {
                let (path, rest) = take_path(payload)?;
                let (token, rest) = take_str(rest)?;
                // A third field (watch depth) exists in newer xenstored; it is ignored.
                let _ = rest;
                if msg_type == MsgType::Watch {
                    Request::Watch { path, token }
                } else {
                    Request::Unwatch { path, token }
                }
            }
            MsgType::TransactionStart => Request::TransactionStart,
            MsgType::TransactionEnd => match payload {
                b"T\0" | b"T" => Request::TransactionEnd { commit: true },
                b"F\0" | b"F" => Request::TransactionEnd { commit: false },
                _ => return Err(WireError::BadPayload),
            },
            MsgType::GetDomainPath => {
                let (s, _) = take_str(payload)?;
                Request::GetDomainPath(s.parse().map_err(|_| WireError::BadPayload)?)
            }
            _ => return Err(WireError::UnexpectedType),
        })
    }
}

/// Appends a reply message built from `parts` (concatenated as given) to `out`; used by
/// servers such as the test suite's fake xenstored.
pub fn emit_raw(msg_type: MsgType, req_id: u32, tx_id: u32, parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    Packet::new_unchecked(&mut out[start..]).set_header(msg_type, req_id, tx_id, len);
    for p in parts {
        out.extend_from_slice(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(req: Request<'_>) {
        let mut buf = Vec::new();
        req.emit(7, 3, &mut buf);
        let packet = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.req_id(), 7);
        assert_eq!(packet.tx_id(), 3);
        assert_eq!(packet.total_len(), buf.len());
        let parsed = Request::parse(packet.msg_type().unwrap(), packet.payload()).unwrap();
        assert_eq!(parsed, req);
    }

    #[test]
    fn requests_roundtrip() {
        roundtrip(Request::Read("data/os_name"));
        roundtrip(Request::Write {
            path: "/local/domain/3/data/x",
            value: b"hello world",
        });
        roundtrip(Request::Write {
            path: "data/empty",
            value: b"",
        });
        roundtrip(Request::Mkdir("attr"));
        roundtrip(Request::Rm("attr/vif/0"));
        roundtrip(Request::Directory("attr/PVAddons"));
        roundtrip(Request::GetPerms("data"));
        roundtrip(Request::SetPerms {
            path: "data",
            perms: b"n3\0r0\0",
        });
        roundtrip(Request::Watch {
            path: "memory/target",
            token: "t1",
        });
        roundtrip(Request::Unwatch {
            path: "@releaseDomain",
            token: "x",
        });
        roundtrip(Request::TransactionStart);
        roundtrip(Request::TransactionEnd { commit: true });
        roundtrip(Request::TransactionEnd { commit: false });
        roundtrip(Request::GetDomainPath(0));
        roundtrip(Request::GetDomainPath(4_000_000_000));
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert_eq!(
            Request::parse(MsgType::Read, b"data/x"),
            Err(WireError::MissingNul)
        );
        assert_eq!(
            Request::parse(MsgType::Read, b"data/x\0junk"),
            Err(WireError::BadPayload)
        );
        assert_eq!(
            Request::parse(MsgType::Read, b"data//x\0"),
            Err(WireError::BadString)
        );
        assert_eq!(
            Request::parse(MsgType::Read, b"\xff\0"),
            Err(WireError::BadString)
        );
        assert_eq!(
            Request::parse(MsgType::TransactionEnd, b"X\0"),
            Err(WireError::BadPayload)
        );
        assert_eq!(
            Request::parse(MsgType::WatchEvent, b"a\0b\0"),
            Err(WireError::UnexpectedType)
        );
    }
}
