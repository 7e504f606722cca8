//! The sysfs NIC classifier, `sysfs_net::classify`, on a small tree built from the input.
//!
//! The input picks a starting shape (nothing, a vif, a PCI, USB, platform or virtio-pci NIC,
//! laid out like the kernel's) and then a list of edits: directories, files with chosen or raw
//! contents, symlinks (relative, with `..`, or absolute to a "secret" directory outside
//! `root/sys`), FIFOs, all at paths made of sysfs-like names. Kept simple on purpose: a few
//! dozen names, at most 24 edits.
//!
//! Properties, besides "no panic" and "no hang" (a FIFO must never be opened):
//! * nothing outside `root/sys` is ever read: the secret directory's files all say `LEAKED`
//!   (and its vif nodename is devid 666), and no classification may contain that (raw contents
//!   written inside `root/sys` have those markers broken, see `unforged`);
//! * every string in a classification is printable ASCII, trimmed;
//! * a topology is relative to /sys and under `devices/`, without `.` or `..` components;
//! * an invalid interface name is `BadName`, whatever the tree.
#![no_main]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xenbeacon::net::NicClass;
use xenbeacon::sources::sysfs_net::{classify, ClassifyError};

const NAMES: [&str; 40] = [
    "class",
    "net",
    "eth0",
    "devices",
    "device",
    "subsystem",
    "bus",
    "pci",
    "usb",
    "xen",
    "virtio",
    "platform",
    "virtio0",
    "0000:00:05.0",
    "pci0000:00",
    "1-1",
    "1-1:1.0",
    "vif-0",
    "uevent",
    "vendor",
    "devtype",
    "nodename",
    "driver",
    "of_node",
    "firmware",
    "devicetree",
    "base",
    "compatible",
    "idVendor",
    "idProduct",
    "e1000",
    "drivers",
    "..",
    ".",
    "x",
    "sys",
    "fd580000.ethernet",
    "ethernet@7d580000",
    "secret",
    "eth1",
];

const CONTENTS: [&[u8]; 16] = [
    b"vif\n",
    b"device/vif/0\n",
    b"device/vif/4294967296\n",
    b"0x8086\n",
    b"PCI_SLOT_NAME=0000:00:05.0\n",
    b"DEVTYPE=usb_interface\n",
    b"DEVTYPE=usb_device\nMODALIAS=usb:v0525\n",
    b"XENBUS_TYPE=vif\n",
    b"MODALIAS=virtio:d00000001v00001AF4\n",
    b"MODALIAS=platform:x\nOF_FULLNAME=/scb/ethernet@7d580000\nOF_COMPATIBLE_0=brcm,genet\nOF_COMPATIBLE_N=1\n",
    b"brcm,bcm2711-genet-v5\0brcm,genet\0",
    b"\x1b[31m\xff\x00\n\n",
    b"",
    b"OF_COMPATIBLE_4294967296=x\nOF_COMPATIBLE_1=b\nOF_COMPATIBLE_0=a\n",
    b"a4a2",
    b"   \n",
];

/// What the files of the secret directory (outside root/sys) say.
const SECRET: &[u8] = b"LEAKED";

fn base() -> &'static PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let tmp = scratch_base();
        let b = tmp.join(format!("xb-fuzz-sysfs-{}", std::process::id()));
        let secret = b.join("secret");
        fs::create_dir_all(secret.join("net/eth0")).expect("secret dir");
        fs::create_dir_all(secret.join("LEAKED-bus")).expect("secret dir");
        let uevent = b"PCI_SLOT_NAME=LEAKED\nDEVTYPE=usb_interface\nOF_FULLNAME=/LEAKED\n\
                       OF_COMPATIBLE_0=LEAKED\nDRIVER=LEAKED\n";
        fs::write(secret.join("uevent"), uevent).expect("secret file");
        for f in [
            "vendor",
            "device",
            "idVendor",
            "idProduct",
            "compatible",
            "devtype",
        ] {
            fs::write(secret.join(f), SECRET).expect("secret file");
        }
        fs::write(secret.join("nodename"), b"device/vif/666\n").expect("secret file");
        let _ = symlink(secret.join("LEAKED-bus"), secret.join("subsystem"));
        let _ = symlink(secret.join("LEAKED-bus"), secret.join("driver"));
        b
    })
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    /// A path of 1 to 4 names (relative to root/sys).
    fn path(&mut self) -> Option<String> {
        let n = 1 + self.byte()? % 4;
        let mut parts = Vec::new();
        for _ in 0..n {
            parts.push(NAMES[self.byte()? as usize % NAMES.len()]);
        }
        Some(parts.join("/"))
    }
}

/// Where to create `rel` below `sys`, making its parent directories, but only along real
/// directories: `None` if `rel` has a `.`/`..` component or an existing ancestor is a symlink,
/// file or FIFO. An existing non-directory at `rel` itself is removed (never followed). This
/// keeps every write inside `sys` however hostile the links built so far are (the fuzzer runs
/// as root: a write through `../../..` could land anywhere).
fn place(sys: &Path, rel: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = rel.split('/').collect();
    let (last, dirs) = parts.split_last()?;
    if parts
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return None;
    }
    let mut cur = sys.to_path_buf();
    for d in dirs {
        cur.push(d);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => fs::create_dir(&cur).ok()?,
        }
    }
    cur.push(last);
    match fs::symlink_metadata(&cur) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => fs::remove_file(&cur).ok().map(|()| cur),
        Err(_) => Some(cur),
    }
}

/// Raw input bytes that cannot spell the secret's markers (`LEAKED`, `666`), so a file written
/// inside `root/sys` can never pass for one read from the secret directory. Not only the whole
/// markers: the reader drops bytes it cannot use, so `LEA\x95KED` would be read as `LEAKED`
/// (a false crash found by a fresh .ci/fuzz run): every byte that starts a marker goes.
fn unforged(raw: &[u8]) -> Vec<u8> {
    raw.iter()
        .map(|&b| match b {
            b'L' => b'M',
            b'6' => b'7',
            b => b,
        })
        .collect()
}

fn mkdir(sys: &Path, rel: &str) {
    if let Some(p) = place(sys, rel) {
        let _ = fs::create_dir(p);
    }
}

fn write(sys: &Path, rel: &str, content: &[u8]) {
    if let Some(p) = place(sys, rel) {
        let _ = fs::write(p, content);
    }
}

fn link(sys: &Path, rel: &str, target: &str) {
    if let Some(p) = place(sys, rel) {
        let _ = symlink(target, p);
    }
}

fn fifo(sys: &Path, rel: &str) {
    let Some(p) = place(sys, rel) else { return };
    if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) {
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    }
}

/// A NIC `eth0` laid out like the kernel does it, by kind.
fn shape(sys: &Path, kind: u8) {
    let dev = match kind % 6 {
        0 => return,
        1 => {
            write(sys, "devices/vif-0/devtype", b"vif\n");
            write(sys, "devices/vif-0/nodename", b"device/vif/0\n");
            mkdir(sys, "bus/xen");
            link(sys, "devices/vif-0/subsystem", "../../bus/xen");
            "devices/vif-0".to_owned()
        }
        2 => {
            let d = "devices/pci0000:00/0000:00:05.0";
            write(sys, &format!("{d}/vendor"), b"0x8086\n");
            write(sys, &format!("{d}/device"), b"0x100e\n");
            mkdir(sys, "bus/pci/drivers/e1000");
            link(sys, &format!("{d}/subsystem"), "../../../bus/pci");
            link(
                sys,
                &format!("{d}/driver"),
                "../../../bus/pci/drivers/e1000",
            );
            d.to_owned()
        }
        3 => {
            let d = "devices/pci0000:00/0000:00:1d.0/usb1/1-1/1-1:1.0";
            write(
                sys,
                "devices/pci0000:00/0000:00:1d.0/usb1/1-1/idVendor",
                b"0525\n",
            );
            write(
                sys,
                "devices/pci0000:00/0000:00:1d.0/usb1/1-1/idProduct",
                b"a4a2\n",
            );
            write(sys, &format!("{d}/uevent"), b"DEVTYPE=usb_interface\n");
            mkdir(sys, "bus/usb");
            link(sys, &format!("{d}/subsystem"), "../../../../../../bus/usb");
            d.to_owned()
        }
        4 => {
            let d = "devices/platform/fd580000.ethernet";
            write(
                sys,
                "firmware/devicetree/base/scb/ethernet@7d580000/compatible",
                b"brcm,bcm2711-genet-v5\0",
            );
            link(
                sys,
                &format!("{d}/of_node"),
                "../../../firmware/devicetree/base/scb/ethernet@7d580000",
            );
            d.to_owned()
        }
        _ => {
            let d = "devices/pci0000:00/0000:00:03.0/virtio0";
            write(sys, "devices/pci0000:00/0000:00:03.0/vendor", b"0x1af4\n");
            write(
                sys,
                &format!("{d}/uevent"),
                b"MODALIAS=virtio:d00000001v00001AF4\n",
            );
            d.to_owned()
        }
    };
    let net = format!("{dev}/net/eth0");
    mkdir(sys, &net);
    link(sys, &format!("{net}/device"), "../..");
    mkdir(sys, "class/net");
    link(sys, "class/net/eth0", &format!("../../{net}"));
}

fn check_str(what: &str, s: &str) {
    assert!(
        !s.contains("LEAKED"),
        "{what} = {s:?} read from outside root/sys"
    );
    assert!(
        s.bytes().all(|c| c.is_ascii_graphic() || c == b' '),
        "{what} = {s:?}"
    );
    assert_eq!(s.trim(), s, "{what} = {s:?}");
}

fn check_topology(t: &str) {
    check_str("topology", t);
    assert!(t.starts_with("devices/"), "topology {t:?}");
    assert!(
        !t.split('/').any(|c| c == ".." || c == "." || c.is_empty()),
        "topology {t:?}"
    );
}

fn check(class: &NicClass) {
    match class {
        NicClass::Vif { devid } => assert_ne!(*devid, 666, "vif devid read from outside"),
        NicClass::Pci(p) => {
            check_str("bdf", &p.bdf);
            check_topology(&p.topology);
            for v in [&p.vendor, &p.device, &p.driver].into_iter().flatten() {
                check_str("pci attr", v);
            }
        }
        NicClass::Usb(u) => {
            check_str("bus_path", &u.bus_path);
            check_topology(&u.topology);
            for v in [&u.vendor, &u.product, &u.driver].into_iter().flatten() {
                check_str("usb attr", v);
            }
        }
        NicClass::Platform(p) => {
            check_str("name", &p.name);
            check_topology(&p.topology);
            for v in p
                .node
                .iter()
                .chain(p.driver.iter())
                .chain(p.compatible.iter())
            {
                check_str("platform attr", v);
            }
        }
        NicClass::Virtual => {}
        NicClass::Other { bus } => check_str("bus", bus),
    }
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let root = base.join("root");
    let _ = fs::remove_dir_all(&root);
    let sys = root.join("sys");
    fs::create_dir_all(&sys).expect("root/sys");
    let mut input = Bytes(data);
    let Some(kind) = input.byte() else { return };
    shape(&sys, kind);
    let secret = base.join("secret");
    for _ in 0..24 {
        let (Some(op), Some(path)) = (input.byte(), input.path()) else {
            break;
        };
        match op % 6 {
            0 => mkdir(&sys, &path),
            1 => {
                let c = CONTENTS[input.byte().unwrap_or(0) as usize % CONTENTS.len()];
                write(&sys, &path, c);
            }
            2 => {
                // raw content: up to 16 input bytes
                let n = (input.byte().unwrap_or(0) % 17) as usize;
                let n = n.min(input.0.len());
                let (c, rest) = input.0.split_at(n);
                input.0 = rest;
                write(&sys, &path, &unforged(c));
            }
            3 => {
                // relative link: up to 5 `..`, then a path
                let ups = "../".repeat((input.byte().unwrap_or(0) % 6) as usize);
                let to = input.path().unwrap_or_default();
                link(&sys, &path, &format!("{ups}{to}"));
            }
            4 => {
                // absolute link to the secret directory, or into it
                let inner = ["", "net/eth0", "uevent", "LEAKED-bus", "vendor"]
                    [input.byte().unwrap_or(0) as usize % 5];
                link(&sys, &path, &secret.join(inner).to_string_lossy());
            }
            _ => fifo(&sys, &path),
        }
    }
    let ifname = [
        "eth0",
        "eth1",
        "..",
        "",
        "eth0/..",
        "a b",
        "sixteen-bytes-xx",
    ][input.byte().unwrap_or(0) as usize % 7];
    match classify(&root, ifname) {
        Ok(class) => {
            assert!(matches!(ifname, "eth0" | "eth1"));
            check(&class);
        }
        Err(ClassifyError::BadName) => assert!(!matches!(ifname, "eth0" | "eth1")),
        Err(e) => {
            assert!(matches!(ifname, "eth0" | "eth1"), "{ifname:?}: {e}");
            let _ = e.to_string();
        }
    }
});

/// `$XENBEACON_FUZZ_TMP` (set and removed by `.ci/fuzz`), else /dev/shm, else the temp dir.
fn scratch_base() -> PathBuf {
    match std::env::var_os("XENBEACON_FUZZ_TMP") {
        Some(d) => PathBuf::from(d),
        None if std::path::Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    }
}
