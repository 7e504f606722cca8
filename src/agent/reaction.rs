//! What the event loop must do after the agent handled an event, step by step.

/// What the event loop must do after the agent handled an event. The loop carries the steps
/// out in the order of the fields, and an earlier step may add later ones (a dump that changed
/// the NICs adds a round).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Reaction {
    /// On a fresh store, a round with what is known before the NICs ([`Agent::publish_early`](super::Agent::publish_early)).
    pub publish_early: bool,
    /// What rtnetlink must do: open, or dump again ([`Agent::dump_links`](super::Agent::dump_links)).
    pub netlink: NetlinkStep,
    /// Read what the toolstack tells about the NICs ([`Agent::read_hints`](super::Agent::read_hints)).
    pub read_hints: bool,
    /// Look at the balloon again in a second ([`Agent::on_balloon_recheck`](super::Agent::on_balloon_recheck)).
    pub recheck_balloon: bool,
    /// Check that the domain is still the one published to ([`Agent::check_domain`](super::Agent::check_domain)); the
    /// loop runs at most one a second.
    pub check_domain: bool,
    /// Address requests: look for changed ones, or apply all again
    /// ([`Agent::apply_ip_settings`](super::Agent::apply_ip_settings)).
    pub ip_settings: IpStep,
    /// A publication round ([`Agent::publish`](super::Agent::publish)).
    pub publish: bool,
    /// After the round on a new connection: who the domain is, and the watches
    /// ([`Agent::settle_connection`](super::Agent::settle_connection)).
    pub settle_connection: bool,
}

/// What to do about address requests, in increasing strength.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum IpStep {
    #[default]
    Nothing,
    /// Read the requests and act on those that changed or lost their answer.
    Check,
    /// Act on every request again, idempotently (start, reconnect, resume, migration, SIGHUP).
    Reapply,
}

/// What rtnetlink must do, in increasing strength: a later request includes an earlier one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum NetlinkStep {
    #[default]
    Nothing,
    /// Open the socket and dump, unless it was opened before (a socket that failed since is
    /// reopened on the loop's backoff schedule, not here).
    Open,
    /// Dump again on the open socket, or reopen one that failed.
    Redump,
}

impl std::ops::BitOrAssign for Reaction {
    fn bitor_assign(&mut self, o: Reaction) {
        self.publish_early |= o.publish_early;
        self.netlink = self.netlink.max(o.netlink);
        self.read_hints |= o.read_hints;
        self.recheck_balloon |= o.recheck_balloon;
        self.check_domain |= o.check_domain;
        self.publish |= o.publish;
        self.ip_settings = self.ip_settings.max(o.ip_settings);
        self.settle_connection |= o.settle_connection;
    }
}

impl Reaction {
    pub(super) const PUBLISH: Reaction = Reaction {
        publish_early: false,
        netlink: NetlinkStep::Nothing,
        read_hints: false,
        recheck_balloon: false,
        check_domain: false,
        publish: true,
        ip_settings: IpStep::Nothing,
        settle_connection: false,
    };

    pub(super) fn publish_if(changed: bool) -> Reaction {
        Reaction {
            publish: changed,
            ..Reaction::default()
        }
    }
}
