//! Worktree isolation of a run's agents: which agents get a git worktree
//! ([`crate::worktree::choose`]), creating them before the run (a resumed run finds its
//! own again), and recording each isolated agent's change when the run ends, in the
//! engine's closing step so the audit log has the change's hash before `run_finished`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use codex_actors::audit::{AuditEvent, WorktreeAction};
use codex_actors::{AgentPlan, Closing};

use crate::cli::RunArgs;
use crate::definition::{AgentDefinition, WriteAccess};
use crate::worktree::children::ChildWorktrees;
use crate::worktree::git::{self, Worktree};
use crate::worktree::{self as isolation, ChangeSummary, Isolation};

/// Each agent's isolation ([`isolation::choose`]): `--isolation`, its definition's
/// `isolation:`, or the default for this workspace and what the agent may do.
pub fn isolations(
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
pub fn isolate(
    workspace: &Path,
    run_id: &str,
    plans: &mut [AgentPlan],
    isolations: &[Isolation],
    run: &RunArgs,
) -> Result<Vec<(String, Worktree)>> {
    let run_dir = workspace.join(".codex/runs").join(run_id);
    if isolations.contains(&Isolation::Worktree) {
        place_as_configured(workspace, &run_dir, &run.models.config)?;
    }
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
pub fn record_changes(
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
pub fn created_record((agent, worktree): &(String, Worktree)) -> AuditEvent {
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
pub struct ChangeRecorder {
    pub workspace: PathBuf,
    pub run_id: String,
    pub worktrees: Vec<(String, Worktree)>,
    /// The changes, for `-o` and the summary; `None` until recorded.
    pub recorded: std::sync::Mutex<Option<Vec<ChangeSummary>>>,
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
        let children = ChildWorktrees::new(&self.workspace, &self.run_id);
        let children = tokio::task::spawn_blocking(move || children.closing_records())
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
            .chain(children)
            .collect();
        if let Ok(mut slot) = self.recorded.lock() {
            *slot = Some(changes);
        }
        records
    }
}

/// Puts the worktrees of the run `run_dir` where `[worktrees] dir` of the config file
/// (with the `-c` `overrides`) says, if it says (a relative place is in `workspace`).
pub fn place_as_configured(
    workspace: &std::path::Path,
    run_dir: &std::path::Path,
    overrides: &[String],
) -> anyhow::Result<()> {
    let home = crate::definition::default_codex_home();
    let config = crate::providers::config::Config::load(home.as_deref(), overrides)?;
    match config.worktrees.dir {
        Some(dir) => git::place_worktrees(run_dir, &workspace.join(dir)),
        None => Ok(()),
    }
}
