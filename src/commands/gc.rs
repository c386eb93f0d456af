//! `codex gc [--older-than DURATION] [--dry-run]`: removes the worktrees that ended runs
//! left behind, then `git worktree prune`s.
//!
//! A worktree is removed when its run is not running and either its change was applied
//! (the worktree outlived `codex apply`, as when its removal failed) or the run ended
//! longer ago than the retention period (`--older-than`, else `[worktrees] retention` of
//! the config file, else [`DEFAULT_RETENTION`]). A run is running while its process holds
//! the lock on its audit log ([`is_being_written`]; the kernel drops it however the
//! process ends, `SIGKILL` included), so a killed run's worktrees are collected like an
//! ended run's, and a live run's never are. When the run ended is the last write to its
//! audit log. Before a worktree is removed its change is recorded (a killed run never
//! recorded it), so nothing an agent wrote is lost: the patch stays in
//! `.codex/runs/<run>/changes/`, and each removal is a line of the run's changes log.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Result};
use codex_actors::audit::is_being_written;

use crate::definition::default_codex_home;
use crate::providers::config::Config;
use crate::worktree::ledger::{self, ChangeAction, ChangeEntry};
use crate::worktree::{git, parse_retention, DEFAULT_RETENTION};

/// Why a worktree is removed, or why it stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its run is running.
    Running,
    /// Kept: its run ended within the retention period and its change was not applied.
    Kept,
    /// Removed: its change was applied.
    Applied,
    /// Removed: its run ended longer ago than the retention period.
    PastRetention,
}

/// The verdict on a worktree of a run that is `running` or ended `age` ago, whose change
/// was `applied` or not, under `retention`.
pub fn verdict(running: bool, applied: bool, age: Duration, retention: Duration) -> Verdict {
    match (running, applied) {
        (true, _) => Verdict::Running,
        (false, true) => Verdict::Applied,
        (false, false) if age >= retention => Verdict::PastRetention,
        (false, false) => Verdict::Kept,
    }
}

/// `codex gc`.
pub fn gc(
    workspace: &Path,
    older_than: Option<&str>,
    dry_run: bool,
    config: &[String],
) -> Result<ExitCode> {
    let retention = retention(older_than, config)?;
    let mut out = std::io::stdout().lock();
    let mut removed = 0;
    for id in super::audit::run_ids(workspace)? {
        let run_dir = super::audit::runs_dir(workspace).join(&id);
        let names = git::worktree_names(&run_dir);
        if names.is_empty() {
            continue;
        }
        let audit = run_dir.join("audit.jsonl");
        let running = is_being_written(&audit);
        let age = std::fs::metadata(&audit)
            .or_else(|_| std::fs::metadata(&run_dir))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        if !running && !dry_run {
            crate::assembly::review::record_interrupted(workspace, &run_dir);
        }
        for name in names {
            let agent = name.replace('+', "/");
            let applied = run_dir
                .join("changes")
                .join(format!("{name}.applied"))
                .exists();
            let why = match verdict(running, applied, age, retention) {
                Verdict::Running => {
                    writeln!(out, "{id} {agent}: kept (its run is running)")?;
                    continue;
                }
                Verdict::Kept => continue,
                Verdict::Applied => "its change was applied",
                Verdict::PastRetention => "its run ended before the retention period",
            };
            let path = git::worktree_dir(&run_dir, &agent);
            if dry_run {
                writeln!(out, "Would remove {} ({why})", path.display())?;
                continue;
            }
            git::remove(workspace, &run_dir, &agent)?;
            let entry = ChangeEntry {
                agent: agent.clone(),
                action: ChangeAction::Collected,
                sha256: git::summaries(&run_dir)
                    .into_iter()
                    .find(|c| c.agent == agent)
                    .map(|c| c.sha256),
                files: Vec::new(),
            };
            let anchors = crate::containment::anchor_path();
            ledger::append(&run_dir, &id, &entry, anchors.as_deref())?;
            writeln!(out, "Removed {} ({why})", path.display())?;
            removed += 1;
        }
    }
    if !dry_run {
        git::git(workspace, &["worktree", "prune"])?;
        writeln!(
            out,
            "{removed} worktree(s) removed; patches kept under .codex/runs/*/changes/"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--older-than`, else `[worktrees] retention`, else [`DEFAULT_RETENTION`].
fn retention(flag: Option<&str>, overrides: &[String]) -> Result<Duration> {
    let (text, origin) = match flag {
        Some(t) => (t.to_owned(), "--older-than"),
        None => {
            let config = Config::load(default_codex_home().as_deref(), overrides)?;
            match config.worktrees.retention {
                Some(t) => (t, "[worktrees] retention"),
                None => (DEFAULT_RETENTION.to_owned(), "the default retention"),
            }
        }
    };
    parse_retention(&text).map_err(|e| anyhow!("{origin}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    proptest::proptest! {
        #[test]
        fn whatever_its_age_and_state_a_running_runs_worktree_stays(
            applied: bool, age in 0u64..10_000_000, retention in 0u64..10_000_000,
        ) {
            let v = verdict(true, applied, Duration::from_secs(age), Duration::from_secs(retention));
            proptest::prop_assert_eq!(v, Verdict::Running);
        }
    }

    #[test]
    fn a_running_runs_worktrees_are_never_removed() {
        assert_eq!(verdict(true, true, 30 * DAY, DAY), Verdict::Running);
        assert_eq!(
            verdict(true, false, 30 * DAY, Duration::ZERO),
            Verdict::Running
        );
    }

    #[test]
    fn an_applied_change_goes_at_once_and_others_after_the_retention_period() {
        assert_eq!(
            verdict(false, true, Duration::ZERO, 7 * DAY),
            Verdict::Applied
        );
        assert_eq!(verdict(false, false, 6 * DAY, 7 * DAY), Verdict::Kept);
        assert_eq!(
            verdict(false, false, 7 * DAY, 7 * DAY),
            Verdict::PastRetention
        );
    }
}
