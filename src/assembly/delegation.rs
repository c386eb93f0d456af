//! The application's side of recursive delegation: [`Resolver`] turns an agent's
//! `delegate` tool call into a child the engine can run (see `codex_actors::delegate` for
//! the rules the engine enforces: carved budgets, intersected permissions, the depth cap,
//! cancellation, audit).
//!
//! A child is the agent definition the call names, assembled like a task of
//! `codex delegate`: the call's goal, scope (default: the parent's), budget (default: the
//! definition's; the engine clamps it to what the parent has left) and deadline. How it
//! runs is said by the *delegating* agent's definition, `tools.delegate.via`:
//!
//! - `in-process` (default): with its model (same provider selection, `--replay` and
//!   `--record` as the run) and its tools, under the same run supervisor;
//! - `mcp`: in a child `codex mcp-server` process ([`McpChild`]) started for the call with
//!   the same workspace and model flags, a server-wide `--budget` equal to the carved
//!   envelope (so the child cannot spend more), and [`DEPTH_VAR`] set to the child's depth
//!   (so the depth cap holds across processes). The child has its own audit log; ours
//!   records the delegation, the envelope and the usage the child reported.
//!
//! Cancelling an MCP child (the engine drops its call) closes its session in the
//! background: rmcp tells the child the call is cancelled and closes its stdin; the child
//! cancels its run, finishes its audit log and exits (else rmcp sends SIGTERM, then kills
//! it). [`Resolver::finish`] waits for those closings (at most [`CLOSE_WAIT`]) so that a
//! parent that is about to exit lets its children end their logs; a child still running
//! when the parent process ends is killed (`kill_on_drop`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use codex_actors::delegate::{
    AgentResolver, ChildPlan, ChildRunner, DelegateRequest, ExternalAgent, ExternalOutcome,
    ParentInfo, DEFAULT_MAX_DEPTH,
};
use codex_actors::tool::Toolbox;
use codex_actors::RunConfig;
use codex_actors::{AgentReport, AgentSpec, AgentStatus};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientRequest, RequestId,
    ServerResult,
};
use rmcp::service::PeerRequestOptions;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use tokio::sync::Mutex;
use tokio_util::task::TaskTracker;

use super::models::Models;
use super::plan::check_scope;
use crate::cli::ModelArgs;
use crate::containment::{
    self,
    handoff::{Handoff, HANDOFF_VAR},
};
use crate::definition::{AgentDefinition, Catalog, DelegateVia};
use crate::mcp_client::{depth, McpTools, DEPTH_VAR};
use crate::providers::record::RecordTap;
use crate::tools;
use crate::worktree::children::ChildWorktrees;
use codex_actors::identity::AgentName;

/// Resolves `delegate` calls against a workspace's agent definitions. One per run.
pub struct Resolver {
    workspace: PathBuf,
    catalog: Catalog,
    models: Arc<Mutex<Models>>,
    flags: ModelArgs,
    record: Option<RecordTap>,
    toolbox: Toolbox,
    mcp: McpTools,
    closing: TaskTracker,
    /// The run's delegated children's worktrees, when its agents may be isolated.
    children: Option<ChildWorktrees>,
}

/// The longest [`Resolver::finish`] waits for child codex processes to end.
pub const CLOSE_WAIT: Duration = Duration::from_secs(10);

impl Resolver {
    /// A resolver for a run in `workspace`: definitions from `catalog`, models from
    /// `models` (shared with whoever else makes models for the run), `flags` for child
    /// `codex mcp-server` processes, `record` to record children's turns, and the run's
    /// tools and MCP tools.
    pub fn new(
        workspace: &Path,
        catalog: Catalog,
        models: Arc<Mutex<Models>>,
        flags: ModelArgs,
        record: Option<RecordTap>,
        toolbox: Toolbox,
        mcp: McpTools,
    ) -> Self {
        Self {
            workspace: workspace.to_owned(),
            catalog,
            models,
            flags,
            record,
            toolbox,
            mcp,
            closing: TaskTracker::new(),
            children: None,
        }
    }

    /// Gives each child of an isolated agent its own worktree from its parent's (see
    /// [`crate::worktree::children`]).
    pub fn isolating(mut self, children: ChildWorktrees) -> Self {
        self.children = Some(children);
        self
    }

    /// Waits (at most [`CLOSE_WAIT`]) for the child codex processes of cancelled MCP
    /// children to end. Call it when the run is over.
    pub async fn finish(&self) {
        self.closing.close();
        if tokio::time::timeout(CLOSE_WAIT, self.closing.wait())
            .await
            .is_err()
        {
            tracing::warn!("a child codex did not end within {CLOSE_WAIT:?}; it is killed");
        }
    }

    fn plan(
        &self,
        request: &DelegateRequest,
        parent: &ParentInfo,
    ) -> Result<(AgentSpec, &AgentDefinition, DelegateVia)> {
        let def = &self.catalog.require(&request.agent)?.definition;
        let via = self
            .catalog
            .get(AgentName::parse(&parent.name).definition())
            .map_or(DelegateVia::InProcess, |d| d.definition.tools.delegate.via);
        let scope = request
            .scope
            .clone()
            .unwrap_or_else(|| parent.scope.clone());
        let deadline = request.deadline_secs.map(Duration::from_secs);
        let mut spec = def.to_spec(
            Some(request.goal.clone()),
            Some(scope),
            request.budget,
            deadline,
        )?;
        containment::confine(&self.workspace, &mut spec)?;
        check_scope(&self.workspace, &spec.name, &spec.scope)?;
        Ok((spec, def, via))
    }

    async fn resolve_or_error(
        &self,
        request: &DelegateRequest,
        parent: &ParentInfo,
    ) -> Result<ChildPlan> {
        let (mut spec, def, via) = self.plan(request, parent)?;
        if let Some(children) = &self.children {
            let (parent, child) = (parent.name.clone(), parent.child.clone());
            let children = children.clone();
            let root =
                tokio::task::spawn_blocking(move || children.root_for_child(&parent, &child))
                    .await??;
            spec.root = root.or(spec.root);
        }
        let runner = match via {
            DelegateVia::InProcess => {
                if let Some(why) = self.mcp.unavailable(&spec.permissions.mcp) {
                    return Err(anyhow!(why));
                }
                let mut model = self
                    .models
                    .lock()
                    .await
                    .model_for(&def.name, def.provider.as_deref(), def.model.as_deref())
                    .await?;
                if let Some(tap) = &self.record {
                    model = tap.wrap(model);
                }
                let mut tools = tools::select(&self.toolbox, &spec.tools)?;
                tools.extend(self.mcp.tools_for(&spec.permissions.mcp));
                ChildRunner::InProcess { model, tools }
            }
            DelegateVia::Mcp => ChildRunner::External(Arc::new(McpChild {
                exe: std::env::current_exe().context("cannot find the codex executable")?,
                workspace: self.workspace.clone(),
                flags: self.flags.clone(),
                agent: def.name.clone(),
                handed: reachable(&self.catalog, &[def])
                    .into_iter()
                    .cloned()
                    .collect(),
                closing: self.closing.clone(),
            })),
        };
        Ok(ChildPlan { spec, runner })
    }
}

#[async_trait::async_trait]
impl AgentResolver for Resolver {
    async fn resolve(
        &self,
        request: &DelegateRequest,
        parent: &ParentInfo,
    ) -> Result<ChildPlan, String> {
        self.resolve_or_error(request, parent)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}

/// Lets `config`'s agents delegate through `resolver`, as deep as this process may: a
/// codex started as a delegated child (`DEPTH_VAR`) continues its parent's depth count.
pub fn configure(config: &mut RunConfig, resolver: Option<Arc<dyn AgentResolver>>) {
    config.resolver = resolver;
    config.max_delegation_depth = DEFAULT_MAX_DEPTH.saturating_sub(depth());
}

/// `defs` and every definition they may delegate to, directly or not (each once): whose
/// MCP servers a run starts, since a child may need them.
pub fn reachable<'a>(
    catalog: &'a Catalog,
    defs: &[&'a AgentDefinition],
) -> Vec<&'a AgentDefinition> {
    let mut seen: Vec<&AgentDefinition> = Vec::new();
    let mut queue: Vec<&AgentDefinition> = defs.to_vec();
    while let Some(def) = queue.pop() {
        if seen.iter().any(|d| d.name == def.name) {
            continue;
        }
        seen.push(def);
        for name in &def.tools.delegate.agents {
            if name == "*" {
                queue.extend(catalog.iter().map(|l| &l.definition));
            } else if let Some(l) = catalog.get(name) {
                queue.push(&l.definition);
            }
        }
    }
    seen
}

/// One delegated agent run by a child `codex mcp-server` process.
pub struct McpChild {
    exe: PathBuf,
    workspace: PathBuf,
    flags: ModelArgs,
    agent: String,
    /// The definitions the child may run, from this run's catalog (see
    /// [`containment::handoff`]).
    handed: Vec<AgentDefinition>,
    closing: TaskTracker,
}

/// A child codex's MCP session. Dropped before it was closed (the call was cancelled), it
/// tells the child that its call is cancelled, then closes, in a task of the resolver's
/// tracker: the child then cancels its run and ends its audit log before it sees the end
/// of its input.
struct Session {
    service: Option<RunningService<RoleClient, ()>>,
    /// The `delegate` call in flight, if any.
    call: Option<RequestId>,
    closing: TaskTracker,
}

impl Session {
    async fn close(mut self) {
        if let Some(service) = self.service.take() {
            let _ = service.cancel().await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(service) = self.service.take() else {
            return;
        };
        let call = self.call.take();
        self.closing.spawn(async move {
            if let Some(id) = call {
                let reason = "the delegating agent was cancelled".to_owned();
                let cancelled = CancelledNotificationParam::new(Some(id), Some(reason));
                let _ = service.peer().notify_cancelled(cancelled).await;
            }
            let _ = service.cancel().await;
        });
    }
}

impl McpChild {
    fn command(&self, spec: &AgentSpec, depth: u32) -> Result<tokio::process::Command> {
        // The child runs this run's definitions, confined within every ancestor's policy:
        // the delegating agent's layers, which the engine put in `spec.ancestors`.
        let handoff = Handoff {
            agents: self.handed.clone(),
            ancestors: spec.ancestors.clone(),
        };
        let mut cmd = tokio::process::Command::new(&self.exe);
        // An isolated child runs in its own worktree.
        cmd.arg("-C")
            .arg(spec.root.as_ref().unwrap_or(&self.workspace))
            .arg("mcp-server")
            .arg("--budget")
            .arg(spec.budget.to_string())
            .args(model_flags(&self.flags))
            // `depth` counts within this process's run, which may itself be a child.
            .env(DEPTH_VAR, (crate::mcp_client::depth() + depth).to_string())
            .env(HANDOFF_VAR, handoff.encode()?)
            .current_dir(spec.root.as_ref().unwrap_or(&self.workspace))
            .stderr(std::process::Stdio::null())
            // rmcp closes the child gracefully in a background task; if this process ends
            // first (Ctrl-C), the child must not outlive it.
            .kill_on_drop(true);
        Ok(cmd)
    }

    async fn run_or_error(&self, spec: &AgentSpec, depth: u32) -> Result<ExternalOutcome> {
        let transport = TokioChildProcess::new(self.command(spec, depth)?)
            .context("cannot start a child `codex mcp-server`")?;
        let service = ().serve(transport).await.context("no MCP handshake with the child codex")?;
        let mut session = Session {
            service: Some(service),
            call: None,
            closing: self.closing.clone(),
        };
        let peer = session.service.as_ref().expect("just set").peer().clone();
        let mut args = serde_json::json!({
            "agent": self.agent,
            "goal": spec.goal,
            "budget": spec.budget,
        });
        if !spec.scope.is_empty() {
            args["scope"] = spec.scope.clone().into();
        }
        if let Some(d) = spec.deadline {
            args["deadline"] = format!("{}s", d.as_secs().max(1)).into();
        }
        let serde_json::Value::Object(args) = args else {
            unreachable!("built as an object")
        };
        let params = CallToolRequestParams::new("delegate").with_arguments(args);
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let call = peer
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await
            .context("cannot call the child codex")?;
        session.call = Some(call.id.clone());
        // Dropped here (cancelled), `session` tells the child and closes it.
        let result = call.await_response().await;
        session.call = None;
        session.close().await;
        let result = match result.context("the child codex failed")? {
            ServerResult::CallToolResult(r) => r,
            other => return Err(anyhow!("the child codex answered {other:?}")),
        };
        // A report comes with `isError: true` too when its agent did not complete: the
        // report (its tokens, its reason) is what counts.
        let report = result
            .structured_content
            .clone()
            .map(serde_json::from_value::<AgentReport>);
        if result.is_error == Some(true) && !matches!(report, Some(Ok(_))) {
            let text: Vec<String> = result
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect();
            // A refusal (unknown agent, bad scope) would be refused again: no restart.
            return Ok(ExternalOutcome {
                status: AgentStatus::Failed,
                final_message: None,
                error: Some(format!("the child codex refused: {}", text.join(" "))),
                tokens_used: 0,
                artifacts: Vec::new(),
            });
        }
        let report: AgentReport = report
            .ok_or_else(|| anyhow!("the child codex sent no structured report"))?
            .context("the child codex's report is not an agent report")?;
        Ok(ExternalOutcome {
            status: report.status,
            final_message: report.final_message,
            error: report.error,
            tokens_used: report.tokens_used,
            artifacts: report.artifacts,
        })
    }
}

#[async_trait::async_trait]
impl ExternalAgent for McpChild {
    async fn run(&self, spec: &AgentSpec, depth: u32) -> Result<ExternalOutcome, String> {
        self.run_or_error(spec, depth)
            .await
            .map_err(|e| format!("{e:#}"))
    }

    fn transport(&self) -> &'static str {
        "mcp"
    }
}

/// `flags` as command-line arguments, for a child codex.
fn model_flags(flags: &ModelArgs) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(replay) = &flags.replay {
        // The child runs in the workspace: a path relative to here would not be found.
        let replay = std::path::absolute(replay).unwrap_or_else(|_| replay.clone());
        args.extend(["--replay".to_owned(), replay.display().to_string()]);
    }
    if let Some(p) = &flags.provider {
        args.extend(["--provider".to_owned(), p.clone()]);
    }
    if let Some(m) = &flags.model {
        args.extend(["--model".to_owned(), m.clone()]);
    }
    for c in &flags.config {
        args.extend(["-c".to_owned(), c.clone()]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_flags_are_passed_on_to_a_child_codex() {
        let flags = ModelArgs {
            replay: Some(PathBuf::from("/r.yaml")),
            provider: Some("openai".into()),
            model: Some("m".into()),
            config: vec!["a.b=1".into()],
        };
        assert_eq!(
            model_flags(&flags),
            [
                "--replay",
                "/r.yaml",
                "--provider",
                "openai",
                "--model",
                "m",
                "-c",
                "a.b=1"
            ]
        );
    }
}
