//! What the engine needs to know about an agent: [`AgentSpec`].
//!
//! The application builds specs from YAML definitions and command-line flags; the engine
//! never reads files of definitions itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::context::ContextPolicy;
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
    /// Workspace-relative paths (literal, not globs) never writable, with everything below
    /// them, on top of the built-in protected paths (the application adds `$CODEX_HOME`
    /// when it lies inside the workspace). See
    /// [`crate::policy::protected`].
    #[serde(default)]
    pub protected: Vec<String>,
    /// Rules of the "run later by other tools" group this agent may write anyway
    /// (`build.rs`, `Makefile`, ...: [`crate::policy::protected::EXECUTED_LATER`]).
    #[serde(default)]
    pub write_protected: Vec<String>,
    /// Secret-file rules this agent may read anyway (`.env*`, `*.pem`, ...:
    /// [`crate::policy::protected::SECRET_FILES`]).
    #[serde(default)]
    pub read_secrets: Vec<String>,
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
    /// How much context the agent keeps, and what survives a compaction.
    #[serde(default)]
    pub context: ContextPolicy,
    /// Where a restarted attempt starts: the last checkpoint (default) or the goal.
    #[serde(default)]
    pub restart_from: RestartFrom,
    /// The policies of the agents that delegated to this one, nearest first: every access
    /// must be allowed by each of them too. Empty for a run's own agents; set by the engine
    /// for a delegated child, and by a child `codex mcp-server` from what its delegating
    /// process handed it, so a child in another process can do no more than its parent.
    #[serde(default)]
    pub ancestors: Vec<PolicyLayer>,
    /// The directory the agent's tools (and the programs it runs) are rooted in, when it
    /// is not the run's workspace: the agent's own git worktree under isolation. `None`:
    /// the run's workspace. A delegated child without its own root inherits its parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<std::path::PathBuf>,
}

/// Where a restarted attempt of an agent starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartFrom {
    /// From the conversation the last attempt had after its last complete turn, when the
    /// run keeps checkpoints; else from the goal.
    #[default]
    Checkpoint,
    /// From the goal, with a fresh conversation.
    Goal,
}

impl AgentSpec {
    /// The agent's permissions and scope, then those of each agent above it (nearest
    /// first): what `ToolContext::policy` holds, wherever the agent runs.
    pub fn policy_chain(&self) -> Vec<PolicyLayer> {
        let own = PolicyLayer {
            permissions: self.permissions.clone(),
            scope: self.scope.clone(),
        };
        std::iter::once(own)
            .chain(self.ancestors.iter().cloned())
            .collect()
    }

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
            context: ContextPolicy::default(),
            restart_from: RestartFrom::default(),
            ancestors: Vec::new(),
            root: None,
        }
    }
}
