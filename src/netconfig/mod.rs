//! The second direction: the toolstack sets a guest NIC's address.
//!
//! `xenserver/device/vif/<devid>/static-ip-setting/*` (xenopsd, for XAPI's
//! `VIF.configure_ipv4/6`, and `xenbeacon set-ip` for xl) and `vm-data/networks/<device>/*`
//! (Ansible's `xenserver_guest`) are read by the agent, which decides what to change; the
//! rtnetlink writer (`netlink::writer`) only executes it; the result goes back to
//! `error-code`/`error-msg`. Opt-in: `--apply-ip-settings`.
//!
//! * [`request`]: the keys, parsed into a validated [`request::NicRequest`] (pure);
//! * [`plan`]: request + what the agent added + the kernel's state → netlink operations (pure);
//! * [`record`]: what the agent added, kept in `/run/xenbeacon/netconfig` across restarts;
//! * [`settings`]: the state machine the agent carries: requests in, operations and answers out.

pub mod plan;
pub mod record;
pub mod request;
pub mod settings;
