//! Confined reads of a sysfs tree that may be a hostile `--root` copy: interface names are
//! validated like the kernel's `dev_valid_name`, every link is resolved with `canonicalize`
//! and must stay inside `root/sys` (a netdev's `device` link: inside `root/sys/devices`),
//! attributes are opened without following a symlink and without blocking (a FIFO reads as
//! empty, a directory fails), at most 4 KiB each, and values keep printable ASCII only. The
//! classification rules ([`super`]) read the tree only through these.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ClassifyError;
use crate::sources::{canonicalize, read_attr, rooted};

/// sysfs attributes and uevents are a line or a few; anything past this is ignored.
const MAX_ATTR: usize = 4096;

/// The kernel's `IFNAMSIZ` (16) minus the terminating NUL.
const MAX_IFNAME: usize = 15;

/// The kernel's `dev_valid_name`: 1 to 15 bytes, not `.` or `..`, no `/`, `:`, NUL or
/// whitespace. Anything else cannot be an interface and must not become a path component.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|c| c == b'/' || c == b':' || c == 0 || c.is_ascii_whitespace())
}

/// `root/sys`, canonicalized once, and a reused read buffer: open it once to classify several
/// interfaces in a row.
///
/// Only `root/sys` itself is canonicalized up front: every class entry and `device` link is
/// canonicalized when classified and must land inside it, so `class/net` and `devices` need
/// no resolving of their own (in sysfs they are plain directories), and the device-tree base
/// is only looked up for a platform NIC. In a PV guest each system call is a trip through Xen.
pub struct Sysfs {
    /// Canonical `root/sys`: no link may lead out of it.
    pub(super) sys: PathBuf,
    /// `root/sys/devices`: where a netdev's `device` must lead.
    pub(super) devices: PathBuf,
    /// `root/sys/class/net`.
    pub(super) class_net: PathBuf,
    /// Canonical `root/sys/firmware/devicetree/base` when there is one inside `sys`; looked
    /// up on first use.
    pub(super) dt_base: Option<Option<PathBuf>>,
    pub(super) buf: Vec<u8>,
}

impl Sysfs {
    /// Errors: [`ClassifyError::NoSysfs`] without `root/sys`.
    pub fn open(root: &Path) -> Result<Sysfs, ClassifyError> {
        let sys = canonicalize(&rooted(root, "/sys")).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ClassifyError::NoSysfs,
            _ => ClassifyError::Io(e),
        })?;
        Ok(Sysfs {
            devices: sys.join("devices"),
            class_net: sys.join("class/net"),
            sys,
            dt_base: None,
            buf: Vec::with_capacity(MAX_ATTR),
        })
    }

    /// The canonical target of the netdev's `device` link; `None` when there is none.
    pub(super) fn device_of(
        &self,
        entry: &Path,
        netdir: &Path,
    ) -> Result<Option<PathBuf>, ClassifyError> {
        let link = netdir.join("device");
        let dev = match canonicalize(&link) {
            Ok(p) => p,
            Err(e) => {
                return match fs::symlink_metadata(&link) {
                    // No link: a virtual device (bridge, VLAN, ...). Had the whole netdev
                    // gone, `classify` notices afterwards.
                    Err(l) if l.kind() == io::ErrorKind::NotFound => Ok(None),
                    _ if fs::symlink_metadata(entry).is_err() => Err(ClassifyError::Vanished),
                    // A dangling or unreadable link.
                    _ => Err(ClassifyError::Io(e)),
                };
            }
        };
        if !dev.starts_with(&self.devices) || dev == self.devices {
            return Err(ClassifyError::OutsideSysfs);
        }
        Ok(Some(dev))
    }

    /// `dev`'s parent, when it is a device (inside /sys/devices, not /sys/devices itself).
    pub(super) fn parent<'p>(&self, dev: &'p Path) -> Option<&'p Path> {
        dev.parent()
            .filter(|p| p.starts_with(&self.devices) && *p != self.devices)
    }

    /// `dev` relative to /sys, e.g. `devices/vif-0`.
    pub(super) fn topology(&self, dev: &Path) -> String {
        let rel = dev.strip_prefix(&self.sys).unwrap_or(dev);
        let parts: Vec<String> = rel
            .iter()
            .map(|c| printable(c.as_encoded_bytes()))
            .collect();
        parts.join("/")
    }

    /// The canonical target of `dir/name`, when it stays inside /sys.
    pub(super) fn resolve(&self, dir: &Path, name: &str) -> Option<PathBuf> {
        canonicalize(&dir.join(name))
            .ok()
            .filter(|p| p.starts_with(&self.sys))
    }

    /// The last component of the link `dir/name`'s target (a bus or driver name).
    pub(super) fn link_name(&self, dir: &Path, name: &str) -> Option<String> {
        let target = self.resolve(dir, name)?;
        let s = printable(target.file_name()?.as_encoded_bytes());
        (!s.is_empty()).then_some(s)
    }

    /// The first line of the attribute `dir/name`, printable ASCII only; `None` when it is
    /// missing, not a regular file, or empty.
    pub(super) fn attr(&mut self, dir: &Path, name: &str) -> Option<String> {
        if !self.read(dir, name) {
            return None;
        }
        let line = self.buf.split(|&c| c == b'\n').next().unwrap_or_default();
        let s = printable(line);
        (!s.is_empty()).then_some(s)
    }

    /// The value of `key` in `dir/uevent`.
    pub(super) fn uevent(&mut self, dir: &Path, key: &str) -> Option<String> {
        if !self.read(dir, "uevent") {
            return None;
        }
        uevent_value(&self.buf, key)
    }

    /// Reads `dir/name` into the buffer: never through a symlink that could lead anywhere,
    /// never blocking on a FIFO (which reads as empty), and a directory fails to read.
    pub(super) fn read(&mut self, dir: &Path, name: &str) -> bool {
        read_attr(&dir.join(name), &mut self.buf, MAX_ATTR).is_ok()
    }
}

/// A path component as printable text.
pub(super) fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| printable(n.as_encoded_bytes()))
        .unwrap_or_default()
}

/// Printable ASCII of `bytes`, trimmed; everything else is dropped.
pub(super) fn printable(bytes: &[u8]) -> String {
    let s: String = bytes
        .iter()
        .filter(|c| c.is_ascii_graphic() || **c == b' ')
        .map(|&c| char::from(c))
        .collect();
    s.trim().to_owned()
}

/// The value of `KEY=value` in a uevent, printable and non-empty.
pub(super) fn uevent_value(uevent: &[u8], key: &str) -> Option<String> {
    uevent.split(|&c| c == b'\n').find_map(|line| {
        let value = line.strip_prefix(key.as_bytes())?.strip_prefix(b"=")?;
        let s = printable(value);
        (!s.is_empty()).then_some(s)
    })
}
