//! The guest's network as rtnetlink reports it: links by ifindex and their addresses.
//!
//! State is keyed by ifindex, never by name: names change (`eth0` becomes `enX0` when udev
//! renames it), and a rename is just an RTM_NEWLINK with a new name, after which the link is
//! classified again.

use crate::layout::Mac;
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::netlink::wire::{
    AddrRepr, LinkRepr, NlError, NlMsg, RTM_DELADDR, RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK,
};
use crate::sources::sysfs_net::NicClass;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<Mac>,
    pub flags: u32,
    pub carrier: Option<bool>,
    /// Bridge or bond this link is a member of.
    pub master: Option<u32>,
    /// Lower device of a VLAN or macvlan.
    pub lower: Option<u32>,
    /// `IFLA_INFO_KIND` (`bridge`, `bond`, `vlan`, `macvlan`, `veth`, ...).
    pub kind: Option<String>,
    pub vlan_id: Option<u16>,
    /// sysfs classification; `None` until classified (again, after a rename).
    pub class: Option<NicClass>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr {
    pub prefix_len: u8,
    pub scope: u8,
    pub flags: u32,
    /// Arrival order, so that the first (primary) address is allocated first.
    pub order: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetState {
    pub links: BTreeMap<u32, Link>,
    pub addrs: BTreeMap<(u32, IpAddr), Addr>,
    next_order: u64,
}

impl NetState {
    pub fn clear(&mut self) {
        self.links.clear();
        self.addrs.clear();
    }

    /// Applies one rtnetlink message; true if the state changed.
    pub fn apply(&mut self, msg: &NlMsg<'_>) -> Result<bool, NlError> {
        match msg.msg_type() {
            RTM_NEWLINK => Ok(self.new_link(&LinkRepr::parse(msg.payload())?)),
            RTM_DELLINK => {
                let l = LinkRepr::parse(msg.payload())?;
                let gone = self.links.remove(&l.index).is_some();
                let before = self.addrs.len();
                self.addrs.retain(|(i, _), _| *i != l.index);
                Ok(gone || before != self.addrs.len())
            }
            RTM_NEWADDR => Ok(match AddrRepr::parse(msg.payload())? {
                Some(a) => self.new_addr(&a),
                None => false,
            }),
            RTM_DELADDR => Ok(match AddrRepr::parse(msg.payload())? {
                Some(a) => self.addrs.remove(&(a.index, a.addr)).is_some(),
                None => false,
            }),
            _ => Ok(false),
        }
    }

    fn new_link(&mut self, l: &LinkRepr<'_>) -> bool {
        let old = self.links.get(&l.index);
        let name = match (l.name, old) {
            (Some(n), _) => n.to_owned(),
            (None, Some(o)) => o.name.clone(),
            (None, None) => return false,
        };
        let class = old.filter(|o| o.name == name).and_then(|o| o.class.clone());
        let link = Link {
            index: l.index,
            name,
            mac: l.mac.map(Mac),
            flags: l.flags,
            carrier: l.carrier,
            master: l.master,
            lower: l.lower,
            kind: l.kind.map(str::to_owned),
            vlan_id: l.vlan_id,
            class,
        };
        if old == Some(&link) {
            return false;
        }
        self.links.insert(l.index, link);
        true
    }

    fn new_addr(&mut self, a: &AddrRepr) -> bool {
        let key = (a.index, a.addr);
        let order = match self.addrs.get(&key) {
            Some(old) => old.order,
            None => {
                self.next_order += 1;
                self.next_order
            }
        };
        let addr = Addr {
            prefix_len: a.prefix_len,
            scope: a.scope,
            flags: a.flags,
            order,
        };
        self.addrs.insert(key, addr) != Some(addr)
    }

    /// Addresses of one link, in arrival order.
    pub fn addrs_of(&self, index: u32) -> Vec<(IpAddr, Addr)> {
        let mut v: Vec<(IpAddr, Addr)> = self
            .addrs
            .range((index, IpAddr::from([0u8; 4]))..)
            .take_while(|((i, _), _)| *i == index)
            .map(|((_, ip), a)| (*ip, *a))
            .collect();
        v.sort_by_key(|(_, a)| a.order);
        v
    }
}
