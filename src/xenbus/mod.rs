//! XenStore access over the xenbus wire protocol: the codec ([`wire`]) and a connection
//! ([`conn`]) over `/dev/xen/xenbus`, `/proc/xen/xenbus` or a xenstored unix socket, reached
//! through a [`transport`].
//! `server_wire` (the server's side of the codec) and `scripted` (a transport that plays a
//! script, for root-free tests of the connection) exist for tests and fuzzing only (feature
//! `test-support`).

pub mod conn;
#[cfg(any(test, feature = "test-support"))]
pub mod scripted;
#[cfg(any(test, feature = "test-support"))]
pub mod server_wire;
pub mod transport;
pub mod wire;
