//! OTP-style restart decisions, as a pure function.
//!
//! ractor has no restart strategy: a supervisor only hears that a child exited. This module
//! decides what happens next, from the child's [`RestartType`], its restart intensity (at
//! most `max_restarts` within `period`) and its restart history, with exponential backoff
//! between restarts. The supervisor actor feeds it the facts and carries out the decision
//! with a timer message; keeping the decision here makes it testable without actors or time.
//!
//! Time is a [`Duration`] since an arbitrary origin (the run's start), so tests can replay
//! any schedule.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When a child is restarted, as in OTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartType {
    /// Always restarted, whatever the exit (the run's services).
    Permanent,
    /// Restarted only after an abnormal exit (a panic or an error); agents are transient.
    Transient,
    /// Never restarted.
    Temporary,
}

/// How a child exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// It finished its work.
    Normal,
    /// It panicked, returned an error, or was killed.
    Abnormal,
}

/// A child's restart settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// When to restart at all.
    pub restart: RestartType,
    /// At most this many restarts ...
    pub max_restarts: u32,
    /// ... within this sliding window; one more escalates.
    pub period: Duration,
    /// Delay before the first restart in a window.
    pub initial_backoff: Duration,
    /// The delay doubles with each restart in the window, up to this.
    pub max_backoff: Duration,
}

impl RestartPolicy {
    /// For agents: transient, 3 restarts within 60 s, backoff 100 ms doubling up to 5 s.
    pub fn agent_default() -> Self {
        Self {
            restart: RestartType::Transient,
            max_restarts: 3,
            period: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// For the run's services (budget, audit, policy): permanent, 10 restarts within 10 s,
    /// backoff 10 ms doubling up to 500 ms. Agents wait for a restarted service, so the
    /// backoff is short.
    pub fn service_default() -> Self {
        Self {
            restart: RestartType::Permanent,
            max_restarts: 10,
            period: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(500),
        }
    }
}

/// When a child was restarted, within the current window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartHistory {
    restarts: VecDeque<Duration>,
    total: u32,
}

impl RestartHistory {
    /// Restarts over the child's whole life.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Restarts within `period` before `now`.
    pub fn recent(&self, now: Duration, period: Duration) -> u32 {
        self.restarts
            .iter()
            .filter(|&&at| now.saturating_sub(at) < period)
            .count() as u32
    }

    /// Records a restart at `now`, forgetting those older than `period`.
    pub fn record(&mut self, now: Duration, period: Duration) {
        self.restarts.retain(|&at| now.saturating_sub(at) < period);
        self.restarts.push_back(now);
        self.total += 1;
    }
}

/// What the supervisor does after a child exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Start it again after `delay` (send a timer message; never sleep in a handler).
    Restart {
        /// Backoff before the restart.
        delay: Duration,
    },
    /// Let it stay down: its exit was final by its restart type.
    Done,
    /// It failed more often than its intensity allows: report it failed, for good.
    Escalate,
}

/// Decides what follows a child's exit at `now`, given its policy and restart history.
///
/// Guarantees (property-tested): never more than `max_restarts` restarts are granted within
/// any window of length `period`; delays never exceed `max_backoff`; a temporary child, or a
/// transient one that exited normally, is never restarted.
pub fn decide(
    policy: &RestartPolicy,
    history: &RestartHistory,
    now: Duration,
    exit: ExitKind,
) -> RestartDecision {
    let wants_restart = match (policy.restart, exit) {
        (RestartType::Permanent, _) => true,
        (RestartType::Transient, ExitKind::Abnormal) => true,
        (RestartType::Transient, ExitKind::Normal) | (RestartType::Temporary, _) => false,
    };
    if !wants_restart {
        return RestartDecision::Done;
    }
    let recent = history.recent(now, policy.period);
    if recent >= policy.max_restarts {
        return RestartDecision::Escalate;
    }
    RestartDecision::Restart {
        delay: backoff(policy, recent),
    }
}

/// The delay before restart number `recent + 1` of a window: `initial * 2^recent`, capped.
fn backoff(policy: &RestartPolicy, recent: u32) -> Duration {
    let factor = 1u32.checked_shl(recent.min(31)).unwrap_or(u32::MAX);
    policy
        .initial_backoff
        .checked_mul(factor)
        .unwrap_or(policy.max_backoff)
        .min(policy.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn transient_child_is_restarted_after_a_crash() {
        let p = RestartPolicy::agent_default();
        let d = decide(&p, &RestartHistory::default(), secs(0), ExitKind::Abnormal);
        assert_eq!(
            d,
            RestartDecision::Restart {
                delay: Duration::from_millis(100)
            }
        );
    }

    #[test]
    fn transient_child_that_finished_stays_down() {
        let p = RestartPolicy::agent_default();
        let d = decide(&p, &RestartHistory::default(), secs(0), ExitKind::Normal);
        assert_eq!(d, RestartDecision::Done);
    }

    #[test]
    fn temporary_child_is_never_restarted() {
        let p = RestartPolicy {
            restart: RestartType::Temporary,
            ..RestartPolicy::agent_default()
        };
        let d = decide(&p, &RestartHistory::default(), secs(0), ExitKind::Abnormal);
        assert_eq!(d, RestartDecision::Done);
    }

    #[test]
    fn permanent_child_is_restarted_even_after_a_normal_exit() {
        let p = RestartPolicy::service_default();
        let d = decide(&p, &RestartHistory::default(), secs(0), ExitKind::Normal);
        assert!(matches!(d, RestartDecision::Restart { .. }));
    }

    #[test]
    fn fourth_crash_within_a_minute_escalates() {
        let p = RestartPolicy::agent_default();
        let mut h = RestartHistory::default();
        for t in 0..3 {
            assert!(matches!(
                decide(&p, &h, secs(t), ExitKind::Abnormal),
                RestartDecision::Restart { .. }
            ));
            h.record(secs(t), p.period);
        }
        assert_eq!(
            decide(&p, &h, secs(3), ExitKind::Abnormal),
            RestartDecision::Escalate
        );
    }

    #[test]
    fn restarts_older_than_the_period_are_forgotten() {
        let p = RestartPolicy::agent_default();
        let mut h = RestartHistory::default();
        for t in 0..3 {
            h.record(secs(t), p.period);
        }
        let d = decide(&p, &h, secs(63), ExitKind::Abnormal);
        assert!(matches!(d, RestartDecision::Restart { .. }));
        assert_eq!(h.total(), 3);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RestartPolicy {
            max_restarts: 100,
            ..RestartPolicy::agent_default()
        };
        let mut h = RestartHistory::default();
        let mut delays = Vec::new();
        for t in 0..10 {
            if let RestartDecision::Restart { delay } = decide(&p, &h, secs(t), ExitKind::Abnormal)
            {
                delays.push(delay.as_millis());
            }
            h.record(secs(t), p.period);
        }
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
    }

    proptest! {
        /// However crashes are timed, a supervisor that follows `decide` grants at most
        /// `max_restarts` restarts in any window of `period`, and every delay is capped.
        #[test]
        fn intensity_is_never_exceeded(
            gaps in proptest::collection::vec(0u64..30_000, 1..60),
            max_restarts in 0u32..6,
            period_ms in 1u64..60_000,
        ) {
            let p = RestartPolicy {
                max_restarts,
                period: Duration::from_millis(period_ms),
                ..RestartPolicy::agent_default()
            };
            let mut h = RestartHistory::default();
            let mut granted: Vec<Duration> = Vec::new();
            let mut now = Duration::ZERO;
            for gap in gaps {
                now += Duration::from_millis(gap);
                match decide(&p, &h, now, ExitKind::Abnormal) {
                    RestartDecision::Restart { delay } => {
                        prop_assert!(delay <= p.max_backoff);
                        h.record(now, p.period);
                        granted.push(now);
                    }
                    RestartDecision::Escalate => break,
                    RestartDecision::Done => prop_assert!(false, "transient crash must not be Done"),
                }
            }
            for (i, &start) in granted.iter().enumerate() {
                let in_window = granted[i..].iter().filter(|&&t| t - start < p.period).count();
                prop_assert!(in_window as u32 <= max_restarts);
            }
        }
    }
}
