//! `codex changes`, `codex apply` and `codex discard`: the review of what a run's
//! isolated agents changed (see [`crate::worktree`]).
//!
//! A run's changes are the `<agent>.json` summaries beside the patches in
//! `.codex/runs/<run>/changes/`. Applying one writes `<agent>.applied` there and removes
//! the agent's worktree; discarding removes the worktree and keeps the patch (nothing the
//! run produced is lost).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::assembly::review::{apply_in_order, RunChanges};
use crate::exit;
use crate::worktree::children::IntoParent;
use crate::worktree::ledger::ChangeAction;
use crate::worktree::{git, render_stat, ChangeSummary};

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
