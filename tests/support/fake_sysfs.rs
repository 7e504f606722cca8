//! A fake `/sys` for NIC tests, laid out like the kernel's: every `add_*` creates the device
//! directories under `sys/devices`, the netdev directory `<device>/net/<ifname>` with its
//! `address` and `uevent`, and the same *relative* symlinks the kernel makes:
//!
//! ```text
//! sys/class/net/<if>            -> ../../devices/.../net/<if>
//! <netdev>/device               -> ../../../<device>          (not for software interfaces)
//! <netdev>/subsystem            -> ../../../../class/net
//! <device>/subsystem            -> ../../bus/<bus>
//! <device>/driver               -> ../../bus/<bus>/drivers/<driver>
//! <device>/of_node              -> ../../../firmware/devicetree/base/<node>
//! sys/bus/<bus>/devices/<name>  -> ../../../devices/.../<name>
//! ```
//!
//! The shapes are the ones seen in real Xen guests (`tests/e2e/HARNESS.md`, "Network
//! scenarios"). Names are taken as given (the tree describes interfaces by name, e.g. ones
//! that really exist in a test network namespace); nothing here checks them. I/O errors panic:
//! this is test support.
//!
//! ```ignore
//! let sys = FakeSysfs::new(dir.path());
//! sys.add_vif("eth0", 0, "00:16:3e:00:00:00");
//! sys.add_virtual("br0", "00:16:3e:00:00:00");
//! sys.rename("eth0", "lan0");
//! sys.remove("br0");
//! ```

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// A sysfs tree under `root/sys`. Each `add_*` returns the absolute path of what the netdev's
/// `device` link resolves to (for [`FakeSysfs::add_virtual`]: the netdev directory itself), so
/// a test can then damage files in it.
pub struct FakeSysfs {
    root: PathBuf,
}

impl FakeSysfs {
    /// An empty sysfs (`sys/class/net`, `sys/devices/virtual/net`, `sys/bus`) under `root`.
    pub fn new(root: &Path) -> FakeSysfs {
        let fake = FakeSysfs {
            root: root.to_path_buf(),
        };
        for dir in ["class/net", "devices/virtual/net", "bus", "firmware"] {
            fake.mkdir(dir);
        }
        fake
    }

    /// The `--root` the tree is under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/sys/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }

    /// A Xen PV vif (xen-netfront): `devices/vif-<devid>` on the xen bus, `devtype` = `vif`,
    /// `nodename` = `device/vif/<devid>`, driver `vif`.
    pub fn add_vif(&self, ifname: &str, devid: u32, mac: &str) -> PathBuf {
        let dev = format!("devices/vif-{devid}");
        self.device(
            &dev,
            "xen",
            Some("vif"),
            &format!(
                "XENBUS_TYPE=vif\nXENBUS_PATH=device/vif/{devid}\nXENBUS_BASE_PATH=device\n\
                 MODALIAS=xen:vif\n"
            ),
        );
        self.write(&format!("{dev}/devtype"), "vif\n");
        self.write(&format!("{dev}/nodename"), &format!("device/vif/{devid}\n"));
        self.netdev(Some(&dev), ifname, mac)
    }

    /// A PCI NIC seen directly (HVM passthrough, SR-IOV VF): the function `bdf` (e.g.
    /// `0000:00:05.0`) under `devices/pci<domain>:<bus>`. `vendor`/`device` as in sysfs
    /// (`0x8086`, `0x100e`). With `virtio`, the function is bound to `virtio-pci` and the netdev
    /// hangs off its `virtioN` child, bound to `driver` (`virtio_net`).
    #[allow(clippy::too_many_arguments)]
    pub fn add_pci(
        &self,
        ifname: &str,
        bdf: &str,
        vendor: &str,
        device: &str,
        driver: &str,
        virtio: bool,
        mac: &str,
    ) -> PathBuf {
        let root_bus = pci_root_bus(bdf);
        self.mkdir(&format!("devices/{root_bus}"));
        let func = format!("devices/{root_bus}/{bdf}");
        self.pci_nic(&func, ifname, bdf, vendor, device, driver, virtio, mac)
    }

    /// As [`FakeSysfs::add_pci`], in a PV guest with xen-pcifront: the function sits under
    /// `devices/pci-0/pci<domain>:<bus>/`, where `pci-0` is the pcifront device on the xen bus
    /// (`devtype` = `pci`, `nodename` = `device/pci/0`).
    #[allow(clippy::too_many_arguments)]
    pub fn add_pcifront(
        &self,
        ifname: &str,
        bdf: &str,
        vendor: &str,
        device: &str,
        driver: &str,
        virtio: bool,
        mac: &str,
    ) -> PathBuf {
        let front = "devices/pci-0";
        if !self.path(front).exists() {
            self.device(
                front,
                "xen",
                Some("pcifront"),
                "XENBUS_TYPE=pci\nXENBUS_PATH=device/pci/0\nXENBUS_BASE_PATH=device\n\
                 MODALIAS=xen:pci\n",
            );
            self.write(&format!("{front}/devtype"), "pci\n");
            self.write(&format!("{front}/nodename"), "device/pci/0\n");
        }
        let root_bus = format!("{front}/{}", pci_root_bus(bdf));
        self.mkdir(&root_bus);
        let func = format!("{root_bus}/{bdf}");
        self.pci_nic(&func, ifname, bdf, vendor, device, driver, virtio, mac)
    }

    /// A USB NIC behind an xHCI controller at `0000:00:03.0`: the USB device `port` (e.g.
    /// `1-1`, under `usb1`) with `idVendor`/`idProduct` (`0525`, `a4a2`), and its interface
    /// `<port>:1.0` (`DEVTYPE=usb_interface`) bound to `driver` (`cdc_ether`), which the netdev
    /// hangs off.
    pub fn add_usb(
        &self,
        ifname: &str,
        port: &str,
        vendor: &str,
        product: &str,
        driver: &str,
        mac: &str,
    ) -> PathBuf {
        let hcd = "devices/pci0000:00/0000:00:03.0";
        if !self.path(hcd).exists() {
            self.pci_function(
                hcd,
                "0000:00:03.0",
                "0x1b36",
                "0x000d",
                "0x0c0330",
                "xhci_hcd",
            );
        }
        let busnum = port.split('-').next().unwrap_or("1");
        let hub = format!("{hcd}/usb{busnum}");
        if !self.path(&hub).exists() {
            self.usb_device(&hub, "1d6b", "0003");
        }
        let udev = format!("{hub}/{port}");
        self.usb_device(&udev, vendor, product);
        let iface = format!("{udev}/{port}:1.0");
        self.device(
            &iface,
            "usb",
            Some(driver),
            &format!(
                "DEVTYPE=usb_interface\nPRODUCT={vendor}/{product}/0\nTYPE=2/0/0\nINTERFACE=2/6/0\n\
                 MODALIAS=usb:v{}p{}d0000dc02dsc00dp00ic02isc06ip00in00\n",
                vendor.to_uppercase(),
                product.to_uppercase()
            ),
        );
        self.write(&format!("{iface}/bInterfaceClass"), "02\n");
        self.netdev(Some(&iface), ifname, mac)
    }

    /// A platform (device-tree) NIC: the platform device `name` (`a003e00.virtio_mmio`,
    /// `fd580000.ethernet`) with `of_node` -> the node `of_path`
    /// (`/passthrough/virtio_mmio@a003e00`), whose `compatible` is `compatible`. The device sits
    /// under `devices/platform/` nested like the node's parents (`/passthrough/x` ->
    /// `devices/platform/passthrough/<name>`), or directly there without `of_path`. Without
    /// `virtio_child` the device is bound to `driver` (`bcmgenet`) and is the netdev's
    /// `device`; with it, the device is bound to `virtio-mmio` and the netdev hangs off its
    /// `virtioN` child (no `of_node`), bound to `driver` (`virtio_net`).
    #[allow(clippy::too_many_arguments)]
    pub fn add_platform(
        &self,
        ifname: &str,
        name: &str,
        of_path: Option<&str>,
        compatible: &[&str],
        driver: &str,
        virtio_child: bool,
        mac: &str,
    ) -> PathBuf {
        let mut parent = String::from("devices/platform");
        self.mkdir(&parent);
        let node_parts: Vec<&str> = of_path
            .unwrap_or("")
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        // The node's parents are platform devices too (simple-bus), named after their nodes.
        for depth in 1..node_parts.len() {
            let bus_node = format!("/{}", node_parts[..depth].join("/"));
            parent = format!("{parent}/{}", node_parts[depth - 1]);
            if !self.path(&parent).exists() {
                self.platform_device(&parent, Some(&bus_node), &["simple-bus"], None);
            }
        }
        let pdev = format!("{parent}/{name}");
        let pdriver = if virtio_child { "virtio-mmio" } else { driver };
        self.platform_device(&pdev, of_path, compatible, Some(pdriver));
        let dev = if virtio_child {
            self.virtio_child(&pdev, driver, "0x554d4551")
        } else {
            pdev
        };
        self.netdev(Some(&dev), ifname, mac)
    }

    /// A software interface (bridge, VLAN, veth, lo, ...): `devices/virtual/net/<if>`, no
    /// `device` link.
    pub fn add_virtual(&self, ifname: &str, mac: &str) -> PathBuf {
        self.netdev(None, ifname, mac)
    }

    /// The interface goes away: its class link and netdev directory are removed (the device,
    /// if any, stays, as after unbinding its driver).
    pub fn remove(&self, ifname: &str) {
        let link = self.path(&format!("class/net/{ifname}"));
        let netdir = fs::canonicalize(&link).expect("interface to remove");
        fs::remove_dir_all(&netdir).expect("remove netdev dir");
        fs::remove_file(&link).expect("remove class/net link");
    }

    /// A kernel rename: the netdev directory `<device>/net/<old>` becomes `.../net/<new>` and
    /// `class/net/<old>` is replaced by `class/net/<new>`.
    pub fn rename(&self, old: &str, new: &str) {
        let old_link = self.path(&format!("class/net/{old}"));
        let target = fs::read_link(&old_link).expect("interface to rename");
        let netdir = fs::canonicalize(&old_link).expect("interface to rename");
        let new_netdir = netdir.with_file_name(new);
        fs::rename(&netdir, &new_netdir).expect("rename netdev dir");
        fs::write(new_netdir.join("uevent"), format!("INTERFACE={new}\n")).expect("uevent");
        fs::remove_file(&old_link).expect("remove old class/net link");
        symlink(
            target.with_file_name(new),
            self.path(&format!("class/net/{new}")),
        )
        .expect("new class/net link");
    }

    /// What `class/net/<ifname>/device` resolves to, if anything.
    pub fn device_dir(&self, ifname: &str) -> Option<PathBuf> {
        fs::canonicalize(self.path(&format!("class/net/{ifname}/device"))).ok()
    }

    // ---- building blocks; `rel` paths are relative to `sys` ----

    fn mkdir(&self, rel: &str) {
        fs::create_dir_all(self.path(rel)).expect("mkdir in fake sysfs");
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir in fake sysfs");
        fs::write(path, content).expect("write in fake sysfs");
    }

    /// The symlink `at` -> `target`, relative like the kernel's (replacing an existing one).
    fn link(&self, at: &str, target: &str) {
        let at_path = self.path(at);
        let _ = fs::remove_file(&at_path);
        let dir = at.rsplit_once('/').map_or("", |(d, _)| d);
        symlink(relative(dir, target), at_path).expect("symlink in fake sysfs");
    }

    /// A device directory on `bus` (with the `bus/<bus>/devices` back link), bound to `driver`.
    fn device(&self, dev: &str, bus: &str, driver: Option<&str>, uevent: &str) {
        self.mkdir(dev);
        let name = dev.rsplit('/').next().unwrap_or(dev);
        self.mkdir(&format!("bus/{bus}/devices"));
        self.link(&format!("bus/{bus}/devices/{name}"), dev);
        self.link(&format!("{dev}/subsystem"), &format!("bus/{bus}"));
        let mut text = String::new();
        if let Some(driver) = driver {
            let drv = format!("bus/{bus}/drivers/{driver}");
            self.mkdir(&drv);
            self.link(&format!("{drv}/{name}"), dev);
            self.link(&format!("{dev}/driver"), &drv);
            text.push_str(&format!("DRIVER={driver}\n"));
        }
        text.push_str(uevent);
        self.write(&format!("{dev}/uevent"), &text);
    }

    fn pci_function(
        &self,
        func: &str,
        bdf: &str,
        vendor: &str,
        device: &str,
        class: &str,
        driver: &str,
    ) {
        let (v, d) = (hex4(vendor), hex4(device));
        self.device(
            func,
            "pci",
            Some(driver),
            &format!(
                "PCI_CLASS={}\nPCI_ID={v}:{d}\nPCI_SUBSYS_ID=1AF4:1100\nPCI_SLOT_NAME={bdf}\n\
                 MODALIAS=pci:v0000{v}d0000{d}sv00001AF4sd00001100bc02sc00i00\n",
                class.trim_start_matches("0x").trim_start_matches('0')
            ),
        );
        self.write(&format!("{func}/vendor"), &format!("{vendor}\n"));
        self.write(&format!("{func}/device"), &format!("{device}\n"));
        self.write(&format!("{func}/class"), &format!("{class}\n"));
    }

    #[allow(clippy::too_many_arguments)]
    fn pci_nic(
        &self,
        func: &str,
        ifname: &str,
        bdf: &str,
        vendor: &str,
        device: &str,
        driver: &str,
        virtio: bool,
        mac: &str,
    ) -> PathBuf {
        let fdriver = if virtio { "virtio-pci" } else { driver };
        self.pci_function(func, bdf, vendor, device, "0x020000", fdriver);
        let dev = if virtio {
            self.virtio_child(func, driver, "0x1af4")
        } else {
            func.to_owned()
        };
        self.netdev(Some(&dev), ifname, mac)
    }

    fn usb_device(&self, dev: &str, vendor: &str, product: &str) {
        self.device(
            dev,
            "usb",
            Some("usb"),
            &format!("DEVTYPE=usb_device\nPRODUCT={vendor}/{product}/0\nTYPE=0/0/0\n"),
        );
        self.write(&format!("{dev}/idVendor"), &format!("{vendor}\n"));
        self.write(&format!("{dev}/idProduct"), &format!("{product}\n"));
    }

    fn platform_device(
        &self,
        dev: &str,
        of_path: Option<&str>,
        compatible: &[&str],
        driver: Option<&str>,
    ) {
        let mut uevent = String::new();
        if let Some(of_path) = of_path {
            let node_name = of_path.rsplit('/').next().unwrap_or("");
            let of_name = node_name.split('@').next().unwrap_or("");
            uevent.push_str(&format!("OF_NAME={of_name}\nOF_FULLNAME={of_path}\n"));
            for (i, c) in compatible.iter().enumerate() {
                uevent.push_str(&format!("OF_COMPATIBLE_{i}={c}\n"));
            }
            uevent.push_str(&format!("OF_COMPATIBLE_N={}\n", compatible.len()));
            let first = compatible.first().copied().unwrap_or("");
            uevent.push_str(&format!("MODALIAS=of:N{of_name}T(null)C{first}\n"));
            let node = format!("firmware/devicetree/base{of_path}");
            let mut compat = String::new();
            for c in compatible {
                compat.push_str(c);
                compat.push('\0');
            }
            self.write(&format!("{node}/compatible"), &compat);
            self.write(&format!("{node}/name"), &format!("{of_name}\0"));
            self.device(dev, "platform", driver, &uevent);
            self.link(&format!("{dev}/of_node"), &node);
        } else {
            let name = dev.rsplit('/').next().unwrap_or(dev);
            uevent.push_str(&format!("MODALIAS=platform:{name}\n"));
            self.device(dev, "platform", driver, &uevent);
        }
    }

    /// `<parent>/virtioN` on the virtio bus, bound to `driver`; N is the next free index.
    fn virtio_child(&self, parent: &str, driver: &str, vendor: &str) -> String {
        let n = fs::read_dir(self.path("bus/virtio/devices")).map_or(0, |d| d.count());
        let dev = format!("{parent}/virtio{n}");
        self.device(
            &dev,
            "virtio",
            Some(driver),
            &format!("MODALIAS=virtio:d00000001v{:0>8}\n", hex4(vendor)),
        );
        self.write(&format!("{dev}/vendor"), &format!("{vendor}\n"));
        self.write(&format!("{dev}/device"), "0x0001\n");
        dev
    }

    /// `<dev>/net/<ifname>` (or `devices/virtual/net/<ifname>`), its links and attributes.
    fn netdev(&self, dev: Option<&str>, ifname: &str, mac: &str) -> PathBuf {
        let netdir = match dev {
            Some(dev) => format!("{dev}/net/{ifname}"),
            None => format!("devices/virtual/net/{ifname}"),
        };
        self.mkdir(&netdir);
        self.write(&format!("{netdir}/address"), &format!("{mac}\n"));
        self.write(
            &format!("{netdir}/uevent"),
            &format!("INTERFACE={ifname}\n"),
        );
        self.link(&format!("{netdir}/subsystem"), "class/net");
        if let Some(dev) = dev {
            self.link(&format!("{netdir}/device"), dev);
        }
        self.link(&format!("class/net/{ifname}"), &netdir);
        self.path(dev.unwrap_or(&netdir))
    }
}

/// `pci<domain>:<bus>` for a function `<domain>:<bus>:<dev>.<fn>`.
fn pci_root_bus(bdf: &str) -> String {
    let mut parts = bdf.split(':');
    let domain = parts.next().unwrap_or("0000");
    let bus = parts.next().unwrap_or("00");
    format!("pci{domain}:{bus}")
}

/// `0x8086` -> `8086`, upper case, as in uevent ids.
fn hex4(id: &str) -> String {
    id.trim_start_matches("0x").to_uppercase()
}

/// The kernel's relative link from directory `dir` to `target` (both relative to `sys`): up
/// to the common ancestor, then down; when `target` is an ancestor of `dir`, up one more and
/// down to it by name (`<dev>/net/eth0/device` -> `../../../<dev name>`).
fn relative(dir: &str, target: &str) -> String {
    let from: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    let to: Vec<&str> = target.split('/').filter(|p| !p.is_empty()).collect();
    let mut common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if common == to.len() && common > 0 {
        common -= 1;
    }
    let mut out: Vec<&str> = vec![".."; from.len() - common];
    out.extend(&to[common..]);
    out.join("/")
}
