//! [`Task`]: one agent to run and what its caller says about it. The run commands make
//! them from flags (`commands::tasks`), `codex resume` from what an interrupted run left,
//! the MCP server from a tool call; [`super::plan`] turns each into an engine plan.

use std::time::Duration;

/// One agent to run, with what the command line says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The agent's name.
    pub agent: String,
    /// The goal, if given (else the definition's).
    pub goal: Option<String>,
    /// The scope, if given.
    pub scope: Option<String>,
    /// The budget, if given (else the definition's).
    pub budget: Option<u64>,
    /// The wall-clock limit, if given for this agent alone (else the run's, else the
    /// definition's).
    pub deadline: Option<Duration>,
}
