//! Narrow handles over the supervisor's mailbox: each sender gets only the messages it may
//! send, already addressed. An agent attempt holds a [`SupervisorPort`] (its outcome, the
//! files it wrote, its checkpoints), the BudgetActor a [`JournalPort`], and the `delegate`
//! tool a [`DelegatePort`] behind the [`Delegate`] trait object of its
//! [`crate::tool::ToolContext`]. Every message goes into the supervisor's own mailbox, in
//! the order sent.

use std::time::Duration;

use ractor::{call_t, ActorProcessingErr, ActorRef};

use super::agent::AgentOutcome;
use super::run::RunMsg;
use crate::budget::LedgerOp;
use crate::checkpoint::Checkpoint;
use crate::delegate::{Delegate, DelegateRequest, DEFAULT_CHILD_DEADLINE, REPLY_GRACE};
use crate::report::AgentReport;

/// An agent attempt's handle on the run supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorPort {
    supervisor: ActorRef<RunMsg>,
    index: usize,
    attempt: u32,
}

impl SupervisorPort {
    /// The handle of attempt `attempt` of agent `index`.
    pub fn new(supervisor: ActorRef<RunMsg>, index: usize, attempt: u32) -> Self {
        Self {
            supervisor,
            index,
            attempt,
        }
    }

    /// The attempt ended with `outcome` (it stops right after). An error means the
    /// supervisor is gone.
    pub fn done(&self, outcome: AgentOutcome) -> Result<(), ActorProcessingErr> {
        let done = RunMsg::AgentDone {
            index: self.index,
            attempt: self.attempt,
            outcome,
        };
        self.supervisor
            .cast(done)
            .map_err(|e| ActorProcessingErr::from(format!("the run supervisor is gone: {e}")))
    }

    /// The attempt wrote the workspace-relative file `path`.
    pub fn artifact(&self, path: String) {
        let _ = self.supervisor.cast(RunMsg::Artifact {
            index: self.index,
            path,
        });
    }

    /// The attempt's conversation after a complete turn.
    pub fn checkpoint(&self, checkpoint: Checkpoint) {
        let _ = self.supervisor.cast(RunMsg::Checkpoint {
            index: self.index,
            attempt: self.attempt,
            checkpoint: Box::new(checkpoint),
        });
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
        let SupervisorPort {
            supervisor,
            index: parent,
            attempt,
        } = &self.0;
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
