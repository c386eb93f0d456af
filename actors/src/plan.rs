//! What a run is started with, agent by agent: a spec, its model and its tools.

use std::sync::Arc;

use crate::audit::AuditEvent;
use crate::model::Model;
use crate::spec::AgentSpec;
use crate::tool::Tool;

/// One agent of a run, with its model and tools.
pub struct AgentPlan {
    /// The agent.
    pub spec: AgentSpec,
    /// The model it talks to.
    pub model: Arc<dyn Model>,
    /// Its tools (limited to those `spec.tools` names).
    pub tools: Vec<Arc<dyn Tool>>,
    /// Why it cannot run (something it needs is missing, such as an MCP server that did
    /// not start): it ends `failed` with this error when it would start, and its siblings
    /// run. `None` for an agent that can run.
    pub unavailable: Option<String>,
}

/// Work the application does when every agent of a run is final, whose records belong in
/// the run's audit log before `run_finished`.
#[async_trait::async_trait]
pub trait Closing: Send + Sync {
    /// The records to append.
    async fn records(&self) -> Vec<AuditEvent>;
}
