//! From a task to an engine plan: the agent's definition turned into an `AgentSpec` (the
//! task's goal, scope, budget and deadline win), confined ([`crate::containment`]), its
//! scope checked, its model from [`Models`] and the tools its permissions enable (the
//! run's toolbox and MCP servers). Every check that needs no model fails here, before
//! anything runs. Shared by the run commands, delegation, `codex mcp-server` and
//! `codex agent-create`.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use codex_actors::tool::Toolbox;
use codex_actors::AgentPlan;

use super::models::Models;
use super::task::Task;
use crate::definition::{AgentDefinition, Catalog};
use crate::mcp_client::McpServers;
use crate::providers::record::Recorder;
use crate::tools;

/// The definitions of `tasks`' agents; an unknown agent is an error.
pub fn definitions<'a>(catalog: &'a Catalog, tasks: &[Task]) -> Result<Vec<&'a AgentDefinition>> {
    tasks
        .iter()
        .map(|t| Ok(&catalog.require(&t.agent)?.definition))
        .collect()
}

/// Each task's agent as the engine runs it: its definition from `catalog`, turned into an
/// `AgentSpec` (the task's goal, scope and budget win), with its model and the tools its
/// permissions enable. The checks that need no model (scopes, tools) fail here, before
/// anything runs. Shared by the run commands, `codex mcp-server` and `codex agent-create`.
pub async fn assemble(
    workspace: &Path,
    catalog: &Catalog,
    tasks: Vec<Task>,
    run: Shared<'_>,
) -> Result<Vec<AgentPlan>> {
    let mut plans = Vec::new();
    for task in tasks {
        let def = &catalog.require(&task.agent)?.definition;
        let how = How {
            models: &mut *run.models,
            recorder: run.recorder,
            deadline: run.deadline,
            toolbox: run.toolbox,
            mcp: run.mcp,
        };
        plans.push(plan_for(workspace, def, task, how).await?);
    }
    Ok(plans)
}

/// What the agents of a run share, before the run's toolbox exists.
pub struct Shared<'a> {
    /// Where the models come from.
    pub models: &'a mut Models,
    /// `--record`, if given.
    pub recorder: Option<&'a Recorder>,
    /// The run's deadline (a task's own wins).
    pub deadline: Option<Duration>,
    /// The run's tools (one set per run, shared with its delegated agents:
    /// `codebase_search` builds its index once).
    pub toolbox: &'a Toolbox,
    /// The run's MCP servers.
    pub mcp: &'a McpServers,
}

/// What every agent of a run shares when it is assembled.
pub struct How<'a> {
    /// Where the models come from.
    pub models: &'a mut Models,
    /// `--record`, if given.
    pub recorder: Option<&'a Recorder>,
    /// The run's deadline (a task's own wins).
    pub deadline: Option<Duration>,
    /// The run's tools (one set per run: `codebase_search` builds its index once).
    pub toolbox: &'a Toolbox,
    /// The run's MCP servers: the agent gets the tools its `tools.mcp` covers.
    pub mcp: &'a McpServers,
}

/// One agent as the engine runs it, from its definition `def` and its `task`.
pub async fn plan_for(
    workspace: &Path,
    def: &AgentDefinition,
    task: Task,
    how: How<'_>,
) -> Result<AgentPlan> {
    let How {
        models,
        recorder,
        deadline,
        toolbox,
        mcp,
    } = how;
    let mut model = models
        .model_for(&def.name, def.provider.as_deref(), def.model.as_deref())
        .await?;
    if let Some(r) = recorder {
        model = r.wrap(model);
    }
    let deadline = task.deadline.or(deadline);
    let mut spec = def.to_spec(task.goal, task.scope, task.budget, deadline)?;
    crate::containment::confine(workspace, &mut spec)?;
    check_scope(workspace, &spec.name, &spec.scope)?;
    let mut tools = tools::select(toolbox, &spec.tools)?;
    tools.extend(mcp.tools_for(&spec.permissions.mcp));
    let unavailable = mcp.unavailable(&spec.permissions.mcp);
    Ok(AgentPlan {
        spec,
        model,
        tools,
        unavailable,
    })
}

/// Each plan's agent and budget, in order.
pub fn budgets(plans: &[AgentPlan]) -> Vec<(String, u64)> {
    plans
        .iter()
        .map(|p| (p.spec.name.clone(), p.spec.budget))
        .collect()
}

/// Refuses a scope that is not a directory of the workspace.
pub fn check_scope(workspace: &Path, agent: &str, scope: &str) -> Result<()> {
    if scope.is_empty() || workspace.join(scope).is_dir() {
        return Ok(());
    }
    bail!(
        "agent `{agent}`: scope `{scope}` is not a directory of the workspace {}; \
         give a path relative to the workspace root (see -C)",
        workspace.display()
    )
}
