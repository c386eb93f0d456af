//! OTP-style restart decisions, as a pure function.
//!
//! ractor has no restart strategy: a supervisor only hears that a child exited. This module
//! decides what happens next, from the child's [`RestartType`], its restart intensity (at
//! most `max_restarts` within `period`) and its restart history, with exponential backoff
//! between restarts.
//!
//! Intensity bounds the rate of failures, not their number: attempts that each take longer
//! than `period / max_restarts` (a model server that fails after 20 s) never reach it. So
//! a child also fails for good after `max_consecutive_failures` failures in a row of the
//! same [`FailureKind`] (a failure of another kind starts a new streak); with the
//! deadline, this bounds both the attempts and the time a failing agent takes. The supervisor actor feeds it the facts and carries out the decision
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
    /// Failures of the same kind in a row that end the child for good, however slowly
    /// they come.
    #[serde(default = "default_max_consecutive_failures")]
    pub max_consecutive_failures: u32,
}

fn default_max_consecutive_failures() -> u32 {
    5
}

/// What kind of failure ended an attempt; a streak of one kind is capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The model call failed (the provider's error after its own retries).
    Model,
    /// The attempt panicked.
    Panic,
    /// Anything else (a service unreachable, a killed actor).
    Other,
}

impl FailureKind {
    /// The kind of a failure, from the reason the supervisor was given (the error's
    /// display: a [`crate::model::ModelError`] reads `model call failed ...`).
    pub fn of(reason: &str) -> Self {
        if reason.starts_with("model call failed") {
            FailureKind::Model
        } else if reason.contains("panicked") || reason.contains("panic") {
            FailureKind::Panic
        } else {
            FailureKind::Other
        }
    }
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
            max_consecutive_failures: default_max_consecutive_failures(),
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
            max_consecutive_failures: u32::MAX,
        }
    }
}

/// When a child was restarted, within the current window, and its current streak of
/// failures of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartHistory {
    restarts: VecDeque<Duration>,
    total: u32,
    streak: Option<(FailureKind, u32)>,
}

impl RestartHistory {
    /// Records a failure of `kind` (before [`decide`] is asked about it).
    pub fn failed(&mut self, kind: FailureKind) {
        self.streak = match self.streak {
            Some((k, n)) if k == kind => Some((k, n.saturating_add(1))),
            _ => Some((kind, 1)),
        };
    }

    /// Failures of the same kind in a row, the last one included.
    pub fn streak(&self) -> u32 {
        self.streak.map_or(0, |(_, n)| n)
    }

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
    /// It failed `max_consecutive_failures` times in a row the same way: report it failed.
    GiveUp,
}

/// Decides what follows a child's exit at `now`, given its policy and restart history.
///
/// Guarantees (property-tested): never more than `max_restarts` restarts are granted within
/// any window of length `period`; never more than `max_consecutive_failures - 1` restarts
/// after failures of one kind in a row, however far apart; delays never exceed
/// `max_backoff`; a temporary child, or a transient one that exited normally, is never
/// restarted.
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
    if exit == ExitKind::Abnormal && history.streak() >= policy.max_consecutive_failures {
        return RestartDecision::GiveUp;
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

    #[test]
    fn slow_failures_of_one_kind_give_up_after_the_streak_cap() {
        // Attempts that each fail after 20 s never reach "3 within 60 s".
        let p = RestartPolicy::agent_default();
        let mut h = RestartHistory::default();
        let mut restarts = 0;
        for attempt in 1..=20u64 {
            let now = secs(attempt * 20);
            h.failed(FailureKind::Model);
            match decide(&p, &h, now, ExitKind::Abnormal) {
                RestartDecision::Restart { .. } => {
                    h.record(now, p.period);
                    restarts += 1;
                }
                RestartDecision::GiveUp => break,
                other => panic!("attempt {attempt}: {other:?}"),
            }
        }
        assert_eq!(restarts, p.max_consecutive_failures - 1);
        assert_eq!(h.streak(), p.max_consecutive_failures);
    }

    #[test]
    fn a_failure_of_another_kind_starts_a_new_streak() {
        let mut h = RestartHistory::default();
        h.failed(FailureKind::Model);
        h.failed(FailureKind::Model);
        h.failed(FailureKind::Panic);
        assert_eq!(h.streak(), 1);
        h.failed(FailureKind::Panic);
        assert_eq!(h.streak(), 2);
    }

    #[test]
    fn failure_kinds_are_read_from_the_reason() {
        let model = crate::model::ModelError::Transient("HTTP 500".into()).to_string();
        assert_eq!(FailureKind::of(&model), FailureKind::Model);
        let fatal = crate::model::ModelError::Fatal("bad key".into()).to_string();
        assert_eq!(FailureKind::of(&fatal), FailureKind::Model);
        assert_eq!(FailureKind::of("agent panicked: boom"), FailureKind::Panic);
        assert_eq!(
            FailureKind::of("audit service unreachable"),
            FailureKind::Other
        );
    }

    proptest! {
        /// However far apart failures of one kind come, at most
        /// `max_consecutive_failures - 1` restarts follow them.
        #[test]
        fn a_streak_of_one_kind_is_capped_whatever_the_timing(
            gaps in proptest::collection::vec(0u64..600_000, 1..40),
            cap in 1u32..8,
        ) {
            let p = RestartPolicy {
                max_restarts: 1000,
                max_consecutive_failures: cap,
                ..RestartPolicy::agent_default()
            };
            let mut h = RestartHistory::default();
            let (mut now, mut restarts) = (Duration::ZERO, 0u32);
            for gap in gaps {
                now += Duration::from_millis(gap);
                h.failed(FailureKind::Model);
                match decide(&p, &h, now, ExitKind::Abnormal) {
                    RestartDecision::Restart { .. } => {
                        h.record(now, p.period);
                        restarts += 1;
                    }
                    RestartDecision::GiveUp => break,
                    other => prop_assert!(false, "{:?}", other),
                }
            }
            prop_assert!(restarts < cap);
        }

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
                    RestartDecision::Escalate | RestartDecision::GiveUp => break,
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
