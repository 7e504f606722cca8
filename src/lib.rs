//! xenbeacon: a tiny, single-threaded guest agent for Xen domUs.
//!
//! Data flows one way: sources (procfs, sysfs, os-release, rtnetlink, the toolstack's hints)
//! fill a [`model::GuestModel`], which is rendered into a set of desired XenStore keys
//! ([`desired::DesiredKeys`], named by [`layout`]); the [`publisher::Publisher`] diffs that
//! set against what it last wrote and sends the fewest WRITE/RM requests through its own
//! xenbus client ([`xenbus`]). [`event_loop`] only dispatches fd readiness; what an event
//! means is decided in [`agent`]. docs/architecture.md draws it, with the rules that must
//! never break (checked by tests/architecture.rs).

pub mod agent;
pub mod balloon;
pub mod cli;
pub mod decimal;
pub mod desired;
#[macro_use]
mod error_enum;
#[cfg(feature = "dom0")]
pub mod dom0;
pub mod event_loop;
pub mod fault;
pub mod layout;
pub mod model;
pub mod net;
pub mod netconfig;
pub mod netlink;
pub mod nics;
pub mod publisher;
pub mod sources;
pub mod sys;
pub mod xenbus;
