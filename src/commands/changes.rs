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
use crate::worktree::apply::{self, Applied};
use crate::worktree::{git, render_stat, ChangeSummary};

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
        let mut changes = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir.join("changes")) {
            for entry in entries.filter_map(|e| e.ok()) {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let summary: ChangeSummary = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a change summary", path.display()))?;
                    changes.push(summary);
                }
            }
        }
        changes.sort_by(|a, b| a.agent.cmp(&b.agent));
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
        self.dir.join("changes").join(format!("{agent}.applied"))
    }

    fn applied(&self) -> Vec<ChangeSummary> {
        let applied = self
            .changes
            .iter()
            .filter(|c| self.marker(&c.agent).exists());
        applied.cloned().collect()
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
        let state = match run.marker(&c.agent).exists() {
            true => " (applied)",
            false => "",
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
    let run = RunChanges::load(workspace, run)?;
    for agent in agents {
        run.of(agent)?;
    }
    let mut out = std::io::stdout().lock();
    for agent in agents {
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
                if let Err(e) = git::remove(workspace, &run.dir, agent) {
                    eprintln!("warning: {agent}'s worktree was not removed: {e:#}");
                }
                writeln!(out, "Applied {agent}: {n} file(s) written")?;
            }
            Applied::Conflicts(conflicts) => {
                writeln!(
                    out,
                    "Conflict: {agent}'s change was not applied (your tree is unchanged):"
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
                return Ok(ExitCode::from(exit::AGENT_NOT_COMPLETED));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `codex discard RUN [AGENT]`: removes worktrees; the patches stay.
pub fn discard(workspace: &Path, run: &str, agent: Option<&str>) -> Result<ExitCode> {
    let run = RunChanges::load(workspace, run)?;
    let agents: Vec<String> = match agent {
        Some(a) => vec![a.to_owned()],
        None => std::fs::read_dir(run.dir.join("worktrees"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut out = std::io::stdout().lock();
    for agent in agents {
        if !git::worktree_dir(&run.dir, &agent).exists() {
            writeln!(out, "{agent}: no worktree in run {}", run.id)?;
            continue;
        }
        git::remove(workspace, &run.dir, &agent)?;
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
