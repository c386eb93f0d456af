//! `codex mcp-server`: the agents of a workspace as MCP tools over stdio.
//!
//! Tools: `delegate` (one agent on a goal → its `AgentReport`), `delegate_parallel` (several
//! at once → the `RunReport`, the JSON `-o` writes) and `list_agents`. Their input schemas
//! are generated from the request types below (schemars). Each call is one engine run,
//! assembled by `commands::run::assemble` like a CLI run: same definitions, permissions,
//! budgets and audit log (`.codex/runs/<run_id>/audit.jsonl`).
//!
//! A server-wide budget (`--budget N`) caps everything the session's clients ask for: a
//! call holds what its agents may spend (clamped to what is left) while it runs, and when it
//! ends it is charged what they used. A call that finds nothing left is refused. The run's
//! global budget is the amount held, so the engine enforces the clamp.
//!
//! While agents run, a client that sent a progress token gets progress notifications
//! (started, finished, tokens used). A cancelled call cancels its run (`Canceller`).

use std::path::PathBuf;
use std::sync::Arc;

use ractor::ActorRef;

use super::budget::{ServerBudget, ServerBudgetMsg};
use codex_actors::{new_run_id, RunConfig, RunEvent, RunReport};
use rmcp::handler::server::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, ProgressNotificationParam, ProgressToken, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, Peer, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::cli::ModelArgs;
use crate::commands::run::{self, Models};
use crate::commands::tasks::Task;
use crate::definition::{parse_deadline, Catalog};
use crate::mcp::client::McpServers;
use crate::output;

/// One agent to run: the arguments of `delegate`, and each task of `delegate_parallel`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DelegateRequest {
    /// The agent, by name (see `list_agents`).
    pub agent: String,
    /// What the agent should achieve.
    pub goal: String,
    /// The workspace subtree it works on (its writes are limited to it).
    #[serde(default)]
    pub scope: Option<String>,
    /// Its token budget (default: its definition's); capped by the server's budget.
    #[serde(default)]
    pub budget: Option<u64>,
    /// Its wall-clock limit: `90s`, `10m`, `1h` (default: its definition's).
    #[serde(default)]
    pub deadline: Option<String>,
}

/// The arguments of `delegate_parallel`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DelegateParallelRequest {
    /// The agents to run at once, each at most once.
    pub tasks: Vec<DelegateRequest>,
}

/// One agent of `list_agents`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentInfo {
    /// Its name.
    pub name: String,
    /// Its default goal, if its definition has one.
    pub goal: Option<String>,
    /// Its default token budget, if its definition has one.
    pub budget: Option<u64>,
    /// Where it is defined.
    pub source: String,
}

/// The result of `list_agents`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentList {
    /// Every agent this workspace can run.
    pub agents: Vec<AgentInfo>,
}

/// The MCP server: one workspace, its models, the server-wide budget.
#[derive(Clone)]
pub struct CodexServer {
    workspace: PathBuf,
    models: Arc<tokio::sync::Mutex<Models>>,
    flags: ModelArgs,
    budget: ActorRef<ServerBudgetMsg>,
    tool_router: ToolRouter<Self>,
}

/// A failed call, as the client's tool result (not a protocol error, so it is shown).
fn failure(message: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!("error: {message}"))])
}

/// Structured content plus a text summary.
fn structured(value: impl Serialize, text: String) -> Result<CallToolResult, ErrorData> {
    let value = serde_json::to_value(value)
        .map_err(|e| ErrorData::internal_error(format!("cannot encode the result: {e}"), None))?;
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}

#[tool_router]
impl CodexServer {
    /// A server for `workspace`: its models from `flags`, an optional budget over the
    /// session (kept by a [`ServerBudget`] actor).
    pub async fn new(
        workspace: PathBuf,
        flags: ModelArgs,
        budget: Option<u64>,
    ) -> anyhow::Result<Self> {
        let models = Models::new(&flags, &[])?;
        let (budget, _) = ractor::Actor::spawn(None, ServerBudget, budget)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the server's budget actor: {e}"))?;
        Ok(CodexServer {
            workspace,
            flags,
            models: Arc::new(tokio::sync::Mutex::new(models)),
            budget,
            tool_router: Self::tool_router(),
        })
    }

    /// `delegate`: one agent on a goal; its report.
    #[tool(
        description = "Run one agent of this workspace on a goal, under its budget, permissions and audit log. Returns the agent's report (status, tokens, artifacts, final message)."
    )]
    async fn delegate(
        &self,
        Parameters(req): Parameters<DelegateRequest>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let report = match self.run(vec![req], &ctx).await {
            Ok(r) => r,
            Err(e) => return Ok(failure(format!("{e:#}"))),
        };
        let text = format!(
            "{}\n{}",
            output::final_messages(&report),
            output::summary(&report, &audit_path(&report))
        );
        let agent = report.agents.into_iter().next();
        structured(agent, text)
    }

    /// `delegate_parallel`: several agents at once; the run's report.
    #[tool(
        description = "Run several agents of this workspace at once, each on its own goal. Returns the run's report: one entry per agent plus totals (the JSON that `codex delegate-parallel -o` writes)."
    )]
    async fn delegate_parallel(
        &self,
        Parameters(req): Parameters<DelegateParallelRequest>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if req.tasks.is_empty() {
            return Ok(failure(
                "`tasks` is empty; give at least one agent and goal",
            ));
        }
        let report = match self.run(req.tasks, &ctx).await {
            Ok(r) => r,
            Err(e) => return Ok(failure(format!("{e:#}"))),
        };
        let text = format!(
            "{}\n{}",
            output::final_messages(&report),
            output::summary(&report, &audit_path(&report))
        );
        structured(report, text)
    }

    /// `list_agents`: the agents this workspace can run.
    #[tool(
        description = "List the agents this workspace can run: name, default goal, budget and where each is defined."
    )]
    async fn list_agents(&self) -> Result<CallToolResult, ErrorData> {
        let catalog = match Catalog::load(&self.workspace) {
            Ok(c) => c,
            Err(e) => return Ok(failure(format!("{e:#}"))),
        };
        let agents: Vec<AgentInfo> = catalog
            .iter()
            .map(|d| AgentInfo {
                name: d.definition.name.clone(),
                goal: d.definition.goal.clone(),
                budget: d.definition.budget.map(|b| b.get()),
                source: catalog.display_source(&d.source),
            })
            .collect();
        let text = agents
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        structured(AgentList { agents }, text)
    }
}

/// Where a run's audit log is, relative to the workspace.
fn audit_path(report: &RunReport) -> String {
    format!(".codex/runs/{}/audit.jsonl", report.run_id)
}

impl CodexServer {
    /// Assembles and runs `requests` as one engine run, within the server's budget.
    async fn run(
        &self,
        requests: Vec<DelegateRequest>,
        ctx: &RequestContext<RoleServer>,
    ) -> anyhow::Result<RunReport> {
        let tasks = requests
            .into_iter()
            .map(task)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let catalog = Catalog::load(&self.workspace)?;
        let defs = run::definitions(&catalog, &tasks)?;
        let servers = run::mcp_servers(&self.workspace, &self.flags, &defs).await?;
        let result = self.run_with(&catalog, tasks, &servers, ctx).await;
        servers.shutdown().await;
        result
    }

    /// Assembles and runs `tasks` with the call's MCP servers, within the server's budget.
    async fn run_with(
        &self,
        catalog: &Catalog,
        tasks: Vec<Task>,
        servers: &McpServers,
        ctx: &RequestContext<RoleServer>,
    ) -> anyhow::Result<RunReport> {
        let plans = {
            let mut models = self.models.lock().await;
            let shared = run::Shared {
                models: &mut models,
                recorder: None,
                deadline: None,
                mcp: servers,
            };
            run::assemble(&self.workspace, catalog, tasks, shared).await?
        };
        let asked: u64 = plans.iter().map(|p| p.spec.budget).sum();
        let held = ractor::call_t!(self.budget, ServerBudgetMsg::Hold, 5_000, asked)
            .map_err(|e| anyhow::anyhow!("the server's budget actor did not answer: {e}"))?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the server's budget is spent; restart `codex mcp-server` with a larger --budget"
                )
            })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut config = RunConfig::new(new_run_id(), &self.workspace, plans);
        config.total_budget = Some(held);
        config.events = Some(tx);
        let result = self.watch(config, rx, ctx).await;
        let used = result.as_ref().map_or(0, |r| r.total_tokens);
        let _ = self.budget.cast(ServerBudgetMsg::Settle { held, used });
        result
    }

    /// Starts the run, forwards its progress, cancels it when the call is cancelled.
    async fn watch(
        &self,
        config: RunConfig,
        events: mpsc::UnboundedReceiver<RunEvent>,
        ctx: &RequestContext<RoleServer>,
    ) -> anyhow::Result<RunReport> {
        let redactor = Arc::clone(&config.redactor);
        let handle = run::start(config).await?;
        let canceller = handle.canceller();
        let ct = ctx.ct.clone();
        let cancel = tokio::spawn(async move {
            ct.cancelled().await;
            canceller.cancel();
        });
        let token = ctx.meta.get_progress_token();
        let progress = tokio::spawn(forward(events, token, ctx.peer.clone()));
        let report = handle.wait().await;
        cancel.abort();
        let _ = progress.await;
        Ok(run::redacted(report?, &redactor))
    }
}

/// A request as a task; a malformed deadline is an error naming it.
fn task(req: DelegateRequest) -> anyhow::Result<Task> {
    let deadline = req
        .deadline
        .as_deref()
        .map(parse_deadline)
        .transpose()
        .map_err(|e| anyhow::anyhow!("agent `{}`: deadline: {e:#}", req.agent))?;
    Ok(Task {
        agent: req.agent.trim().to_owned(),
        goal: Some(req.goal),
        scope: req.scope,
        budget: req.budget,
        deadline,
    })
}

/// Sends a progress notification per agent start, model turn and finish, while the run
/// lasts (its end closes `events`). Without a progress token, only drains the events.
async fn forward(
    mut events: mpsc::UnboundedReceiver<RunEvent>,
    token: Option<ProgressToken>,
    peer: Peer<RoleServer>,
) {
    let mut step = 0.0;
    while let Some(event) = events.recv().await {
        let (Some(token), Some(message)) = (&token, describe(&event)) else {
            continue;
        };
        step += 1.0;
        let note = ProgressNotificationParam::new(token.clone(), step).with_message(message);
        if peer.notify_progress(note).await.is_err() {
            tracing::debug!("could not send a progress notification (client gone?)");
        }
    }
}

/// The progress message of an event, if it gets one.
fn describe(event: &RunEvent) -> Option<String> {
    match event {
        RunEvent::AgentStarted { agent, attempt } => {
            Some(format!("{agent}: started (attempt {attempt})"))
        }
        RunEvent::TurnCompleted {
            agent, tokens_used, ..
        } => Some(format!("{agent}: {tokens_used} tokens used")),
        RunEvent::AgentFinished(r) => Some(format!(
            "{}: finished, {} ({} tokens)",
            r.agent,
            r.status.label(),
            r.tokens_used
        )),
        _ => None,
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodexServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Runs this workspace's codex agents under budgets, permissions and an audit log. \
             `list_agents` names them; `delegate` runs one, `delegate_parallel` several at once.",
        )
    }
}

/// Serves `server` on stdin/stdout until the client disconnects.
pub async fn serve_stdio(server: CodexServer) -> anyhow::Result<()> {
    use rmcp::ServiceExt;
    let service = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("the MCP session could not start: {e}"))?;
    service.waiting().await?;
    Ok(())
}
