//! # codex-actors
//!
//! The engine of `codex`: a supervision tree of actors (on ractor and tokio) that runs LLM
//! agents in parallel under token budgets, permission policies and an audit log.
//!
//! See ARCHITECTURE.md at the repository root for the supervision tree and the message
//! flows.

// No function of the engine is longer than 80 lines (the threshold is in clippy.toml).
#![warn(clippy::too_many_lines)]

pub mod agent;
pub mod audit;
pub mod budget;
pub mod checkpoint;
pub mod context;
pub mod delegate;
pub mod external;
pub mod hosted;
pub mod identity;
pub mod limits;
pub mod model;
pub mod plan;
pub mod policy;
pub mod protocol;
pub mod remote_attempt;
pub mod replies;
pub mod report;
pub mod restart;
pub mod run;
/// The services' client, at its old path (it is protocol: [`protocol::services`]).
pub mod services {
    pub use crate::protocol::services::*;
}
pub mod spec;
pub mod supervisor;
pub mod tool;

pub use model::{
    ChatMessage, Model, ModelError, ModelEvent, ModelRequest, ModelResponse, Role, ToolCall,
    ToolSpec, Usage,
};
pub use plan::AgentPlan;
pub use report::{AgentReport, AgentStatus, RunEvent, RunReport, ToolOutcome};
pub use run::{new_run_id, start, Canceller, Closing, EngineError, RunConfig, RunHandle};
pub use spec::{AgentSpec, Permissions, PolicyLayer};
pub use tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
