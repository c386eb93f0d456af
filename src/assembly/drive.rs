//! Driving a run whose agents are assembled: the engine started with the run's options,
//! progress on the terminal (live bars, plain lines, `--quiet`, `--json`: `progress.rs`),
//! the first signal cancels, and the report at the end: printed, written to `-o`
//! (atomically, each isolated agent with its change), with every secret masked as the
//! audit log has it. A run that started always produces its results, also after Ctrl-C.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use codex_actors::audit::{AuditEvent, Redactor};
use codex_actors::delegate::AgentResolver;
use codex_actors::{new_run_id, AgentPlan, Closing, EngineError, RunConfig, RunHandle, RunReport};
use tokio::sync::mpsc;

use super::delegation;
use super::isolation::{created_record, record_changes, ChangeRecorder};
use super::plan::budgets;
use crate::cli::RunArgs;
use crate::interrupt::Interrupts;
use crate::progress::{self, Mode};
use crate::providers::record::Recorder;
use crate::resume::manifest::RunManifest;
use crate::resume::Resumed;
use crate::worktree::git::{self, Worktree};
use crate::worktree::ChangeSummary;
use crate::{atomic_file, exit, output};

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
    /// Where the run's agents run when not here: a cluster's workers (`--cluster`).
    pub remote: Option<Arc<dyn codex_actors::protocol::RemoteHost>>,
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
    config.remote = opts.remote.clone();
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
    let audit = output::relative(workspace, &config.audit_path);
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
            "Isolation: {} in git worktrees under {}/ (the others share the workspace); \
             review with `codex changes {run_id}`",
            names.join(", "),
            output::relative(
                workspace,
                &git::worktrees_root(config.audit_path.parent().unwrap_or(workspace))
            )
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
    let applied = match opts.run.apply {
        true => super::review::apply_at_end(workspace, &run_id, &report, &changes, mode)?,
        false => true,
    };
    // The summary is out; a file that could not be written is reported last, where it is
    // seen, and changes the exit status.
    let code = code.unwrap_or_else(|e| {
        unwritten.push(e);
        ExitCode::from(exit::RESULTS_NOT_WRITTEN)
    });
    for e in &unwritten {
        eprintln!("error: {e:#}");
    }
    Ok(match (unwritten.is_empty(), applied) {
        (false, _) => ExitCode::from(exit::RESULTS_NOT_WRITTEN),
        (true, false) => ExitCode::from(exit::CHANGE_CONFLICT),
        (true, true) => code,
    })
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
