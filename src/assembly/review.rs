//! Reviewing a run's changes: loading what a run recorded (recording, first, the changes
//! of a run that was killed), and applying agents' changes to the user's tree in order,
//! all or nothing per agent, stopping at the first conflict. Used by `codex apply`,
//! `codex changes`, `codex gc` and the run commands' `--apply`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use codex_actors::audit::is_being_written;
use codex_actors::{AgentStatus, RunReport};

use crate::progress::Mode;
use crate::worktree::apply::{self, Applied};
use crate::worktree::ledger::{self, ChangeAction, ChangeEntry};
use crate::worktree::{git, ChangeSummary};

/// A run's directory and its recorded changes, in agent order.
pub struct RunChanges {
    /// The run's id.
    pub id: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its recorded changes.
    pub changes: Vec<ChangeSummary>,
}

impl RunChanges {
    /// The run `run` (see [`crate::runs::resolve`]) of `workspace`.
    pub fn load(workspace: &Path, run: &str) -> Result<Self> {
        let (id, audit) = crate::runs::resolve(workspace, run)?;
        let dir = audit.parent().expect("a log has a directory").to_owned();
        if !is_being_written(&audit) {
            record_interrupted(workspace, &dir);
        }
        let changes = git::summaries(&dir);
        Ok(Self { id, dir, changes })
    }

    /// The change of `agent`, or an error naming those there are.
    pub fn of(&self, agent: &str) -> Result<&ChangeSummary> {
        if let Some(c) = self.changes.iter().find(|c| c.agent == agent) {
            return Ok(c);
        }
        let known: Vec<&str> = self.changes.iter().map(|c| c.agent.as_str()).collect();
        match known.is_empty() {
            true => bail!(
                "run {} has no recorded changes (its agents shared the workspace, or it \
                 ended before recording them)",
                self.id
            ),
            false => bail!(
                "run {} has no change of agent `{agent}`; it has changes of: {}",
                self.id,
                known.join(", ")
            ),
        }
    }

    /// The file that says `agent`'s change was applied.
    pub fn marker(&self, agent: &str) -> PathBuf {
        let name = git::file_name(agent);
        self.dir.join("changes").join(format!("{name}.applied"))
    }

    /// Appends what happened to `agent`'s change to the run's changes log.
    pub fn log(
        &self,
        agent: &str,
        action: ChangeAction,
        change: Option<&ChangeSummary>,
        files: Vec<String>,
    ) -> Result<()> {
        let entry = ChangeEntry {
            agent: agent.to_owned(),
            action,
            sha256: change.map(|c| c.sha256.clone()),
            files,
        };
        let anchors = crate::containment::anchor_path();
        ledger::append(&self.dir, &self.id, &entry, anchors.as_deref())
    }

    /// The changes applied so far.
    pub fn applied(&self) -> Vec<ChangeSummary> {
        let applied = self
            .changes
            .iter()
            .filter(|c| self.marker(&c.agent).exists());
        applied.cloned().collect()
    }
}

/// Records the change of each worktree of the run `run_dir` that has none: its run was
/// killed (it is not running: `is_being_written` is false), so what its agents wrote is
/// listed, applied or collected like any change. One that cannot be recorded is a warning.
pub fn record_interrupted(workspace: &Path, run_dir: &Path) {
    for name in git::worktree_names(run_dir) {
        let agent = name.replace('+', "/");
        if git::summary_path(run_dir, &agent).exists() {
            continue;
        }
        let Some(worktree) = git::existing(run_dir, &agent) else {
            continue;
        };
        match git::record_change(workspace, run_dir, &agent, &worktree) {
            Ok(_) => eprintln!(
                "note: recorded the change of `{agent}` from its worktree (its run did not end)"
            ),
            Err(e) => eprintln!("warning: `{agent}`: its change could not be recorded: {e:#}"),
        }
    }
}

/// Applies the changes of `agents` of `run` in order, telling `out`; `false` when one
/// conflicted (nothing of it, nor of the agents after it, was written).
pub fn apply_in_order(
    workspace: &Path,
    run: &str,
    agents: &[String],
    out: &mut impl Write,
) -> Result<bool> {
    let run = RunChanges::load(workspace, run)?;
    for agent in agents {
        run.of(agent)?;
    }
    for (i, agent) in agents.iter().enumerate() {
        let change = run.of(agent)?;
        if run.marker(agent).exists() {
            writeln!(out, "{agent}: already applied; skipped")?;
            continue;
        }
        match apply::apply(workspace, change, &run.applied())? {
            Applied::Clean(n) => {
                crate::atomic_file::write(
                    &run.marker(agent),
                    change.sha256.as_bytes(),
                    crate::atomic_file::Replace::Allowed,
                )?;
                let files = change.files.iter().map(|f| f.path.clone()).collect();
                run.log(agent, ChangeAction::Applied, Some(change), files)?;
                if let Err(e) = git::remove(workspace, &run.dir, agent) {
                    eprintln!("warning: {agent}'s worktree was not removed: {e:#}");
                }
                writeln!(out, "Applied {agent}: {n} file(s) written")?;
            }
            Applied::Conflicts(conflicts) => {
                let files = conflicts.iter().map(|c| c.path.clone()).collect();
                run.log(agent, ChangeAction::Conflicted, Some(change), files)?;
                writeln!(
                    out,
                    "Conflict: {agent}'s change was not applied (your tree is unchanged by it):"
                )?;
                for c in conflicts {
                    let with = match c.applied_by.is_empty() {
                        true => "your tree changed these lines since its base".to_owned(),
                        false => {
                            format!("overlaps the applied change of {}", c.applied_by.join(", "))
                        }
                    };
                    writeln!(out, "  {}: {agent}'s change {with}", c.path)?;
                }
                writeln!(
                    out,
                    "Its patch: {} (`codex changes {} {agent}`)",
                    change.patch, run.id
                )?;
                let rest = &agents[i..];
                writeln!(
                    out,
                    "Not applied: {}. Once those lines are settled in your tree, continue with \
                     `codex apply {} {}`{}",
                    rest.join(", "),
                    run.id,
                    rest.join(" "),
                    match rest.len() > 1 {
                        true => format!(
                            " (or `codex apply {} {}` to skip {agent})",
                            run.id,
                            rest[1..].join(" ")
                        ),
                        false => String::new(),
                    }
                )?;
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// `--apply` of the run commands: applies the change of each of the run's own agents that
/// completed, in the report's order, stopping at the first conflict (told on stdout, or
/// stderr under `--json`, with how to continue); `false` when one conflicted.
pub fn apply_at_end(
    workspace: &Path,
    run_id: &str,
    report: &RunReport,
    changes: &[ChangeSummary],
    mode: Mode,
) -> Result<bool> {
    match mode {
        Mode::Json => apply_completed(workspace, run_id, report, changes, &mut std::io::stderr()),
        _ => apply_completed(workspace, run_id, report, changes, &mut std::io::stdout()),
    }
}

/// [`apply_at_end`], told to `out`.
fn apply_completed(
    workspace: &Path,
    run_id: &str,
    report: &RunReport,
    changes: &[ChangeSummary],
    out: &mut impl Write,
) -> Result<bool> {
    let completed: Vec<String> = report
        .agents
        .iter()
        .filter(|a| a.status == AgentStatus::Completed && a.parent.is_none())
        .filter(|a| changes.iter().any(|c| c.agent == a.agent))
        .map(|a| a.agent.clone())
        .collect();
    let skipped: Vec<&str> = changes
        .iter()
        .filter(|c| !completed.contains(&c.agent))
        .map(|c| c.agent.as_str())
        .collect();
    if !skipped.is_empty() {
        writeln!(
            out,
            "--apply: not applying {} (did not complete; `codex changes {run_id}` shows it)",
            skipped.join(", ")
        )?;
    }
    if completed.is_empty() {
        return Ok(true);
    }
    writeln!(out, "--apply: applying {} in order", completed.join(", "))?;
    apply_in_order(workspace, run_id, &completed, out)
}
