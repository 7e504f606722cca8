//! The rtnetlink wire decoder (`NlMsgs`, `LinkRepr::parse`, `AddrRepr::parse`) and what the
//! agent does with what it decodes: `netlink::source::apply`, then `NicRenderer::render` into the
//! desired XenStore keys.
//!
//! Properties, besides "no panic":
//! * framing: every message is at least a header long and lies inside the datagram, a framing
//!   error is the last item, and there are at most len/16 + 1 items;
//! * a parsed link's name has no NUL, `master`/`lower` are never 0, a MAC is 6 bytes (by type);
//!   a parsed address has the family's size;
//! * whatever the messages say (names, kinds, VLAN ids, MACs), every rendered key is a valid
//!   relative XenStore path inside a subtree the agent owns, and every value is sanitised
//!   (no control characters, at most 1024 bytes, no trailing space).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xenbeacon::desired::{DesiredKeys, VALUE_MAX};
use xenbeacon::model::ToolstackHints;
use xenbeacon::net::NetState;
use xenbeacon::net::{NicClass, PciNic, PlatformNic, UsbNic};
use xenbeacon::netlink::wire::{AddrRepr, LinkRepr, NlMsgs, NLMSG_HDRLEN};
use xenbeacon::nics::{NicOptions, NicRenderer};
use xenbeacon::xenbus::wire::is_valid_path;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, dgram)) = data.split_first() else {
        return;
    };
    let mut state = NetState::default();
    let mut items = 0usize;
    let mut failed = false;
    for m in NlMsgs::new(dgram) {
        assert!(!failed, "an item after a framing error");
        items += 1;
        let m = match m {
            Ok(m) => m,
            Err(_) => {
                failed = true;
                continue;
            }
        };
        assert!(m.payload().len() + NLMSG_HDRLEN <= dgram.len());
        let _ = (m.msg_type(), m.flags(), m.seq(), m.error_code());
        link(m.payload());
        addr(m.payload());
        let _ = xenbeacon::netlink::source::apply(&mut state, &m);
    }
    assert!(items <= dgram.len() / NLMSG_HDRLEN + 1);
    // The whole input as one payload, too.
    link(dgram);
    addr(dgram);
    render(sel, &mut state);
});

fn link(payload: &[u8]) {
    if let Ok(l) = LinkRepr::parse(payload) {
        assert!(l.name.is_none_or(|n| !n.contains('\0')));
        assert!(l.kind.is_none_or(|k| !k.contains('\0')));
        assert_ne!(l.master, Some(0));
        assert_ne!(l.lower, Some(0));
    }
}

fn addr(payload: &[u8]) {
    if let Ok(Some(a)) = AddrRepr::parse(payload) {
        assert!(payload.len() >= 8);
        let _ = a.addr.to_string();
    }
}

/// Gives each link a class picked by its index, renders the NIC keys and checks them.
fn render(sel: u8, state: &mut NetState) {
    for l in state.links.values_mut() {
        let topology = format!("devices/x/{}", l.index);
        l.class = Some(match (l.index ^ u32::from(sel)) % 6 {
            0 => NicClass::Vif { devid: l.index / 6 },
            1 => NicClass::Virtual,
            2 => NicClass::Pci(PciNic {
                bdf: "0000:00:05.0".into(),
                topology,
                vendor: Some("0x8086".into()),
                device: None,
                driver: Some(l.name.clone()),
            }),
            3 => NicClass::Usb(UsbNic {
                bus_path: "1-1:1.0".into(),
                topology,
                vendor: None,
                product: Some("a4a2".into()),
                driver: l.kind.clone(),
            }),
            4 => NicClass::Platform(PlatformNic {
                node: Some(l.name.clone()),
                name: "fd580000.ethernet".into(),
                compatible: vec![l.name.clone(), "brcm,genet".into()],
                topology,
                driver: None,
            }),
            _ => NicClass::Other {
                bus: l.name.clone(),
            },
        });
    }
    let mut hints = ToolstackHints::default();
    if let Some(mac) = state.links.values().find_map(|l| l.mac) {
        if sel & 1 == 1 {
            hints.sriov_vfs.push((u32::from(sel), mac));
        }
    }
    hints
        .pci_host
        .insert("0000:00:05.0".into(), "0000:03:00.1".into());
    let opts = NicOptions {
        include: if sel & 2 == 2 {
            vec!["*".into()]
        } else {
            Vec::new()
        },
        exclude: Vec::new(),
        link_local: sel & 4 == 4,
        temporary: sel & 8 == 8,
        max_addresses: 1 + usize::from(sel >> 4),
    };
    let mut keys = DesiredKeys::new();
    let mut renderer = NicRenderer::new();
    renderer.render(state, &hints, &opts, &mut keys);
    // Twice: a second render of the same state changes nothing.
    let before: Vec<(String, String)> = owned(&keys);
    renderer.render(state, &hints, &opts, &mut keys);
    assert_eq!(before, owned(&keys));
    for (k, v) in keys.iter() {
        assert!(is_valid_path(k) && !k.starts_with('/'), "key {k:?}");
        assert!(
            xenbeacon::layout::is_owned(k),
            "key {k:?} outside the owned subtrees"
        );
        assert!(v.len() <= VALUE_MAX, "{k}: {} bytes", v.len());
        assert!(!v.chars().any(char::is_control), "{k} = {v:?}");
        assert_eq!(v.trim_end(), v, "{k} = {v:?}");
    }
}

fn owned(keys: &DesiredKeys) -> Vec<(String, String)> {
    keys.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
