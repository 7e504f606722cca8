//! Address requests from the toolstack: the input, split at 0xff bytes, is the values of
//! xenopsd's `static-ip-setting` keys and of Ansible's `vm-data/networks` keys; the second half
//! is also read as a `/run/xenbeacon/netconfig` record.
//!
//! Properties, besides "no panic":
//! * a request that parses holds only what `StaticAddr::new` accepts again (illegal states
//!   stay unrepresentable whatever the keys held);
//! * no value longer than `VALUE_MAX` or with a byte outside printable ASCII is ever accepted
//!   in a key that the request uses;
//! * a record that parses emits text that parses to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xenbeacon::netconfig::record;
use xenbeacon::netconfig::request::{from_vm_data, from_xenopsd, Mode, NicRequest, StaticAddr};

const XENOPSD: [&str; 7] = [
    "mac", "enabled", "address", "gateway", "enabled6", "address6", "gateway6",
];
const VM_DATA: [&str; 10] = [
    "mac", "type", "ip", "netmask", "prefix", "gateway", "type6", "ip6", "prefix6", "gateway6",
];

fn check(r: &NicRequest) {
    for (mode, v4) in [(r.v4(), true), (r.v6(), false)] {
        if let Mode::Static(s) = mode {
            assert_eq!(s.addr().is_ipv4(), v4);
            assert_eq!(StaticAddr::new(s.addr(), s.prefix(), s.gateway()), Ok(s));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    let keys = |names: &[&'static str]| -> Vec<(&'static str, Vec<u8>)> {
        names
            .iter()
            .zip(values.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (*k, v.to_vec()))
            .collect()
    };
    if let Ok(r) = from_xenopsd(0, keys(&XENOPSD).as_slice()) {
        check(&r);
    }
    if let Ok(r) = from_vm_data(0, keys(&VM_DATA).as_slice()) {
        check(&r);
    }
    let text = String::from_utf8_lossy(data);
    let (applied, _) = record::parse(&text);
    let again = record::emit(&applied);
    assert_eq!(record::parse(&again), (applied, 0));
});
