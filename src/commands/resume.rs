//! `codex resume RUN`: continue a run that was killed or interrupted (see `crate::resume`).
//!
//! Agents that finished keep their results; the others continue from their checkpoints
//! with the budget they had left, in the same run directory and audit log. The agents'
//! definitions and models come from this invocation's flags, as for the run commands.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use codex_actors::audit::read_log;

use super::audit::resolve;
use crate::assembly::drive::RunOptions;
use crate::assembly::run::run;
use crate::assembly::task::Task;
use crate::cli::ResumeArgs;
use crate::interrupt::Interrupts;
use crate::resume::manifest::RunManifest;
use crate::resume::past::PastRun;
use crate::resume::Resumed;

/// Runs `codex resume`.
pub async fn resume(
    workspace: &Path,
    args: &ResumeArgs,
    interrupts: Interrupts,
) -> Result<ExitCode> {
    let (run_id, log) = resolve(workspace, &args.run)?;
    let run_dir = log.parent().context("a run's log is in its directory")?;
    let mut manifest = RunManifest::read(run_dir)?;
    if manifest.still_running() {
        bail!(
            "run {run_id} is still running (process {}); stop it first (Ctrl-C), then resume it",
            manifest.pid
        );
    }
    let records = read_log(&log).with_context(|| format!("cannot read {}", log.display()))?;
    let names: Vec<String> = manifest.agents.iter().map(|a| a.agent.clone()).collect();
    let past = PastRun::from_records(&records, &names);
    if past.finished {
        bail!(
            "run {run_id} finished (its audit log ends with run_finished): there is nothing to \
             resume; start a new run instead"
        );
    }
    manifest.pid = std::process::id();
    manifest.write(run_dir)?;
    let resumed = Resumed {
        run_id: run_id.clone(),
        manifest,
        past,
    };
    let tasks: Vec<Task> = resumed
        .remaining()
        .into_iter()
        .map(|(a, left)| Task {
            agent: a.agent.clone(),
            goal: Some(a.goal.clone()),
            scope: Some(a.scope.clone()),
            budget: Some(left),
            deadline: None,
        })
        .collect();
    if tasks.is_empty() {
        bail!("run {run_id} has no agent left to resume: each finished or spent its budget");
    }
    eprintln!(
        "Resuming run {run_id}: {} of {} agents, from their checkpoints",
        tasks.len(),
        resumed.manifest.agents.len()
    );
    let opts = RunOptions {
        run: &args.run_args,
        total_budget: Some(resumed.total_left()),
        max_concurrency: resumed.manifest.max_concurrency,
        interrupts,
        run_id: Some(resumed.run_id.clone()),
        resume: Some(resumed),
        worktrees: Vec::new(),
        opening: Vec::new(),
        remote: None,
    };
    run(workspace, tasks, opts).await
}
