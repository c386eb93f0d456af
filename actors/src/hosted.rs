//! A worker's side of a remote attempt: one AgentActor run in this process, outside any
//! run supervisor, whose services and supervisor are links to the run in another process
//! (see [`crate::protocol::remote`]).
//!
//! The worker's application builds the agent's model and tools (its keys stay on the
//! worker) and the links over its transport; this module only spawns the actor with the
//! order's attempt, budget history and checkpoint, and hands back the handle to kill it
//! (the run cancelled the attempt) and to wait for it. Delegation is not available to a
//! hosted attempt: it has no supervisor here to run a child.

use std::path::PathBuf;
use std::sync::Arc;

use ractor::{Actor, ActorRef};
use tokio::task::JoinHandle;

use crate::agent::{AgentActor, AgentArgs};
use crate::audit::Redactor;
use crate::model::Model;
use crate::protocol::{AgentMsg, AttemptOrder, Services, SupervisorPort};
use crate::tool::{Tool, ToolContext};

/// Everything a worker provides for one attempt.
pub struct HostedAttempt {
    /// What the run asked for.
    pub order: AttemptOrder,
    /// The worker's copy of the workspace the attempt works in.
    pub root: PathBuf,
    /// The agent's model, built on the worker.
    pub model: Arc<dyn Model>,
    /// Its tools (limited to those its spec enables).
    pub tools: Vec<Arc<dyn Tool>>,
    /// The run's services, through the worker's link.
    pub services: Services,
    /// The run's supervisor, through the worker's link.
    pub supervisor: SupervisorPort,
    /// Masks the worker's secrets (its keys) in tool output and in the records it sends.
    pub redactor: Arc<Redactor>,
}

/// A running hosted attempt.
pub struct Hosted {
    /// Kill it with this (the run cancelled it).
    pub actor: ActorRef<AgentMsg>,
    /// Finishes when the actor has stopped.
    pub stopped: JoinHandle<()>,
}

/// Starts the attempt.
pub async fn host(attempt: HostedAttempt) -> Result<Hosted, String> {
    let HostedAttempt {
        order,
        root,
        model,
        tools,
        services,
        supervisor,
        redactor,
    } = attempt;
    let spec = Arc::new(order.spec);
    let policy = spec.policy_chain();
    let args = AgentArgs {
        attempt: order.attempt,
        first_started: order.first_started,
        tokens_before: order.tokens_before,
        ctx: ToolContext {
            agent: spec.name.clone(),
            workspace: root,
            scope: spec.scope.clone(),
            delegator: None,
            policy,
        },
        spec,
        model,
        tool_specs: tools.iter().map(|t| t.spec()).collect(),
        tools: Arc::new(tools),
        services,
        supervisor,
        events: None,
        redactor,
        checkpoints: order.checkpoints,
        resume_from: order.resume_from,
    };
    let (actor, stopped) = Actor::spawn(None, AgentActor, args)
        .await
        .map_err(|e| format!("could not start the agent: {e}"))?;
    Ok(Hosted { actor, stopped })
}
