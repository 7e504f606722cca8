//! `XenbusConn` over a scripted transport: what the fd can do to a connection (EAGAIN, EINTR,
//! short reads and writes, a closed peer) and what a broken or hostile xenstored can send
//! (malformed replies, oversize lengths, replies out of order, events between replies), each
//! checked by the exact reply, error or queued event that comes out.

use std::path::PathBuf;

use super::*;
use crate::xenbus::scripted::{ScriptedTransport, Step, WriteStep};
use crate::xenbus::server_wire::emit_raw;
use crate::xenbus::wire::DEVICE_MSG_MAX;

fn socket() -> Endpoint {
    Endpoint::Socket(PathBuf::from("/scripted/socket"))
}

fn device() -> Endpoint {
    Endpoint::Device(PathBuf::from("/scripted/xenbus"))
}

/// A connection to a socket whose reads play `steps`.
fn conn(steps: &[Step]) -> XenbusConn<ScriptedTransport> {
    conn_to(socket(), steps)
}

fn conn_to(endpoint: Endpoint, steps: &[Step]) -> XenbusConn<ScriptedTransport> {
    let mut t = ScriptedTransport::new();
    for s in steps {
        t.then(s.clone());
    }
    XenbusConn::with_transport(t, &endpoint)
}

/// One message from xenstored.
fn msg(msg_type: MsgType, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    emit_raw(msg_type, req_id, 0, &[payload], &mut out);
    out
}

fn event_msg(path: &str, token: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let parts: [&[u8]; 4] = [path.as_bytes(), b"\0", token.as_bytes(), b"\0"];
    emit_raw(MsgType::WatchEvent, 0, 0, &parts, &mut out);
    out
}

fn ev(path: &str, token: &str) -> WatchEvent {
    WatchEvent {
        path: path.into(),
        token: token.into(),
    }
}

/// The bytes a request with `req_id` is on the wire.
fn request_bytes(req: Request<'_>, req_id: u32) -> Vec<u8> {
    let mut out = Vec::new();
    req.emit(req_id, 0, &mut out);
    out
}

fn errno(e: &Error) -> Option<i32> {
    match e {
        Error::Io(io) => io.raw_os_error(),
        _ => None,
    }
}

#[test]
fn a_reply_and_an_event_split_at_every_byte_arrive_whole() {
    let mut stream = event_msg("memory/target", "mem");
    stream.extend(msg(MsgType::Read, 1, b"hello"));
    for cut in 1..stream.len() {
        let mut c = conn(&[
            Step::Bytes(stream[..cut].to_vec()),
            Step::Bytes(stream[cut..].to_vec()),
        ]);
        assert_eq!(c.read("data/x").unwrap(), b"hello", "cut at byte {cut}");
        assert_eq!(
            c.pending_event(),
            Some(ev("memory/target", "mem")),
            "cut at byte {cut}"
        );
        assert_eq!(c.pending_event(), None);
        assert_eq!(c.transport.steps_left(), 0, "cut at byte {cut}");
        assert_eq!(c.stray_replies, 0);
    }
}

#[test]
fn one_byte_per_read_with_eagain_between_bytes() {
    let mut reply = msg(MsgType::Directory, 1, b"a\0bb\0");
    reply.extend(event_msg("data/y", "t"));
    let mut steps = Vec::new();
    for &b in &reply {
        steps.push(Step::Bytes(vec![b]));
        steps.push(Step::ReadError(libc::EAGAIN));
    }
    let mut c = conn(&steps);
    let names: Vec<String> = c.directory("data").unwrap().map(String::from).collect();
    assert_eq!(names, ["a", "bb"]);
    // Reading stopped where the reply was whole; the event comes in as the event loop
    // calls receive on each readable poll.
    assert_eq!(c.pending_event(), None);
    while c.transport.steps_left() > 0 {
        c.receive().unwrap();
    }
    assert_eq!(c.pending_event(), Some(ev("data/y", "t")));
    assert_eq!(c.transport.steps_left(), 0);
}

#[test]
fn eintr_on_read_and_on_wait_is_retried_and_eagain_waits_again() {
    let reply = msg(MsgType::Read, 1, b"42");
    let mut c = conn(&[
        Step::WaitError(libc::EINTR),
        Step::ReadError(libc::EINTR),
        Step::ReadError(libc::EAGAIN),
        Step::Bytes(reply),
    ]);
    assert_eq!(c.read("memory/target").unwrap(), b"42");
    // EINTR in poll: wait again; EINTR in read: read again; EAGAIN: wait again.
    assert_eq!(c.transport.waits(), 3);
    assert_eq!(c.transport.reads(), 3);
}

#[test]
fn short_writes_eagain_and_eintr_send_the_request_exactly_once() {
    let mut c = conn(&[Step::Bytes(msg(MsgType::Write, 1, b"OK\0"))]);
    c.transport
        .then_write(WriteStep::Accept(1))
        .then_write(WriteStep::Error(libc::EAGAIN))
        .then_write(WriteStep::Accept(7))
        .then_write(WriteStep::Error(libc::EINTR))
        .then_write(WriteStep::Accept(3));
    c.write("data/os_name", b"Debian").unwrap();
    let expected = request_bytes(
        Request::Write {
            path: "data/os_name",
            value: b"Debian",
        },
        1,
    );
    assert_eq!(c.transport.written(), &expected[..]);
    assert_eq!(c.requests_sent, 1);
}

#[test]
fn a_closed_peer_is_closed_and_loses_the_connection() {
    let mut c = conn(&[]);
    c.transport.then_write(WriteStep::Error(libc::EPIPE));
    let e = c.write("data/x", b"1").unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");
    assert!(e.is_connection_lost());

    let mut half = msg(MsgType::Read, 1, b"value");
    half.truncate(10);
    let e = conn(&[Step::Bytes(half), Step::Eof])
        .read("data/x")
        .unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");

    let e = conn(&[Step::ReadError(libc::ECONNRESET)])
        .read("data/x")
        .unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");

    let e = conn(&[Step::ReadError(libc::EIO)])
        .read("data/x")
        .unwrap_err();
    assert_eq!(errno(&e), Some(libc::EIO), "{e:?}");
    assert!(e.is_connection_lost());
}

#[test]
fn a_malformed_reply_fails_its_request_and_the_next_one_works() {
    let mut unknown_type = msg(MsgType::Write, 3, b"OK\0");
    unknown_type[..4].copy_from_slice(&99u32.to_ne_bytes());
    let mut c = conn(&[
        Step::Bytes(msg(MsgType::Write, 1, b"KO\0")),
        Step::Bytes(msg(MsgType::Read, 2, b"not a write reply")),
        Step::Bytes(unknown_type),
        Step::Bytes(msg(MsgType::Read, 4, b"fine")),
    ]);
    let e = c.write("data/a", b"1").unwrap_err();
    assert!(matches!(e, Error::Wire(WireError::BadPayload)), "{e:?}");
    assert!(!e.is_connection_lost());
    let e = c.write("data/b", b"1").unwrap_err();
    assert!(matches!(e, Error::Wire(WireError::UnexpectedType)), "{e:?}");
    let e = c.write("data/c", b"1").unwrap_err();
    assert!(matches!(e, Error::Wire(WireError::UnknownType)), "{e:?}");
    assert_eq!(c.read("data/d").unwrap(), b"fine");
}

#[test]
fn an_oversize_length_is_a_wire_error_that_loses_the_connection() {
    let mut header = msg(MsgType::Read, 1, b"");
    header[12..16].copy_from_slice(&(PAYLOAD_MAX as u32 + 1).to_ne_bytes());
    let mut c = conn(&[Step::Bytes(header)]);
    let e = c.read("data/x").unwrap_err();
    assert!(matches!(e, Error::Wire(WireError::PayloadTooLong)), "{e:?}");
    assert!(e.is_connection_lost());

    let mut header = event_msg("data/x", "t");
    header[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
    let mut c = conn(&[Step::Bytes(header)]);
    let e = c.receive().unwrap_err();
    assert!(matches!(e, Error::Wire(WireError::PayloadTooLong)), "{e:?}");
}

#[test]
fn replies_out_of_order_are_matched_by_req_id() {
    let mut c = conn(&[]);
    // Request 1 gets no reply in time.
    assert!(matches!(c.read("data/slow"), Err(Error::Timeout)));
    // Its late reply, then a reply to a request never sent, then request 2's.
    c.transport
        .then(Step::Bytes(msg(MsgType::Read, 1, b"late")))
        .then(Step::Bytes(msg(MsgType::Read, 7, b"unknown")))
        .then(Step::Bytes(msg(MsgType::Read, 2, b"mine")));
    assert_eq!(c.read("data/fast").unwrap(), b"mine");
    assert_eq!(c.stray_replies, 2);
    assert_eq!(c.requests_sent, 2);
}

#[test]
fn watch_events_around_a_reply_are_queued_in_order() {
    let mut stream = event_msg("data/a", "t1");
    stream.extend(msg(MsgType::Read, 1, b"v"));
    stream.extend(event_msg("data/b", "t2"));
    let mut c = conn(&[Step::Bytes(stream)]);
    assert_eq!(c.read("data/x").unwrap(), b"v");
    assert!(c.has_pending_event());
    assert_eq!(c.pending_event(), Some(ev("data/a", "t1")));
    assert_eq!(c.pending_event(), Some(ev("data/b", "t2")));
    assert_eq!(c.pending_event(), None);
}

#[test]
fn a_bounded_queue_coalesces_by_token_and_counts_what_it_drops() {
    let mut stream = Vec::new();
    for (path, token) in [("a", "t1"), ("b", "t1"), ("c", "t2"), ("d", "t3")] {
        stream.extend(event_msg(path, token));
    }
    let mut c = conn(&[Step::Bytes(stream)]);
    c.limit_events(2);
    c.receive().unwrap();
    assert_eq!(c.pending_event(), Some(ev("a", "t1")));
    assert_eq!(c.pending_event(), Some(ev("c", "t2")));
    assert_eq!(c.pending_event(), None);
    assert_eq!(c.take_overflow(), 1);
    assert_eq!(c.take_overflow(), 0);
}

#[test]
fn receive_queues_events_and_drops_unsolicited_replies() {
    let mut stream = event_msg("data/a", "t1");
    stream.extend(msg(MsgType::Read, 5, b"nobody asked"));
    stream.extend(event_msg("data/b", "t2"));
    let cut = stream.len() - 3;
    let mut c = conn(&[
        Step::Bytes(stream[..cut].to_vec()),
        Step::Bytes(stream[cut..].to_vec()),
    ]);
    c.receive().unwrap();
    assert_eq!(c.pending_event(), Some(ev("data/a", "t1")));
    assert_eq!(c.pending_event(), Some(ev("data/b", "t2")));
    assert_eq!(c.stray_replies, 1);
    // Nothing more: receive reads until EAGAIN and returns.
    c.receive().unwrap();
    assert_eq!(c.pending_event(), None);
}

#[test]
fn the_device_answers_watch_with_req_id_zero_a_socket_may_not() {
    let ok = msg(MsgType::Watch, 0, b"OK\0");
    let mut c = conn_to(device(), &[Step::Bytes(ok.clone())]);
    c.watch("memory/target", "mem").unwrap();

    let mut c = conn_to(socket(), &[Step::Bytes(ok)]);
    assert!(matches!(
        c.watch("memory/target", "mem"),
        Err(Error::Timeout)
    ));
    assert_eq!(c.stray_replies, 1);
}

#[test]
fn the_device_refuses_a_request_longer_than_its_buffer() {
    let value = vec![b'x'; DEVICE_MSG_MAX - HEADER_LEN];
    let mut c = conn_to(device(), &[]);
    assert!(matches!(c.write("data/x", &value), Err(Error::TooLarge)));
    assert!(c.transport.written().is_empty());
    assert!(matches!(c.read("data//x"), Err(Error::InvalidPath)));
    assert!(c.transport.written().is_empty());
}

#[test]
fn an_interrupt_or_a_passed_deadline_ends_the_wait() {
    let mut c = conn(&[Step::Interrupt, Step::Bytes(msg(MsgType::Read, 1, b"v"))]);
    let e = c.read("data/x").unwrap_err();
    assert!(matches!(e, Error::Interrupted), "{e:?}");
    assert!(e.is_connection_lost());

    let mut c = conn(&[Step::Bytes(msg(MsgType::Read, 1, b"v"))]);
    c.set_deadline(Some(Instant::now()));
    assert!(matches!(c.read("data/x"), Err(Error::Timeout)));
    assert_eq!(c.transport.waits(), 0);
}

#[test]
fn a_full_buffer_of_reply_and_event_is_not_mistaken_for_a_close() {
    // A largest reply and a largest event in one read fill the receive buffer exactly.
    let value = vec![b'v'; PAYLOAD_MAX];
    let path = format!("/{}", "p".repeat(3000));
    let token = "t".repeat(PAYLOAD_MAX - path.len() - 2);
    let mut stream = msg(MsgType::Read, 1, &value);
    stream.extend(event_msg(&path, &token));
    assert_eq!(stream.len(), INBUF_LEN);
    let mut c = conn(&[Step::Bytes(stream)]);
    assert_eq!(c.read("data/big").unwrap(), &value[..]);
    c.receive().unwrap();
    assert_eq!(c.pending_event(), Some(ev(&path, &token)));
}

/// xorshift64: the same pieces for the same seed, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn a_long_session_in_random_pieces_with_errors_between_them() {
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut stream = Vec::new();
        let mut values = Vec::new();
        let mut events = Vec::new();
        let mut strays = 0;
        for id in 1..=12u32 {
            for _ in 0..rng.below(3) {
                let e = ev(&format!("data/n{}", rng.below(100)), &format!("t{id}"));
                stream.extend(event_msg(&e.path, &e.token));
                events.push(e);
            }
            if rng.below(4) == 0 {
                stream.extend(msg(MsgType::Read, id + 1000, b"stray"));
                strays += 1;
            }
            let value = vec![b'a' + (id % 26) as u8; [0, 1, 100, PAYLOAD_MAX][rng.below(4)]];
            stream.extend(msg(MsgType::Read, id, &value));
            values.push(value);
        }
        let mut t = ScriptedTransport::new();
        let mut at = 0;
        while at < stream.len() {
            match rng.below(8) {
                0 => t.then(Step::ReadError(libc::EAGAIN)),
                1 => t.then(Step::ReadError(libc::EINTR)),
                2 => t.then(Step::WaitError(libc::EINTR)),
                _ => {
                    let n = (1 + rng.below(600)).min(stream.len() - at);
                    at += n;
                    t.then(Step::Bytes(stream[at - n..at].to_vec()))
                }
            };
        }
        for _ in 0..40 {
            t.then_write(match rng.below(3) {
                0 => WriteStep::Error(libc::EAGAIN),
                _ => WriteStep::Accept(1 + rng.below(20)),
            });
        }
        let mut c = XenbusConn::with_transport(t, &socket());
        let mut expected_written = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let path = format!("data/k{i}");
            assert_eq!(
                c.read(&path).unwrap(),
                &value[..],
                "seed {seed}, request {i}"
            );
            expected_written.extend(request_bytes(Request::Read(&path), i as u32 + 1));
        }
        let mut got = Vec::new();
        while let Some(e) = c.pending_event() {
            got.push(e);
        }
        assert_eq!(got, events, "seed {seed}");
        assert_eq!(c.stray_replies, strays, "seed {seed}");
        assert_eq!(c.transport.written(), &expected_written[..], "seed {seed}");
        assert_eq!(c.transport.steps_left(), 0, "seed {seed}");
    }
}
