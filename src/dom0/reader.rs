//! Reading guests' keys from XenStore with the project's own client: the I/O half of `list`,
//! `show` and `wait` (the parsing is in [`super::parse`]).
//!
//! Read one node at a time (READ + DIRECTORY, recursively), without a transaction: a listing
//! must not fail because a guest wrote a key meanwhile. What that costs is handled here:
//! * a node that disappears between DIRECTORY and READ is simply absent;
//! * a domain that disappears while it is read (destroyed, or migrated away) is skipped: its
//!   home is checked again after reading, and a listing leaves it out;
//! * EACCES is recorded per subtree ([`DomainTree::denied`]) and shown as "no access", so a
//!   guest the reader may not see never looks like one without an agent.
//!
//! A guest controls how many keys it has (up to its xenstored quota, ~1000 nodes by default,
//! of up to ~2 KiB each), so a domain's read stops at [`NODE_LIMIT`] nodes and [`DEPTH_LIMIT`]
//! levels, and each of [`SUBTREES`] at [`SUBTREE_BYTES_LIMIT`] bytes of paths and values: what
//! one domain costs in memory is bounded whatever it wrote, and a guest that fills `data/`
//! still has its NICs (`attr/`) and the toolstack's `device/vif` read.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::tree::{home, DomainTree, DOMAINS_DIR, SINGLE_KEYS, SUBTREES};
use crate::layout::{is_under, KEEP_KEYS, OWNED_KEYS, OWNED_SUBTREES};
use crate::xenbus::conn::{
    Endpoint, Error, NodeAndChildren, XenbusConn, DEFAULT_REPLY_TIMEOUT, DEVICE_PATHS,
};
use crate::xenbus::wire::XsError;

/// xenstored's socket in dom0, tried before the xenbus devices.
const XENSTORED_SOCKET: &str = "/run/xenstored/socket";
/// Most nodes read below one home.
pub const NODE_LIMIT: usize = 4096;
/// Deepest path read below a subtree (`attr/vif/0/vlan/100/ipv4/0/prefix` is 7 below `attr`).
pub const DEPTH_LIMIT: usize = 10;
/// Most bytes of relative paths and values read below each of [`SUBTREES`] of one home.
/// xenbeacon's keys for a guest with 100 NICs are ~60 KiB; a guest at its default quota
/// with the largest values it may write has ~2 MiB.
pub const SUBTREE_BYTES_LIMIT: usize = 256 * 1024;

/// XenStore could not be reached or read.
#[derive(Debug)]
pub enum ReadError {
    /// no XenStore found
    NotFound,
    /// cannot open XenStore
    Open(Endpoint, Error),
    /// a XenStore request failed
    Request(String, Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotFound => write!(
                f,
                "no XenStore found at {XENSTORED_SOCKET}, {} or {} (not dom0? use --xenstore PATH)",
                DEVICE_PATHS[0], DEVICE_PATHS[1]
            ),
            ReadError::Open(ep, e) => {
                write!(f, "cannot open {ep}: {e}")?;
                match e {
                    Error::Open(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
                        f.write_str(" (run as root)")
                    }
                    Error::Open(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                        f.write_str(" (xenstored accepts no connections: hung?)")
                    }
                    _ => Ok(()),
                }
            }
            ReadError::Request(path, e) => write!(f, "reading {path}: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// `--xenstore`, else `XENBEACON_XENSTORE`, else the first of xenstored's socket and the
/// xenbus devices that exists.
fn endpoint(explicit: Option<&Path>) -> Result<Endpoint, ReadError> {
    if let Some(e) = Endpoint::chosen(explicit) {
        return Ok(e);
    }
    let socket = Path::new(XENSTORED_SOCKET);
    if socket.exists() {
        return Ok(Endpoint::for_path(socket));
    }
    Endpoint::discover().ok_or(ReadError::NotFound)
}

/// A domain named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainSpec {
    Domid(u32),
    Name(String),
}

impl DomainSpec {
    /// All digits: a domid (as in xl); anything else: a name.
    pub fn parse(s: &str) -> DomainSpec {
        match parse_domid(s) {
            Some(d) => DomainSpec::Domid(d),
            None => DomainSpec::Name(s.to_owned()),
        }
    }
}

/// A domid: decimal digits only (no sign, no spaces), within u32.
fn parse_domid(s: &str) -> Option<u32> {
    s.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}

impl fmt::Display for DomainSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainSpec::Domid(d) => write!(f, "domain {d}"),
            DomainSpec::Name(n) => write!(f, "domain '{n}'"),
        }
    }
}

/// The domains this connection can list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Domains {
    /// Every domid under `/local/domain`, ascending.
    All(Vec<u32>),
    /// `/local/domain` may not be listed (a domU): only the connection's own domain.
    OnlyOwn(u32),
}

/// Result of one node request, with the errors that are data turned into values.
enum Got<T> {
    Value(T),
    Absent,
    Denied,
}

/// A XenStore connection for reading guests.
pub struct Reader {
    conn: XenbusConn,
    /// Bytes read so far below the subtree being read, against [`SUBTREE_BYTES_LIMIT`].
    subtree_bytes: usize,
}

impl Reader {
    /// Opens XenStore; a xenstored that accepts no connections is retried for as long as a
    /// request would wait for a reply.
    pub fn open(explicit: Option<&Path>) -> Result<Reader, ReadError> {
        Reader::open_until(explicit, None)
    }

    /// Opens XenStore without waiting past `deadline` (if any), in connect(2) or in any later
    /// request: a xenstored socket whose listen backlog is full is retried every 10 ms until
    /// then, and every request fails with `Error::Timeout` once it passes.
    pub fn open_until(
        explicit: Option<&Path>,
        deadline: Option<Instant>,
    ) -> Result<Reader, ReadError> {
        let ep = endpoint(explicit)?;
        let give_up = deadline.unwrap_or_else(|| Instant::now() + DEFAULT_REPLY_TIMEOUT);
        loop {
            match XenbusConn::open_nonblocking(&ep) {
                Ok(mut conn) => {
                    conn.set_deadline(deadline);
                    return Ok(Reader {
                        conn,
                        subtree_bytes: 0,
                    });
                }
                Err(Error::Open(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = give_up.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ReadError::Open(ep, Error::Open(e)));
                    }
                    std::thread::sleep(left.min(Duration::from_millis(10)));
                }
                Err(e) => return Err(ReadError::Open(ep, e)),
            }
        }
    }

    pub fn conn(&mut self) -> &mut XenbusConn {
        &mut self.conn
    }

    fn classify<T>(path: &str, r: Result<T, Error>) -> Result<Got<T>, ReadError> {
        match r {
            Ok(v) => Ok(Got::Value(v)),
            Err(Error::Xs(XsError::Eacces | XsError::Eperm)) => Ok(Got::Denied),
            // Gone, or something xenstored will not do for this one node: not there for us.
            Err(Error::Xs(_) | Error::InvalidPath | Error::TooLarge) => Ok(Got::Absent),
            Err(e) => Err(ReadError::Request(path.to_owned(), e)),
        }
    }

    fn read(&mut self, path: &str) -> Result<Got<String>, ReadError> {
        let r = self.conn.read_string(path);
        Self::classify(path, r)
    }

    fn list(&mut self, path: &str) -> Result<Got<Vec<String>>, ReadError> {
        let r = self
            .conn
            .directory(path)
            .map(|e| e.map(str::to_owned).collect());
        Self::classify(path, r)
    }

    /// The domids under `/local/domain`, or only our own when that may not be listed.
    pub fn domains(&mut self) -> Result<Domains, ReadError> {
        match self.list(DOMAINS_DIR)? {
            Got::Value(names) => {
                let mut ids: Vec<u32> = Vec::with_capacity(names.len());
                for d in names.iter().filter_map(|n| parse_domid(n)) {
                    // Sorted insert, not a sort: smaller binary.
                    if let Err(at) = ids.binary_search(&d) {
                        ids.insert(at, d);
                    }
                }
                Ok(Domains::All(ids))
            }
            Got::Absent => Ok(Domains::All(Vec::new())),
            Got::Denied => match self.conn.read_domid() {
                Ok(d) => Ok(Domains::OnlyOwn(d)),
                Err(e) => Err(ReadError::Request("domid".into(), e)),
            },
        }
    }

    /// The `name` of a domain, if readable.
    fn name(&mut self, domid: u32) -> Result<Option<String>, ReadError> {
        match self.read(&format!("{}/name", home(domid)))? {
            Got::Value(n) => Ok(Some(n)),
            Got::Absent | Got::Denied => Ok(None),
        }
    }

    /// True if `/local/domain/<domid>` exists (readable or not).
    pub fn exists(&mut self, domid: u32) -> Result<bool, ReadError> {
        let home = home(domid);
        Ok(!matches!(self.read(&home)?, Got::Absent))
    }

    /// The domid `spec` names now, if any. A name matches the lowest domid with that `name`.
    pub fn resolve(&mut self, spec: &DomainSpec) -> Result<Option<u32>, ReadError> {
        let name = match spec {
            DomainSpec::Domid(d) => return Ok(self.exists(*d)?.then_some(*d)),
            DomainSpec::Name(n) => n,
        };
        let ids = match self.domains()? {
            Domains::All(ids) => ids,
            Domains::OnlyOwn(d) => vec![d],
        };
        for d in ids {
            if self.name(d)?.as_deref() == Some(name.as_str()) {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// Everything [`GuestReport::parse`](super::report::GuestReport::parse) needs of one domain; `None` if it does not exist
    /// (any more).
    pub fn read_domain(&mut self, domid: u32) -> Result<Option<DomainTree>, ReadError> {
        let home = home(domid);
        let mut tree = DomainTree::new(domid);
        match self.list(&home)? {
            Got::Absent => return Ok(None),
            Got::Denied => {
                tree.denied.insert(String::new());
                if let Got::Value(n) = self.read(&format!("{home}/name"))? {
                    tree.nodes.insert("name".into(), n);
                }
                return Ok(Some(tree));
            }
            Got::Value(_) => {}
        }
        for key in SINGLE_KEYS {
            match self.read(&format!("{home}/{key}"))? {
                Got::Value(v) => {
                    tree.nodes.insert(key.into(), v);
                }
                Got::Denied => {
                    tree.denied.insert(key.into());
                }
                Got::Absent => {}
            }
        }
        for sub in SUBTREES {
            self.subtree_bytes = 0;
            self.read_subtree(&home, sub, 0, &mut tree)?;
        }
        // Destroyed (or migrated away) while we read: leave it out.
        if !self.exists(domid)? {
            return Ok(None);
        }
        Ok(Some(tree))
    }

    /// Re-reads what a watch event at `rel` (relative to the home, under one of
    /// [`SINGLE_KEYS`] or [`SUBTREES`]) may have changed, into `tree`: that node and what is
    /// below it, nothing else. What is gone is removed from `tree`.
    pub fn refresh(&mut self, tree: &mut DomainTree, rel: &str) -> Result<(), ReadError> {
        let home = home(tree.domid);
        let single = SINGLE_KEYS.iter().find(|k| is_under(rel, k));
        let target = single.copied().unwrap_or(rel);
        let gone: Vec<String> = tree.below(target).map(|(k, _)| k.clone()).collect();
        for k in gone {
            tree.nodes.remove(&k);
        }
        tree.denied.retain(|k| !is_under(k, target));
        if let Some(key) = single {
            match self.read(&format!("{home}/{key}"))? {
                Got::Value(v) => {
                    tree.nodes.insert((*key).into(), v);
                }
                Got::Denied => {
                    tree.denied.insert((*key).into());
                }
                Got::Absent => {}
            }
            return Ok(());
        }
        let Some(root) = SUBTREES.iter().find(|t| is_under(rel, t)) else {
            return Ok(());
        };
        let depth = rel.matches('/').count() - root.matches('/').count();
        self.subtree_bytes = tree.below(root).map(|(k, v)| k.len() + v.len()).sum();
        self.read_subtree(&home, rel, depth, tree)
    }

    /// `rel` (relative to `home`) and everything below it.
    fn read_subtree(
        &mut self,
        home: &str,
        rel: &str,
        depth: usize,
        tree: &mut DomainTree,
    ) -> Result<(), ReadError> {
        let mut path = String::with_capacity(256);
        path.push_str(home);
        path.push('/');
        let start = path.len();
        path.push_str(rel);
        self.read_below(&mut path, start, depth, tree, None)
    }

    /// Asks for the value and children of `dir/<name>` for each of `names` at once (of `dir`
    /// itself for `None`).
    fn fetch(
        &mut self,
        dir: &str,
        names: Option<&[String]>,
    ) -> Result<Vec<NodeAndChildren>, ReadError> {
        self.conn
            .read_and_directory(dir, names)
            .map_err(|e| ReadError::Request(dir.to_owned(), e))
    }

    /// `path` (`<home>/<rel>`, `rel` starting at byte `rel_at`) and everything below it;
    /// `got` is its value and children if they were asked for already (with its siblings).
    /// The one path buffer grows by a component per level and is cut back after each.
    fn read_below(
        &mut self,
        path: &mut String,
        rel_at: usize,
        depth: usize,
        tree: &mut DomainTree,
        got: Option<NodeAndChildren>,
    ) -> Result<(), ReadError> {
        if tree.nodes.len() >= NODE_LIMIT
            || depth > DEPTH_LIMIT
            || self.subtree_bytes >= SUBTREE_BYTES_LIMIT
        {
            tree.truncated = true;
            return Ok(());
        }
        let (value, children) = match got {
            Some(g) => g,
            None => match self.fetch(path, None)?.pop() {
                Some(g) => g,
                None => return Ok(()),
            },
        };
        let rel = &path[rel_at..];
        match Self::classify(path, value)? {
            Got::Value(v) => {
                self.subtree_bytes += rel.len() + v.len();
                tree.nodes.insert(rel.to_owned(), v);
            }
            Got::Denied => {
                tree.denied.insert(rel.to_owned());
                return Ok(());
            }
            Got::Absent => return Ok(()),
        }
        let mut children = match Self::classify(path, children)? {
            Got::Value(c) => c,
            Got::Denied => {
                tree.denied.insert(rel.to_owned());
                return Ok(());
            }
            Got::Absent => return Ok(()),
        };
        children.retain(|c| !c.is_empty() && !c.contains('/'));
        if children.len() > 1 && holds_agent_keys(rel) {
            // stable: otherwise in xenstored's order
            children.sort_by_cached_key(|c| !read_first(rel, c));
        }
        // Siblings are asked for in batches (see read_and_directory), then read one by one in
        // order, so the limits above cut exactly where they would one node at a time; what a
        // cut batch asked for in vain is at most BATCH nodes.
        let len = path.len();
        let mut rest = &children[..];
        while !rest.is_empty() {
            let (mut n, mut bytes) = (0, 0);
            while n < rest.len() && n < BATCH && bytes < BATCH_BYTES {
                bytes += len + 1 + rest[n].len();
                n += 1;
            }
            let (batch, after) = rest.split_at(n);
            rest = after;
            let got = self.fetch(path, Some(batch))?;
            for (c, g) in batch.iter().zip(got) {
                path.push('/');
                path.push_str(c);
                let r = self.read_below(path, rel_at, depth + 1, tree, Some(g));
                path.truncate(len);
                r?;
            }
        }
        Ok(())
    }
}

/// Most siblings asked for at once, and about the most bytes of their paths: a batch of
/// requests always fits a socket's send buffer, so writing it never waits for xenstored.
const BATCH: usize = 32;
const BATCH_BYTES: usize = 16 * 1024;

/// True if one of the agent's keys ([`crate::layout`]) is below `dir`: only then does
/// [`read_first`] order its children (one scan per directory, not one per comparison).
fn holds_agent_keys(dir: &str) -> bool {
    OWNED_KEYS
        .iter()
        .chain(&KEEP_KEYS)
        .chain(&OWNED_SUBTREES)
        .any(|k| {
            k.strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// Children of `dir` read before their siblings: those the agent's keys are in
/// ([`crate::layout`]), so that a guest that fills `data/` or `attr/` up to
/// [`SUBTREE_BYTES_LIMIT`] does not push them out.
fn read_first(dir: &str, child: &str) -> bool {
    let holds = |key: &str| {
        key.strip_prefix(dir)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| is_under(rest, child))
    };
    OWNED_KEYS
        .iter()
        .chain(&KEEP_KEYS)
        .chain(&OWNED_SUBTREES)
        .any(|k| holds(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_specs() {
        assert_eq!(DomainSpec::parse("7"), DomainSpec::Domid(7));
        assert_eq!(DomainSpec::parse("007"), DomainSpec::Domid(7));
        assert_eq!(DomainSpec::parse("web1"), DomainSpec::Name("web1".into()));
        assert_eq!(DomainSpec::parse("+7"), DomainSpec::Name("+7".into()));
        assert_eq!(
            DomainSpec::parse("99999999999"),
            DomainSpec::Name("99999999999".into())
        );
    }

    #[test]
    fn the_agents_keys_are_read_first() {
        for (dir, child) in [
            ("data", "xenbeacon"),
            ("data", "os_name"),
            ("data", "host_name_dns"),
            ("data", "balloon_state"),
            ("data/xenbeacon", "balloon"),
            ("attr", "vif"),
            ("attr", "PVAddons"),
            ("xenserver/attr", "net-sriov-vf"),
        ] {
            assert!(read_first(dir, child), "{dir}/{child}");
        }
        for (dir, child) in [
            ("data", "volumes"),
            ("data", "os"),
            ("data", "xenbeaconx"),
            ("attr", "eth0"),
            ("attr/vif/0", "ipv4"),
            ("device/vif", "0"),
        ] {
            assert!(!read_first(dir, child), "{dir}/{child}");
        }
    }
}
