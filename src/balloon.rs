//! Balloon state for the toolstack: is the driver at its target, on its way, or stuck? And has
//! memory settled enough to tell XAPI's squeezed that it may set balloon targets
//! (`control/feature-balloon`: squeezed takes its existence to mean "booted, memory allocated";
//! its design asks for a stable allocation first, not a write at start).

use std::time::{Duration, Instant};

use crate::desired::DesiredKeys;
use crate::layout::key;
use crate::model::{BalloonInfo, BalloonState};

/// How long `current_kb` must stand still to count as settled short of its target.
const SETTLE_TIME: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct BalloonTracker {
    last: Option<BalloonInfo>,
    last_change: Option<Instant>,
    settled: bool,
    stuck_after: Duration,
}

impl BalloonTracker {
    pub fn new(stuck_after: Duration) -> BalloonTracker {
        BalloonTracker {
            last: None,
            last_change: None,
            settled: false,
            stuck_after,
        }
    }

    /// Takes a reading; returns the state.
    pub fn update(&mut self, info: BalloonInfo, now: Instant) -> BalloonState {
        match self.last {
            Some(prev) if prev == info => {
                // Unchanged for a while: memory is stable.
                let since = now.saturating_duration_since(self.last_change.unwrap_or(now));
                if since >= SETTLE_TIME {
                    self.settled = true;
                }
            }
            _ => self.last_change = Some(now),
        }
        self.last = Some(info);
        if info.current_kb == info.target_kb {
            self.settled = true;
            return BalloonState::Reached;
        }
        let since = now.saturating_duration_since(self.last_change.unwrap_or(now));
        if since >= self.stuck_after {
            BalloonState::Stuck
        } else {
            BalloonState::Ballooning
        }
    }

    /// Memory reached its target or held still between two readings at least once.
    pub fn settled(&self) -> bool {
        self.settled
    }

    pub fn last(&self) -> Option<BalloonInfo> {
        self.last
    }
}

/// Why a balloon is stuck, as far as the numbers tell.
pub fn stuck_reason(info: &BalloonInfo) -> String {
    if info.current_kb < info.target_kb {
        format!(
            "below target by {} kB: Xen gave no more memory (host short of memory, or target above the domain's maximum)",
            info.target_kb - info.current_kb
        )
    } else {
        format!(
            "above target by {} kB: the guest could not free more memory",
            info.current_kb - info.target_kb
        )
    }
}

/// `data/balloon_*`, and `control/feature-balloon` once settled when `feature` allows it.
pub fn render(
    info: Option<(BalloonInfo, BalloonState)>,
    feature: bool,
    settled: bool,
    d: &mut DesiredKeys,
) {
    let Some((info, state)) = info else {
        for k in [
            key::BALLOON_TARGET,
            key::BALLOON_CURRENT,
            key::BALLOON_STATE,
            key::BALLOON_REASON,
        ] {
            d.remove(k);
        }
        d.remove(key::FEATURE_BALLOON);
        return;
    };
    d.set_u64(key::BALLOON_TARGET, info.target_kb);
    d.set_u64(key::BALLOON_CURRENT, info.current_kb);
    d.set(key::BALLOON_STATE, state.as_str());
    if state == BalloonState::Stuck {
        d.set(key::BALLOON_REASON, &stuck_reason(&info));
    } else {
        d.remove(key::BALLOON_REASON);
    }
    if feature && settled {
        d.set(key::FEATURE_BALLOON, "1");
    } else if !feature {
        d.remove(key::FEATURE_BALLOON);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(target: u64, current: u64) -> BalloonInfo {
        BalloonInfo {
            target_kb: target,
            current_kb: current,
        }
    }

    #[test]
    fn states_over_time() {
        let t0 = Instant::now();
        let s = Duration::from_secs(30);
        let mut t = BalloonTracker::new(s);
        assert_eq!(t.update(b(100, 200), t0), BalloonState::Ballooning);
        assert!(!t.settled());
        assert_eq!(
            t.update(b(100, 150), t0 + Duration::from_secs(1)),
            BalloonState::Ballooning
        );
        assert!(!t.settled());
        assert_eq!(
            t.update(b(100, 100), t0 + Duration::from_secs(2)),
            BalloonState::Reached
        );
        assert!(t.settled());
        // a new target, then no movement for the stuck timeout
        assert_eq!(
            t.update(b(50, 100), t0 + Duration::from_secs(3)),
            BalloonState::Ballooning
        );
        assert_eq!(
            t.update(b(50, 100), t0 + Duration::from_secs(20)),
            BalloonState::Ballooning
        );
        assert_eq!(
            t.update(b(50, 100), t0 + Duration::from_secs(33)),
            BalloonState::Stuck
        );
        assert!(stuck_reason(&b(50, 100)).starts_with("above target by 50 kB"));
        assert!(stuck_reason(&b(100, 50)).starts_with("below target by 50 kB"));
    }

    #[test]
    fn stable_memory_counts_as_settled() {
        let t0 = Instant::now();
        let mut t = BalloonTracker::new(Duration::from_secs(30));
        t.update(b(130684, 130296), t0);
        assert!(!t.settled());
        t.update(b(130684, 130296), t0 + Duration::from_millis(10));
        assert!(!t.settled());
        t.update(b(130684, 130296), t0 + Duration::from_secs(1));
        assert!(t.settled());
    }

    #[test]
    fn feature_balloon_only_when_settled_and_allowed() {
        let mut d = DesiredKeys::new();
        render(
            Some((b(10, 20), BalloonState::Ballooning)),
            true,
            false,
            &mut d,
        );
        assert_eq!(d.get(key::FEATURE_BALLOON), None);
        assert_eq!(d.get(key::BALLOON_STATE), Some("ballooning"));
        render(Some((b(10, 10), BalloonState::Reached)), true, true, &mut d);
        assert_eq!(d.get(key::FEATURE_BALLOON), Some("1"));
        render(
            Some((b(10, 10), BalloonState::Reached)),
            false,
            true,
            &mut d,
        );
        assert_eq!(d.get(key::FEATURE_BALLOON), None);
        render(None, true, true, &mut d);
        assert!(d.is_empty());
    }
}
