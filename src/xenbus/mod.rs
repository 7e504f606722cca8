//! XenStore access over the xenbus wire protocol: the codec ([`wire`]) and a connection
//! ([`conn`]) over `/dev/xen/xenbus`, `/proc/xen/xenbus` or a xenstored unix socket.

pub mod conn;
pub mod wire;
