//! What was read below one domain's home: relative path -> value, plus the paths xenstored
//! refused. The reader fills it ([`super::reader`]); the parser turns it into a report
//! ([`super::parse`]), so every rule there is testable without a connection.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::layout::{is_under, key};

/// The directory of every domain's home.
pub const DOMAINS_DIR: &str = "/local/domain";

/// A domain's home, `/local/domain/<domid>`: the paths in a [`DomainTree`] are relative to it.
pub fn home(domid: u32) -> String {
    format!("{DOMAINS_DIR}/{domid}")
}

/// Keys the toolstack writes in a home, read besides what the guest writes
/// (`crate::layout`).
pub mod toolstack_key {
    pub const NAME: &str = "name";
    /// `/vm/<uuid>`.
    pub const VM: &str = "vm";
    /// The balloon target (`xl mem-set`).
    pub const MEMORY_TARGET: &str = "memory/target";
    pub const MEMORY_STATIC_MAX: &str = "memory/static-max";
    /// `device/vif/<devid>/mac`: the vifs the toolstack configured, with their MACs.
    pub const VIFS: &str = "device/vif";
}

/// The subtrees a guest writes in (xenbeacon's layout, other agents' keys).
pub const GUEST_SUBTREES: [&str; 3] = ["data", "attr", "xenserver/attr"];
/// Subtrees of a home read as a whole (recursively).
pub const SUBTREES: [&str; 4] = [
    GUEST_SUBTREES[0],
    GUEST_SUBTREES[1],
    GUEST_SUBTREES[2],
    toolstack_key::VIFS,
];
/// Single keys of a home read besides the subtrees.
pub const SINGLE_KEYS: [&str; 5] = [
    toolstack_key::NAME,
    toolstack_key::VM,
    toolstack_key::MEMORY_TARGET,
    toolstack_key::MEMORY_STATIC_MAX,
    key::FEATURE_BALLOON,
];

/// Everything read below one domain's home.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainTree {
    pub domid: u32,
    /// Values by path relative to the home (`data/os_name`, `attr/vif/0/ipv4/0`), directories
    /// included (usually with an empty value).
    pub nodes: BTreeMap<String, String>,
    /// Relative paths xenstored refused to read (EACCES): they and everything below are
    /// unknown. `""` is the home itself.
    pub denied: BTreeSet<String>,
    /// The reader stopped at its node limit: what is here is not everything.
    pub truncated: bool,
}

impl DomainTree {
    pub fn new(domid: u32) -> DomainTree {
        DomainTree {
            domid,
            ..DomainTree::default()
        }
    }

    /// Adds a node.
    #[cfg(test)]
    pub fn set(&mut self, path: &str, value: &str) -> &mut DomainTree {
        self.nodes.insert(path.to_owned(), value.to_owned());
        self
    }

    /// True when `path` or one of its ancestors could not be read.
    pub fn is_denied(&self, path: &str) -> bool {
        is_denied(&self.denied, path)
    }

    /// `dir` and the nodes below it, in key order: a range of the map, not a scan.
    pub fn below<'t: 'd, 'd>(
        &'t self,
        dir: &'d str,
    ) -> impl Iterator<Item = (&'t String, &'t String)> + 'd {
        self.nodes
            .range::<str, _>((Bound::Included(dir), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(dir))
            .filter(move |(k, _)| is_under(k, dir))
    }

    /// True if some node is below `dir` (stops at the first).
    pub fn has_children(&self, dir: &str) -> bool {
        self.below(dir).any(|(k, _)| k.len() > dir.len())
    }

    /// Names of the direct children of `dir`, from every node below it, in key order.
    /// (No sort: the map is ordered already; a name is only out of order when a sibling
    /// starts with it followed by `-`, the one path character below `/`.)
    pub fn children(&self, dir: &str) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (k, _) in self.below(dir) {
            let Some(rest) = k[dir.len()..].strip_prefix('/') else {
                continue;
            };
            let c = rest.split('/').next().unwrap_or("");
            if !c.is_empty() && names.last() != Some(&c) && !names.contains(&c) {
                names.push(c);
            }
        }
        names
    }
}

/// True when `path` is one of `denied` or below one (`""` denies everything).
pub(super) fn is_denied<'a>(denied: impl IntoIterator<Item = &'a String>, path: &str) -> bool {
    denied
        .into_iter()
        .any(|d| d.is_empty() || is_under(path, d))
}
