//! rtnetlink: the wire format ([`wire`]) and the source that keeps a [`crate::net::NetState`]
//! current from a dump plus link/address multicast events ([`source`]), and the writer that
//! carries out address and route changes ([`writer`]).
//!
//! The socket comes from `neli` (its plain `NlSocket`: neli's router would start a thread);
//! messages are parsed by our own zero-copy views into one reused buffer.

pub mod source;
pub mod wire;
pub mod writer;
