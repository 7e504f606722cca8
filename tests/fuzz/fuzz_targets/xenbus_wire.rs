//! The xenbus wire decoder: framing (`message_len`, `Packet`), `Request::parse` and
//! `Reply::parse` on whatever bytes a hostile xenstored (or guest) could send.
//!
//! Properties, besides "no panic":
//! * framing: a message is never longer than header + 4096, `Packet::new_checked` accepts a
//!   buffer exactly when the declared payload fits it;
//! * a parsed request has the type it was parsed as, its path is one xenstored accepts, and
//!   emitting it and parsing the result gives the same request (parse . emit . parse = parse);
//! * a request built from the input (valid path, any value) round-trips through emit/parse
//!   exactly, with the header fields it was emitted with;
//! * a parsed reply is consistent with its payload (directory entries are non-empty, NUL-free
//!   pieces of it; a watch event's path is valid; OK is `OK`), and re-emitting a listing or a
//!   value parses back to the same reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xenbeacon::xenbus::server_wire::emit_raw;
use xenbeacon::xenbus::wire::{
    is_valid_path, message_len, MsgType, Packet, Reply, Request, WireError, HEADER_LEN, PAYLOAD_MAX,
};

/// Every wire value `xs_wire.h` defines, plus some it does not.
const RAW_TYPES: [u32; 25] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 99,
];

fuzz_target!(|data: &[u8]| {
    frames(data);
    if let Some((&sel, payload)) = data.split_first() {
        // The input as the payload of one message of a chosen type, so that every parser sees
        // arbitrary payloads without having to find the framing first.
        let raw = RAW_TYPES[sel as usize % RAW_TYPES.len()];
        let expected = MsgType::from_u32(RAW_TYPES[(sel as usize / 25) % RAW_TYPES.len()]);
        message(raw, expected, payload);
        built_request(sel, payload);
    }
});

/// The input as a stream of messages, as `XenbusConn` reads it.
fn frames(mut rest: &[u8]) {
    let mut n = 0;
    while n < 64 {
        n += 1;
        match message_len(rest) {
            Ok(None) => {
                assert!(rest.len() < HEADER_LEN);
                return;
            }
            Err(e) => {
                assert_eq!(e, WireError::PayloadTooLong);
                assert!(Packet::new_checked(rest).is_err());
                return;
            }
            Ok(Some(len)) => {
                assert!((HEADER_LEN..=HEADER_LEN + PAYLOAD_MAX).contains(&len));
                let checked = Packet::new_checked(rest);
                if len > rest.len() {
                    assert_eq!(checked.unwrap_err(), WireError::Truncated);
                    return;
                }
                let packet = checked.expect("declared length fits");
                assert_eq!(packet.total_len(), len);
                assert_eq!(packet.payload().len(), len - HEADER_LEN);
                let raw = packet.msg_type_raw();
                assert_eq!(
                    packet.msg_type().ok().map(MsgType::to_u32),
                    MsgType::from_u32(raw).map(MsgType::to_u32)
                );
                message(
                    raw,
                    MsgType::from_u32(packet.req_id() % 23),
                    packet.payload(),
                );
                rest = &rest[len..];
            }
        }
    }
}

fn message(raw: u32, expected: Option<MsgType>, payload: &[u8]) {
    let Some(t) = MsgType::from_u32(raw) else {
        return;
    };
    assert_eq!(t.to_u32(), raw);
    request(t, payload);
    reply(t, expected, payload);
    reply(t, None, payload);
    reply(t, Some(t), payload);
}

fn request(t: MsgType, payload: &[u8]) {
    let Ok(req) = Request::parse(t, payload) else {
        return;
    };
    assert_eq!(req.msg_type(), t);
    if let Some(p) = req.path() {
        assert!(is_valid_path(p), "{p:?}");
    }
    roundtrip(&req, 1, 0);
}

/// Emits `req` with `req_id`/`tx_id`, checks the header, and that it parses back to `req`.
fn roundtrip(req: &Request<'_>, req_id: u32, tx_id: u32) {
    let mut buf = Vec::new();
    req.emit(req_id, tx_id, &mut buf);
    assert_eq!(buf.len(), HEADER_LEN + req.payload_len());
    let packet = Packet::new_unchecked(&buf[..]);
    assert_eq!(packet.req_id(), req_id);
    assert_eq!(packet.tx_id(), tx_id);
    assert_eq!(packet.msg_type(), Ok(req.msg_type()));
    assert_eq!(packet.payload_len(), req.payload_len());
    if req.payload_len() <= PAYLOAD_MAX {
        assert!(Packet::new_checked(&buf[..]).is_ok());
    }
    match Request::parse(req.msg_type(), packet.payload()) {
        Ok(parsed) => assert_eq!(&parsed, req),
        Err(e) => panic!(
            "{req:?} emitted as {:?} does not parse: {e}",
            packet.payload()
        ),
    }
}

fn reply(t: MsgType, expected: Option<MsgType>, payload: &[u8]) {
    let Ok(r) = Reply::parse(t, expected, payload) else {
        return;
    };
    match r {
        Reply::Ok => assert!(payload == b"OK\0" || payload == b"OK"),
        Reply::Value(v) => {
            assert_eq!(v, payload);
            let mut buf = Vec::new();
            emit_raw(MsgType::Read, 9, 0, &[v], &mut buf);
            let p = Packet::new_unchecked(&buf[..]);
            assert_eq!(
                Reply::parse(MsgType::Read, Some(MsgType::Read), p.payload()),
                Ok(r)
            );
        }
        Reply::Directory(b) | Reply::Perms(b) => {
            assert_eq!(b, payload);
            let mut total = 0;
            for e in r.entries() {
                assert!(!e.is_empty() && !e.contains('\0'));
                total += e.len() + 1;
            }
            assert!(total <= b.len());
            let mut buf = Vec::new();
            emit_raw(t, 9, 0, &[b], &mut buf);
            let p = Packet::new_unchecked(&buf[..]);
            assert_eq!(Reply::parse(t, Some(t), p.payload()), Ok(r));
        }
        Reply::TransactionId(_) => assert_eq!(t, MsgType::TransactionStart),
        Reply::DomainPath(p) => {
            assert_eq!(t, MsgType::GetDomainPath);
            assert!(!p.contains('\0'));
        }
        Reply::Error(e) => {
            assert_eq!(t, MsgType::Error);
            let _ = (e.name(), e.to_string(), e.is_transient());
        }
        Reply::WatchEvent { path, token } => {
            assert_eq!(t, MsgType::WatchEvent);
            assert!(is_valid_path(path));
            assert!(!token.contains('\0'));
        }
    }
    if let (Some(e), false) = (expected, matches!(t, MsgType::Error | MsgType::WatchEvent)) {
        assert_eq!(e, t, "a reply of another type than expected was accepted");
    }
}

/// Characters paths are built from: mostly valid ones, a few that are not.
const PATH_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789/_-@ABZ/./ \xc3";

/// A request built from the input: kind from `sel`, fields NUL-separated.
fn built_request(sel: u8, rest: &[u8]) {
    let mut fields = rest.splitn(3, |&c| c == 0);
    let path_bytes: Vec<u8> = fields
        .next()
        .unwrap_or_default()
        .iter()
        .map(|&c| PATH_CHARS[c as usize % PATH_CHARS.len()])
        .collect();
    let Ok(path) = std::str::from_utf8(&path_bytes) else {
        return;
    };
    let second = fields.next().unwrap_or_default();
    let third = fields.next().unwrap_or_default();
    let n = u32::from_ne_bytes(
        [second, &[0; 4]].concat()[..4]
            .try_into()
            .expect("four bytes"),
    );
    let token = std::str::from_utf8(second).ok();
    let mut perms = third.to_vec();
    perms.push(0);
    let req = match sel % 12 {
        0 => Request::Read(path),
        1 => Request::Write {
            path,
            value: second,
        },
        2 => Request::Mkdir(path),
        3 => Request::Rm(path),
        4 => Request::Directory(path),
        5 => Request::GetPerms(path),
        6 => Request::SetPerms {
            path,
            perms: &perms,
        },
        7 => match token {
            Some(token) => Request::Watch { path, token },
            None => return,
        },
        8 => match token {
            Some(token) => Request::Unwatch { path, token },
            None => return,
        },
        9 => Request::TransactionStart,
        10 => Request::TransactionEnd { commit: n % 2 == 0 },
        _ => Request::GetDomainPath(n),
    };
    if let Some(p) = req.path().filter(|p| !is_valid_path(p)) {
        // A path xenstored would refuse: the parser refuses it too.
        let mut buf = Vec::new();
        req.emit(1, 0, &mut buf);
        let parsed = Request::parse(req.msg_type(), &buf[HEADER_LEN..]);
        assert!(parsed.is_err(), "invalid path {p:?} accepted: {parsed:?}");
        return;
    }
    roundtrip(&req, u32::from(sel).wrapping_mul(7919), n);
}
