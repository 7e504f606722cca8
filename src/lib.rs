//! xenbeacon: a tiny, single-threaded guest agent for Xen domUs.
//!
//! Data flows one way: sources (procfs, sysfs, os-release) fill a [`model::GuestModel`],
//! which becomes a set of desired XenStore keys ([`desired::DesiredKeys`]); the
//! [`publisher::Publisher`] diffs that set against what it last wrote and sends the fewest
//! WRITE/RM requests through its own xenbus client ([`xenbus`]).

pub mod agent;
pub mod balloon;
pub mod cli;
pub mod desired;
#[cfg(feature = "dom0")]
pub mod dom0;
pub mod event_loop;
pub mod layout;
pub mod model;
pub mod net;
pub mod netlink;
pub mod nics;
pub mod publisher;
pub mod sources;
pub mod sys;
pub mod xenbus;
