//! The tool interface: something an agent can do besides talking.
//!
//! A tool never decides its own permissions. Before it runs, the engine asks the tool which
//! [`Access`]es a call needs ([`Tool::plan`]), has the PolicyActor decide each one, audits
//! the decisions, and only then calls [`Tool::invoke`] with the approved plan. The tool acts
//! on that plan, not on a fresh reading of its arguments: if the filesystem changed between
//! plan and invoke (a symlink swapped in), re-resolving would lead somewhere the policy
//! never saw, so a tool re-resolves and refuses unless it gets the approved answer. A tool
//! that would touch something its plan did not declare is a bug in the tool, so plans are
//! kept close to the code that uses them and tested against hostile arguments.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::ToolSpec;
use crate::report::AgentReport;
pub use crate::report::ToolOutcome;

/// One thing a tool call wants to do, to be allowed or denied by the policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "target", rename_all = "snake_case")]
pub enum Access {
    /// Read a file or list a directory. The path is workspace-relative with `/` separators,
    /// already resolved (no `..`, symlinks followed); see [`Access::Outside`] otherwise.
    Read(String),
    /// Read everything below a directory (a search: grep, find_files, codebase_search),
    /// resolved like [`Access::Read`]. Allowed only when one read rule covers the whole
    /// subtree (`dir/**` or above), so a search never reads a file no rule allows.
    ReadTree(String),
    /// Create or change a file (workspace-relative, resolved like [`Access::Read`]).
    Write(String),
    /// Fetch a URL.
    Network(String),
    /// Run a program (its name as given, before PATH lookup).
    Exec(String),
    /// Call a tool of an MCP server, named `server.tool`.
    Mcp(String),
    /// Delegate a goal to another agent, by its name.
    Delegate(String),
    /// A path that resolves outside the workspace. Always denied; kept distinct so the audit
    /// log says what was attempted.
    Outside(String),
}

impl Access {
    /// Whether granting it lets something change or leave the machine: anything but a
    /// read. The records of the decisions before such an access are on disk before it
    /// happens; reads need no wait (see `AgentArgs::append` in agent.rs).
    pub fn is_side_effect(&self) -> bool {
        !matches!(
            self,
            Access::Read(_) | Access::ReadTree(_) | Access::Outside(_)
        )
    }
}

/// For people: `read `src/lib.rs``, `fetch `https://…``, ... (the workspace root shows as
/// `.`). Used in denials the model reads, in `codex audit show` and `codex policy check`.
impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = |p: &str| {
            if p.is_empty() {
                ".".to_owned()
            } else {
                p.to_owned()
            }
        };
        match self {
            Access::Read(p) => write!(f, "read `{}`", path(p)),
            Access::ReadTree(p) => write!(f, "search everything below `{}`", path(p)),
            Access::Write(p) => write!(f, "write `{}`", path(p)),
            Access::Network(u) => write!(f, "fetch `{u}`"),
            Access::Exec(p) => write!(f, "run `{p}`"),
            Access::Mcp(t) => write!(f, "call `{t}`"),
            Access::Delegate(a) => write!(f, "delegate to agent `{a}`"),
            Access::Outside(p) => write!(f, "touch `{p}` (outside the workspace)"),
        }
    }
}

/// What a tool knows about the agent calling it.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The agent's name.
    pub agent: String,
    /// The workspace root (absolute).
    pub workspace: PathBuf,
    /// The agent's scope, workspace-relative (`""` for the whole workspace). Search tools
    /// default to it.
    pub scope: String,
    /// The way to delegate to other agents ([`crate::delegate::DelegateTool`]); `None`
    /// outside a run that allows delegation.
    pub delegator: Option<Arc<dyn Delegate>>,
    /// The agent's effective policy as data: its own permissions and scope first, then
    /// those of each agent above it that delegated (nearest first). The PolicyActor decides
    /// every access; a tool that confines a program itself (the shell's OS sandbox) derives
    /// its limits from these layers. Empty outside a run.
    pub policy: Vec<crate::spec::PolicyLayer>,
}

/// The arguments of a `delegate` tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegateRequest {
    /// The agent to delegate to, by name.
    pub agent: String,
    /// What it should achieve.
    pub goal: String,
    /// The workspace subtree it works on (default: the delegating agent's scope).
    #[serde(default)]
    pub scope: Option<String>,
    /// Its token budget, carved out of the delegating agent's remaining budget (default:
    /// its definition's; clamped to what remains).
    #[serde(default)]
    pub budget: Option<u64>,
    /// Its wall-clock limit in seconds (default: its definition's, else one hour).
    #[serde(default)]
    pub deadline_secs: Option<u64>,
}

/// A tool's way to have another agent run a goal ([`crate::delegate`]): the engine gives
/// each attempt of a run that allows delegation one, which asks the run supervisor.
#[async_trait::async_trait]
pub trait Delegate: std::fmt::Debug + Send + Sync + 'static {
    /// Runs `request` as a child of the calling agent and waits for the child's report;
    /// `Err` says why no child ran or no report came.
    async fn delegate(&self, request: DelegateRequest) -> Result<AgentReport, String>;
}

/// A successful tool result, returned to the model as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    /// What the model reads.
    pub content: String,
    /// Workspace-relative paths of files this call created or changed (the agent's artifacts).
    pub written: Vec<String>,
    /// The OS sandbox the call's program ran in, for the audit record (`shell`).
    pub sandbox: Option<String>,
}

impl ToolOutput {
    /// Output with text only.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            written: Vec::new(),
            sandbox: None,
        }
    }
}

/// A tool failure. It goes back to the model as the tool's result; it never crashes the
/// agent.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A tool an agent can call.
#[async_trait::async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Name, description and argument schema, as the model sees them. The same on every
    /// call: the engine builds it once per distinct set of tools and shares it between the
    /// agents that have them.
    fn spec(&self) -> ToolSpec;

    /// The accesses a call with `arguments` needs. Invalid arguments are an error here, before
    /// any policy decision. Must not touch the filesystem beyond resolving paths.
    fn plan(
        &self,
        arguments: &serde_json::Value,
        ctx: &ToolContext,
    ) -> Result<Vec<Access>, ToolError>;

    /// Runs the call. Only invoked after every access of its plan was allowed; `approved` is
    /// that plan, as [`Tool::plan`] returned it. The call must touch nothing else.
    async fn invoke(
        &self,
        arguments: serde_json::Value,
        approved: &[Access],
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError>;
}

/// A set of tools, shared by every agent of a run. Each agent is offered the subset its
/// definition enables.
pub type Toolbox = Vec<Arc<dyn Tool>>;
