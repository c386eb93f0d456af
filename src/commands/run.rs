//! `codex delegate` and `codex delegate-parallel`: resolve the agents, start the engine,
//! print progress, and write the results.
//!
//! Everything that can be wrong with the input is checked before the first agent starts:
//! unknown agents, flag counts, scopes that do not exist, an unreadable replay script, an
//! unknown provider, a missing API key (named by its variable), no model chosen, an
//! `-o` file that could not be written, an audit log that cannot be opened (the engine
//! refuses to start: no agent runs unaudited). A run that started always produces its
//! results, also after Ctrl-C, which cancels every agent and still writes `-o` with what
//! they had. How the run is shown while it lasts (live bars, plain lines, `--quiet`,
//! `--json`) is `progress.rs`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use codex_actors::audit::{AuditEvent, Redactor, WorktreeAction};
use codex_actors::delegate::AgentResolver;
use codex_actors::{
    new_run_id, AgentPlan, Closing, EngineError, Model, RunConfig, RunHandle, RunReport,
};
use tokio::sync::mpsc;
use tokio::sync::Mutex;

use super::tasks::Task;
use crate::cli::{ModelArgs, RunArgs};
use crate::definition::WriteAccess;
use crate::definition::{default_codex_home, parse_deadline_flag, AgentDefinition, Catalog};
use crate::delegation::{self, reachable, Resolver};
use crate::interrupt::Interrupts;
use crate::mcp::client::McpServers;
use crate::output;
use crate::progress::{self, Mode};
use crate::providers::record::Recorder;
use crate::resume::manifest::RunManifest;
use crate::resume::Resumed;
use crate::worktree::git::{self, Worktree};
use crate::worktree::{self as isolation, ChangeSummary, Isolation};
use crate::{atomic_file, exit};
use crate::{providers, tools};
use codex::sandbox::Sandbox;
use codex_actors::tool::Toolbox;

/// Run-wide options from the command line.
pub struct RunOptions<'a> {
    /// Flags shared by both commands.
    pub run: &'a RunArgs,
    /// `--total-budget`.
    pub total_budget: Option<u64>,
    /// `--max-concurrency`.
    pub max_concurrency: Option<usize>,
    /// `codex resume`: the run taken up again (its id, and what its earlier part did).
    pub resume: Option<Resumed>,
    /// SIGINT, SIGTERM and SIGHUP: the first cancels the run (see [`crate::interrupt`]).
    pub interrupts: Interrupts,
    /// The run's id, when it is chosen before the run starts (its MCP servers' stderr files
    /// go to its directory); default: a new one.
    pub run_id: Option<String>,
    /// The worktrees of the run's isolated agents, by agent (see [`crate::worktree`]):
    /// their changes are recorded when the run ends.
    pub worktrees: Vec<(String, Worktree)>,
    /// Records for the audit log right after `run_started` (the MCP servers' sandboxes).
    pub opening: Vec<AuditEvent>,
}

/// Runs `tasks` in `workspace`; the exit code says whether every agent completed.
pub async fn run(workspace: &Path, tasks: Vec<Task>, mut opts: RunOptions<'_>) -> Result<ExitCode> {
    let catalog = Catalog::load(workspace)?;
    for w in catalog.warnings() {
        eprintln!("warning: {w}");
    }
    let names: Vec<&str> = tasks.iter().map(|t| t.agent.as_str()).collect();
    let mut models = Models::new(&opts.run.models, &names)?;
    if let Some(path) = &opts.run.record {
        check_writable("--record", path)?;
    }
    let recorder = opts.run.record.as_deref().map(Recorder::new);
    let deadline = parse_deadline_flag(opts.run.deadline.as_deref())?;
    let defs = definitions(&catalog, &tasks)?;
    let sandbox = sandbox_for(opts.run, &reachable(&catalog, &defs))?;
    let run_id = opts.run_id.get_or_insert_with(new_run_id).clone();
    let isolations = isolations(workspace, opts.run.isolation, &defs)?;
    let servers = mcp_servers_of_run(
        workspace,
        &opts.run.models,
        &defs,
        &reachable(&catalog, &defs),
        &run_id,
        &sandbox,
    )
    .await?;
    opts.opening = servers.records();
    let toolbox = tools::toolbox_with(sandbox);
    let shared = Shared {
        models: &mut models,
        recorder: recorder.as_ref(),
        deadline,
        toolbox: &toolbox,
        mcp: &servers,
    };
    let plans = match assemble(workspace, &catalog, tasks, shared).await {
        Ok(mut plans) => isolate(workspace, &run_id, &mut plans, &isolations).map(|worktrees| {
            opts.worktrees = worktrees;
            plans
        }),
        Err(e) => Err(e),
    };
    let resolver = Arc::new(Resolver::new(
        workspace,
        catalog,
        Arc::new(Mutex::new(models)),
        opts.run.models.clone(),
        recorder.as_ref().map(Recorder::tap),
        toolbox,
        servers.tools(),
    ));
    let result = match plans {
        Ok(plans) => {
            let resolving: Arc<dyn AgentResolver> = resolver.clone();
            drive(workspace, plans, opts, recorder, Some(resolving)).await
        }
        Err(e) => Err(e),
    };
    resolver.finish().await;
    servers.shutdown().await;
    result
}

/// Each agent's isolation ([`isolation::choose`]): `--isolation`, its definition's
/// `isolation:`, or the default for this workspace and what the agent may do.
fn isolations(
    workspace: &Path,
    flag: Option<Isolation>,
    defs: &[&AgentDefinition],
) -> Result<Vec<Isolation>> {
    let repository = git::is_repository_top(workspace);
    defs.iter()
        .map(|d| {
            let may_write = d.tools.fs.write != WriteAccess::None || !d.tools.shell.exec.is_empty();
            isolation::choose(flag, d.isolation, repository, may_write)
                .map_err(|e| anyhow::anyhow!("agent `{}`: {e}", d.name))
        })
        .collect()
}

/// Creates the worktree of each plan isolated in one (`isolations`, in order) and roots
/// the agent there; a resumed run's agents find theirs again.
fn isolate(
    workspace: &Path,
    run_id: &str,
    plans: &mut [AgentPlan],
    isolations: &[Isolation],
) -> Result<Vec<(String, Worktree)>> {
    let run_dir = workspace.join(".codex/runs").join(run_id);
    let mut worktrees = Vec::new();
    for (plan, chosen) in plans.iter_mut().zip(isolations) {
        if *chosen != Isolation::Worktree {
            continue;
        }
        let worktree = git::create(workspace, &run_dir, &plan.spec.name)?;
        plan.spec.root = Some(worktree.path.canonicalize()?);
        worktrees.push((plan.spec.name.clone(), worktree));
    }
    Ok(worktrees)
}

/// Records the change of every isolated agent ([`git::record_change`]); one that cannot
/// be recorded is a warning (its worktree stays for `codex changes`).
fn record_changes(
    workspace: &Path,
    run_id: &str,
    worktrees: &[(String, Worktree)],
) -> Vec<ChangeSummary> {
    let run_dir = workspace.join(".codex/runs").join(run_id);
    worktrees
        .iter()
        .filter_map(
            |(agent, wt)| match git::record_change(workspace, &run_dir, agent, wt) {
                Ok(summary) => Some(summary),
                Err(e) => {
                    eprintln!("warning: agent `{agent}`: its change could not be recorded: {e:#}");
                    None
                }
            },
        )
        .collect()
}

/// The audit record of `worktree`'s creation.
fn created_record((agent, worktree): &(String, Worktree)) -> AuditEvent {
    AuditEvent::Worktree {
        agent: agent.clone(),
        action: WorktreeAction::Created,
        commit: worktree.base.clone(),
        sha256: None,
        files: None,
    }
}

/// Records the isolated agents' changes once every agent is final, in the engine's
/// closing step, so the audit log has each change's hash before `run_finished`.
struct ChangeRecorder {
    workspace: PathBuf,
    run_id: String,
    worktrees: Vec<(String, Worktree)>,
    /// The changes, for `-o` and the summary; `None` until recorded.
    recorded: std::sync::Mutex<Option<Vec<ChangeSummary>>>,
}

#[async_trait::async_trait]
impl Closing for ChangeRecorder {
    async fn records(&self) -> Vec<AuditEvent> {
        let (workspace, run_id) = (self.workspace.clone(), self.run_id.clone());
        let worktrees = self.worktrees.clone();
        let changes =
            tokio::task::spawn_blocking(move || record_changes(&workspace, &run_id, &worktrees))
                .await
                .unwrap_or_default();
        let records = changes
            .iter()
            .map(|c| AuditEvent::Worktree {
                agent: c.agent.clone(),
                action: WorktreeAction::ChangeRecorded,
                commit: c.result.clone(),
                sha256: Some(c.sha256.clone()),
                files: Some(c.files.len()),
            })
            .collect();
        if let Ok(mut slot) = self.recorded.lock() {
            *slot = Some(changes);
        }
        records
    }
}

/// The definitions of `tasks`' agents; an unknown agent is an error.
pub fn definitions<'a>(catalog: &'a Catalog, tasks: &[Task]) -> Result<Vec<&'a AgentDefinition>> {
    tasks
        .iter()
        .map(|t| Ok(&catalog.require(&t.agent)?.definition))
        .collect()
}

/// The run's OS sandbox for agents' programs: `[sandbox]` of the config file, `--sandbox`
/// over it. When it is on and this kernel lacks what it needs, a run in which some agent
/// (`defs`, with every agent they may delegate to) may run programs is refused here,
/// before anything starts: never a silent run without it.
pub fn sandbox_for(run: &RunArgs, defs: &[&AgentDefinition]) -> Result<Arc<Sandbox>> {
    let sandbox = super::sandbox::of_config(&run.models, run.sandbox)?;
    super::sandbox::refuse_unconfined(&sandbox, defs)?;
    Ok(sandbox)
}

/// Starts the MCP servers (`[mcp_servers.NAME]` of codex-actors.toml) that `defs` list in
/// `tools.mcp`, and those of the agents they may delegate to (`delegates`, see
/// [`McpServers::start`]), once for the run. Their stderr goes to files of a fresh run
/// directory ([`mcp_servers_of_run`] names the run). Each runs in `sandbox`, derived from
/// the agents that use it (`crate::mcp::confine`).
pub async fn mcp_servers(
    workspace: &Path,
    flags: &ModelArgs,
    defs: &[&AgentDefinition],
    delegates: &[&AgentDefinition],
    sandbox: &Arc<Sandbox>,
) -> Result<McpServers> {
    mcp_servers_of_run(workspace, flags, defs, delegates, &new_run_id(), sandbox).await
}

/// [`mcp_servers`] for the run `run_id`: each server's stderr goes to
/// `.codex/runs/<run_id>/mcp-<name>.stderr`.
pub async fn mcp_servers_of_run(
    workspace: &Path,
    flags: &ModelArgs,
    defs: &[&AgentDefinition],
    delegates: &[&AgentDefinition],
    run_id: &str,
    sandbox: &Arc<Sandbox>,
) -> Result<McpServers> {
    let patterns: Vec<&String> = defs.iter().flat_map(|d| &d.tools.mcp).collect();
    let optional: Vec<&String> = delegates.iter().flat_map(|d| &d.tools.mcp).collect();
    if patterns.is_empty() && optional.is_empty() {
        return Ok(McpServers::default());
    }
    let home = default_codex_home();
    let config = providers::config::Config::load(home.as_deref(), &flags.config)?;
    let stderr_dir = workspace.join(".codex/runs").join(run_id);
    let agents: Vec<&AgentDefinition> = defs.iter().chain(delegates).copied().collect();
    let confiner = crate::mcp::confine::Confiner::new(Arc::clone(sandbox), &agents);
    McpServers::start(
        &config.mcp_servers,
        patterns,
        optional,
        workspace,
        &stderr_dir,
        &confiner,
    )
    .await
}

/// Runs assembled `plans` as the run commands do: progress on the terminal, Ctrl-C
/// cancels, the report (and `-o`) at the end; `recorder` writes `--record`; `resolver`
/// makes delegation possible. The exit code says whether every agent completed.
pub async fn drive(
    workspace: &Path,
    plans: Vec<AgentPlan>,
    opts: RunOptions<'_>,
    recorder: Option<Recorder>,
    resolver: Option<Arc<dyn AgentResolver>>,
) -> Result<ExitCode> {
    if let Some(out) = &opts.run.output {
        check_writable("-o", out)?;
    }
    let budgets = budgets(&plans);
    let (tx, rx) = mpsc::unbounded_channel();
    let manifest = RunManifest::new(&plans, opts.total_budget, opts.max_concurrency);
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    let mut config = RunConfig::new(run_id, workspace, plans);
    config.resume = opts.resume.is_some();
    if opts.resume.is_none() {
        // What `codex resume` needs to take the run up again if it is interrupted. A run
        // directory that cannot be written stops the engine with its own error just after.
        if let Err(e) = manifest.write(config.audit_path.parent().unwrap_or(workspace)) {
            tracing::warn!("this run could not be resumed if interrupted: {e:#}");
        }
    }
    config.total_budget = opts.total_budget;
    config.max_concurrency = opts.max_concurrency;
    config.events = Some(tx);
    config.opening = opts.opening.clone();
    config
        .opening
        .extend(opts.worktrees.iter().map(created_record));
    let changes = Arc::new(ChangeRecorder {
        workspace: workspace.to_owned(),
        run_id: config.run_id.clone(),
        worktrees: opts.worktrees.clone(),
        recorded: std::sync::Mutex::new(None),
    });
    if !opts.worktrees.is_empty() {
        config.closing = Some(Arc::clone(&changes) as Arc<dyn Closing>);
    }
    delegation::configure(&mut config, resolver);
    let audit = relative(workspace, &config.audit_path);
    let run_id = config.run_id.clone();
    let mode = Mode::choose(
        opts.run.json,
        opts.run.quiet,
        std::io::stdout().is_terminal(),
    );
    // The run's own redactor (the audit log's) also masks what is printed and written.
    let redactor = Arc::clone(&config.redactor);
    if !opts.worktrees.is_empty() && !matches!(mode, Mode::Json | Mode::Quiet) {
        let names: Vec<&str> = opts.worktrees.iter().map(|(a, _)| a.as_str()).collect();
        let _ = writeln!(
            std::io::stdout(),
            "Isolation: {} in git worktrees under .codex/runs/{run_id}/worktrees/ (the others \
             share the workspace); review with `codex changes {run_id}`",
            names.join(", ")
        );
    }
    let handle = start(config).await?;
    if mode == Mode::Json {
        // A closed stdout is not fatal to the run (see `progress::watch`).
        let json = progress::run_started_json(&run_id, &audit, &budgets);
        let _ = writeln!(std::io::stdout(), "{json}");
    }
    let printer = tokio::spawn(progress::watch(rx, mode, budgets, Arc::clone(&redactor)));
    // The handlers were installed before setup began (`interrupt::listen`): a signal that
    // arrived meanwhile cancels the run as soon as it starts.
    let canceller = handle.canceller();
    let mut interrupts = opts.interrupts.clone();
    let ctrl_c = tokio::spawn(async move {
        interrupts.received().await;
        canceller.cancel();
    });
    let report = handle.wait().await?;
    let report = match &opts.resume {
        Some(r) => r.merge(report),
        None => report,
    };
    let report = redacted(report, &redactor);
    ctrl_c.abort();
    let _ = printer.await;
    let mut unwritten = Vec::new();
    if let (Some(r), Some(path)) = (recorder, &opts.run.record) {
        match r.write() {
            Ok(turns) => eprintln!("Recorded {turns} model turns to {}", path.display()),
            Err(e) => unwritten.push(e),
        }
    }
    // Recorded by the engine's closing step (audited); here only if it never ran.
    let recorded = changes.recorded.lock().ok().and_then(|mut r| r.take());
    let changes = recorded.unwrap_or_else(|| record_changes(workspace, &run_id, &opts.worktrees));
    let code = finish(&report, &changes, &audit, mode, opts.run.output.as_deref())?;
    // The summary is out; a file that could not be written is reported last, where it is
    // seen, and changes the exit status.
    let code = code.unwrap_or_else(|e| {
        unwritten.push(e);
        ExitCode::from(exit::RESULTS_NOT_WRITTEN)
    });
    for e in &unwritten {
        eprintln!("error: {e:#}");
    }
    Ok(match unwritten.is_empty() {
        true => code,
        false => ExitCode::from(exit::RESULTS_NOT_WRITTEN),
    })
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

/// Starts the engine; a run that cannot start (its audit log cannot be opened) is an
/// error that says no agent ran.
pub async fn start(mut config: RunConfig) -> Result<RunHandle> {
    config.anchor = crate::containment::anchor_path();
    match codex_actors::start(config).await {
        Ok(h) => Ok(h),
        Err(e @ EngineError::Start(_)) => bail!("{e}. No agent was started"),
        Err(e) => Err(e.into()),
    }
}

/// The report with every secret masked, as the audit log has it: final messages and errors
/// may quote what a model or a tool saw. It is what is printed and written to `-o`.
pub fn redacted(report: RunReport, redactor: &Redactor) -> RunReport {
    let mut json = serde_json::to_value(&report).expect("a report serializes");
    redactor.redact_json(&mut json);
    serde_json::from_value(json).unwrap_or(report)
}

/// `path` relative to the workspace, for messages.
pub fn relative(workspace: &Path, path: &Path) -> String {
    path.strip_prefix(workspace)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Where the agents' models come from: a replay script (`--replay` wins), or providers.
pub enum Models {
    /// Every agent plays its turns from the replay script.
    Replay(Arc<dyn Model>),
    /// A provider and model per agent (flags > definition > config file).
    Live(Box<providers::select::Selector>),
}

impl Models {
    /// From the flags; with `--replay`, the script must have turns for each of `agents`
    /// (or a `default`).
    pub fn new(run: &ModelArgs, agents: &[&str]) -> Result<Self> {
        if let Some(path) = &run.replay {
            return Ok(Models::Replay(providers::replay_model(path, agents)?));
        }
        let home = default_codex_home();
        let config = providers::config::Config::load(home.as_deref(), &run.config)?;
        Ok(Models::Live(Box::new(providers::select::Selector::new(
            config,
            run.provider.clone(),
            run.model.clone(),
        ))))
    }

    /// The model of `agent`; a missing key or an unknown provider is an error here, before
    /// anything runs.
    pub async fn model_for(
        &mut self,
        agent: &str,
        provider: Option<&str>,
        model: Option<&str>,
    ) -> Result<Arc<dyn Model>> {
        match self {
            Models::Replay(m) => Ok(Arc::clone(m)),
            Models::Live(s) => s.model_for(agent, provider, model).await,
        }
    }
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

/// Refuses an output file (of `flag`) whose directory does not exist, before any tokens
/// are spent.
pub fn check_writable(flag: &str, out: &Path) -> Result<()> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!(
            "{flag} {}: the directory {} does not exist; create it or choose another file",
            out.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Writes `-o` and prints the end of the run (answers, summary); `Ok(Err(_))` when `-o`
/// could not be written (the summary is printed all the same). The inner `Ok` is the exit
/// status from the agents' outcomes.
fn finish(
    report: &RunReport,
    changes: &[ChangeSummary],
    audit: &str,
    mode: Mode,
    out: Option<&Path>,
) -> Result<Result<ExitCode, anyhow::Error>> {
    let written = match out {
        Some(out) => write_results(report, changes, out).map(|()| Some(out)),
        None => Ok(None),
    };
    let mut stdout = std::io::stdout().lock();
    if mode == Mode::Json {
        writeln!(stdout, "{}", progress::run_finished_json(report, audit))?;
    } else {
        match mode {
            Mode::Quiet => write!(stdout, "{}", output::outcomes(report))?,
            _ if std::io::stdout().is_terminal() || out.is_none() => {
                write!(stdout, "\n{}", output::final_messages(report))?
            }
            _ => {}
        }
        writeln!(stdout, "\n{}", output::summary(report, audit))?;
        for c in changes {
            writeln!(
                stdout,
                "Change of {}: {} file(s), +{} -{} ({})",
                c.agent,
                c.files.len(),
                c.added,
                c.removed,
                c.patch
            )?;
        }
        if let Ok(Some(out)) = &written {
            writeln!(stdout, "Results: {}", out.display())?;
        }
    }
    stdout.flush()?;
    Ok(written.map(|_| {
        if report.all_completed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(exit::AGENT_NOT_COMPLETED)
        }
    }))
}

/// `-o`: the report as JSON, each isolated agent with its `change`, written atomically
/// (an old file is replaced whole or kept).
fn write_results(report: &RunReport, changes: &[ChangeSummary], out: &Path) -> Result<()> {
    let mut value = serde_json::to_value(report)?;
    if let Some(agents) = value.get_mut("agents").and_then(|a| a.as_array_mut()) {
        for agent in agents {
            let name = agent
                .get("agent")
                .and_then(|n| n.as_str())
                .unwrap_or_default();
            if let Some(change) = changes.iter().find(|c| c.agent == name) {
                agent["change"] = serde_json::to_value(change)?;
            }
        }
    }
    let json = serde_json::to_string_pretty(&value)? + "\n";
    atomic_file::write(out, json.as_bytes(), atomic_file::Replace::Allowed)
        .context("could not write the results (-o)")?;
    Ok(())
}
