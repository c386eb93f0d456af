//! What the engine needs to know about an agent: [`AgentSpec`].
//!
//! The application builds specs from YAML definitions and command-line flags; the engine
//! never reads files of definitions itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::restart::RestartPolicy;

/// An agent's permissions. Everything not listed is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Globs of workspace-relative paths the agent may read (`**` for all, `src/**`, ...).
    /// Matched with `/` as a literal separator: `*` never crosses a directory.
    pub read: Vec<String>,
    /// Globs of paths the agent may write; further narrowed by the agent's scope.
    pub write: Vec<String>,
    /// URL patterns the agent may fetch, such as `https://docs.rs/*`.
    pub network: Vec<String>,
    /// Programs the agent may run, by name.
    pub exec: Vec<String>,
    /// MCP tools the agent may call: `server.tool`, `server.*` or `server`.
    #[serde(default)]
    pub mcp: Vec<String>,
    /// Agents this agent may delegate to with the `delegate` tool, by name (`*` for any).
    #[serde(default)]
    pub delegate: Vec<String>,
}

/// One layer of an agent's effective policy: the permissions of one agent in its delegation
/// chain, with that agent's scope (writes are limited to it). An agent may do only what
/// every layer of its chain allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyLayer {
    /// What this agent's definition allows.
    pub permissions: Permissions,
    /// Its scope, workspace-relative (`""` for the whole workspace).
    pub scope: String,
}

/// One agent of a run, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    /// The agent's key: unique in a run, and what budgets and audit events are keyed by.
    pub name: String,
    /// What this run of the agent should achieve.
    pub goal: String,
    /// The agent's standing instructions (the system prompt).
    pub instructions: String,
    /// The subtree the agent works on, workspace-relative (`""` for the whole workspace).
    /// Writes are limited to it; search tools default to it.
    pub scope: String,
    /// The most tokens (input + output, over all attempts) the agent may spend.
    pub budget: u64,
    /// Wall-clock limit from the agent's first start, restarts included.
    pub deadline: Option<Duration>,
    /// The most model turns in one attempt.
    pub max_turns: u32,
    /// The most output tokens asked for in one turn (clamped further by the budget grant).
    pub max_output_tokens: u64,
    /// Names of the tools offered to the model.
    pub tools: Vec<String>,
    /// What the agent's tool calls may touch.
    pub permissions: Permissions,
    /// When less than this fraction of the agent's budget remains, its next turn is the
    /// wrap-up turn: no tools, and a request for the final answer.
    pub wrapup_fraction: f64,
    /// How the supervisor restarts the agent when an attempt fails.
    pub restart: RestartPolicy,
    /// Whether secrets found in tool output are masked before the model sees them (the
    /// run's [`crate::audit::Redactor`]: known secret values and credential formats).
    /// The audit log is redacted whatever this says. Default `false`.
    #[serde(default)]
    pub redact_secrets: bool,
}

impl AgentSpec {
    /// A spec with the engine's defaults: no tools, no permissions, 20 turns, 4096 output
    /// tokens per turn, wrap-up at 15 %, [`RestartPolicy::agent_default`], and no redaction of tool output.
    pub fn new(name: impl Into<String>, goal: impl Into<String>, budget: u64) -> Self {
        Self {
            name: name.into(),
            goal: goal.into(),
            instructions: String::new(),
            scope: String::new(),
            budget,
            deadline: None,
            max_turns: 20,
            max_output_tokens: 4096,
            tools: Vec::new(),
            permissions: Permissions::default(),
            wrapup_fraction: 0.15,
            restart: RestartPolicy::agent_default(),
            redact_secrets: false,
        }
    }
}
