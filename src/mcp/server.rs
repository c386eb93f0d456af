//! `codex mcp-server`: the agents of a workspace as MCP tools over stdio.
//!
//! Tools: `delegate` (one agent on a goal → its `AgentReport`), `delegate_parallel` (several
//! at once → the `RunReport`, the JSON `-o` writes), `list_agents`, `create_agent` (the
//! model writes a new agent, which is checked, optionally saved and run → the definition
//! and the run's report), and the read-only workspace tools `read_file`, `grep` and
//! `codebase_search`. Their input schemas are generated from the request types below
//! (schemars). Each agent call is one engine run, assembled by `assembly::plan::assemble`
//! (or `assembly::create::plan`) like a CLI run: same definitions, permissions,
//! budgets and audit log (`.codex/runs/<run_id>/audit.jsonl`). `create_agent` shares its
//! generation, checks and saving with `codex agent-create` (`assembly::create`).
//!
//! A server-wide budget (`--budget N`, see [`super::budget`]) caps everything the session's
//! clients ask for: a call holds what its agents may spend (clamped to what is free) while
//! it runs, and when it ends it is charged what they used, so several calls run at once. A
//! call that cannot get a turn's worth is refused with the figures. The run's global budget
//! is the amount held, and each agent's budget is lowered to it, so the engine enforces the
//! clamp and the report shows the cap that bound the run. `create_agent`'s generation calls
//! hold and settle through the same budget, one model call at a time.
//!
//! What clients see: every request type refuses unknown arguments and types its optional
//! integers plain `"integer"` with the server's minimums; every tool carries annotations
//! (`readOnlyHint`, `destructiveHint`, `idempotentHint`, `openWorldHint`); the results of
//! runs name each agent's status and why it did not complete ([`super::outcome`]); the
//! server calls itself `codex` with this crate's version.
//!
//! Shutdown ([`super::serve`] cancels [`CodexServer::shutdown_token`]): each run in
//! progress is cancelled, ends its audit log, and its call is answered with the
//! [`SHUTDOWN_CANCELLED`] error; no new run starts.
//!
//! The workspace tools are the agents' own (`crate::tools`): `plan` resolves the path
//! (through `..` and symbolic links), anything but a read inside the workspace is refused
//! before `invoke` runs, and `invoke` re-checks the plan and opens files without following
//! symbolic links. Their output is redacted like the audit log. They are not runs: no
//! budget, no audit log. `codebase_search` builds its index on every call, as the files may
//! change during a session.
//!
//! While agents run, a client that sent a progress token gets progress notifications
//! (started, finished, tokens used). A cancelled call cancels its run (`Canceller`).

use std::path::PathBuf;
use std::sync::Arc;

use ractor::ActorRef;

use super::outcome::{self, audit_path};
use codex_actors::audit::Redactor;
use codex_actors::delegate::AgentResolver;
use codex_actors::tool::Toolbox;
use codex_actors::{
    new_run_id, Access, AgentPlan, AgentReport, ChatMessage, Role, RunConfig, RunEvent, RunReport,
    Tool, ToolContext,
};
use rmcp::handler::server::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, ErrorCode, Implementation, ProgressNotificationParam,
    ProgressToken, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, Peer, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::assembly::budget::{self, ServerBudget, ServerBudgetMsg, MIN_RUN_TOKENS};
use crate::assembly::create::{self as agent_create, Created, Creator, Request};
use crate::assembly::delegation::{self, Resolver};
use crate::assembly::models::Models;
use crate::assembly::task::Task;
use crate::assembly::{drive, plan, toolbox};
use crate::cli::ModelArgs;
use crate::definition::{parse_deadline, Catalog};
use crate::mcp_client::McpServers;
use crate::tools::{self, CodebaseSearch, Grep, ReadFile};

// Every request type below refuses unknown arguments (`deny_unknown_fields`, so its schema
// has `additionalProperties: false`); its optional fields are typed plainly (`"integer"`,
// `"string"`: optional by not being required, never `["integer", "null"]`, which some
// clients such as the MCP Inspector do not convert from text) and carry no `default: null`
// (`no_null_defaults`).

/// One agent to run: the arguments of `delegate`, and each task of `delegate_parallel`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct DelegateRequest {
    /// The agent, by name (see `list_agents`).
    pub agent: String,
    /// What the agent should achieve.
    pub goal: String,
    /// The workspace subtree it works on (its writes are limited to it).
    #[serde(default)]
    #[schemars(with = "String")]
    pub scope: Option<String>,
    /// Its token budget (default: its definition's); capped by the server's budget.
    #[serde(default)]
    #[schemars(with = "u64", range(min = 256))]
    pub budget: Option<u64>,
    /// Its wall-clock limit: `90s`, `10m`, `1h` (default: its definition's).
    #[serde(default)]
    #[schemars(with = "String")]
    pub deadline: Option<String>,
}

/// The arguments of `delegate_parallel`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateParallelRequest {
    /// The agents to run at once, each at most once.
    pub tasks: Vec<DelegateRequest>,
}

/// The arguments of `list_agents`: none.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAgentsRequest {}

/// The arguments of `create_agent`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct CreateAgentRequest {
    /// What the agent should be and do, in words.
    pub prompt: String,
    /// Its token budget (replaces the model's choice); capped by the server's budget.
    #[serde(default)]
    #[schemars(with = "u64", range(min = 256))]
    pub budget: Option<u64>,
    /// Its name (replaces the model's choice): lowercase letters, digits, `-` and `_`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub name: Option<String>,
    /// Save the definition as `.codex/agents/NAME.yaml`; an existing file is never replaced.
    #[serde(default)]
    pub save: bool,
}

/// The result of `create_agent`.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedAgent {
    /// The new agent's name.
    pub name: String,
    /// Its definition, as YAML.
    pub definition: String,
    /// Where it was saved (workspace-relative), if it was.
    pub saved: Option<String>,
    /// What was changed in the model's answer (permissions removed), and each model call
    /// that wrote it (its tokens, or why its answer was invalid).
    pub notes: Vec<String>,
    /// The report of its run on its goal.
    pub report: AgentReport,
}

/// The arguments of `read_file` (those of the agents' tool of that name).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct ReadFileRequest {
    /// File path, relative to the workspace root.
    pub path: String,
    /// First line to show (1-based). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(min = 1))]
    pub offset: Option<u64>,
    /// Most lines to show. Default (and maximum) 2000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(min = 1))]
    pub limit: Option<u64>,
}

/// The arguments of `grep` (those of the agents' tool of that name).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct GrepRequest {
    /// Regular expression to search for (Rust regex syntax; `(?i)` for case-insensitive).
    pub pattern: String,
    /// File or directory to search, relative to the workspace root. Default: all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub path: Option<String>,
    /// Only search files whose name or path matches this glob, e.g. `*.rs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub include: Option<String>,
}

/// The arguments of `codebase_search` (those of the agents' tool of that name).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct CodebaseSearchRequest {
    /// Identifier(s) or words to look for.
    pub query: String,
    /// Directory to search, relative to the workspace root. Default: all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub path: Option<String>,
    /// Most results (default 10, at most 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(min = 1))]
    pub limit: Option<u64>,
}

/// Drops the `"default": null` schemars gives an optional field (`#[serde(default)]`): null
/// is not a value of its type, and a form-filling client would send it.
fn no_null_defaults(schema: &mut schemars::Schema) {
    let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for property in properties.values_mut() {
        if let Some(p) = property.as_object_mut() {
            if p.get("default").is_some_and(|d| d.is_null()) {
                p.remove("default");
            }
        }
    }
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
    /// Masks secrets in what the workspace tools return.
    redactor: Arc<Redactor>,
    /// The OS sandbox of the agents' programs and MCP servers, as `[sandbox]` of the
    /// config file sets it up (like the run commands').
    sandbox: Arc<codex::sandbox::Sandbox>,
    /// The calls that run agents, in progress: waited for when the server shuts down (see
    /// [`super::serve`]), until their runs have ended their audit logs and their MCP
    /// servers and child codexes are closed.
    runs: TaskTracker,
    /// Cancelled when the server shuts down (its input closed, SIGTERM, SIGINT): every run
    /// in progress is cancelled, its call answered with a cancellation error, and no new
    /// run starts.
    shutdown: CancellationToken,
    tool_router: ToolRouter<Self>,
}

/// What a call's delegated agents are made from: the call's catalog, toolbox and MCP
/// servers (those its own agents were assembled with).
struct Delegating<'a> {
    catalog: Catalog,
    toolbox: Toolbox,
    servers: &'a McpServers,
}

/// The agent name the workspace tools act for (their `ToolContext`).
const CLIENT: &str = "mcp-client";

/// A failed call, as the client's tool result (not a protocol error, so it is shown).
fn failure(message: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!("error: {message}"))])
}

/// The JSON-RPC error code of a call cancelled because the server is shutting down (the
/// code LSP and several MCP SDKs use for "request cancelled").
pub const SHUTDOWN_CANCELLED: ErrorCode = ErrorCode(-32800);

/// The answer to a call whose run was cancelled because the server is shutting down:
/// a cancellation error naming the run's audit log (complete: the run ended), with the
/// report as its data.
fn shutdown_error(report: Option<&RunReport>) -> ErrorData {
    let mut message = "codex mcp-server is shutting down: the call was cancelled".to_owned();
    if let Some(r) = report {
        message.push_str(&format!(
            "; its run ended and its audit log is complete: {}",
            audit_path(r)
        ));
    }
    let data = report.and_then(|r| serde_json::to_value(r).ok());
    ErrorData::new(SHUTDOWN_CANCELLED, message, data)
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
        let models = Models::new(&flags, &[], false)?;
        let sandbox = toolbox::of_config(&flags, None)?;
        let (budget, _) = ractor::Actor::spawn(None, ServerBudget, budget)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the server's budget actor: {e}"))?;
        Ok(CodexServer {
            workspace,
            flags,
            models: Arc::new(tokio::sync::Mutex::new(models)),
            budget,
            redactor: Arc::new(Redactor::from_env()),
            sandbox,
            runs: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            tool_router: Self::tool_router(),
        })
    }

    /// The token that shuts the server down: cancelling it cancels the runs in progress
    /// and refuses new ones.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The runs in progress (closed and waited for when the server shuts down).
    pub fn runs(&self) -> TaskTracker {
        self.runs.clone()
    }

    /// `delegate`: one agent on a goal; its report.
    #[tool(
        description = "Run one agent of this workspace on a goal, under its budget, permissions and audit log. Returns the agent's report (status, tokens, artifacts, final message); the text names its status and, if it did not complete, why (then the result is an error).",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn delegate(
        &self,
        Parameters(req): Parameters<DelegateRequest>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let report = match self.runs.track_future(self.run(vec![req], &ctx)).await {
            Ok(r) => self.unless_shutting_down(r)?,
            Err(e) => return self.refused(e),
        };
        outcome::run_result(&report, report.agents.first())
    }

    /// `delegate_parallel`: several agents at once; the run's report.
    #[tool(
        description = "Run several agents of this workspace at once, each on its own goal. Returns the run's report: one entry per agent plus totals (the JSON that `codex delegate-parallel -o` writes); the text names each agent's status and, for each that did not complete, why (an error result when none completed).",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
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
        let report = match self.runs.track_future(self.run(req.tasks, &ctx)).await {
            Ok(r) => self.unless_shutting_down(r)?,
            Err(e) => return self.refused(e),
        };
        outcome::run_result(&report, &report)
    }

    /// `list_agents`: the agents this workspace can run.
    #[tool(
        description = "List the agents this workspace can run: name, default goal, budget and where each is defined.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_agents(
        &self,
        Parameters(ListAgentsRequest {}): Parameters<ListAgentsRequest>,
    ) -> Result<CallToolResult, ErrorData> {
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
        outcome::structured_result(AgentList { agents }, text)
    }

    /// `create_agent`: the model writes a definition, which is checked, optionally saved,
    /// and run on its goal.
    #[tool(
        description = "Create an agent from a description: the model writes its definition (checked like a definition file; an invalid one goes back to the model at most twice; shell and network permissions are removed unless the server's configuration allows them), optionally saves it as .codex/agents/NAME.yaml (never replacing a file), and runs it on its goal under the server's budget. Returns the definition (YAML), its name, where it was saved, notes, and the run's report.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn create_agent(
        &self,
        Parameters(req): Parameters<CreateAgentRequest>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let (created, run) = match self.runs.track_future(self.create(req, &ctx)).await {
            Ok((created, run)) => (created, self.unless_shutting_down(run)?),
            Err(e) => return self.refused(e),
        };
        let mut text = format!("Created agent `{}`", created.name);
        if let Some(path) = &created.saved {
            text.push_str(&format!(", saved as {path}"));
        }
        text.push_str(".\n");
        for note in &created.notes {
            text.push_str(&format!("note: {note}\n"));
        }
        text.push_str(&outcome::run_text(&run));
        let mut result = outcome::structured_result(created, text)?;
        if outcome::no_agent_completed(&run) {
            result.is_error = Some(true);
        }
        Ok(result)
    }

    /// `read_file`: a file's lines, as the agents' `read_file` tool shows them.
    #[tool(
        description = "Read a text file of the workspace. Returns its lines prefixed with line numbers (`  12| text`). Long files are cut at 2000 lines or 64 KiB with a note; read further with `offset` (first line, 1-based) and `limit`. Paths outside the workspace (`..`, absolute, symbolic links leading out) and binary files are refused.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn read_file(
        &self,
        Parameters(req): Parameters<ReadFileRequest>,
    ) -> Result<CallToolResult, ErrorData> {
        let path = req.path.clone();
        self.workspace_tool(&ReadFile, req, Some(&path)).await
    }

    /// `grep`: matching lines under a path, as the agents' `grep` tool finds them.
    #[tool(
        description = "Search the workspace's files with a regular expression (Rust regex syntax). Returns matching lines as `path:line:text`, at most 200. Skips files ignored by .gitignore, hidden files and binary files. Paths outside the workspace are refused.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn grep(
        &self,
        Parameters(req): Parameters<GrepRequest>,
    ) -> Result<CallToolResult, ErrorData> {
        let path = req.path.clone();
        self.workspace_tool(&Grep, req, path.as_deref()).await
    }

    /// `codebase_search`: ranked hits for an identifier or words.
    #[tool(
        description = "Ranked (BM25) search of the workspace for an identifier or a few words. Returns the best matches as `path:line` with a snippet. Paths outside the workspace are refused.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn codebase_search(
        &self,
        Parameters(req): Parameters<CodebaseSearchRequest>,
    ) -> Result<CallToolResult, ErrorData> {
        let path = req.path.clone();
        // A fresh index per call: the session outlives edits to the files.
        let tool = CodebaseSearch::default();
        self.workspace_tool(&tool, req, path.as_deref()).await
    }
}

impl CodexServer {
    /// A run's report, or the cancellation error when the server shut down during it.
    fn unless_shutting_down(&self, report: RunReport) -> Result<RunReport, ErrorData> {
        if self.shutdown.is_cancelled() {
            return Err(shutdown_error(Some(&report)));
        }
        Ok(report)
    }

    /// A call that could not run, as a tool error (or, during shutdown, the cancellation
    /// error).
    fn refused(&self, e: anyhow::Error) -> Result<CallToolResult, ErrorData> {
        if self.shutdown.is_cancelled() {
            return Err(shutdown_error(None));
        }
        Ok(failure(format!("{e:#}")))
    }

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
        // A delegated child runs its parent's definitions, not the files on disk.
        let catalog = crate::containment::handoff::catalog(&self.workspace)?;
        let defs = plan::definitions(&catalog, &tasks)?;
        let delegates = delegation::reachable(&catalog, &defs);
        toolbox::refuse_unconfined(&self.sandbox, &delegates)?;
        let servers = toolbox::mcp_servers(
            &self.workspace,
            &self.flags,
            &defs,
            &delegates,
            &self.sandbox,
        )
        .await?;
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
        let toolbox = tools::toolbox_with(Arc::clone(&self.sandbox));
        let plans = {
            let mut models = self.models.lock().await;
            let shared = plan::Shared {
                models: &mut models,
                recorder: None,
                deadline: None,
                toolbox: &toolbox,
                mcp: servers,
            };
            plan::assemble(&self.workspace, catalog, tasks, shared).await?
        };
        let (plans, held) = self.hold(plans).await?;
        let delegating = Delegating {
            catalog: catalog.clone(),
            toolbox,
            servers,
        };
        self.run_delegating(plans, held, delegating, ctx).await
    }

    /// [`Self::run_held`], with the workspace's agents to delegate to.
    async fn run_delegating(
        &self,
        plans: Vec<AgentPlan>,
        held: u64,
        with: Delegating<'_>,
        ctx: &RequestContext<RoleServer>,
    ) -> anyhow::Result<RunReport> {
        let resolver = Arc::new(Resolver::new(
            &self.workspace,
            with.catalog,
            Arc::clone(&self.models),
            self.flags.clone(),
            None,
            with.toolbox,
            with.servers.tools(),
        ));
        let resolving: Arc<dyn AgentResolver> = resolver.clone();
        let opening = with.servers.records();
        let report = self.run_held(plans, held, resolving, opening, ctx).await;
        resolver.finish().await;
        report
    }

    /// Holds what `plans`' agents may spend from the server's budget (clamped to what is
    /// free), and lowers each agent's budget to the hold, so its report shows the cap that
    /// bound it; an error with the figures when not even a turn's worth is free, or when
    /// the server is shutting down. The caller runs them with [`Self::run_held`] or gives
    /// the tokens back with [`Self::settle`].
    async fn hold(&self, mut plans: Vec<AgentPlan>) -> anyhow::Result<(Vec<AgentPlan>, u64)> {
        if self.shutdown.is_cancelled() {
            anyhow::bail!("codex mcp-server is shutting down; no new run starts");
        }
        let asked = plans
            .iter()
            .fold(0u64, |sum, p| sum.saturating_add(p.spec.budget));
        let least = plans
            .iter()
            .map(first_turn_tokens)
            .min()
            .unwrap_or(0)
            .max(MIN_RUN_TOKENS);
        let held = budget::hold_run(&self.budget, asked, least).await??;
        for plan in &mut plans {
            plan.spec.budget = plan.spec.budget.min(held);
        }
        Ok((plans, held))
    }

    /// A call that held `held` tokens is over, having used `used`.
    fn settle(&self, held: u64, used: u64) {
        budget::settle(&self.budget, held, used);
    }

    /// Runs `plans` with `held` tokens of the server's budget as the run's global budget;
    /// settles the hold with what the agents used.
    async fn run_held(
        &self,
        plans: Vec<AgentPlan>,
        held: u64,
        resolver: Arc<dyn AgentResolver>,
        opening: Vec<codex_actors::audit::AuditEvent>,
        ctx: &RequestContext<RoleServer>,
    ) -> anyhow::Result<RunReport> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut config = RunConfig::new(new_run_id(), &self.workspace, plans);
        config.opening = opening;
        config.total_budget = Some(held);
        config.events = Some(tx);
        delegation::configure(&mut config, Some(resolver));
        let result = self.watch(config, rx, ctx).await;
        self.settle(held, result.as_ref().map_or(0, |r| r.total_tokens));
        result
    }

    /// `create_agent`: generates the definition (like `codex agent-create`), then saves
    /// and runs it within the server's budget. Nothing is saved when it cannot run. The
    /// result, and the report of the run (for the text summary).
    async fn create(
        &self,
        req: CreateAgentRequest,
        ctx: &RequestContext<RoleServer>,
    ) -> anyhow::Result<(CreatedAgent, RunReport)> {
        if let Some(b) = req.budget.filter(|&b| b < MIN_RUN_TOKENS) {
            anyhow::bail!(
                "budget {b} is below the least a run can use ({MIN_RUN_TOKENS} tokens, a turn's \
                 worth); give at least {MIN_RUN_TOKENS}, or leave `budget` out"
            );
        }
        let creator = {
            let mut models = self.models.lock().await;
            Creator::new(&self.workspace, &mut models, &self.flags).await?
        };
        let request = Request {
            prompt: req.prompt,
            name: req.name,
            budget: req.budget,
        };
        let mut log = Vec::new();
        let created = creator
            .create(&request, &self.budget, &mut |line| log.push(line))
            .await?;
        let def = &created.definition;
        toolbox::refuse_unconfined(&self.sandbox, &[def])?;
        let servers =
            toolbox::mcp_servers(&self.workspace, &self.flags, &[def], &[], &self.sandbox).await?;
        let result = self.run_created(&created, req.save, &servers, ctx).await;
        servers.shutdown().await;
        let (saved, run) = result?;
        let report = run.agents.first().cloned().ok_or_else(|| {
            anyhow::anyhow!("internal error: the run of the new agent reported no agent")
        })?;
        let mut notes = log;
        notes.extend(created.notes);
        let created = CreatedAgent {
            name: created.definition.name,
            definition: created.yaml,
            saved,
            notes,
            report,
        };
        Ok((created, run))
    }

    /// Plans the created agent, holds its budget, saves it if asked (refusing to replace a
    /// file), and runs it; the saved path (workspace-relative) and the run's report.
    async fn run_created(
        &self,
        created: &Created,
        save: bool,
        servers: &McpServers,
        ctx: &RequestContext<RoleServer>,
    ) -> anyhow::Result<(Option<String>, RunReport)> {
        let catalog = Catalog::load(&self.workspace)?;
        let toolbox = tools::toolbox_with(Arc::clone(&self.sandbox));
        let plan = {
            let mut models = self.models.lock().await;
            let def = &created.definition;
            agent_create::plan(&self.workspace, def, &mut models, &toolbox, servers).await?
        };
        let (plans, held) = self.hold(vec![plan]).await?;
        let saved = if save {
            let hint = "call create_agent again with another `name`, or without `save`";
            match agent_create::save(&self.workspace, created, false, hint) {
                Ok(path) => Some(crate::output::relative(&self.workspace, &path)),
                Err(e) => {
                    self.settle(held, 0);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let delegating = Delegating {
            catalog,
            toolbox,
            servers,
        };
        let report = self.run_delegating(plans, held, delegating, ctx).await?;
        Ok((saved, report))
    }

    /// Runs one of the agents' read-only `tool`s for the client: planned like an agent's
    /// call (paths resolved through `..` and symbolic links), refused when the plan leaves
    /// the workspace or is not a read, invoked with the plan, its output redacted.
    /// `path` is the path the client gave, for messages.
    async fn workspace_tool(
        &self,
        tool: &dyn Tool,
        args: impl Serialize,
        path: Option<&str>,
    ) -> Result<CallToolResult, ErrorData> {
        let args = serde_json::to_value(args).map_err(|e| {
            ErrorData::internal_error(format!("cannot encode the arguments: {e}"), None)
        })?;
        let ctx = ToolContext {
            agent: CLIENT.to_owned(),
            workspace: self.workspace.clone(),
            scope: String::new(),
            delegator: None,
            policy: Vec::new(),
        };
        let plan = match tool.plan(&args, &ctx) {
            Ok(p) => p,
            Err(e) => return Ok(failure(e)),
        };
        if let Some(why) = plan.iter().find_map(|a| refusal(a, path)) {
            return Ok(failure(why));
        }
        Ok(match tool.invoke(args, &plan, &ctx).await {
            Ok(out) => CallToolResult::success(vec![ContentBlock::text(
                self.redactor.redact(&out.content).into_owned(),
            )]),
            Err(e) => failure(e),
        })
    }

    /// Starts the run, forwards its progress, cancels it when the call is cancelled.
    async fn watch(
        &self,
        config: RunConfig,
        events: mpsc::UnboundedReceiver<RunEvent>,
        ctx: &RequestContext<RoleServer>,
    ) -> anyhow::Result<RunReport> {
        let redactor = Arc::clone(&config.redactor);
        let handle = drive::start(config).await?;
        let canceller = handle.canceller();
        let (ct, shutdown) = (ctx.ct.clone(), self.shutdown.clone());
        let cancel = tokio::spawn(async move {
            tokio::select! {
                _ = ct.cancelled() => {}
                _ = shutdown.cancelled() => {}
            }
            canceller.cancel();
        });
        let token = ctx.meta.get_progress_token();
        let progress = tokio::spawn(forward(events, token, ctx.peer.clone()));
        let report = handle.wait().await;
        cancel.abort();
        // The last notifications go out before the result; not when shutting down, when
        // the session may be gone and a notification would wait forever.
        tokio::select! {
            _ = progress => {}
            _ = self.shutdown.cancelled() => {}
        }
        Ok(drive::redacted(report?, &redactor))
    }
}

/// About what `plan`'s agent needs for its first model turn (a lower bound of what the
/// engine reserves: its instructions, goal and tools as the model estimates them, plus
/// the least output a turn may get). A run that cannot get this ends at once.
fn first_turn_tokens(plan: &AgentPlan) -> u64 {
    let messages = [
        ChatMessage::text(Role::System, plan.spec.instructions.clone()),
        ChatMessage::text(Role::User, plan.spec.goal.clone()),
    ];
    let tools: Vec<_> = plan.tools.iter().map(|t| t.spec()).collect();
    let prompt = plan.model.estimate_prompt_tokens(&messages, &tools);
    prompt + MIN_TURN_OUTPUT.min(plan.spec.max_output_tokens)
}

/// The least output the engine lets a turn have (its reservations' minimum).
const MIN_TURN_OUTPUT: u64 = 64;

/// Why the workspace tools refuse `access`, if they do: anything but a read inside the
/// workspace. `path` is what the client asked for.
fn refusal(access: &Access, path: Option<&str>) -> Option<String> {
    match access {
        Access::Read(_) | Access::ReadTree(_) => None,
        Access::Outside(to) => Some(format!(
            "`{}` leads outside the workspace (to `{to}`), so it was refused; give a path \
             inside the workspace, relative to its root",
            path.unwrap_or(".")
        )),
        other => Some(format!(
            "refused: the workspace tools only read, and this call would {other}"
        )),
    }
}

/// A request as a task; a malformed deadline is an error naming it.
fn task(req: DelegateRequest) -> anyhow::Result<Task> {
    if let Some(b) = req.budget.filter(|&b| b < MIN_RUN_TOKENS) {
        anyhow::bail!(
            "agent `{}`: budget {b} is below the least a run can use ({MIN_RUN_TOKENS} tokens, \
             a turn's worth); give at least {MIN_RUN_TOKENS}, or leave `budget` out for the \
             definition's",
            req.agent
        );
    }
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
        let mut config = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        config.server_info = Implementation::new("codex", env!("CARGO_PKG_VERSION"))
            .with_title("codex: budgeted, audited coding agents");
        config.with_instructions(
            "Runs this workspace's codex agents under budgets, permissions and an audit log. \
             `list_agents` names them; `delegate` runs one, `delegate_parallel` several at once; \
             `create_agent` writes a new one from a description and runs it. `read_file`, \
             `grep` and `codebase_search` read the workspace (nothing outside it).",
        )
    }
}
