//! XenStore access over the xenbus wire protocol: the codec ([`wire`]) and a connection
//! ([`conn`]) over `/dev/xen/xenbus`, `/proc/xen/xenbus` or a xenstored unix socket.
//! `server_wire`, the server's side of the codec, exists for tests and fuzzing only (feature
//! `test-support`).

pub mod conn;
#[cfg(any(test, feature = "test-support"))]
pub mod server_wire;
pub mod wire;
