//! Living with a fault that recurs: when to try again ([`Backoff`]) and what to log
//! ([`FaultLog`]). One of each per thing that can fail on its own: the xenstore connection,
//! rtnetlink, /proc/meminfo, the read-back, a watch.
//!
//! Imports nothing from the crate, like `layout` and `decimal`.

use std::time::{Duration, Instant};

/// A doubling delay between attempts, from `min` to `max`; a success resets it.
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    delay: Duration,
    /// `None`: no attempt is scheduled (the first one, or after a success).
    next: Option<Instant>,
}

impl Backoff {
    pub const fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            delay: min,
            next: None,
        }
    }

    /// An attempt failed at `now`: the next one is due after the current delay, which then
    /// doubles (up to `max`).
    pub fn failed(&mut self, now: Instant) {
        self.next = Some(now + self.delay);
        self.delay = (self.delay * 2).min(self.max);
    }

    /// An attempt succeeded: nothing is scheduled and the next failure waits `min`.
    pub fn succeeded(&mut self) {
        self.next = None;
        self.delay = self.min;
    }

    /// A retry is scheduled (an attempt failed since the last success).
    pub fn scheduled(&self) -> bool {
        self.next.is_some()
    }

    /// A scheduled retry's time has come.
    pub fn due(&self, now: Instant) -> bool {
        self.next.is_some_and(|t| now >= t)
    }

    /// How long until the scheduled retry (`None`: nothing scheduled).
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.next.map(|t| t.saturating_duration_since(now))
    }
}

/// A fault that may recur, logged once: again only when its message changes, and once more
/// when it clears, with how often it happened.
#[derive(Clone, Debug, Default)]
pub struct FaultLog {
    message: Option<String>,
    count: u32,
}

/// What [`FaultLog::record`] says of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A new fault, or another message than the last one: worth a warning.
    New,
    /// The same message again, for the n-th time in a row.
    Again(u32),
}

impl FaultLog {
    pub const fn new() -> FaultLog {
        FaultLog {
            message: None,
            count: 0,
        }
    }

    /// Notes a fault with its message.
    pub fn record(&mut self, message: String) -> Seen {
        if self.message.as_deref() == Some(message.as_str()) {
            self.count += 1;
            return Seen::Again(self.count);
        }
        self.message = Some(message);
        self.count = 1;
        Seen::New
    }

    /// The fault is over: its message and how many times it happened, if there was one.
    pub fn clear(&mut self) -> Option<(String, u32)> {
        let count = std::mem::take(&mut self.count);
        self.message.take().map(|m| (m, count))
    }

    /// A fault is being lived with.
    pub fn active(&self) -> bool {
        self.message.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        assert!(!b.scheduled() && !b.due(t0) && b.wait(t0).is_none());
        let waits: Vec<_> = (0..4)
            .map(|_| {
                b.failed(t0);
                b.wait(t0).unwrap().as_millis()
            })
            .collect();
        assert_eq!(waits, [250, 500, 1000, 1000]);
        assert!(!b.due(t0) && b.due(t0 + Duration::from_secs(1)));
        b.succeeded();
        assert!(!b.scheduled());
        b.failed(t0);
        assert_eq!(b.wait(t0), Some(Duration::from_millis(250)));
    }

    #[test]
    fn a_fault_is_new_once_per_message_and_counted() {
        let mut f = FaultLog::new();
        assert_eq!(f.record("EIO".into()), Seen::New);
        assert_eq!(f.record("EIO".into()), Seen::Again(2));
        assert_eq!(f.record("EIO".into()), Seen::Again(3));
        assert_eq!(f.record("EACCES".into()), Seen::New);
        assert!(f.active());
        assert_eq!(f.clear(), Some(("EACCES".into(), 1)));
        assert_eq!(f.clear(), None);
        assert_eq!(f.record("EACCES".into()), Seen::New);
    }
}
