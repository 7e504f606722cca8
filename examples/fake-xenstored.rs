//! Standalone fake xenstored for manual testing: `fake-xenstored DIR [DOMID...]`.
//!
//! Serves `DIR/dom0.sock` (privileged) and `DIR/dom<N>.sock` for each DOMID (acting as that
//! domain, whose home is built like libxl builds a PV domU's), prints the socket paths, and
//! runs until killed. See `tests/support/fake_xenstored.rs` for what it mimics and simplifies.

// The modules are shared with the integration tests; `fake_xenstored` reaches the injector
// as `super::fault_injector`, which both layouts provide.
#[allow(dead_code)]
#[path = "../tests/support/fake_xenstored.rs"]
mod fake_xenstored;
#[allow(dead_code)]
#[path = "../tests/support/fault_injector.rs"]
mod fault_injector;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let domids: Option<Vec<u32>> = args.iter().skip(1).map(|a| a.parse().ok()).collect();
    let dir = args.first().filter(|d| !d.starts_with('-'));
    let (Some(dir), Some(domids)) = (dir, domids.filter(|d| !d.contains(&0))) else {
        eprintln!("usage: fake-xenstored DIR [DOMID...]   (DOMID: integer > 0)");
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("fake-xenstored: {dir}: {e}");
        return ExitCode::FAILURE;
    }
    let server = fake_xenstored::FakeXenstored::start(Path::new(dir));
    println!("{}", server.dom0_socket().display());
    for d in domids {
        println!("{}", server.add_domain(d).display());
    }
    loop {
        std::thread::park();
    }
}
