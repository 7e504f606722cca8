//! The /proc/meminfo parser, and the memory keys rendered from it.
//!
//! Properties, besides "no panic":
//! * `Ok` exactly when some line's key (the bytes before its first `:`) is `MemTotal`;
//! * round trip: `MemTotal`/`MemFree`/`MemAvailable` lines with numbers taken from the input,
//!   written after arbitrary junk lines, parse back to exactly those numbers;
//! * numbers saturate instead of overflowing (a 30-digit value is `u64::MAX`);
//! * the rendered `data/meminfo_*` values are plain decimal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xenbeacon::desired::{self, DesiredKeys};
use xenbeacon::layout::key;
use xenbeacon::sources::meminfo::parse;

fuzz_target!(|data: &[u8]| {
    let has_total = data.split(|&c| c == b'\n').any(|l| {
        l.iter()
            .position(|&c| c == b':')
            .is_some_and(|i| &l[..i] == b"MemTotal")
    });
    let parsed = parse(data);
    assert_eq!(parsed.is_ok(), has_total, "{parsed:?}");
    if let Ok(m) = parsed {
        let mut d = DesiredKeys::new();
        desired::render_memory(&m, 1024, false, &mut d);
        for k in [key::MEMINFO_TOTAL, key::MEMINFO_FREE] {
            let v = d.get(k).expect("rendered");
            assert!(
                !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()),
                "{k} = {v:?}"
            );
            assert!(v.parse::<u64>().is_ok());
        }
    }

    // Round trip after junk.
    let mut n = [0u64; 3];
    for (i, chunk) in data.chunks(8).take(3).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        n[i] = u64::from_le_bytes(b);
    }
    let mut doc = data.to_vec();
    doc.extend_from_slice(
        format!(
            "\nMemTotal:  {} kB\nMemFree: {} kB\nMemAvailable:\t{} kB",
            n[0], n[1], n[2]
        )
        .as_bytes(),
    );
    let m = parse(&doc).expect("MemTotal present");
    assert_eq!(
        (m.total_kb, m.free_kb, m.available_kb),
        (n[0], Some(n[1]), Some(n[2]))
    );
    assert_eq!(m.free_for_toolstack(), n[2]);

    doc.extend_from_slice(b"\nMemTotal: 999999999999999999999999999999 kB\n");
    assert_eq!(parse(&doc).expect("MemTotal present").total_kb, u64::MAX);
});
