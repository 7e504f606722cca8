//! The sysfs NIC classifier against fake sysfs trees shaped like the real Xen guests of the
//! e2e harness: every NIC kind by topology (never by name), renames and removals, hostile
//! names, links leading out of the tree, and garbage files.

mod support;

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use support::fake_sysfs::FakeSysfs;
use support::{tempdir, TempDir};
use xenbeacon::net::{NicClass, PciNic, PlatformNic, UsbNic};
use xenbeacon::sources::sysfs_net::{classify, ClassifyError};

const MAC: &str = "00:16:3e:00:00:00";

fn fake(name: &str) -> (TempDir, FakeSysfs) {
    let dir = tempdir(name);
    let sys = FakeSysfs::new(dir.path());
    (dir, sys)
}

fn class(sys: &FakeSysfs, ifname: &str) -> NicClass {
    match classify(sys.root(), ifname) {
        Ok(c) => c,
        Err(e) => panic!("{ifname}: {e}"),
    }
}

fn e1000_pcifront() -> PciNic {
    PciNic {
        bdf: "0000:00:00.0".into(),
        topology: "devices/pci-0/pci0000:00/0000:00:00.0".into(),
        vendor: Some("0x8086".into()),
        device: Some("0x100e".into()),
        driver: Some("e1000".into()),
    }
}

fn virtio_mmio() -> PlatformNic {
    PlatformNic {
        node: Some("/passthrough/virtio_mmio@a003e00".into()),
        name: "a003e00.virtio_mmio".into(),
        compatible: vec!["virtio,mmio".into()],
        topology: "devices/platform/passthrough/a003e00.virtio_mmio/virtio0".into(),
        driver: Some("virtio_net".into()),
    }
}

fn cdc_ether() -> UsbNic {
    UsbNic {
        bus_path: "1-1:1.0".into(),
        topology: "devices/pci0000:00/0000:00:03.0/usb1/1-1/1-1:1.0".into(),
        vendor: Some("0525".into()),
        product: Some("a4a2".into()),
        driver: Some("cdc_ether".into()),
    }
}

fn add_genet(sys: &FakeSysfs, ifname: &str) {
    sys.add_platform(
        ifname,
        "fd580000.ethernet",
        Some("/scb/ethernet@7d580000"),
        &["brcm,bcm2711-genet-v5"],
        "bcmgenet",
        false,
        "dc:a6:32:00:00:01",
    );
}

// ---- the fake tree itself looks like the kernel's ----

#[test]
fn fake_links_are_relative_like_the_kernels() {
    let (_d, sys) = fake("sn-links");
    sys.add_vif("eth0", 0, MAC);
    sys.add_platform(
        "eth1",
        "a003e00.virtio_mmio",
        Some("/passthrough/virtio_mmio@a003e00"),
        &["virtio,mmio"],
        "virtio_net",
        true,
        MAC,
    );
    let link = |rel: &str| fs::read_link(sys.path(rel)).unwrap();
    assert_eq!(
        link("class/net/eth0"),
        Path::new("../../devices/vif-0/net/eth0")
    );
    assert_eq!(
        link("devices/vif-0/net/eth0/device"),
        Path::new("../../../vif-0")
    );
    assert_eq!(link("devices/vif-0/subsystem"), Path::new("../../bus/xen"));
    assert_eq!(
        link("devices/vif-0/driver"),
        Path::new("../../bus/xen/drivers/vif")
    );
    assert_eq!(
        link("class/net/eth1"),
        Path::new("../../devices/platform/passthrough/a003e00.virtio_mmio/virtio0/net/eth1")
    );
    assert_eq!(
        link("devices/platform/passthrough/a003e00.virtio_mmio/of_node"),
        Path::new("../../../../firmware/devicetree/base/passthrough/virtio_mmio@a003e00")
    );
    assert_eq!(
        fs::read_to_string(sys.path("class/net/eth0/address")).unwrap(),
        format!("{MAC}\n")
    );
    assert_eq!(
        sys.device_dir("eth1").unwrap(),
        fs::canonicalize(sys.path("devices/platform/passthrough/a003e00.virtio_mmio/virtio0"))
            .unwrap()
    );
}

// ---- every topology of the real guests ----

#[test]
fn pv_vif() {
    let (_d, sys) = fake("sn-vif");
    sys.add_vif("eth0", 0, MAC);
    sys.add_vif("eth1", 1, "00:16:3e:00:00:01");
    sys.add_vif("eth7", 4096, "00:16:3e:00:00:02");
    assert_eq!(class(&sys, "eth0"), NicClass::Vif { devid: 0 });
    assert_eq!(class(&sys, "eth1"), NicClass::Vif { devid: 1 });
    assert_eq!(class(&sys, "eth7"), NicClass::Vif { devid: 4096 });
}

#[test]
fn pci_via_pcifront() {
    let (_d, sys) = fake("sn-pcifront");
    sys.add_vif("eth0", 0, MAC);
    sys.add_pcifront(
        "eth1",
        "0000:00:00.0",
        "0x8086",
        "0x100e",
        "e1000",
        false,
        MAC,
    );
    assert_eq!(class(&sys, "eth1"), NicClass::Pci(e1000_pcifront()));
    assert_eq!(class(&sys, "eth0"), NicClass::Vif { devid: 0 });
}

#[test]
fn pci_direct() {
    let (_d, sys) = fake("sn-pci");
    sys.add_pci(
        "enp0s5",
        "0000:00:05.0",
        "0x10ec",
        "0x8139",
        "8139cp",
        false,
        MAC,
    );
    assert_eq!(
        class(&sys, "enp0s5"),
        NicClass::Pci(PciNic {
            bdf: "0000:00:05.0".into(),
            topology: "devices/pci0000:00/0000:00:05.0".into(),
            vendor: Some("0x10ec".into()),
            device: Some("0x8139".into()),
            driver: Some("8139cp".into()),
        })
    );
}

#[test]
fn virtio_net_pci_is_pci_with_the_functions_ids() {
    let (_d, sys) = fake("sn-vpci");
    sys.add_pcifront(
        "eth1",
        "0000:00:00.0",
        "0x1af4",
        "0x1000",
        "virtio_net",
        true,
        MAC,
    );
    sys.add_pci(
        "eth2",
        "0000:00:06.0",
        "0x1af4",
        "0x1041",
        "virtio_net",
        true,
        MAC,
    );
    assert_eq!(
        class(&sys, "eth1"),
        NicClass::Pci(PciNic {
            bdf: "0000:00:00.0".into(),
            topology: "devices/pci-0/pci0000:00/0000:00:00.0/virtio0".into(),
            vendor: Some("0x1af4".into()),
            device: Some("0x1000".into()),
            driver: Some("virtio_net".into()),
        })
    );
    assert_eq!(
        class(&sys, "eth2"),
        NicClass::Pci(PciNic {
            bdf: "0000:00:06.0".into(),
            topology: "devices/pci0000:00/0000:00:06.0/virtio1".into(),
            vendor: Some("0x1af4".into()),
            device: Some("0x1041".into()),
            driver: Some("virtio_net".into()),
        })
    );
}

#[test]
fn usb_nic() {
    let (_d, sys) = fake("sn-usb");
    sys.add_usb("usb0", "1-1", "0525", "a4a2", "cdc_ether", MAC);
    assert_eq!(class(&sys, "usb0"), NicClass::Usb(cdc_ether()));
}

#[test]
fn platform_virtio_mmio_takes_the_node_from_the_parent() {
    let (_d, sys) = fake("sn-mmio");
    sys.add_platform(
        "eth0",
        "a003e00.virtio_mmio",
        Some("/passthrough/virtio_mmio@a003e00"),
        &["virtio,mmio"],
        "virtio_net",
        true,
        MAC,
    );
    assert_eq!(class(&sys, "eth0"), NicClass::Platform(virtio_mmio()));
}

#[test]
fn platform_genet_has_its_own_node() {
    let (_d, sys) = fake("sn-genet");
    add_genet(&sys, "end0");
    assert_eq!(
        class(&sys, "end0"),
        NicClass::Platform(PlatformNic {
            node: Some("/scb/ethernet@7d580000".into()),
            name: "fd580000.ethernet".into(),
            compatible: vec!["brcm,bcm2711-genet-v5".into()],
            topology: "devices/platform/scb/fd580000.ethernet".into(),
            driver: Some("bcmgenet".into()),
        })
    );
}

#[test]
fn platform_node_from_of_node_link_when_uevent_lacks_it() {
    let (_d, sys) = fake("sn-ofnode");
    add_genet(&sys, "end0");
    fs::write(
        sys.path("devices/platform/scb/fd580000.ethernet/uevent"),
        "DRIVER=bcmgenet\n",
    )
    .unwrap();
    fs::write(
        sys.path("firmware/devicetree/base/scb/ethernet@7d580000/compatible"),
        "brcm,bcm2711-genet-v5\0brcm,genet-v5\0",
    )
    .unwrap();
    let NicClass::Platform(p) = class(&sys, "end0") else {
        panic!("not platform");
    };
    assert_eq!(p.node.as_deref(), Some("/scb/ethernet@7d580000"));
    assert_eq!(p.compatible, ["brcm,bcm2711-genet-v5", "brcm,genet-v5"]);
}

#[test]
fn platform_without_device_tree() {
    let (_d, sys) = fake("sn-nodt");
    sys.add_platform("eth0", "smsc911x.0", None, &[], "smsc911x", false, MAC);
    assert_eq!(
        class(&sys, "eth0"),
        NicClass::Platform(PlatformNic {
            node: None,
            name: "smsc911x.0".into(),
            compatible: vec![],
            topology: "devices/platform/smsc911x.0".into(),
            driver: Some("smsc911x".into()),
        })
    );
}

#[test]
fn software_interfaces_are_virtual() {
    let (_d, sys) = fake("sn-virt");
    sys.add_vif("eth0", 0, MAC);
    for ifname in ["lo", "br0", "eth0.100", "veth0", "wg0", "bond0"] {
        sys.add_virtual(ifname, MAC);
        assert_eq!(class(&sys, ifname), NicClass::Virtual, "{ifname}");
    }
    assert!(fs::symlink_metadata(sys.path("class/net/br0/device")).is_err());
}

#[test]
fn other_buses_keep_their_name() {
    let (_d, sys) = fake("sn-other");
    // A xen device that is not a netfront vif (dom0's backend view, a wrong devtype).
    let dev = sys.add_vif("vif1.0", 0, MAC);
    fs::write(dev.join("nodename"), "backend/vif/1/0\n").unwrap();
    assert_eq!(class(&sys, "vif1.0"), NicClass::Other { bus: "xen".into() });
    let dev = sys.add_vif("eth1", 1, MAC);
    fs::write(dev.join("devtype"), "vbd\n").unwrap();
    assert_eq!(class(&sys, "eth1"), NicClass::Other { bus: "xen".into() });
    // A device on a bus the classifier does not know.
    let dev = sys.add_vif("eth2", 2, MAC);
    fs::create_dir_all(sys.path("bus/vmbus")).unwrap();
    fs::remove_file(dev.join("subsystem")).unwrap();
    symlink("../../bus/vmbus", dev.join("subsystem")).unwrap();
    assert_eq!(
        class(&sys, "eth2"),
        NicClass::Other {
            bus: "vmbus".into()
        }
    );
}

#[test]
fn names_do_not_matter() {
    let (_d, sys) = fake("sn-names");
    sys.add_vif("usb0", 0, MAC);
    sys.add_usb("eth0", "1-1", "0525", "a4a2", "cdc_ether", MAC);
    sys.add_virtual("enp0s5", MAC);
    sys.add_pcifront(
        "br0",
        "0000:00:00.0",
        "0x8086",
        "0x100e",
        "e1000",
        false,
        MAC,
    );
    assert_eq!(class(&sys, "usb0"), NicClass::Vif { devid: 0 });
    let NicClass::Usb(u) = class(&sys, "eth0") else {
        panic!("not usb");
    };
    assert_eq!(u.bus_path, "1-1:1.0");
    assert_eq!(class(&sys, "enp0s5"), NicClass::Virtual);
    assert_eq!(class(&sys, "br0"), NicClass::Pci(e1000_pcifront()));
}

// ---- without `subsystem` links: uevent and path ----

fn drop_subsystem_links(sys: &FakeSysfs) {
    fn walk(dir: &Path) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let ft = entry.file_type().unwrap();
            if ft.is_symlink() && entry.file_name() == "subsystem" {
                fs::remove_file(entry.path()).unwrap();
            } else if ft.is_dir() {
                walk(&entry.path());
            }
        }
    }
    walk(&sys.path("devices"));
}

#[test]
fn fallback_without_subsystem_links() {
    let (_d, sys) = fake("sn-nosubsys");
    sys.add_vif("eth0", 3, MAC);
    sys.add_pcifront(
        "eth1",
        "0000:00:00.0",
        "0x8086",
        "0x100e",
        "e1000",
        false,
        MAC,
    );
    sys.add_usb("usb0", "1-1", "0525", "a4a2", "cdc_ether", MAC);
    sys.add_platform(
        "eth2",
        "a003e00.virtio_mmio",
        Some("/passthrough/virtio_mmio@a003e00"),
        &["virtio,mmio"],
        "virtio_net",
        true,
        MAC,
    );
    sys.add_pci(
        "eth3",
        "0000:00:06.0",
        "0x1af4",
        "0x1041",
        "virtio_net",
        true,
        MAC,
    );
    sys.add_virtual("br0", MAC);
    drop_subsystem_links(&sys);
    assert_eq!(class(&sys, "eth0"), NicClass::Vif { devid: 3 });
    assert_eq!(class(&sys, "eth1"), NicClass::Pci(e1000_pcifront()));
    assert_eq!(class(&sys, "usb0"), NicClass::Usb(cdc_ether()));
    let NicClass::Platform(mmio) = class(&sys, "eth2") else {
        panic!("not platform");
    };
    assert_eq!(mmio.name, "a003e00.virtio_mmio");
    assert_eq!(mmio.node, virtio_mmio().node);
    let NicClass::Pci(vpci) = class(&sys, "eth3") else {
        panic!("not pci");
    };
    assert_eq!(vpci.bdf, "0000:00:06.0");
    assert_eq!(class(&sys, "br0"), NicClass::Virtual);

    // Not even a uevent: the path still tells PCI, virtio and platform apart.
    for dev in [
        "devices/pci-0/pci0000:00/0000:00:00.0",
        "devices/platform/passthrough/a003e00.virtio_mmio/virtio0",
        "devices/platform/passthrough/a003e00.virtio_mmio",
        "devices/vif-3",
    ] {
        fs::remove_file(sys.path(&format!("{dev}/uevent"))).unwrap();
    }
    assert_eq!(class(&sys, "eth1"), NicClass::Pci(e1000_pcifront()));
    assert!(matches!(class(&sys, "eth2"), NicClass::Platform(_)));
    assert_eq!(class(&sys, "eth0"), NicClass::Vif { devid: 3 });
}

// ---- renames and removals ----

#[test]
fn renamed_interface_is_found_under_its_new_name() {
    let (_d, sys) = fake("sn-rename");
    sys.add_pcifront(
        "eth1",
        "0000:00:00.0",
        "0x8086",
        "0x100e",
        "e1000",
        false,
        MAC,
    );
    sys.add_vif("eth0", 0, MAC);
    sys.rename("eth1", "lan0");
    sys.rename("eth0", "wan0");
    assert_eq!(class(&sys, "lan0"), NicClass::Pci(e1000_pcifront()));
    assert_eq!(class(&sys, "wan0"), NicClass::Vif { devid: 0 });
    assert!(matches!(
        classify(sys.root(), "eth1"),
        Err(ClassifyError::Vanished)
    ));
    assert!(matches!(
        classify(sys.root(), "eth0"),
        Err(ClassifyError::Vanished)
    ));
    // A new interface may take the old name.
    sys.add_virtual("eth0", MAC);
    assert_eq!(class(&sys, "eth0"), NicClass::Virtual);
}

#[test]
fn removed_or_unknown_interface_vanished() {
    let (_d, sys) = fake("sn-remove");
    sys.add_vif("eth0", 0, MAC);
    sys.add_virtual("br0", MAC);
    sys.remove("eth0");
    sys.remove("br0");
    for ifname in ["eth0", "br0", "nosuch", "fifteen-bytes-x"] {
        assert!(
            matches!(classify(sys.root(), ifname), Err(ClassifyError::Vanished)),
            "{ifname}"
        );
    }
}

#[test]
fn no_sysfs() {
    let dir = tempdir("sn-nosys");
    assert!(matches!(
        classify(dir.path(), "eth0"),
        Err(ClassifyError::NoSysfs)
    ));
    fs::create_dir_all(dir.path().join("sys")).unwrap(); // /sys exists, not mounted
    assert!(matches!(
        classify(dir.path(), "eth0"),
        Err(ClassifyError::NoSysfs)
    ));
}

// ---- hostile input ----

#[test]
fn hostile_names_are_refused() {
    let (_d, sys) = fake("sn-badname");
    sys.add_vif("eth0", 0, MAC);
    // Things a name must not reach: a sibling of class/net and the tree's root.
    sys.add_virtual("x", MAC);
    for name in [
        "",
        ".",
        "..",
        "../x",
        "../net/eth0",
        "eth0/../../x",
        "/etc",
        "sixteen-bytes-xx",
        "a-very-long-interface-name",
        "eth0\0",
        "\0",
        "eth0:1",
        "eth 0",
        "eth0\n",
    ] {
        assert!(
            matches!(classify(sys.root(), name), Err(ClassifyError::BadName)),
            "{name:?}"
        );
    }
}

#[test]
fn links_out_of_the_tree_are_not_followed() {
    let (dir, sys) = fake("sn-escape");
    // Outside root/sys, a perfect vif: following any link there would say Vif { devid: 7 }.
    let outside = dir.path().join("outside");
    fs::create_dir_all(outside.join("net/evil")).unwrap();
    fs::write(outside.join("devtype"), "vif\n").unwrap();
    fs::write(outside.join("nodename"), "device/vif/7\n").unwrap();
    fs::create_dir_all(outside.join("bus/xen")).unwrap();
    symlink(outside.join("bus/xen"), outside.join("subsystem")).unwrap();
    symlink(&outside, outside.join("net/evil/device")).unwrap();

    // The class entry itself leads outside (absolute and relative).
    symlink(outside.join("net/evil"), sys.path("class/net/evil")).unwrap();
    symlink("../../../outside/net/evil", sys.path("class/net/evil2")).unwrap();
    // A real netdev whose `device` leads outside, or inside sys but not to a device.
    sys.add_virtual("eth0", MAC);
    symlink(
        "../../../../../outside",
        sys.path("devices/virtual/net/eth0/device"),
    )
    .unwrap();
    sys.add_virtual("eth1", MAC);
    symlink(
        "../../../../class/net",
        sys.path("devices/virtual/net/eth1/device"),
    )
    .unwrap();
    sys.add_virtual("eth2", MAC);
    symlink(
        "../../../../devices",
        sys.path("devices/virtual/net/eth2/device"),
    )
    .unwrap();
    for ifname in ["evil", "evil2", "eth0", "eth1", "eth2"] {
        assert!(
            matches!(
                classify(sys.root(), ifname),
                Err(ClassifyError::OutsideSysfs)
            ),
            "{ifname}: {:?}",
            classify(sys.root(), ifname)
        );
    }

    // Links below a device that lead outside are ignored, not followed.
    let dev = sys.add_vif("eth3", 3, MAC);
    fs::remove_file(dev.join("subsystem")).unwrap();
    symlink(outside.join("bus/xen"), dev.join("subsystem")).unwrap();
    fs::remove_file(dev.join("nodename")).unwrap();
    symlink(outside.join("nodename"), dev.join("nodename")).unwrap();
    assert_eq!(class(&sys, "eth3"), NicClass::Other { bus: "xen".into() });

    let dev = sys.add_pci(
        "eth4",
        "0000:00:05.0",
        "0x8086",
        "0x100e",
        "e1000",
        false,
        MAC,
    );
    for attr in ["vendor", "device"] {
        fs::remove_file(dev.join(attr)).unwrap();
        symlink(outside.join("devtype"), dev.join(attr)).unwrap();
    }
    fs::remove_file(dev.join("driver")).unwrap();
    symlink(outside.join("bus/xen"), dev.join("driver")).unwrap();
    assert_eq!(
        class(&sys, "eth4"),
        NicClass::Pci(PciNic {
            bdf: "0000:00:05.0".into(),
            topology: "devices/pci0000:00/0000:00:05.0".into(),
            vendor: None,
            device: None,
            driver: None,
        })
    );

    add_genet(&sys, "end0");
    let pdev = sys.path("devices/platform/scb/fd580000.ethernet");
    fs::write(pdev.join("uevent"), "DRIVER=bcmgenet\n").unwrap();
    fs::remove_file(pdev.join("of_node")).unwrap();
    fs::write(outside.join("compatible"), "evil\0").unwrap();
    symlink(&outside, pdev.join("of_node")).unwrap();
    let NicClass::Platform(p) = class(&sys, "end0") else {
        panic!("not platform");
    };
    assert_eq!((p.node, p.compatible), (None, vec![]));
}

#[test]
fn dangling_and_looping_links_are_errors() {
    let (_d, sys) = fake("sn-loops");
    sys.add_virtual("eth0", MAC);
    symlink(
        "../../../vif-9",
        sys.path("devices/virtual/net/eth0/device"),
    )
    .unwrap();
    assert!(matches!(
        classify(sys.root(), "eth0"),
        Err(ClassifyError::Io(_))
    ));
    symlink("loop", sys.path("class/net/loop")).unwrap();
    assert!(matches!(
        classify(sys.root(), "loop"),
        Err(ClassifyError::Io(_))
    ));
    let dev = sys.add_vif("eth1", 1, MAC);
    fs::remove_file(dev.join("subsystem")).unwrap();
    symlink("subsystem", dev.join("subsystem")).unwrap();
    assert_eq!(class(&sys, "eth1"), NicClass::Vif { devid: 1 });
}

#[test]
fn garbage_files_do_not_panic() {
    let (_d, sys) = fake("sn-garbage");
    let huge: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();

    let dev = sys.add_pcifront(
        "eth1",
        "0000:00:00.0",
        "0x8086",
        "0x100e",
        "e1000",
        false,
        MAC,
    );
    fs::write(dev.join("vendor"), &huge).unwrap();
    fs::write(dev.join("device"), b"\x00\x01\x02\xff\xfe\n0x100e\n").unwrap();
    fs::write(dev.join("uevent"), &huge).unwrap();
    let NicClass::Pci(p) = class(&sys, "eth1") else {
        panic!("not pci");
    };
    assert_eq!(p.bdf, "0000:00:00.0");
    let vendor = p.vendor.unwrap_or_default();
    assert!(vendor.len() <= 4096 && vendor.bytes().all(|c| c.is_ascii_graphic() || c == b' '));
    assert_eq!(p.device, None);

    let dev = sys.add_vif("eth0", 0, MAC);
    fs::write(dev.join("nodename"), b"device/vif/99999999999999999999\n").unwrap();
    assert_eq!(class(&sys, "eth0"), NicClass::Other { bus: "xen".into() });
    fs::write(dev.join("nodename"), b"device/vif/5x\n").unwrap();
    assert_eq!(class(&sys, "eth0"), NicClass::Other { bus: "xen".into() });
    fs::write(dev.join("nodename"), b"device/vif/5\x00\n").unwrap();
    assert_eq!(class(&sys, "eth0"), NicClass::Vif { devid: 5 });
    fs::write(dev.join("devtype"), &huge).unwrap();
    assert_eq!(class(&sys, "eth0"), NicClass::Other { bus: "xen".into() });
    fs::write(dev.join("devtype"), b"").unwrap();
    assert_eq!(class(&sys, "eth0"), NicClass::Other { bus: "xen".into() });

    let dev = sys.add_usb("usb0", "1-1", "0525", "a4a2", "cdc_ether", MAC);
    fs::write(dev.join("uevent"), b"DEVTYPE=\xffusb_interface\x00\n").unwrap();
    fs::write(dev.join("../idVendor"), b"\x1b[2J\x1b[H0525\r\n").unwrap();
    let NicClass::Usb(u) = class(&sys, "usb0") else {
        panic!("not usb");
    };
    assert_eq!(u.vendor.as_deref(), Some("[2J[H0525"));
    assert_eq!(u.product.as_deref(), Some("a4a2"));

    add_genet(&sys, "end0");
    let pdev = sys.path("devices/platform/scb/fd580000.ethernet");
    fs::write(pdev.join("uevent"), &huge).unwrap();
    let node = sys.path("firmware/devicetree/base/scb/ethernet@7d580000");
    fs::write(node.join("compatible"), &huge).unwrap();
    let NicClass::Platform(p) = class(&sys, "end0") else {
        panic!("not platform");
    };
    assert!(p.compatible.iter().map(String::len).sum::<usize>() <= 4096);
    assert!(p
        .compatible
        .iter()
        .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_graphic() || b == b' ')));
}

#[test]
fn only_regular_files_are_read() {
    let (_d, sys) = fake("sn-fifo");
    let dev = sys.add_vif("eth0", 0, MAC);
    // A FIFO would block a reader forever; a directory cannot be read.
    fs::remove_file(dev.join("devtype")).unwrap();
    let fifo = CString::new(dev.join("devtype").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    assert_eq!(class(&sys, "eth0"), NicClass::Other { bus: "xen".into() });
    fs::remove_file(dev.join("devtype")).unwrap();
    fs::create_dir(dev.join("devtype")).unwrap();
    assert_eq!(class(&sys, "eth0"), NicClass::Other { bus: "xen".into() });
}

#[test]
fn real_sysfs_does_not_fail() {
    let Ok(entries) = fs::read_dir("/sys/class/net") else {
        return; // no sysfs in this sandbox
    };
    for entry in entries.flatten() {
        let name = entry.file_name().into_string().unwrap();
        match classify(Path::new("/"), &name) {
            Ok(c) => {
                if name == "lo" {
                    assert_eq!(c, NicClass::Virtual);
                }
            }
            Err(ClassifyError::Vanished) => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
}
