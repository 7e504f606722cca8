//! Test support shared by the integration tests: a fake xenstored speaking the real wire
//! protocol on unix sockets ([`fake_xenstored`]), its [`fault_injector`], and [`tempdir`].
//! Each test binary uses a different subset, hence `dead_code` is allowed.
#![allow(dead_code)]

pub mod fake_sysfs;
pub mod fake_xenstored;
pub mod fault_injector;
pub mod guest;
pub mod netns;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh directory under `std::env::temp_dir()`, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes a unique, empty directory named after `name`, the process and a counter. Kept short
/// because unix socket paths are limited to 107 bytes.
pub fn tempdir(name: &str) -> TempDir {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    let nanos = now.map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("xb-{name}-{pid}-{n}-{nanos:x}"));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TempDir(dir)
}
