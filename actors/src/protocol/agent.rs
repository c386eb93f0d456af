//! An agent attempt's mailbox, and how an attempt ends.

use serde::{Deserialize, Serialize};

use crate::report::AgentStatus;

/// Messages of an agent attempt (the AgentActor and the ExternalAgentActor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentMsg {
    /// Take the next turn.
    Step,
}

/// How an attempt ended, sent to the supervisor ([`crate::protocol::SupervisorPort::done`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentOutcome {
    /// The agent's final status.
    pub status: AgentStatus,
    /// Its last answer.
    pub final_message: Option<String>,
    /// Why it did not complete.
    pub error: Option<String>,
    /// Its last answer was cut off by the output cap.
    pub truncated: bool,
}

impl AgentOutcome {
    /// An attempt that ended with `status`, its last answer and why it did not complete.
    pub fn new(status: AgentStatus, final_message: Option<String>, error: Option<String>) -> Self {
        Self {
            status,
            final_message,
            error,
            truncated: false,
        }
    }
}
