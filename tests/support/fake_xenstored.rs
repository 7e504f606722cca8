//! A fake xenstored speaking the real xenbus wire protocol on unix sockets, for tests.
//!
//! Mimics C xenstored (`tools/xenstored`, `docs/misc/xenstore.txt`) closely enough for a guest
//! agent: node permissions (first entry = owner, whose perm is the default for unlisted
//! domains), relative paths resolved against `/local/domain/<domid>`, WRITE creating parents,
//! RM of subtrees, watches firing on registration and on changes at or below the watched path,
//! transactions, a per-domain node quota, a node size limit, and dropping connections that
//! declare more than 4096 payload bytes. Every request first goes through the [`FaultInjector`].
//!
//! Deliberately simplified:
//! * the tree is a flat `BTreeMap` keyed by absolute path (children come from key order);
//! * one socket per domain stands in for its ring: `DIR/dom<N>.sock` acts as domain N and
//!   `DIR/dom0.sock` is privileged (dom0 bypasses permissions, quota and size limit);
//! * size rule: a domU WRITE fails with E2BIG if `value.len() + abs_path.len() > 2048`
//!   (C xenstored counts its whole node record against its 2048-byte node quota);
//! * quota: a domU may not create nodes beyond `quota` nodes owned by it, counted on the tree
//!   the request works on (global or transaction copy); SET_PERMS does not check it;
//! * transactions are whole-tree copies; commit fails with EAGAIN if the global tree changed
//!   at all since TRANSACTION_START (like oxenstored's conservative mode);
//! * no watch depth, DIRECTORY_PART, RESET_WATCHES or tool-only requests (they get EINVAL),
//!   no per-domain watch/transaction limits; add_domain fires `@introduceDomain`;
//! * replies and events are written while holding the state lock, so their order is total.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::ops::Bound;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use xenbeacon::xenbus::server_wire;
use xenbeacon::xenbus::wire::{self, MsgType, Request, XsError, HEADER_LEN, PAYLOAD_MAX};

use super::fault_injector::{FaultInjector, MalformedKind, Plan};

/// C xenstored's default per-domain node quota.
pub const DEFAULT_NODE_QUOTA: usize = 1000;
/// C xenstored's default node size quota; see the module docs for the rule applied.
pub const NODE_SIZE_MAX: usize = 2048;
const OK: &[u8] = b"OK\0";
const PERM_CHARS: &[u8; 4] = b"nrwb";

/// A domain's access to a node, as bits (1 = read, 2 = write), so `n r w b` = 0 1 2 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Perm(u8);

impl Perm {
    const NONE: Perm = Perm(0);
    const READ: Perm = Perm(1);
    const WRITE: Perm = Perm(2);
    const BOTH: Perm = Perm(3);
}

/// `(domid, perm)` entries; the first is the owner and its perm the default for others.
type Perms = Vec<(u32, Perm)>;

fn parse_perms<'a>(mut entries: impl Iterator<Item = &'a str>) -> Option<Perms> {
    let perms: Option<Perms> = entries.try_fold(Vec::new(), |mut v, e| {
        let bits = PERM_CHARS
            .iter()
            .position(|&c| Some(&c) == e.as_bytes().first())?;
        v.push((e.get(1..)?.parse().ok()?, Perm(bits as u8)));
        Some(v)
    });
    perms.filter(|p| !p.is_empty())
}

fn format_perms(perms: &Perms) -> Vec<String> {
    let entry = |&(d, Perm(p)): &(u32, Perm)| format!("{}{d}", PERM_CHARS[p as usize] as char);
    perms.iter().map(entry).collect()
}

fn perm_for(perms: &Perms, domid: u32) -> Perm {
    match perms.first() {
        _ if domid == 0 => Perm::BOTH,
        Some(&(owner, _)) if owner == domid => Perm::BOTH,
        Some(&(_, default)) => perms[1..]
            .iter()
            .find(|e| e.0 == domid)
            .map_or(default, |e| e.1),
        None => Perm::NONE,
    }
}

fn check(perms: &Perms, domid: u32, need: Perm) -> Result<(), XsError> {
    match perm_for(perms, domid).0 & need.0 {
        0 => Err(XsError::Eacces),
        _ => Ok(()),
    }
}

#[derive(Clone, Debug)]
struct Node {
    value: Vec<u8>,
    perms: Perms,
}

fn node(value: &[u8], perms: &Perms) -> Node {
    let (value, perms) = (value.to_vec(), perms.clone());
    Node { value, perms }
}

type Tree = BTreeMap<String, Node>;

fn parent(path: &str) -> Option<&str> {
    let i = path.rfind('/').filter(|_| path != "/")?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

/// Parent, grandparent, ... up to `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(parent(path), |p| parent(p))
}

/// True if `path` is `base` or below it.
fn is_under(path: &str, base: &str) -> bool {
    let rest = path.strip_prefix(base);
    (base == "/" && path.starts_with('/'))
        || rest.is_some_and(|r| r.is_empty() || r.starts_with('/'))
}

fn resolve(path: &str, domid: u32) -> String {
    match path.as_bytes().first() {
        Some(b'/' | b'@') => path.to_string(),
        _ => format!("/local/domain/{domid}/{path}"),
    }
}

fn owned(tree: &Tree, domid: u32) -> usize {
    tree.values()
        .filter(|n| n.perms.first().map(|p| p.0) == Some(domid))
        .count()
}

fn emit_event(path: &str, token: &str, out: &mut Vec<u8>) {
    let parts: [&[u8]; 4] = [path.as_bytes(), b"\0", token.as_bytes(), b"\0"];
    server_wire::emit_raw(MsgType::WatchEvent, 0, 0, &parts, out);
}

/// A change watches must hear about; `perms` decide who may see it.
struct Change {
    path: String,
    perms: Perms,
    removed: bool,
}

fn change(path: &str, perms: &Perms, removed: bool) -> Change {
    let (path, perms) = (path.to_string(), perms.clone());
    Change {
        path,
        perms,
        removed,
    }
}

/// One node request (READ, WRITE, MKDIR, RM, DIRECTORY, GET/SET_PERMS) by `domid` on `tree`.
struct Op<'t> {
    tree: &'t mut Tree,
    domid: u32,
    quota: usize,
    quota_error: XsError,
    changes: Vec<Change>,
}

impl Op<'_> {
    fn run(&mut self, req: &Request<'_>, path: &str) -> Result<Vec<u8>, XsError> {
        if !path.starts_with('/') {
            return Err(XsError::Einval);
        }
        let nul_list =
            |items: Vec<String>| items.iter().flat_map(|s| s.bytes().chain([0])).collect();
        match *req {
            Request::Read(_) => Ok(self.readable(path)?.value.clone()),
            Request::GetPerms(_) => Ok(nul_list(format_perms(&self.readable(path)?.perms))),
            Request::Directory(_) => {
                self.readable(path)?;
                // Only the keys below `path`: a range of the ordered map, not a scan of it.
                let prefix = if path == "/" {
                    "/".to_string()
                } else {
                    format!("{path}/")
                };
                let from = (Bound::Included(prefix.as_str()), Bound::Unbounded);
                let below = self.tree.range::<str, _>(from);
                let names = below
                    .map(|(k, _)| k)
                    .take_while(|k| k.starts_with(&prefix))
                    .map(|k| &k[prefix.len()..])
                    .filter(|name| !name.is_empty() && !name.contains('/'))
                    .map(str::to_string)
                    .collect();
                Ok(nul_list(names))
            }
            Request::Write { value, .. } => self.create(path, Some(value)),
            Request::Mkdir(_) => self.create(path, None),
            Request::Rm(_) => self.remove(path),
            Request::SetPerms { perms, .. } => self.set_perms(path, perms),
            _ => Err(XsError::Einval),
        }
    }

    /// EACCES if the nearest existing ancestor is unreadable (no peeking), else ENOENT.
    fn missing(&self, path: &str) -> XsError {
        match ancestors(path).find_map(|p| self.tree.get(p)) {
            Some(n) if check(&n.perms, self.domid, Perm::READ).is_err() => XsError::Eacces,
            _ => XsError::Enoent,
        }
    }

    fn readable(&self, path: &str) -> Result<&Node, XsError> {
        let node = self.tree.get(path).ok_or_else(|| self.missing(path))?;
        check(&node.perms, self.domid, Perm::READ).map(|()| node)
    }

    /// WRITE (`value` is `Some`) or MKDIR: sets an existing node or creates it and its parents.
    fn create(&mut self, path: &str, value: Option<&[u8]>) -> Result<Vec<u8>, XsError> {
        let domid = self.domid;
        if value.is_some_and(|v| domid != 0 && v.len() + path.len() > NODE_SIZE_MAX) {
            return Err(XsError::E2big);
        }
        if let Some(node) = self.tree.get_mut(path) {
            check(&node.perms, domid, Perm::WRITE)?;
            if let Some(v) = value {
                node.value = v.to_vec();
                self.changes.push(change(path, &node.perms, false));
            }
            return Ok(OK.to_vec());
        }
        let base = ancestors(path).find(|p| self.tree.contains_key(*p));
        let base = base.ok_or(XsError::Enoent)?;
        let missing: Vec<&str> = std::iter::once(path)
            .chain(ancestors(path))
            .take_while(|p| *p != base)
            .collect();
        let mut perms = self.tree[base].perms.clone();
        check(&perms, domid, Perm::WRITE)?;
        if domid != 0 {
            if owned(self.tree, domid) + missing.len() > self.quota {
                return Err(self.quota_error);
            }
            perms[0].0 = domid;
        }
        for p in missing.into_iter().rev() {
            let value = value.filter(|_| p == path).unwrap_or_default();
            self.tree.insert(p.to_string(), node(value, &perms));
        }
        self.changes.push(change(path, &perms, false));
        Ok(OK.to_vec())
    }

    fn remove(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        if path == "/" {
            return Err(XsError::Einval);
        }
        let Some(node) = self.tree.get(path) else {
            let parent_exists = parent(path).is_some_and(|p| self.tree.contains_key(p));
            return match self.missing(path) {
                XsError::Enoent if parent_exists => Ok(OK.to_vec()),
                e => Err(e),
            };
        };
        check(&node.perms, self.domid, Perm::WRITE)?;
        self.changes.push(change(path, &node.perms, true));
        self.tree.retain(|k, _| !is_under(k, path));
        Ok(OK.to_vec())
    }

    /// Only the owner or dom0 may set perms; only dom0 may give the node away (EPERM).
    fn set_perms(&mut self, path: &str, wire_perms: &[u8]) -> Result<Vec<u8>, XsError> {
        let text = std::str::from_utf8(wire_perms).map_err(|_| XsError::Einval)?;
        let perms = parse_perms(text.split_terminator('\0')).ok_or(XsError::Einval)?;
        let owner = self.readable(path)?.perms[0].0;
        if self.domid != 0 && self.domid != owner {
            return Err(XsError::Eacces);
        }
        if self.domid != 0 && perms[0].0 != owner {
            return Err(XsError::Eperm);
        }
        self.changes.push(change(path, &perms, false));
        self.tree.get_mut(path).ok_or(XsError::Enoent)?.perms = perms;
        Ok(OK.to_vec())
    }
}

/// Requests received, per `(domid, message type)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats(pub HashMap<(u32, MsgType), u64>);

impl Stats {
    /// Requests of type `t` received from `domid`.
    pub fn count(&self, domid: u32, t: MsgType) -> u64 {
        self.0.get(&(domid, t)).copied().unwrap_or(0)
    }
    /// Requests of type `t` received from any domain.
    pub fn total(&self, t: MsgType) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.1 == t)
            .map(|(_, n)| n)
            .sum()
    }
}

struct Watch {
    conn: u64,
    domid: u32,
    given: String,
    abs: String,
    token: String,
}

struct Tx {
    conn: u64,
    tree: Tree,
    base_generation: u64,
    changes: Vec<Change>,
}

/// Who sent a request, and in which transaction (0 = none).
#[derive(Clone, Copy)]
struct Who {
    conn: u64,
    domid: u32,
    tx_id: u32,
}

#[derive(Default)]
struct State {
    tree: Tree,
    /// Bumped on every change to the global tree; transactions compare it at commit.
    generation: u64,
    txs: HashMap<u32, Tx>,
    next_tx: u32,
    watches: Vec<Watch>,
    /// Writer half of every open connection.
    conns: HashMap<u64, Arc<Mutex<UnixStream>>>,
    next_conn: u64,
    quotas: HashMap<u32, usize>,
    /// `None`: ENOSPC.
    quota_error: Option<XsError>,
    stats: Stats,
    /// Every request's domain, type and absolute path, in the order received.
    sequence: Vec<(u32, MsgType, Option<String>)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes one or more whole messages; a failed write kills the connection.
fn send(writer: &Mutex<UnixStream>, bytes: &[u8]) -> io::Result<()> {
    let mut w = lock(writer);
    w.write_all(bytes).map_err(|e| {
        let _ = w.shutdown(Shutdown::Both);
        e
    })
}

impl State {
    /// Runs a node request on the global tree (`tx_id` 0) or a transaction's copy.
    fn node_op(&mut self, who: Who, req: &Request<'_>, path: &str) -> Result<Vec<u8>, XsError> {
        let Who { conn, domid, tx_id } = who;
        if tx_id != 0 && self.txs.get(&tx_id).map(|t| t.conn) != Some(conn) {
            return Err(XsError::Enoent);
        }
        let quota = *self.quotas.get(&domid).unwrap_or(&DEFAULT_NODE_QUOTA);
        let quota_error = self.quota_error.unwrap_or(XsError::Enospc);
        let mut tx = self.txs.remove(&tx_id);
        let tree = tx.as_mut().map_or(&mut self.tree, |tx| &mut tx.tree);
        let changes = Vec::new();
        let mut op = Op {
            tree,
            domid,
            quota,
            quota_error,
            changes,
        };
        let result = op.run(req, path);
        let changes = op.changes;
        match tx {
            Some(mut tx) => {
                tx.changes.extend(changes);
                self.txs.insert(tx_id, tx);
            }
            None => self.publish(changes),
        }
        result
    }

    /// Applies changes made to the global tree: new generation, watch events.
    fn publish(&mut self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        self.generation += 1;
        for w in &self.watches {
            for c in &changes {
                let event = if is_under(&c.path, &w.abs) {
                    c.path.as_str()
                } else if c.removed && is_under(&w.abs, &c.path) {
                    w.abs.as_str()
                } else {
                    continue;
                };
                if check(&c.perms, w.domid, Perm::READ).is_err() {
                    continue;
                }
                let home = format!("/local/domain/{}/", w.domid);
                let shown = match w.given.as_bytes().first() {
                    Some(b'/' | b'@') => event,
                    _ => event.strip_prefix(home.as_str()).unwrap_or(event),
                };
                let mut bytes = Vec::new();
                emit_event(shown, &w.token, &mut bytes);
                if let Some(writer) = self.conns.get(&w.conn) {
                    let _ = send(writer, &bytes);
                }
            }
        }
    }

    /// Executes one request; `post` collects events to send right after the reply.
    fn handle(
        &mut self,
        who: Who,
        req: Request<'_>,
        path: &str,
        plan: &Plan,
        post: &mut Vec<u8>,
    ) -> Result<Vec<u8>, XsError> {
        let Who { conn, domid, tx_id } = who;
        let same = |w: &Watch, token: &str| w.conn == conn && w.abs == path && w.token == token;
        match req {
            Request::Read(_) if plan.oversize_read => Ok(vec![b'x'; PAYLOAD_MAX]),
            Request::Watch { path: given, token } => {
                if self.watches.iter().any(|w| same(w, token)) {
                    return Err(XsError::Eexist);
                }
                emit_event(given, token, post);
                let (given, abs, token) = (given.to_string(), path.to_string(), token.to_string());
                self.watches.push(Watch {
                    conn,
                    domid,
                    given,
                    abs,
                    token,
                });
                Ok(OK.to_vec())
            }
            Request::Unwatch { token, .. } => {
                let before = self.watches.len();
                self.watches.retain(|w| !same(w, token));
                match self.watches.len() < before {
                    true => Ok(OK.to_vec()),
                    false => Err(XsError::Enoent),
                }
            }
            Request::GetDomainPath(d) => Ok(format!("/local/domain/{d}\0").into_bytes()),
            Request::TransactionStart => {
                while self.next_tx == 0 || self.txs.contains_key(&self.next_tx) {
                    self.next_tx = self.next_tx.wrapping_add(1);
                }
                let (id, tree, changes) = (self.next_tx, self.tree.clone(), Vec::new());
                self.next_tx = id.wrapping_add(1); // ids are not reused soon
                let base_generation = self.generation;
                let tx = Tx {
                    conn,
                    tree,
                    base_generation,
                    changes,
                };
                self.txs.insert(id, tx);
                Ok(format!("{id}\0").into_bytes())
            }
            Request::TransactionEnd { commit } => {
                if self.txs.get(&tx_id).map(|t| t.conn) != Some(conn) {
                    return Err(XsError::Enoent);
                }
                let tx = self.txs.remove(&tx_id).ok_or(XsError::Enoent)?;
                if commit && (plan.eagain_on_commit || tx.base_generation != self.generation) {
                    return Err(XsError::Eagain);
                }
                if commit {
                    self.tree = tx.tree;
                    self.publish(tx.changes);
                }
                Ok(OK.to_vec())
            }
            req => self.node_op(who, &req, path),
        }
    }
}

struct Shared {
    state: Mutex<State>,
    faults: FaultInjector,
    stop: AtomicBool,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by fake xenstored")
}

/// Reads, handles and answers one request; `Err` closes the connection.
fn serve_one(shared: &Shared, conn: u64, domid: u32, stream: &mut UnixStream) -> io::Result<()> {
    let mut msg = vec![0u8; HEADER_LEN];
    stream.read_exact(&mut msg)?;
    // Declared payload over 4096 bytes: C xenstored drops the connection.
    let total = wire::message_len(&msg).ok().flatten().ok_or_else(closed)?;
    msg.resize(total, 0);
    stream.read_exact(&mut msg[HEADER_LEN..])?;
    let packet = wire::Packet::new_unchecked(&msg[..]);
    let (req_id, tx_id, msg_type) = (packet.req_id(), packet.tx_id(), packet.msg_type().ok());
    let req = msg_type.and_then(|t| Request::parse(t, packet.payload()).ok());
    let path = req.and_then(|r| r.path()).map(|p| resolve(p, domid));
    if let Some(t) = msg_type {
        let mut state = lock(&shared.state);
        *state.stats.0.entry((domid, t)).or_default() += 1;
        state.sequence.push((domid, t, path.clone()));
    }

    let plan = shared
        .faults
        .on_request(domid, req.as_ref(), path.as_deref());
    if let Some(d) = plan.delay {
        thread::sleep(d);
    }
    if plan.close {
        return Err(closed());
    }
    if let (n @ 1.., Some(p)) = (plan.event_flood, req.and_then(|r| r.path())) {
        let writer = lock(&shared.state).conns.get(&conn).cloned();
        let mut chunk = Vec::with_capacity(1 << 16);
        for i in 0..n {
            emit_event(p, &format!("flood{i}"), &mut chunk);
            if chunk.len() > 60_000 || i + 1 == n {
                send(writer.as_ref().ok_or_else(closed)?, &chunk)?;
                chunk.clear();
            }
        }
    }
    let mut st = lock(&shared.state);
    let mut post = Vec::new();
    let result = match (req, plan.error) {
        (_, Some(e)) => Err(e),
        (None, None) => Err(XsError::Einval), // unknown type or malformed payload
        (Some(req), None) => {
            let who = Who { conn, domid, tx_id };
            st.handle(who, req, path.as_deref().unwrap_or(""), &plan, &mut post)
        }
    };
    let mut out = Vec::new();
    if let Some(p) = req.and_then(|r| r.path()).filter(|_| plan.spurious_event) {
        emit_event(p, "spurious", &mut out);
    }
    if let (Some(p), Some(t)) = (req.and_then(|r| r.path()), &plan.event_token) {
        emit_event(p, t, &mut out);
    }
    let (mut reply_type, payload) = match (result, msg_type) {
        (Ok(p), Some(t)) => (t, p),
        (Err(e), _) => (MsgType::Error, format!("{}\0", e.name()).into_bytes()),
        (Ok(_), None) => (MsgType::Error, b"EINVAL\0".to_vec()),
    };
    let mut body = &payload[..];
    if plan.malformed == Some(MalformedKind::MissingNul) {
        body = match body.split_last() {
            Some((0, rest)) if reply_type != MsgType::Error && !rest.is_empty() => rest,
            _ => b"a\0b",
        };
        reply_type = msg_type.unwrap_or(MsgType::Directory);
    }
    let at = out.len();
    server_wire::emit_raw(reply_type, req_id, tx_id, &[body], &mut out);
    match plan.malformed {
        Some(MalformedKind::UnknownType) => out[at..at + 4].copy_from_slice(&99u32.to_ne_bytes()),
        Some(MalformedKind::WrongLength) => {
            let len = body.len() as u32 + 64;
            out[at + 12..at + 16].copy_from_slice(&len.to_ne_bytes());
        }
        _ => {}
    }
    out.extend_from_slice(&post);
    let writer = st.conns.get(&conn).cloned().ok_or_else(closed)?;
    send(&writer, &out)?;
    drop(st);
    match plan.malformed {
        Some(MalformedKind::WrongLength) => Err(closed()),
        _ => Ok(()),
    }
}

fn serve_connection(shared: Arc<Shared>, mut stream: UnixStream, domid: u32) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let _ = writer.set_write_timeout(Some(Duration::from_secs(5)));
    let conn = {
        let mut st = lock(&shared.state);
        st.next_conn += 1;
        let id = st.next_conn;
        st.conns.insert(id, Arc::new(Mutex::new(writer)));
        id
    };
    while serve_one(&shared, conn, domid, &mut stream).is_ok() {}
    let _ = stream.shutdown(Shutdown::Both);
    let mut st = lock(&shared.state);
    st.conns.remove(&conn);
    st.watches.retain(|w| w.conn != conn);
    st.txs.retain(|_, t| t.conn != conn);
}

/// The running fake; dropping it stops accepting, closes connections and removes the sockets.
pub struct FakeXenstored {
    shared: Arc<Shared>,
    dir: PathBuf,
    listeners: Mutex<Vec<(PathBuf, JoinHandle<()>)>>,
}

impl FakeXenstored {
    /// Starts serving `dir/dom0.sock` with the initial tree; the socket exists on return.
    pub fn start(dir: &Path) -> FakeXenstored {
        let mut state = State::default();
        for p in ["/", "/local", "/local/domain", "/tool"] {
            state
                .tree
                .insert(p.into(), node(b"", &vec![(0, Perm::NONE)]));
        }
        let (faults, stop) = (FaultInjector::new(), AtomicBool::new(false));
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            faults,
            stop,
        });
        let (dir, listeners) = (dir.to_path_buf(), Mutex::new(Vec::new()));
        let server = FakeXenstored {
            shared,
            dir,
            listeners,
        };
        server.listen(0);
        server
    }

    fn listen(&self, domid: u32) -> PathBuf {
        let path = self.socket(domid);
        let mut listeners = lock(&self.listeners);
        if listeners.iter().any(|(p, _)| *p == path) {
            return path;
        }
        let _ = std::fs::remove_file(&path); // stale socket of a killed run
        let listener = UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("fake-xenstored: bind {}: {e}", path.display()));
        let shared = self.shared.clone();
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                match stream {
                    Ok(s) => {
                        let shared = shared.clone();
                        thread::spawn(move || serve_connection(shared, s, domid));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        listeners.push((path.clone(), accept));
        path
    }

    /// Socket path for `domid` (`DIR/dom<domid>.sock`), whether or not it is served.
    pub fn socket(&self, domid: u32) -> PathBuf {
        self.dir.join(format!("dom{domid}.sock"))
    }

    /// The privileged socket.
    pub fn dom0_socket(&self) -> PathBuf {
        self.socket(0)
    }

    /// Builds `/local/domain/<domid>` like libxl does for a PV domU and serves its socket.
    pub fn add_domain(&self, domid: u32) -> PathBuf {
        let home = format!("/local/domain/{domid}");
        let (ro, rw) = (
            vec![(0, Perm::NONE), (domid, Perm::READ)],
            vec![(domid, Perm::NONE)],
        );
        let (id, name, mem) = (domid.to_string(), format!("guest{domid}"), "131072");
        let nodes = [
            ("", ""),
            ("/domid", &id),
            ("/name", &name),
            ("/control", ""),
        ];
        let nodes = nodes.map(|(p, v)| (p, v, &ro)).into_iter().chain([
            ("/memory", "", &ro),
            ("/memory/static-max", mem, &ro),
            ("/memory/target", mem, &ro),
        ]);
        let controls = "shutdown feature-poweroff feature-reboot feature-suspend sysrq";
        let controls: Vec<String> = controls
            .split(' ')
            .map(|c| format!("/control/{c}"))
            .collect();
        let domu_dirs = ["/data", "/attr", "/drivers", "/feature", "/error"];
        let domu_owned = controls.iter().map(String::as_str).chain(domu_dirs);
        let mut st = lock(&self.shared.state);
        for (rel, value, perms) in nodes.chain(domu_owned.map(|p| (p, "", &rw))) {
            st.tree
                .insert(format!("{home}{rel}"), node(value.as_bytes(), perms));
        }
        let introduce = change("@introduceDomain", &ro, false);
        st.publish(vec![change(&home, &ro, false), introduce]);
        drop(st);
        self.listen(domid)
    }

    fn apply(&self, req: Request<'_>) {
        let mut st = lock(&self.shared.state);
        let dom0 = Who {
            conn: 0,
            domid: 0,
            tx_id: 0,
        };
        if let Err(e) = st.node_op(dom0, &req, req.path().unwrap_or("")) {
            panic!("fake-xenstored: {req:?} as dom0 failed: {e}");
        }
    }

    fn tree<R>(&self, f: impl FnOnce(&Tree) -> R) -> R {
        f(&lock(&self.shared.state).tree)
    }

    /// Value of a node, lossily as UTF-8.
    pub fn read(&self, path: &str) -> Option<String> {
        self.tree(|t| Some(String::from_utf8_lossy(&t.get(path)?.value).into_owned()))
    }

    /// WRITE as dom0, firing watches. Like the other dom0 helpers, panics if xenstored would
    /// have replied with an error.
    pub fn write(&self, path: &str, value: &str) {
        let value = value.as_bytes();
        self.apply(Request::Write { path, value });
    }

    /// WRITE of raw bytes as dom0 (values that are not UTF-8).
    pub fn write_bytes(&self, path: &str, value: &[u8]) {
        self.apply(Request::Write { path, value });
    }

    pub fn rm(&self, path: &str) {
        self.apply(Request::Rm(path));
    }

    /// SET_PERMS as dom0 from a comma-separated list such as `n0,r5`.
    pub fn set_perms(&self, path: &str, perms: &str) {
        let perms = &perms.replace(',', "\0").into_bytes();
        self.apply(Request::SetPerms {
            path,
            perms: &[perms, &b"\0"[..]].concat(),
        });
    }

    /// Permissions of a node as a comma-separated list such as `n0,r5`.
    pub fn perms(&self, path: &str) -> Option<String> {
        self.tree(|t| Some(format_perms(&t.get(path)?.perms).join(",")))
    }

    pub fn exists(&self, path: &str) -> bool {
        self.tree(|t| t.contains_key(path))
    }

    /// Every node at or below `prefix` (intermediate ones too), path -> value.
    pub fn dump(&self, prefix: &str) -> BTreeMap<String, String> {
        let text = |(k, n): (&String, &Node)| (k.clone(), String::from_utf8_lossy(&n.value).into());
        self.tree(|t| {
            t.iter()
                .filter(|(k, _)| is_under(k, prefix))
                .map(text)
                .collect()
        })
    }

    /// Nodes owned by `domid`, which is what the quota counts.
    pub fn node_count(&self, domid: u32) -> usize {
        self.tree(|t| owned(t, domid))
    }

    pub fn set_quota(&self, domid: u32, nodes: usize) {
        lock(&self.shared.state).quotas.insert(domid, nodes);
    }

    /// Error for an exceeded node quota: ENOSPC (C xenstored, the default) or EQUOTA.
    pub fn set_quota_error(&self, error: XsError) {
        lock(&self.shared.state).quota_error = Some(error);
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.state).stats.clone()
    }

    /// The types of the requests `domid` sent since the start or the last reset, in order.
    pub fn sequence(&self, domid: u32) -> Vec<MsgType> {
        let state = lock(&self.shared.state);
        state
            .sequence
            .iter()
            .filter(|r| r.0 == domid)
            .map(|r| r.1)
            .collect()
    }

    /// The requests `domid` sent since the start or the last reset, in order, with their
    /// absolute paths ("" for requests without one).
    pub fn requests(&self, domid: u32) -> Vec<(MsgType, String)> {
        let state = lock(&self.shared.state);
        state
            .sequence
            .iter()
            .filter(|r| r.0 == domid)
            .map(|r| (r.1, r.2.clone().unwrap_or_default()))
            .collect()
    }

    pub fn reset_stats(&self) {
        let mut state = lock(&self.shared.state);
        state.sequence.clear();
        state.stats = Stats::default();
    }

    /// Open client connections.
    pub fn connections(&self) -> usize {
        lock(&self.shared.state).conns.len()
    }

    /// Shuts down every client connection (like a xenstored restart) but keeps the tree and
    /// keeps accepting; watches and transactions of those connections go away with them.
    pub fn disconnect_all(&self) {
        for writer in lock(&self.shared.state).conns.values() {
            let _ = lock(writer).shutdown(Shutdown::Both);
        }
    }

    pub fn faults(&self) -> &FaultInjector {
        &self.shared.faults
    }
}

impl Drop for FakeXenstored {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for (path, accept) in lock(&self.listeners).drain(..) {
            // Wake the accept thread so it sees `stop`; only wait if the wake-up got through.
            if UnixStream::connect(&path).is_ok() {
                let _ = accept.join();
            }
            let _ = std::fs::remove_file(&path);
        }
        self.disconnect_all();
    }
}
