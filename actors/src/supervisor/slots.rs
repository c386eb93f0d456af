//! The supervisor's table of agents, as pure data: each agent's slot, with its lifecycle
//! as one explicit state, and what follows an attempt's exit ([`after_exit`], on top of
//! [`crate::restart::decide`]). Nothing here touches an actor, a clock or a service: the
//! shell (`supervisor.rs`) passes the time in and carries the verdicts out.
//!
//! ```text
//! Pending ──start──▶ Running{attempt} ──exit──▶ Final(report)
//!                      │    ▲      │
//!                force │    │start └──exit, restart──▶ Restarting{attempt}
//!                      ▼    └──────────────────────────────┘
//!                   Ending{attempt, status, why} ──exit──▶ Final(report)
//! ```
//!
//! A slot that is ended before it ever runs (cancelled while queued, unavailable) goes
//! from `Pending` or `Restarting` straight to `Final`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::checkpoint::Checkpoint;
use crate::delegate::ExternalAgent;
use crate::identity::AgentName;
use crate::model::{Model, ToolSpec};
use crate::protocol::{AgentOutcome, RemoteHost};
use crate::report::{AgentReport, AgentStatus};
use crate::restart::{decide, ExitKind, FailureKind, RestartDecision, RestartHistory, RestartType};
use crate::spec::AgentSpec;
use crate::tool::Tool;

/// Where an agent is in its life.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lifecycle {
    /// Not started yet (queued for a place under `max_concurrency`).
    Pending,
    /// An attempt runs; `outcome` is how it said it ended, once it did.
    Running {
        /// The attempt, from 1.
        attempt: u32,
        /// Its outcome, sent just before it stops.
        outcome: Option<AgentOutcome>,
    },
    /// The supervisor is ending the attempt (a cancel, a deadline, its parent ended): it
    /// was killed and ends with `status` once its exit arrives.
    Ending {
        /// The attempt being ended.
        attempt: u32,
        /// The status it ends with.
        status: AgentStatus,
        /// Why.
        why: String,
        /// Its own outcome, if it sent one before the kill landed.
        outcome: Option<AgentOutcome>,
    },
    /// Attempt `attempt` failed and the next one is scheduled.
    Restarting {
        /// The attempt that failed.
        attempt: u32,
    },
    /// Ended for good, with its report.
    Final(Box<AgentReport>),
}

/// How a slot's attempts run.
pub(crate) enum Runner {
    /// An AgentActor with this model and these tools.
    Local {
        model: Arc<dyn Model>,
        tools: Arc<Vec<Arc<dyn Tool>>>,
        /// The specs of `tools`, in order ([`ToolSpecs`]).
        specs: Arc<[ToolSpec]>,
    },
    /// An ExternalAgentActor.
    External(Arc<dyn ExternalAgent>),
    /// A RemoteAttemptActor: each attempt runs on a worker.
    Remote(Arc<dyn RemoteHost>),
    /// It cannot run (something it needs is missing): it fails with this when it would
    /// start.
    Unavailable(String),
}

/// The specs of each distinct set of tools of the run, built once: agents with the same
/// tools (the same instances, in the same order) share one copy. A spec is a JSON schema
/// of a few kilobytes in memory; a thousand agents each holding their own were the largest
/// item of a run's heap after the HTTP connections. [`crate::tool::Tool::spec`] is the
/// same on every call, so sharing changes nothing the model sees.
#[derive(Default)]
pub(crate) struct ToolSpecs {
    /// By the tools' addresses.
    known: HashMap<Vec<usize>, KnownTools>,
}

/// A set of tools and their specs.
struct KnownTools {
    /// Kept so that no address of the key is reused by another tool.
    _tools: Vec<Arc<dyn Tool>>,
    specs: Arc<[ToolSpec]>,
}

impl ToolSpecs {
    /// The specs of `tools`, shared with every earlier set of the same tools.
    pub(crate) fn of(&mut self, tools: &[Arc<dyn Tool>]) -> Arc<[ToolSpec]> {
        let key = tools
            .iter()
            .map(|t| Arc::as_ptr(t).cast::<()>() as usize)
            .collect();
        let known = self.known.entry(key).or_insert_with(|| KnownTools {
            _tools: tools.to_vec(),
            specs: tools.iter().map(|t| t.spec()).collect(),
        });
        Arc::clone(&known.specs)
    }
}

/// One agent of the run.
pub(crate) struct AgentSlot {
    pub(crate) spec: Arc<AgentSpec>,
    pub(crate) runner: Runner,
    pub(crate) lifecycle: Lifecycle,
    /// Attempts started so far (the current or last attempt's number).
    pub(crate) attempts: u32,
    pub(crate) history: RestartHistory,
    /// When its first attempt started (the clock for durations, and the wall time).
    pub(crate) first_started: Option<(Instant, DateTime<Utc>)>,
    /// The last failure, for the report of an agent that ends without an error of its own.
    pub(crate) last_error: Option<String>,
    /// Its last answer was cut off by the output cap.
    pub(crate) truncated: bool,
    /// Its newest checkpoint: where a restarted attempt continues.
    pub(crate) checkpoint: Option<Checkpoint>,
    pub(crate) artifacts: BTreeSet<String>,
}

/// What the supervisor does when it ends an agent on its own initiative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Force {
    /// Already final or already being ended: nothing.
    Nothing,
    /// An attempt runs: kill it (it ends when its exit arrives).
    Kill,
    /// Nothing runs: end it now.
    EndNow,
}

/// How an attempt's exit reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Exit {
    /// The supervisor ended it.
    Forced {
        status: AgentStatus,
        why: String,
        last: Option<String>,
    },
    /// It stopped on its own with an outcome (a normal exit).
    Ended(AgentOutcome),
    /// It crashed (a panic, an error, a kill it did not ask for) without an outcome.
    Crashed(String),
}

/// What follows an attempt's exit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Start attempt `attempt` after `delay`; the last one failed because of `reason`.
    Restart {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    /// The agent is final.
    Final {
        status: AgentStatus,
        final_message: Option<String>,
        error: Option<String>,
    },
}

impl AgentSlot {
    pub(crate) fn new(spec: AgentSpec, runner: Runner) -> Self {
        Self {
            spec: Arc::new(spec),
            runner,
            lifecycle: Lifecycle::Pending,
            attempts: 0,
            history: RestartHistory::default(),
            first_started: None,
            last_error: None,
            truncated: false,
            checkpoint: None,
            artifacts: BTreeSet::new(),
        }
    }

    pub(crate) fn name(&self) -> AgentName<'_> {
        AgentName::parse(&self.spec.name)
    }

    pub(crate) fn is_final(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Final(_))
    }

    pub(crate) fn report(&self) -> Option<&AgentReport> {
        match &self.lifecycle {
            Lifecycle::Final(report) => Some(report),
            _ => None,
        }
    }

    /// A run's own agent, started and not yet final: what `max_concurrency` limits
    /// (delegated agents do not count: their parent waits for them).
    pub(crate) fn holds_a_place(&self) -> bool {
        self.name().depth() == 0 && self.first_started.is_some() && !self.is_final()
    }

    /// Whether attempt `attempt` runs and is not being ended: only such an attempt may
    /// start children.
    pub(crate) fn runs(&self, attempt: u32) -> bool {
        matches!(self.lifecycle, Lifecycle::Running { attempt: a, .. } if a == attempt)
    }

    /// Starts the next attempt (from `Pending` or `Restarting`) at `now`; returns its
    /// number, or `None` when the slot cannot start (running, ending or final).
    pub(crate) fn begin(&mut self, now: (Instant, DateTime<Utc>)) -> Option<u32> {
        if !matches!(
            self.lifecycle,
            Lifecycle::Pending | Lifecycle::Restarting { .. }
        ) {
            return None;
        }
        self.attempts += 1;
        self.first_started.get_or_insert(now);
        self.lifecycle = Lifecycle::Running {
            attempt: self.attempts,
            outcome: None,
        };
        Some(self.attempts)
    }

    /// Attempt `attempt` said how it ended (an older attempt's word is ignored).
    pub(crate) fn record_outcome(&mut self, attempt: u32, outcome: AgentOutcome) {
        match &mut self.lifecycle {
            Lifecycle::Running {
                attempt: a,
                outcome: o,
            }
            | Lifecycle::Ending {
                attempt: a,
                outcome: o,
                ..
            } if *a == attempt => *o = Some(outcome),
            _ => {}
        }
    }

    /// The supervisor ends the agent with `status` because of `why`.
    pub(crate) fn force(&mut self, status: AgentStatus, why: &str) -> Force {
        match &mut self.lifecycle {
            Lifecycle::Final(_) | Lifecycle::Ending { .. } => Force::Nothing,
            Lifecycle::Running { attempt, outcome } => {
                self.lifecycle = Lifecycle::Ending {
                    attempt: *attempt,
                    status,
                    why: why.to_owned(),
                    outcome: outcome.take(),
                };
                Force::Kill
            }
            Lifecycle::Pending | Lifecycle::Restarting { .. } => Force::EndNow,
        }
    }

    /// The running attempt exited (`failure`: why, unless it stopped normally); the slot
    /// waits in `Restarting` for the verdict ([`after_exit`]).
    pub(crate) fn exited(&mut self, failure: Option<String>) -> Exit {
        let attempt = self.attempts;
        let was = std::mem::replace(&mut self.lifecycle, Lifecycle::Restarting { attempt });
        match was {
            Lifecycle::Ending {
                status,
                why,
                outcome,
                ..
            } => Exit::Forced {
                status,
                why,
                last: outcome.and_then(|o| o.final_message),
            },
            Lifecycle::Running {
                outcome: Some(outcome),
                ..
            } => Exit::Ended(outcome),
            _ => Exit::Crashed(failure.unwrap_or_else(|| "stopped without an outcome".into())),
        }
    }

    /// The agent is final with `report`.
    pub(crate) fn finish(&mut self, report: AgentReport) {
        self.lifecycle = Lifecycle::Final(Box::new(report));
    }

    /// From its first start to `end`.
    pub(crate) fn duration(&self, end: Instant) -> Duration {
        self.first_started
            .map_or(Duration::ZERO, |(start, _)| end - start)
    }
}

/// What follows `exit` of the slot's attempt at `now` (since the run's start), by its
/// restart policy: the real exit kind goes to [`decide`] (an outcome is a normal exit, a
/// crash an abnormal one). Only an attempt that failed can be restarted: a completed goal,
/// a spent budget, the turn limit or a timeout are final whatever the policy. Updates the
/// slot's restart history.
pub(crate) fn after_exit(slot: &mut AgentSlot, exit: Exit, now: Duration) -> Verdict {
    let (exit_kind, reason, ended) = match exit {
        Exit::Forced { status, why, last } => return final_of(status, last, Some(why)),
        Exit::Ended(outcome) => {
            slot.truncated = outcome.truncated;
            if outcome.status != AgentStatus::Failed {
                return final_of(outcome.status, outcome.final_message, outcome.error);
            }
            let reason = outcome.error.clone().unwrap_or_else(|| "failed".into());
            (ExitKind::Normal, reason, Some(outcome))
        }
        Exit::Crashed(why) => (ExitKind::Abnormal, why, None),
    };
    slot.last_error = Some(reason.clone());
    slot.history.failed(FailureKind::of(&reason));
    let policy = slot.spec.restart;
    match decide(&policy, &slot.history, now, exit_kind) {
        RestartDecision::Restart { delay } => {
            slot.history.record(now, policy.period);
            Verdict::Restart {
                attempt: slot.attempts + 1,
                delay,
                reason,
            }
        }
        RestartDecision::Done => match ended {
            Some(o) => final_of(o.status, o.final_message, o.error),
            None => failed(not_restarted(policy.restart, &reason)),
        },
        RestartDecision::Escalate => failed(format!(
            "failed after {} restarts (limit {} within {}); last error: {reason}",
            slot.history.total(),
            policy.max_restarts,
            humanize(policy.period)
        )),
        RestartDecision::GiveUp => failed(format!(
            "failed {} times in a row the same way (limit {}, after {} restarts); \
             last error: {reason}",
            slot.history.streak(),
            policy.max_consecutive_failures,
            slot.history.total(),
        )),
    }
}

/// Why a crashed agent stays down although its intensity allows a restart.
fn not_restarted(restart: RestartType, why: &str) -> String {
    let kind = match restart {
        RestartType::Temporary => "temporary",
        RestartType::Transient => "transient",
        RestartType::Permanent => "permanent",
    };
    format!("{why}; not restarted: its restart type is `{kind}`")
}

fn final_of(status: AgentStatus, final_message: Option<String>, error: Option<String>) -> Verdict {
    Verdict::Final {
        status,
        final_message,
        error,
    }
}

fn failed(error: String) -> Verdict {
    final_of(AgentStatus::Failed, None, Some(error))
}

/// `90s`, `5m`, `2h`, `1.5s`: a duration as people write it.
pub(crate) fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restart::RestartPolicy;

    #[test]
    fn agents_with_the_same_tools_share_one_copy_of_their_specs() {
        let a: Arc<dyn Tool> = Arc::new(crate::delegate::DelegateTool);
        let b: Arc<dyn Tool> = Arc::new(crate::delegate::DelegateTool);
        let mut specs = ToolSpecs::default();
        let first = specs.of(&[Arc::clone(&a)]);
        assert!(Arc::ptr_eq(&first, &specs.of(&[Arc::clone(&a)])));
        assert!(!Arc::ptr_eq(&first, &specs.of(&[Arc::clone(&b)])));
        assert!(!Arc::ptr_eq(&first, &specs.of(&[Arc::clone(&a), b])));
        assert_eq!(first[..], [a.spec()]);
    }

    fn slot(restart: RestartType) -> AgentSlot {
        let mut spec = AgentSpec::new("a", "goal", 1000);
        spec.restart = RestartPolicy {
            restart,
            max_restarts: 2,
            period: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_consecutive_failures: 5,
        };
        AgentSlot::new(spec, Runner::Unavailable("test".into()))
    }

    fn report_of(s: &AgentSlot) -> AgentReport {
        AgentReport {
            agent: s.spec.name.clone(),
            goal: s.spec.goal.clone(),
            scope: String::new(),
            status: AgentStatus::Cancelled,
            tokens_used: 0,
            budget: s.spec.budget,
            duration_secs: 0.0,
            restarts: 0,
            artifacts: Vec::new(),
            error: None,
            final_message: None,
            parent: None,
            depth: 0,
            truncated: false,
        }
    }

    fn now() -> (Instant, DateTime<Utc>) {
        (Instant::now(), Utc::now())
    }

    fn outcome(status: AgentStatus) -> AgentOutcome {
        AgentOutcome::new(status, Some("answer".into()), Some("why".into()))
    }

    #[test]
    fn a_slot_starts_pending_and_each_start_is_the_next_attempt() {
        let mut s = slot(RestartType::Transient);
        assert_eq!(s.lifecycle, Lifecycle::Pending);
        assert_eq!(s.begin(now()), Some(1));
        assert!(s.runs(1));
        assert_eq!(s.begin(now()), None, "a running slot does not start again");
        s.exited(Some("boom".into()));
        assert_eq!(s.lifecycle, Lifecycle::Restarting { attempt: 1 });
        assert_eq!(s.begin(now()), Some(2));
    }

    #[test]
    fn an_outcome_of_an_older_attempt_is_ignored() {
        let mut s = slot(RestartType::Transient);
        s.begin(now());
        s.exited(None);
        s.begin(now());
        s.record_outcome(1, outcome(AgentStatus::Completed));
        assert!(matches!(s.exited(Some("x".into())), Exit::Crashed(_)));
    }

    #[test]
    fn forcing_a_running_agent_kills_it_and_its_exit_reads_forced() {
        let mut s = slot(RestartType::Transient);
        s.begin(now());
        s.record_outcome(1, outcome(AgentStatus::Completed));
        assert_eq!(s.force(AgentStatus::TimedOut, "deadline"), Force::Kill);
        assert!(!s.runs(1), "an ending attempt starts no children");
        assert_eq!(s.force(AgentStatus::Cancelled, "again"), Force::Nothing);
        let exit = s.exited(Some("killed".into()));
        assert_eq!(
            exit,
            Exit::Forced {
                status: AgentStatus::TimedOut,
                why: "deadline".into(),
                last: Some("answer".into())
            }
        );
    }

    #[test]
    fn forcing_an_agent_that_is_not_running_ends_it_now() {
        let mut s = slot(RestartType::Transient);
        assert_eq!(s.force(AgentStatus::Cancelled, "x"), Force::EndNow);
        s.finish(report_of(&s));
        assert!(s.is_final());
        assert_eq!(s.force(AgentStatus::Cancelled, "x"), Force::Nothing);
        assert_eq!(s.begin(now()), None, "a final slot never starts");
    }

    #[test]
    fn a_crashed_transient_agent_is_restarted_with_backoff() {
        let mut s = slot(RestartType::Transient);
        s.begin(now());
        let exit = s.exited(Some("panicked".into()));
        let verdict = after_exit(&mut s, exit, Duration::ZERO);
        assert_eq!(
            verdict,
            Verdict::Restart {
                attempt: 2,
                delay: Duration::from_millis(100),
                reason: "panicked".into()
            }
        );
    }

    #[test]
    fn a_crashed_temporary_agent_fails_and_says_it_is_not_restarted() {
        let mut s = slot(RestartType::Temporary);
        s.begin(now());
        let exit = s.exited(Some("panicked".into()));
        let Verdict::Final { status, error, .. } = after_exit(&mut s, exit, Duration::ZERO) else {
            panic!("a temporary agent was restarted");
        };
        assert_eq!(status, AgentStatus::Failed);
        let error = error.unwrap();
        assert!(error.contains("panicked"), "{error}");
        assert!(error.contains("not restarted"), "{error}");
        assert!(error.contains("temporary"), "{error}");
        assert!(!error.contains("restarts"), "{error}");
    }

    #[test]
    fn a_failed_outcome_is_final_for_a_transient_agent_and_restarted_for_a_permanent_one() {
        let mut transient = slot(RestartType::Transient);
        transient.begin(now());
        transient.record_outcome(1, outcome(AgentStatus::Failed));
        let exit = transient.exited(None);
        assert!(matches!(
            after_exit(&mut transient, exit, Duration::ZERO),
            Verdict::Final {
                status: AgentStatus::Failed,
                ..
            }
        ));
        let mut permanent = slot(RestartType::Permanent);
        permanent.begin(now());
        permanent.record_outcome(1, outcome(AgentStatus::Failed));
        let exit = permanent.exited(None);
        assert!(matches!(
            after_exit(&mut permanent, exit, Duration::ZERO),
            Verdict::Restart { attempt: 2, .. }
        ));
    }

    #[test]
    fn a_completed_goal_is_never_restarted_even_when_permanent() {
        let mut s = slot(RestartType::Permanent);
        s.begin(now());
        s.record_outcome(1, outcome(AgentStatus::Completed));
        let exit = s.exited(None);
        assert!(matches!(
            after_exit(&mut s, exit, Duration::ZERO),
            Verdict::Final {
                status: AgentStatus::Completed,
                ..
            }
        ));
    }

    #[test]
    fn crashes_beyond_the_intensity_escalate_with_the_policy_in_the_message() {
        let mut s = slot(RestartType::Transient);
        let mut verdicts = Vec::new();
        for _ in 0..3 {
            s.begin(now());
            let exit = s.exited(Some("boom".into()));
            verdicts.push(after_exit(&mut s, exit, Duration::from_secs(1)));
        }
        assert!(matches!(verdicts[0], Verdict::Restart { .. }));
        assert!(matches!(verdicts[1], Verdict::Restart { .. }));
        let Verdict::Final { error, .. } = &verdicts[2] else {
            panic!("{verdicts:?}");
        };
        let error = error.as_deref().unwrap();
        assert!(
            error.starts_with("failed after 2 restarts (limit 2 within 1m)"),
            "{error}"
        );
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(humanize(Duration::from_secs(7200)), "2h");
        assert_eq!(humanize(Duration::from_secs(300)), "5m");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
    }
}
