//! Narrow handles over the supervisor's mailbox: each sender gets only the messages it may
//! send, already addressed. An agent attempt holds a [`SupervisorPort`] (its outcome, the
//! files it wrote, its checkpoints), the BudgetActor a [`JournalPort`], and the `delegate`
//! tool a [`DelegatePort`] behind the [`Delegate`] trait object of its
//! [`crate::tool::ToolContext`]. Every message goes into the supervisor's own mailbox, in
//! the order sent.

use std::sync::Arc;
use std::time::Duration;

use ractor::{call_t, ActorProcessingErr, ActorRef};

use super::agent::AgentOutcome;
use super::run::RunMsg;
use crate::budget::LedgerOp;
use crate::checkpoint::Checkpoint;
use crate::delegate::{Delegate, DelegateRequest, DEFAULT_CHILD_DEADLINE, REPLY_GRACE};
use crate::report::AgentReport;

/// An agent attempt's handle on the run supervisor: its mailbox, or for an attempt
/// running in another process, an [`AttemptLink`] to the run.
#[derive(Debug, Clone)]
pub struct SupervisorPort(Target);

#[derive(Debug, Clone)]
enum Target {
    Run {
        supervisor: ActorRef<RunMsg>,
        index: usize,
        attempt: u32,
    },
    Link(Arc<dyn AttemptLink>),
}

/// How an attempt in another process tells its run what it would tell the supervisor.
/// Each is delivered in the order sent, after the service requests sent before it.
pub trait AttemptLink: Send + Sync + std::fmt::Debug {
    /// The attempt ended with `outcome` (it stops right after).
    fn done(&self, outcome: AgentOutcome);
    /// The attempt wrote the workspace-relative file `path`.
    fn artifact(&self, path: String);
    /// The attempt's conversation after a complete turn.
    fn checkpoint(&self, checkpoint: Checkpoint);
}

impl SupervisorPort {
    /// The handle of attempt `attempt` of agent `index`.
    pub fn new(supervisor: ActorRef<RunMsg>, index: usize, attempt: u32) -> Self {
        Self(Target::Run {
            supervisor,
            index,
            attempt,
        })
    }

    /// The handle of an attempt in another process.
    pub fn linked(link: Arc<dyn AttemptLink>) -> Self {
        Self(Target::Link(link))
    }

    /// The attempt ended with `outcome` (it stops right after). An error means the
    /// supervisor is gone.
    pub fn done(&self, outcome: AgentOutcome) -> Result<(), ActorProcessingErr> {
        let (supervisor, index, attempt) = match &self.0 {
            Target::Run {
                supervisor,
                index,
                attempt,
            } => (supervisor, *index, *attempt),
            Target::Link(link) => {
                link.done(outcome);
                return Ok(());
            }
        };
        let done = RunMsg::AgentDone {
            index,
            attempt,
            outcome,
        };
        supervisor
            .cast(done)
            .map_err(|e| ActorProcessingErr::from(format!("the run supervisor is gone: {e}")))
    }

    /// The attempt wrote the workspace-relative file `path`.
    pub fn artifact(&self, path: String) {
        match &self.0 {
            Target::Run {
                supervisor, index, ..
            } => {
                let _ = supervisor.cast(RunMsg::Artifact {
                    index: *index,
                    path,
                });
            }
            Target::Link(link) => link.artifact(path),
        }
    }

    /// The attempt's conversation after a complete turn.
    pub fn checkpoint(&self, checkpoint: Checkpoint) {
        match &self.0 {
            Target::Run {
                supervisor,
                index,
                attempt,
            } => {
                let _ = supervisor.cast(RunMsg::Checkpoint {
                    index: *index,
                    attempt: *attempt,
                    checkpoint: Box::new(checkpoint),
                });
            }
            Target::Link(link) => link.checkpoint(checkpoint),
        }
    }

    /// The attempt's way to delegate (for its tools).
    pub fn delegator(&self) -> DelegatePort {
        DelegatePort(self.clone())
    }
}

/// The BudgetActor's handle on the run supervisor: where each ledger change goes before
/// its caller hears of it.
#[derive(Debug, Clone)]
pub struct JournalPort(ActorRef<RunMsg>);

impl JournalPort {
    /// The journal kept by `supervisor`.
    pub fn new(supervisor: ActorRef<RunMsg>) -> Self {
        Self(supervisor)
    }

    /// Sends one ledger change.
    pub fn send(&self, op: LedgerOp) {
        let _ = self.0.cast(RunMsg::BudgetJournal(op));
    }
}

/// An attempt's [`Delegate`]: asks the supervisor to run a child and waits for its report,
/// at most the child's deadline plus [`REPLY_GRACE`].
#[derive(Debug, Clone)]
pub struct DelegatePort(SupervisorPort);

#[async_trait::async_trait]
impl Delegate for DelegatePort {
    async fn delegate(&self, request: DelegateRequest) -> Result<AgentReport, String> {
        let deadline = request
            .deadline_secs
            .map_or(DEFAULT_CHILD_DEADLINE, Duration::from_secs);
        let wait = (deadline + REPLY_GRACE).as_millis() as u64;
        let Target::Run {
            supervisor,
            index: parent,
            attempt,
        } = &(self.0).0
        else {
            return Err("delegation is not available to an agent running on a worker".into());
        };
        let (parent, attempt) = (*parent, *attempt);
        let result = call_t!(
            supervisor,
            |reply| RunMsg::Delegate {
                parent,
                attempt,
                request: request.clone(),
                reply,
            },
            wait
        );
        match result {
            Ok(answer) => answer,
            Err(e) => Err(format!("the delegated agent did not report back: {e}")),
        }
    }
}
