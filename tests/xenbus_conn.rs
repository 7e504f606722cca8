//! The XenStore client against the fake xenstored: every request type, error mapping,
//! transactions, watch events interleaved with replies, size limits, timeouts, stray replies.

mod support;

use std::time::Duration;

use support::fake_xenstored::FakeXenstored;
use support::fault_injector::Fault;
use support::{tempdir, TempDir};
use xenbeacon::xenbus::conn::{Endpoint, Error, WatchEvent, XenbusConn};
use xenbeacon::xenbus::wire::{XsError, PAYLOAD_MAX};

struct Setup {
    xs: FakeXenstored,
    conn: XenbusConn,
    dom0: XenbusConn,
    _dir: TempDir,
}

fn setup(name: &str) -> Setup {
    let dir = tempdir(name);
    let xs = FakeXenstored::start(dir.path());
    let sock = xs.add_domain(7);
    let conn = XenbusConn::open(&Endpoint::Socket(sock)).unwrap();
    let dom0 = XenbusConn::open(&Endpoint::Socket(xs.dom0_socket())).unwrap();
    Setup {
        xs,
        conn,
        dom0,
        _dir: dir,
    }
}

fn ev(path: &str, token: &str) -> WatchEvent {
    WatchEvent {
        path: path.into(),
        token: token.into(),
    }
}

#[test]
fn basic_requests_with_relative_paths() {
    let mut s = setup("basic");
    assert_eq!(s.conn.read_domid().unwrap(), 7);
    s.conn.write("data/a/b", b"hello").unwrap();
    assert_eq!(
        s.xs.read("/local/domain/7/data/a/b").as_deref(),
        Some("hello")
    );
    assert_eq!(s.conn.read("data/a/b").unwrap(), b"hello");
    s.conn.mkdir("data/c").unwrap();
    let mut dir: Vec<String> = s
        .conn
        .directory("data")
        .unwrap()
        .map(String::from)
        .collect();
    dir.sort();
    assert_eq!(dir, ["a", "c"]);
    let perms: Vec<String> = s
        .conn
        .get_perms("data")
        .unwrap()
        .map(String::from)
        .collect();
    assert_eq!(perms, ["n7"]);
    s.conn.rm("data/a").unwrap();
    assert!(!s.xs.exists("/local/domain/7/data/a/b"));
    s.conn.rm("data/a").unwrap(); // already gone: fine
    s.conn.write("data/empty", b"").unwrap();
    assert_eq!(s.conn.read("data/empty").unwrap(), b"");
    assert_eq!(s.conn.requests_sent, 10);
}

#[test]
fn xenstored_errors_are_typed() {
    let mut s = setup("errors");
    assert_eq!(
        s.conn.read("data/missing").unwrap_err().xs(),
        Some(XsError::Enoent)
    );
    assert_eq!(
        s.conn.write("name", b"x").unwrap_err().xs(),
        Some(XsError::Eacces)
    );
    assert_eq!(
        s.conn
            .write("control/feature-balloon", b"1")
            .unwrap_err()
            .xs(),
        Some(XsError::Eacces)
    );
    assert_eq!(
        s.conn.read("/local/domain/0/domid").unwrap_err().xs(),
        Some(XsError::Eacces)
    );
    assert!(matches!(
        s.conn.write("data/a b", b"x"),
        Err(Error::InvalidPath)
    ));
    assert!(matches!(s.conn.read(""), Err(Error::InvalidPath)));
    // The connection is still fine after errors.
    s.conn.write("data/ok", b"1").unwrap();
    assert!(!Error::Xs(XsError::Eacces).is_connection_lost());
}

#[test]
fn payload_limits() {
    let mut s = setup("limits");
    let big = vec![b'x'; PAYLOAD_MAX];
    assert!(matches!(
        s.conn.write("data/big", &big),
        Err(Error::TooLarge)
    ));
    // A 4 KiB reply (the legal maximum) is read whole.
    s.xs.faults().add(Fault::OversizeReply, Some(1));
    assert_eq!(s.conn.read("data").unwrap().len(), 4096);
    // The device takes 16 bytes less, since its buffer includes the header.
    assert_eq!(
        Endpoint::Device("/dev/xen/xenbus".into()).payload_max(),
        PAYLOAD_MAX - 16
    );
}

#[test]
fn transactions_commit_abort_and_conflict() {
    let mut s = setup("tx");
    s.conn.transaction_start().unwrap();
    s.conn.write("data/t", b"1").unwrap();
    assert!(!s.xs.exists("/local/domain/7/data/t"));
    s.conn.transaction_end(true).unwrap();
    assert_eq!(s.xs.read("/local/domain/7/data/t").as_deref(), Some("1"));

    s.conn.transaction_start().unwrap();
    s.conn.write("data/t", b"2").unwrap();
    s.conn.transaction_end(false).unwrap();
    assert_eq!(s.xs.read("/local/domain/7/data/t").as_deref(), Some("1"));

    s.conn.transaction_start().unwrap();
    s.conn.write("data/t", b"3").unwrap();
    s.dom0.write("/local/domain/7/data/other", b"x").unwrap();
    assert_eq!(
        s.conn.transaction_end(true).unwrap_err().xs(),
        Some(XsError::Eagain)
    );
    assert_eq!(s.xs.read("/local/domain/7/data/t").as_deref(), Some("1"));
    // Requests after the transaction are outside it again.
    s.conn.write("data/t", b"4").unwrap();
    assert_eq!(s.xs.read("/local/domain/7/data/t").as_deref(), Some("4"));
}

#[test]
fn watch_events_interleave_with_replies() {
    let mut s = setup("watch");
    s.conn.watch("memory/target", "tgt").unwrap();
    s.dom0
        .write("/local/domain/7/memory/target", b"98304")
        .unwrap();
    // The event arrives while the agent waits for an unrelated reply: it is queued, the reply
    // still matches its request.
    assert_eq!(s.conn.read("domid").unwrap(), b"7");
    assert_eq!(s.conn.pending_event(), Some(ev("memory/target", "tgt")));
    assert_eq!(s.conn.pending_event(), Some(ev("memory/target", "tgt")));
    assert_eq!(s.conn.pending_event(), None);

    s.xs.faults().add(Fault::SpuriousWatchEvent, Some(3));
    for i in 0..3 {
        s.conn.write("data/n", format!("{i}").as_bytes()).unwrap();
        assert_eq!(s.conn.read("data/n").unwrap(), format!("{i}").as_bytes());
    }
    let spurious = std::iter::from_fn(|| s.conn.pending_event()).filter(|e| e.token == "spurious");
    assert_eq!(spurious.count(), 3);

    s.conn.unwatch("memory/target", "tgt").unwrap();
    s.dom0.write("/local/domain/7/memory/target", b"1").unwrap();
    assert_eq!(s.conn.read("domid").unwrap(), b"7");
    assert_eq!(s.conn.pending_event(), None);
}

#[test]
fn receive_queues_events_that_arrive_between_requests() {
    let mut s = setup("receive");
    s.conn.watch("data", "d").unwrap();
    s.dom0.write("/local/domain/7/data/x", b"1").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.conn.receive().unwrap();
    let events: Vec<WatchEvent> = std::iter::from_fn(|| s.conn.pending_event()).collect();
    assert_eq!(events, [ev("data", "d"), ev("data/x", "d")]);
}

#[test]
fn a_late_reply_is_dropped_by_req_id() {
    let mut s = setup("stray");
    s.conn.write("data/v", b"first").unwrap();
    s.xs.faults()
        .add(Fault::Delay(Duration::from_millis(300)), Some(1));
    s.conn.set_reply_timeout(Duration::from_millis(50));
    let e = s.conn.read("data/v").unwrap_err();
    assert!(matches!(e, Error::Timeout) && e.is_connection_lost());
    // A caller that keeps the connection anyway still gets the right reply.
    s.conn.set_reply_timeout(Duration::from_secs(5));
    s.conn.write("data/v", b"second").unwrap();
    assert_eq!(s.conn.read("data/v").unwrap(), b"second");
    assert_eq!(s.conn.stray_replies, 1);
}

#[test]
fn a_closed_connection_is_reported() {
    let mut s = setup("closed");
    s.conn.write("data/v", b"1").unwrap();
    s.xs.disconnect_all();
    std::thread::sleep(Duration::from_millis(100));
    let e = s.conn.read("data/v").unwrap_err();
    assert!(e.is_connection_lost(), "{e}");
    let mut fresh = XenbusConn::open(&Endpoint::Socket(s.xs.socket(7))).unwrap();
    assert_eq!(fresh.read("data/v").unwrap(), b"1");
}

#[test]
fn errors_read_as_one_line() {
    assert_eq!(
        Error::Xs(XsError::Eacces).to_string(),
        "xenstored refused: permission denied (EACCES)"
    );
    assert_eq!(Error::Closed.to_string(), "xenstore closed the connection");
}
