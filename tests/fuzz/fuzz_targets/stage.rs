//! The boot-stage detector: `stage::detect` on a root whose `proc/self/mountinfo` is the input.
//! (The mountinfo parser, `root_fs_type`, is private; `detect` is the public way in.)
//!
//! Properties, besides "no panic":
//! * `initramfs` only if the input says `rootfs` somewhere;
//! * the last mount on `/` decides: appending a `rootfs` root line gives `initramfs`,
//!   appending an ext4 root line after that gives `rootfs` again;
//! * lines that are not about `/` do not change the answer.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xenbeacon::model::BootStage;
use xenbeacon::sources::stage::detect;

fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = scratch_base();
        let r = base.join(format!("xb-fuzz-stage-{}", std::process::id()));
        std::fs::create_dir_all(r.join("proc/self")).expect("temp root");
        r
    })
}

fn detect_with(mountinfo: &[u8]) -> BootStage {
    let r = root();
    std::fs::write(r.join("proc/self/mountinfo"), mountinfo).expect("write mountinfo");
    detect(r)
}

fuzz_target!(|data: &[u8]| {
    let stage = detect_with(data);
    if stage == BootStage::Initramfs {
        assert!(data.windows(6).any(|w| w == b"rootfs"));
    }
    let mut doc = data.to_vec();
    doc.extend_from_slice(b"\n1 1 0:2 / / rw - rootfs rootfs rw\n");
    assert_eq!(detect_with(&doc), BootStage::Initramfs);
    doc.extend_from_slice(b"22 1 0:21 / /proc rw,relatime - proc proc rw\n");
    assert_eq!(detect_with(&doc), BootStage::Initramfs);
    doc.extend_from_slice(b"31 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n");
    assert_eq!(detect_with(&doc), BootStage::Rootfs);
});

/// `$XENBEACON_FUZZ_TMP` (set and removed by `.ci/fuzz`), else /dev/shm, else the temp dir.
fn scratch_base() -> PathBuf {
    match std::env::var_os("XENBEACON_FUZZ_TMP") {
        Some(d) => PathBuf::from(d),
        None if std::path::Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    }
}
