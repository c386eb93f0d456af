//! `codex changes`, `codex apply` and `codex discard`: the review of what a run's
//! isolated agents changed (see [`crate::worktree`]).
//!
//! A run's changes are the `<agent>.json` summaries beside the patches in
//! `.codex/runs/<run>/changes/`. Applying one writes `<agent>.applied` there and removes
//! the agent's worktree; discarding removes the worktree and keeps the patch (nothing the
//! run produced is lost).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::exit;
use crate::progress::Mode;
use crate::worktree::apply::{self, Applied};
use crate::worktree::children::IntoParent;
use crate::worktree::ledger::{self, ChangeAction, ChangeEntry};
use crate::worktree::{git, render_stat, ChangeSummary};
use codex_actors::audit::is_being_written;
use codex_actors::{AgentStatus, RunReport};

/// A run's directory and its recorded changes, in agent order.
struct RunChanges {
    id: String,
    dir: PathBuf,
    changes: Vec<ChangeSummary>,
}

impl RunChanges {
    fn load(workspace: &Path, run: &str) -> Result<Self> {
        let (id, audit) = super::audit::resolve(workspace, run)?;
        let dir = audit.parent().expect("a log has a directory").to_owned();
        if !is_being_written(&audit) {
            record_interrupted(workspace, &dir);
        }
        let changes = git::summaries(&dir);
        Ok(Self { id, dir, changes })
    }

    /// The change of `agent`, or an error naming those there are.
    fn of(&self, agent: &str) -> Result<&ChangeSummary> {
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

    fn marker(&self, agent: &str) -> PathBuf {
        let name = git::file_name(agent);
        self.dir.join("changes").join(format!("{name}.applied"))
    }

    /// Appends what happened to `agent`'s change to the run's changes log.
    fn log(
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

    fn applied(&self) -> Vec<ChangeSummary> {
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

/// `codex changes RUN [AGENT]`: the diffs (colored on a terminal), `--stat` or `--json`.
pub fn show(
    workspace: &Path,
    run: &str,
    agent: Option<&str>,
    stat: bool,
    json: bool,
) -> Result<ExitCode> {
    let run = RunChanges::load(workspace, run)?;
    let chosen: Vec<&ChangeSummary> = match agent {
        Some(a) => vec![run.of(a)?],
        None => run.changes.iter().collect(),
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&chosen)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if chosen.is_empty() {
        writeln!(out, "Run {} has no recorded changes.", run.id)?;
        return Ok(ExitCode::SUCCESS);
    }
    let color = std::io::stdout().is_terminal();
    for c in chosen {
        let state = match (&c.into_parent, run.marker(&c.agent).exists()) {
            (_, true) => " (applied)",
            (Some(IntoParent::Merged { .. }), _) => " (merged into its parent's worktree)",
            (Some(IntoParent::Conflicted { .. }), _) => " (conflicted with its parent's worktree)",
            (Some(IntoParent::NotCompleted), _) => " (did not complete; not merged)",
            (None, false) => "",
        };
        writeln!(out, "=== {}{state}: {} ===", c.agent, c.patch)?;
        if stat {
            write!(out, "{}", render_stat(c))?;
            continue;
        }
        let patch = std::fs::read(workspace.join(&c.patch))
            .with_context(|| format!("cannot read the patch {}", c.patch))?;
        for line in String::from_utf8_lossy(&patch).lines() {
            writeln!(out, "{}", colored(line, color))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A diff line, green for an addition and red for a removal when `color`.
fn colored(line: &str, color: bool) -> String {
    match (color, line.chars().next()) {
        (true, Some('+')) if !line.starts_with("+++") => format!("\x1b[32m{line}\x1b[0m"),
        (true, Some('-')) if !line.starts_with("---") => format!("\x1b[31m{line}\x1b[0m"),
        _ => line.to_owned(),
    }
}

/// `codex apply RUN AGENT…`: each agent's change merged into the user's tree, all or
/// nothing; the first conflict stops, with its files and the agents involved.
pub fn apply(workspace: &Path, run: &str, agents: &[String]) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match apply_in_order(workspace, run, agents, &mut out)? {
        true => Ok(ExitCode::SUCCESS),
        false => Ok(ExitCode::from(exit::CHANGE_CONFLICT)),
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

/// `codex discard RUN [AGENT]`: removes worktrees; the patches stay.
pub fn discard(workspace: &Path, run: &str, agent: Option<&str>) -> Result<ExitCode> {
    let run = RunChanges::load(workspace, run)?;
    let agents: Vec<String> = match agent {
        Some(a) => vec![a.to_owned()],
        None => git::worktree_names(&run.dir)
            .into_iter()
            .map(|n| n.replace('+', "/"))
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    for agent in agents {
        if !git::worktree_dir(&run.dir, &agent).exists() {
            writeln!(out, "{agent}: no worktree in run {}", run.id)?;
            continue;
        }
        git::remove(workspace, &run.dir, &agent)?;
        let change = run.changes.iter().find(|c| c.agent == agent);
        run.log(&agent, ChangeAction::Discarded, change, Vec::new())?;
        writeln!(out, "Discarded {agent}'s worktree")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::colored;

    #[test]
    fn diff_lines_are_colored_only_on_a_terminal_and_headers_never() {
        assert_eq!(colored("+new", true), "\x1b[32m+new\x1b[0m");
        assert_eq!(colored("-old", true), "\x1b[31m-old\x1b[0m");
        assert_eq!(colored("+++ b/f", true), "+++ b/f");
        assert_eq!(colored("+new", false), "+new");
    }
}
