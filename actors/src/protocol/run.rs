//! The run supervisor's mailbox.
//!
//! Agents reach it through narrow handles ([`crate::protocol::port`]); the variants they
//! send (done, artifact, checkpoint, journal, delegate) go into the supervisor's own
//! mailbox, behind everything the sender sent before: the supervisor's exit-event ordering
//! depends on it (see `supervisor.rs`). The other variants are the supervisor's messages to
//! itself (timers, background tasks, supervision events re-queued).

use std::time::Duration;

use ractor::{ActorId, RpcReplyPort};

use super::agent::AgentOutcome;
use crate::budget::LedgerOp;
use crate::checkpoint::Checkpoint;
use crate::delegate::{ChildPlan, DelegateRequest};
use crate::identity::ServiceKind;
use crate::report::{AgentReport, RunReport};

/// Where a delegated agent's report goes: the waiting `delegate` tool call.
pub type ReportPort = RpcReplyPort<Result<AgentReport, String>>;

/// Messages of the run supervisor.
#[derive(Debug)]
pub enum RunMsg {
    /// Cancel every agent (Ctrl-C); the run then ends with what it has.
    Cancel,
    /// A change the BudgetActor made to its ledger, to apply to the supervisor's copy.
    BudgetJournal(LedgerOp),
    /// An agent's conversation after a complete turn (see [`crate::checkpoint`]).
    Checkpoint {
        /// The agent's index.
        index: usize,
        /// The attempt.
        attempt: u32,
        /// What to continue from.
        checkpoint: Box<Checkpoint>,
    },
    /// An agent wrote a file.
    Artifact {
        /// The agent's index.
        index: usize,
        /// Workspace-relative path.
        path: String,
    },
    /// An agent's attempt ended with an outcome (it stops right after).
    AgentDone {
        /// The agent's index.
        index: usize,
        /// The attempt.
        attempt: u32,
        /// How it ended.
        outcome: AgentOutcome,
    },
    /// A child exited (a supervision event, re-queued behind the child's last messages).
    ChildExited {
        /// The child.
        id: ActorId,
        /// `None` for a normal stop; otherwise why it failed or was killed.
        failure: Option<String>,
    },
    /// `run_started` is recorded: start the agents.
    Begin,
    /// Start (or restart) an agent.
    StartAgent(usize),
    /// Restart a service.
    RestartService(ServiceKind),
    /// An agent's deadline passed.
    AgentDeadline(usize),
    /// Every background task has finished: report the run.
    Drained,
    /// The final audit records are written: reply and stop.
    Finalized(Box<RunReport>),
    /// An agent's `delegate` tool call: run a child and reply with its report.
    Delegate {
        /// The delegating agent's index.
        parent: usize,
        /// Its attempt (a child of an attempt that ended is not started).
        attempt: u32,
        /// What to run.
        request: DelegateRequest,
        /// Where the child's report goes.
        reply: ReportPort,
    },
    /// A delegated child is resolved and its budget carved: start it.
    ChildReady(Box<ReadyChild>),
}

/// A delegated child, resolved, with its budget carved.
pub struct ReadyChild {
    /// The delegating agent's index.
    pub parent: usize,
    /// Its attempt when it delegated.
    pub attempt: u32,
    /// The child's run name.
    pub name: String,
    /// Its spec and runner.
    pub plan: ChildPlan,
    /// The budget carved for it.
    pub envelope: u64,
    /// Its deadline.
    pub deadline: Duration,
    /// Where its report goes.
    pub reply: ReportPort,
}

impl std::fmt::Debug for ReadyChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyChild")
            .field("parent", &self.parent)
            .field("name", &self.name)
            .field("envelope", &self.envelope)
            .finish_non_exhaustive()
    }
}
