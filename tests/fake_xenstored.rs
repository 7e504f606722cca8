//! Integration tests of the fake xenstored itself, through a tiny raw client built directly on
//! the wire codec (`Request::emit`, `Packet`, `Reply::parse`) over a unix socket.

mod support;

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use support::fake_xenstored::FakeXenstored;
use support::fault_injector::{Fault, MalformedKind};
use xenbeacon::xenbus::server_wire;
use xenbeacon::xenbus::wire::{self, MsgType, Packet, Reply, Request as R, WireError, XsError};

#[derive(Debug, PartialEq)]
enum Fail {
    Xs(XsError),
    Wire(WireError),
    Io(ErrorKind),
}

fn err<T>(e: XsError) -> Result<T, Fail> {
    Err(Fail::Xs(e))
}

fn s(text: &str) -> Result<String, Fail> {
    Ok(text.to_string())
}

fn ev(path: &str, token: &str) -> (String, String) {
    (path.to_string(), token.to_string())
}

/// One message as received: raw type, req_id, tx_id, payload.
type Msg = (u32, u32, u32, Vec<u8>);

struct Client {
    stream: UnixStream,
    next_id: u32,
    /// Transaction id put in the header of every request.
    tx: u32,
    events: VecDeque<(String, String)>,
}

impl Client {
    fn connect(path: &Path) -> Client {
        let stream = UnixStream::connect(path).expect("connect to fake xenstored");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let events = VecDeque::new();
        Client {
            stream,
            next_id: 1,
            tx: 0,
            events,
        }
    }

    fn send(&mut self, req: R<'_>) -> u32 {
        let (id, mut buf) = (self.next_id, Vec::new());
        self.next_id += 1;
        req.emit(id, self.tx, &mut buf);
        self.stream.write_all(&buf).unwrap();
        id
    }

    fn recv(&mut self) -> io::Result<Msg> {
        let mut header = [0u8; wire::HEADER_LEN];
        self.stream.read_exact(&mut header)?;
        let p = Packet::new_unchecked(&header[..]);
        let mut payload = vec![0; p.payload_len()];
        self.stream.read_exact(&mut payload)?;
        Ok((p.msg_type_raw(), p.req_id(), p.tx_id(), payload))
    }

    /// Sends `req`, queues watch events, and returns the payload of a successful reply.
    fn call(&mut self, req: R<'_>) -> Result<Vec<u8>, Fail> {
        let (tx, id) = (self.tx, self.send(req));
        loop {
            let (ty, req_id, tx_id, payload) = self.recv().map_err(|e| Fail::Io(e.kind()))?;
            let ty = MsgType::from_u32(ty).ok_or(Fail::Wire(WireError::UnknownType))?;
            let reply = Reply::parse(ty, Some(req.msg_type()), &payload).map_err(Fail::Wire)?;
            if let Reply::WatchEvent { path, token } = reply {
                self.events.push_back(ev(path, token));
                continue;
            }
            assert_eq!(
                (req_id, tx_id),
                (id, tx),
                "reply header must echo the request"
            );
            if let Reply::Error(e) = reply {
                return Err(Fail::Xs(e));
            }
            return Ok(payload);
        }
    }

    /// For requests answered with `OK`.
    fn ok(&mut self, req: R<'_>) -> Result<(), Fail> {
        assert_eq!(self.call(req)?, b"OK\0");
        Ok(())
    }
    fn read(&mut self, path: &str) -> Result<String, Fail> {
        Ok(String::from_utf8(self.call(R::Read(path))?).unwrap())
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), Fail> {
        let value = value.as_bytes();
        self.ok(R::Write { path, value })
    }
    /// DIRECTORY or GET_PERMS entries, joined with commas.
    fn list(&mut self, req: R<'_>) -> Result<String, Fail> {
        let raw = self.call(req)?;
        let reply = Reply::parse(req.msg_type(), None, &raw).map_err(Fail::Wire)?;
        Ok(reply.entries().collect::<Vec<_>>().join(","))
    }
    fn set_perms(&mut self, path: &str, perms: &str) -> Result<(), Fail> {
        let perms = format!("{}\0", perms.replace(',', "\0"));
        self.ok(R::SetPerms {
            path,
            perms: perms.as_bytes(),
        })
    }
    fn watch(&mut self, path: &str, token: &str, on: bool) -> Result<(), Fail> {
        self.ok(if on {
            R::Watch { path, token }
        } else {
            R::Unwatch { path, token }
        })
    }
    fn begin(&mut self) -> u32 {
        let raw = self.call(R::TransactionStart).unwrap();
        match Reply::parse(MsgType::TransactionStart, None, &raw) {
            Ok(Reply::TransactionId(id)) => self.tx = id,
            other => panic!("bad TRANSACTION_START reply {other:?}"),
        }
        self.tx
    }
    fn end(&mut self, commit: bool) -> Result<(), Fail> {
        let result = self.ok(R::TransactionEnd { commit });
        self.tx = 0;
        result
    }

    /// The next watch event (queued or read now).
    fn event(&mut self) -> (String, String) {
        if let Some(e) = self.events.pop_front() {
            return e;
        }
        let (ty, req_id, tx_id, payload) = self.recv().expect("a watch event");
        assert_eq!((ty, req_id, tx_id), (MsgType::WatchEvent.to_u32(), 0, 0));
        match Reply::parse(MsgType::WatchEvent, None, &payload) {
            Ok(Reply::WatchEvent { path, token }) => ev(path, token),
            other => panic!("bad watch event {other:?}"),
        }
    }

    /// True if nothing is queued and nothing arrives within 200 ms.
    fn quiet(&mut self) -> bool {
        let short = Some(Duration::from_millis(200));
        self.stream.set_read_timeout(short).unwrap();
        let got = self.recv();
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let timeout =
            |e: &io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
        self.events.is_empty() && got.as_ref().err().is_some_and(timeout)
    }
}

/// The temp dir comes first so the server (dropped first) can remove its sockets.
fn setup(name: &str) -> (support::TempDir, FakeXenstored) {
    let dir = support::tempdir(name);
    let xs = FakeXenstored::start(dir.path());
    (dir, xs)
}

#[test]
fn dom0_read_write_directory_mkdir_rm() {
    let (_dir, xs) = setup("dom0");
    let mut c = Client::connect(&xs.dom0_socket());
    assert_eq!(c.list(R::Directory("/")), s("local,tool"));
    c.write("/tool/a/b", "v1").unwrap();
    assert_eq!(c.read("/tool/a/b"), s("v1"));
    let dump = [("/tool", ""), ("/tool/a", ""), ("/tool/a/b", "v1")];
    assert_eq!(
        xs.dump("/tool"),
        dump.map(|(k, v)| (k.into(), v.into())).into()
    );
    c.ok(R::Mkdir("/tool/a/c")).unwrap();
    c.ok(R::Mkdir("/tool/a/c")).unwrap();
    assert_eq!(c.call(R::Directory("/tool/a")), Ok(b"b\0c\0".to_vec()));
    assert_eq!(c.read("/tool/nope"), err(XsError::Enoent));
    c.ok(R::Rm("/tool/a")).unwrap();
    assert!(!xs.exists("/tool/a/b") && !xs.exists("/tool/a"));
    c.ok(R::Rm("/tool/a")).unwrap(); // missing, but its parent exists
    assert_eq!(c.ok(R::Rm("/tool/x/y")), err(XsError::Enoent));
    assert_eq!(c.ok(R::Rm("/")), err(XsError::Einval));
    assert_eq!(c.call(R::GetPerms("/local")), Ok(b"n0\0".to_vec()));
    let domain_path = c.call(R::GetDomainPath(7));
    assert_eq!(domain_path, Ok(b"/local/domain/7\0".to_vec()));
    c.write("rel", "x").unwrap();
    assert_eq!(xs.read("/local/domain/0/rel").as_deref(), Some("x"));
    let stats = xs.stats();
    assert_eq!(stats.count(0, MsgType::Write), 2);
    assert_eq!(stats.count(0, MsgType::Rm), 4);
    assert_eq!(stats.total(MsgType::Mkdir), 2);
    xs.reset_stats();
    assert_eq!(xs.stats().total(MsgType::Write), 0);
}

#[test]
fn domain_socket_uses_relative_paths_and_libxl_layout() {
    let (_dir, xs) = setup("domu");
    let mut d = Client::connect(&xs.add_domain(5));
    assert_eq!(d.read("name"), s("guest5"));
    assert_eq!(d.read("domid"), s("5"));
    assert_eq!(d.read("memory/target"), s("131072"));
    let controls = "feature-poweroff,feature-reboot,feature-suspend,shutdown,sysrq";
    assert_eq!(d.list(R::Directory("control")), s(controls));
    assert_eq!(d.list(R::GetPerms("/local/domain/5")), s("n0,r5"));
    assert_eq!(xs.perms("/local/domain/5").as_deref(), Some("n0,r5"));
    assert_eq!(d.list(R::GetPerms("control/shutdown")), s("n5"));
    d.write("data/os/name", "Linux").unwrap();
    assert_eq!(
        xs.read("/local/domain/5/data/os/name").as_deref(),
        Some("Linux")
    );
    assert_eq!(d.read("/local/domain/5/data/os/name"), s("Linux"));
    assert_eq!(d.list(R::GetPerms("data/os/name")), s("n5"));
    d.ok(R::Mkdir("attr/vif")).unwrap();
    assert_eq!(d.list(R::Directory("attr")), s("vif"));
    d.ok(R::Rm("data/os")).unwrap();
    assert!(!xs.exists("/local/domain/5/data/os/name"));
    let home = d.call(R::GetDomainPath(5));
    assert_eq!(home, Ok(b"/local/domain/5\0".to_vec()));
    assert_eq!(xs.stats().count(5, MsgType::Read), 4);
    assert_eq!(xs.stats().count(5, MsgType::Directory), 2);
}

#[test]
fn permissions_follow_libxl_and_c_xenstored() {
    let (_dir, xs) = setup("perms");
    let mut d5 = Client::connect(&xs.add_domain(5));
    let mut d6 = Client::connect(&xs.add_domain(6));
    assert_eq!(d5.write("name", "evil"), err(XsError::Eacces));
    assert_eq!(
        d5.write("control/feature-balloon", "1"),
        err(XsError::Eacces)
    );
    assert_eq!(d5.ok(R::Mkdir("control")), err(XsError::Eacces));
    assert!(!xs.exists("/local/domain/5/control/feature-balloon"));
    d5.write("data/x", "1").unwrap();
    d5.write("control/shutdown", "").unwrap();
    assert_eq!(d5.read("/local/domain/6/name"), err(XsError::Eacces));
    assert_eq!(
        d5.list(R::Directory("/local/domain/6")),
        err(XsError::Eacces)
    );
    assert_eq!(d5.read("/local/domain/6/data/nope"), err(XsError::Eacces));
    assert_eq!(d5.read("data/nope"), err(XsError::Enoent));
    assert_eq!(
        d5.write("/local/domain/6/data/x", "1"),
        err(XsError::Eacces)
    );
    assert_eq!(d5.read("/tool"), err(XsError::Eacces));
    // Only the owner may set perms, and only dom0 may give a node away.
    assert_eq!(d5.set_perms("name", "n5"), err(XsError::Eacces));
    assert_eq!(d5.set_perms("data/x", "n6"), err(XsError::Eperm));
    d5.set_perms("data/x", "n5,r6").unwrap();
    assert_eq!(d6.read("/local/domain/5/data/x"), s("1"));
    assert_eq!(
        d6.write("/local/domain/5/data/x", "2"),
        err(XsError::Eacces)
    );
    // New nodes inherit the parent's perms, with the creating domU as owner.
    xs.set_perms("/local/domain/5/attr", "n0,b5");
    d5.write("attr/x", "1").unwrap();
    xs.write("/local/domain/5/attr/y", "1");
    assert_eq!(d5.list(R::GetPerms("attr/x")), s("n5,b5"));
    assert_eq!(xs.perms("/local/domain/5/attr/y").as_deref(), Some("n0,b5"));
    xs.set_perms("/local/domain/5/name", "n0,w5");
    d5.write("name", "renamed").unwrap();
    assert_eq!(d5.read("name"), err(XsError::Eacces));
}

#[test]
fn node_quota_and_size_limit() {
    let (_dir, xs) = setup("quota");
    let mut d = Client::connect(&xs.add_domain(5));
    assert_eq!(xs.node_count(5), 10);
    xs.set_quota(5, 12);
    d.write("data/a", "1").unwrap();
    assert_eq!(d.write("data/b/c", "1"), err(XsError::Enospc));
    assert!(!xs.exists("/local/domain/5/data/b"));
    d.write("data/b", "1").unwrap();
    assert_eq!(d.write("data/c", "1"), err(XsError::Enospc));
    assert_eq!(d.ok(R::Mkdir("data/c")), err(XsError::Enospc));
    d.write("data/a", "2").unwrap();
    assert_eq!(d.read("data/a"), s("2"));
    d.ok(R::Rm("data/a")).unwrap();
    d.write("data/c", "1").unwrap();
    xs.set_quota_error(XsError::Equota);
    assert_eq!(d.write("data/d", "1"), err(XsError::Equota));
    assert_eq!(xs.node_count(5), 12);
    let fits = "x".repeat(2048 - "/local/domain/5/data/c".len());
    d.write("data/c", &fits).unwrap();
    assert_eq!(d.write("data/c", &format!("{fits}x")), err(XsError::E2big));
    assert_eq!(d.read("data/c"), Ok(fits));
}

#[test]
fn watches_fire_on_registration_changes_and_removal() {
    let (_dir, xs) = setup("watch");
    let mut d = Client::connect(&xs.add_domain(5));
    d.watch("control/shutdown", "sd", true).unwrap();
    assert_eq!(d.event(), ev("control/shutdown", "sd"));
    xs.write("/local/domain/5/control/shutdown", "poweroff");
    assert_eq!(d.event(), ev("control/shutdown", "sd"));
    d.watch("data", "dt", true).unwrap();
    assert_eq!(d.event(), ev("data", "dt"));
    d.write("data/a/b", "1").unwrap();
    assert_eq!(d.event(), ev("data/a/b", "dt"));
    d.watch("/local/domain/5/memory", "abs", true).unwrap();
    assert_eq!(d.event(), ev("/local/domain/5/memory", "abs"));
    xs.write("/local/domain/5/memory/target", "65536");
    assert_eq!(d.event(), ev("/local/domain/5/memory/target", "abs"));
    xs.rm("/local/domain/5/control");
    assert_eq!(d.event(), ev("control/shutdown", "sd"));
    assert_eq!(d.watch("data", "dt", true), err(XsError::Eexist));
    d.watch("data", "dt", false).unwrap();
    assert_eq!(d.watch("data", "dt", false), err(XsError::Enoent));
    xs.write("/local/domain/5/data/z", "1");
    assert!(d.quiet());
    // Events are only delivered for nodes the watcher may read.
    let mut d6 = Client::connect(&xs.add_domain(6));
    d6.watch("/local/domain/5/data", "spy", true).unwrap();
    assert_eq!(d6.event(), ev("/local/domain/5/data", "spy"));
    xs.write("/local/domain/5/data/secret", "1");
    assert!(d6.quiet());
    assert_eq!(xs.stats().count(6, MsgType::Watch), 1);
}

#[test]
fn transactions_commit_abort_and_conflict() {
    let (_dir, xs) = setup("tx");
    let mut d = Client::connect(&xs.add_domain(5));
    let mut w = Client::connect(&xs.socket(5));
    w.watch("data", "w", true).unwrap();
    assert_eq!(w.event(), ev("data", "w"));
    d.begin();
    d.write("data/a", "1").unwrap();
    assert_eq!(d.read("data/a"), s("1"));
    assert_eq!(w.read("data/a"), err(XsError::Enoent));
    assert!(w.quiet());
    d.end(true).unwrap();
    assert_eq!(xs.read("/local/domain/5/data/a").as_deref(), Some("1"));
    assert_eq!(w.event(), ev("data/a", "w"));
    d.begin();
    d.write("data/b", "1").unwrap();
    d.end(false).unwrap();
    assert!(!xs.exists("/local/domain/5/data/b") && w.quiet());
    d.begin();
    d.write("data/c", "1").unwrap();
    xs.write("/local/domain/5/data/other", "x");
    assert_eq!(d.end(true), err(XsError::Eagain));
    assert!(!xs.exists("/local/domain/5/data/c"));
    d.tx = 999;
    assert_eq!(d.read("data/a"), err(XsError::Enoent));
    assert_eq!(d.end(true), err(XsError::Enoent));
    w.tx = d.begin(); // another connection's transaction is not usable
    assert_eq!(w.read("data/a"), err(XsError::Enoent));
    d.end(false).unwrap();
    assert_eq!(xs.stats().count(5, MsgType::TransactionStart), 4);
    assert_eq!(xs.stats().count(5, MsgType::TransactionEnd), 5);
}

/// A request with req_id 77, tx_id 3, any type and payload.
fn raw(msg_type: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    server_wire::emit_raw(MsgType::Read, 77, 3, &[payload], &mut buf);
    buf[..4].copy_from_slice(&msg_type.to_ne_bytes());
    buf
}

#[test]
fn protocol_errors_and_oversize_requests() {
    let (_dir, xs) = setup("proto");
    let mut c = Client::connect(&xs.add_domain(5));
    // Unknown type, READ without NUL, bad path, INTRODUCE (not implemented).
    for (ty, payload) in [
        (99, &b"name\0"[..]),
        (2, b"name"),
        (2, b"a b\0"),
        (8, b"1\0"),
    ] {
        c.stream.write_all(&raw(ty, payload)).unwrap();
        assert_eq!(c.recv().unwrap(), (16, 77, 3, b"EINVAL\0".to_vec()));
    }
    assert_eq!(c.read("name"), s("guest5"));
    let mut oversize = raw(2, b"");
    oversize[12..16].copy_from_slice(&4097u32.to_ne_bytes());
    c.stream.write_all(&oversize).unwrap();
    assert!(c.recv().is_err(), "connection must be closed");
    assert_eq!(Client::connect(&xs.socket(5)).read("name"), s("guest5"));
}

#[test]
fn disconnect_all_keeps_tree_and_accepting() {
    let (_dir, xs) = setup("restart");
    let mut c = Client::connect(&xs.dom0_socket());
    let mut d = Client::connect(&xs.add_domain(5));
    c.write("/tool/x", "1").unwrap();
    d.watch("data", "t", true).unwrap();
    assert_eq!(xs.connections(), 2);
    xs.disconnect_all();
    assert!(c.recv().is_err());
    assert_eq!(d.event(), ev("data", "t"));
    assert!(d.recv().is_err());
    let mut c = Client::connect(&xs.dom0_socket());
    assert_eq!(c.read("/tool/x"), s("1"));
    // The server reaps the closed connections on its own threads, some time after the clients
    // saw them close: wait for that (bounded), never sample it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while xs.connections() != 1 {
        assert!(
            Instant::now() < deadline,
            "still {} connections 10 s after disconnect_all (want the new one only)",
            xs.connections()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // And the one left is the new connection: it still works.
    assert_eq!(c.read("/tool/x"), s("1"));
}

#[test]
fn fault_errno_filters_count_and_clear() {
    let (_dir, xs) = setup("errno");
    let mut d = Client::connect(&xs.add_domain(5));
    let mut c = Client::connect(&xs.dom0_socket());
    let (msg_type, path_prefix) = (Some(MsgType::Write), "/local/domain/5/data".into());
    let error = XsError::Eio;
    xs.faults().add(
        Fault::Errno {
            domid: Some(5),
            msg_type,
            path_prefix,
            error,
        },
        Some(2),
    );
    assert_eq!(d.write("data/a", "1"), err(XsError::Eio));
    assert!(!xs.exists("/local/domain/5/data/a"));
    c.write("/local/domain/5/data/a", "1").unwrap(); // dom0: no match
    d.write("control/shutdown", "").unwrap(); // other prefix
    assert_eq!(d.read("data/a"), s("1")); // other type
    assert_eq!(d.write("data/b", "1"), err(XsError::Eio));
    d.write("data/b", "1").unwrap();
    assert_eq!(xs.faults().armed(), 0);
    let (path_prefix, error) = (String::new(), XsError::Eagain);
    xs.faults().add(
        Fault::Errno {
            domid: None,
            msg_type: None,
            path_prefix,
            error,
        },
        None,
    );
    for _ in 0..3 {
        assert_eq!(d.read("name"), err(XsError::Eagain));
    }
    xs.faults().clear();
    assert_eq!(d.read("name"), s("guest5"));
}

#[test]
fn fault_eagain_on_commit_and_close_mid_request() {
    let (_dir, xs) = setup("commit");
    let mut d = Client::connect(&xs.add_domain(5));
    xs.faults().add(Fault::EagainOnCommit, Some(1));
    d.begin();
    d.write("data/a", "1").unwrap();
    assert_eq!(d.end(true), err(XsError::Eagain));
    assert!(!xs.exists("/local/domain/5/data/a"));
    d.begin();
    d.write("data/a", "1").unwrap();
    d.end(true).unwrap();
    xs.faults().add(Fault::CloseMidRequest, Some(1));
    let closed = Err(Fail::Io(ErrorKind::UnexpectedEof));
    assert_eq!(d.write("data/z", "1"), closed);
    assert!(!xs.exists("/local/domain/5/data/z"));
    assert_eq!(Client::connect(&xs.socket(5)).read("data/a"), s("1"));
}

#[test]
fn fault_malformed_replies() {
    let (_dir, xs) = setup("malformed");
    let mut d = Client::connect(&xs.add_domain(5));
    xs.faults()
        .add(Fault::Malformed(MalformedKind::UnknownType), Some(1));
    assert_eq!(d.read("name"), Err(Fail::Wire(WireError::UnknownType)));
    xs.faults()
        .add(Fault::Malformed(MalformedKind::MissingNul), Some(1));
    assert_eq!(d.read("name"), s("guest5")); // READ replies have no NUL to lose
    let missing_nul = Err(Fail::Wire(WireError::MissingNul));
    assert_eq!(d.list(R::Directory("memory")), missing_nul);
    assert_eq!(d.list(R::Directory("memory")), s("static-max,target"));
    xs.faults()
        .add(Fault::Malformed(MalformedKind::WrongLength), Some(1));
    d.send(R::Read("name"));
    let mut header = [0u8; wire::HEADER_LEN];
    d.stream.read_exact(&mut header).unwrap();
    let mut rest = Vec::new();
    d.stream.read_to_end(&mut rest).unwrap();
    let declared = Packet::new_unchecked(&header[..]).payload_len();
    assert_eq!((declared, &rest[..]), ("guest5".len() + 64, &b"guest5"[..]));
}

#[test]
fn fault_spurious_event_oversize_reply_and_delay() {
    let (_dir, xs) = setup("spurious");
    let mut d = Client::connect(&xs.add_domain(5));
    xs.faults().add(Fault::SpuriousWatchEvent, Some(1));
    assert_eq!(d.read("name"), s("guest5"));
    assert_eq!(d.event(), ev("name", "spurious"));
    xs.faults().add(Fault::OversizeReply, Some(1));
    assert_eq!(d.read("name"), Ok("x".repeat(4096)));
    assert_eq!(d.read("name"), s("guest5"));
    xs.faults()
        .add(Fault::Delay(Duration::from_millis(300)), Some(1));
    let started = Instant::now();
    assert_eq!(d.read("name"), s("guest5"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(xs.faults().armed(), 0);
}

#[test]
fn concurrent_clients_and_a_watcher() {
    let (_dir, xs) = setup("concurrent");
    let sockets = [xs.add_domain(5), xs.add_domain(6)];
    let mut watcher = Client::connect(&xs.dom0_socket());
    watcher.watch("/local/domain", "all", true).unwrap();
    assert_eq!(watcher.event(), ev("/local/domain", "all"));
    let writer = |sock: std::path::PathBuf| {
        std::thread::spawn(move || {
            let mut c = Client::connect(&sock);
            (0..50).for_each(|i| c.write(&format!("data/k{i}"), &i.to_string()).unwrap());
        })
    };
    for t in sockets.map(writer) {
        t.join().unwrap();
    }
    for _ in 0..100 {
        assert!(watcher.event().0.contains("/data/k"));
    }
    assert_eq!(xs.dump("/local/domain/6/data").len(), 51);
    assert_eq!(xs.read("/local/domain/5/data/k49").as_deref(), Some("49"));
}
