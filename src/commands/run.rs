//! `codex delegate` and `codex delegate-parallel`: their flags turned into tasks
//! ([`super::tasks`]) and run options, then the run ([`crate::assembly::run`]), which
//! checks everything before the first agent starts, shows progress and writes the results.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::tasks;
use crate::assembly::drive::RunOptions;
use crate::assembly::run::run;
use crate::cli::{DelegateArgs, DelegateParallelArgs};
use crate::interrupt::Interrupts;

/// Runs `codex delegate`; the exit code says whether the agent completed.
pub async fn delegate(
    workspace: &Path,
    args: &DelegateArgs,
    interrupts: Interrupts,
) -> Result<ExitCode> {
    let task = tasks::from_delegate(args);
    let opts = RunOptions {
        run: &args.run,
        total_budget: None,
        max_concurrency: None,
        interrupts,
        run_id: None,
        resume: None,
        worktrees: Vec::new(),
        opening: Vec::new(),
        remote: None,
    };
    run(workspace, vec![task], opts).await
}

/// Runs `codex delegate-parallel`; the exit code says whether every agent completed.
pub async fn delegate_parallel(
    workspace: &Path,
    args: &DelegateParallelArgs,
    interrupts: Interrupts,
) -> Result<ExitCode> {
    let tasks = tasks::from_parallel(args)?;
    let opts = RunOptions {
        run: &args.run,
        total_budget: args.total_budget,
        max_concurrency: args.max_concurrency,
        interrupts,
        run_id: None,
        resume: None,
        worktrees: Vec::new(),
        opening: Vec::new(),
        remote: None,
    };
    run(workspace, tasks, opts).await
}
