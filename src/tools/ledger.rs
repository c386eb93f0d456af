//! Remembering what a plan resolved a path to, so `invoke` can refuse if it changed.
//!
//! [`Tool::invoke`](codex_actors::tool::Tool::invoke) receives the arguments again, not the
//! plan the policy approved. If a symlink is swapped between planning and running, a fresh
//! resolution would lead somewhere the policy never saw (another file inside the workspace,
//! say `.env`). So each tool keeps a ledger: `plan` records what `(agent, workspace, path)`
//! resolved to, and `invoke` re-resolves and must get the same answer.
//!
//! Several calls with the same path may be planned before any is run. If two plans for the
//! same key disagree within [`CONFLICT_WINDOW`], the key is marked conflicted and every
//! invoke for it is refused until the window has passed: we cannot tell which plan the
//! policy approved. An invoke with no recorded plan is refused too. The ledger is bounded:
//! when full, old entries are dropped, which only ever causes refusals, never permissions.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use codex_actors::tool::{ToolContext, ToolError};

use super::paths::{self, Resolved};

/// How long two disagreeing plans for the same path keep invokes for it refused.
pub const CONFLICT_WINDOW: Duration = Duration::from_secs(300);

/// Above this many entries, entries older than the window are dropped.
const MAX_ENTRIES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    agent: String,
    workspace: PathBuf,
    path: String,
}

#[derive(Debug, Clone)]
struct Entry {
    resolved: Resolved,
    planned_at: Instant,
    conflict_at: Option<Instant>,
}

/// A path checked at invoke time: the canonical workspace root and the relative path.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The canonical workspace root.
    pub root: PathBuf,
    /// The workspace-relative path (`""` for the root), as planned.
    pub rel: String,
}

/// Planned path resolutions of one tool, shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
}

impl Ledger {
    /// Resolves `raw` for a plan and records the result.
    pub fn plan(&self, ctx: &ToolContext, raw: &str) -> Result<Resolved, ToolError> {
        let root = paths::workspace_root(ctx)?;
        let resolved = paths::resolve(&root, raw)?;
        self.record(key(ctx, raw), resolved.clone(), Instant::now());
        Ok(resolved)
    }

    /// Resolves `raw` again at invoke time; refuses unless it matches the plan and is inside.
    pub fn recheck(&self, ctx: &ToolContext, raw: &str) -> Result<Checked, ToolError> {
        let root = paths::workspace_root(ctx)?;
        let now = paths::resolve(&root, raw)?;
        self.confirm(&key(ctx, raw), &now, Instant::now())?;
        let rel = now.into_inside(raw)?;
        Ok(Checked { root, rel })
    }

    fn record(&self, key: Key, resolved: Resolved, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now.duration_since(e.planned_at) < CONFLICT_WINDOW);
        }
        let entry = entries.entry(key).or_insert_with(|| Entry {
            resolved: resolved.clone(),
            planned_at: now,
            conflict_at: None,
        });
        update(entry, resolved, now);
    }

    fn confirm(&self, key: &Key, now_resolved: &Resolved, now: Instant) -> Result<(), ToolError> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = entries.get(key) else {
            return Err(ToolError::new(format!(
                "`{}` was not planned before running (internal error); call the tool again",
                key.path
            )));
        };
        if entry
            .conflict_at
            .is_some_and(|t| now.duration_since(t) < CONFLICT_WINDOW)
        {
            return Err(changed(
                &key.path,
                "while calls with it were being approved",
            ));
        }
        if &entry.resolved != now_resolved {
            return Err(changed(&key.path, "after it was approved"));
        }
        Ok(())
    }
}

fn update(entry: &mut Entry, resolved: Resolved, now: Instant) {
    let recent = now.duration_since(entry.planned_at) < CONFLICT_WINDOW;
    if entry.resolved != resolved && recent {
        entry.conflict_at = Some(now);
    } else if entry
        .conflict_at
        .is_some_and(|t| now.duration_since(t) >= CONFLICT_WINDOW)
    {
        entry.conflict_at = None;
    }
    entry.resolved = resolved;
    entry.planned_at = now;
}

fn changed(path: &str, when: &str) -> ToolError {
    ToolError::new(format!(
        "`{path}` now resolves differently than {when} (a symbolic link changed); refused. \
         Check the path with list_dir and call again later"
    ))
}

fn key(ctx: &ToolContext, raw: &str) -> Key {
    Key {
        agent: ctx.agent.clone(),
        workspace: ctx.workspace.clone(),
        path: raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    #[test]
    fn unchanged_resolution_is_confirmed() {
        let f = Fixture::new();
        f.write("a.txt", "x");
        let ledger = Ledger::default();
        ledger.plan(&f.ctx, "a.txt").unwrap();
        assert_eq!(ledger.recheck(&f.ctx, "a.txt").unwrap().rel, "a.txt");
    }

    #[test]
    fn invoke_without_plan_is_refused() {
        let f = Fixture::new();
        let err = Ledger::default().recheck(&f.ctx, "a.txt").unwrap_err();
        assert!(err.0.contains("not planned"), "{err}");
    }

    #[test]
    fn symlink_swapped_after_plan_is_refused() {
        let f = Fixture::new();
        f.write("notes.txt", "n");
        f.write(".env", "secret");
        let ledger = Ledger::default();
        ledger.plan(&f.ctx, "notes.txt").unwrap();
        std::fs::remove_file(f.root().join("notes.txt")).unwrap();
        f.symlink(&f.root().join(".env"), "notes.txt");
        let err = ledger.recheck(&f.ctx, "notes.txt").unwrap_err();
        assert!(err.0.contains("resolves differently"), "{err}");
    }

    #[test]
    fn disagreeing_plans_refuse_every_invoke() {
        let f = Fixture::new();
        f.write("real.txt", "r");
        f.write(".env", "secret");
        f.symlink(&f.root().join("real.txt"), "link");
        let ledger = Ledger::default();
        ledger.plan(&f.ctx, "link").unwrap();
        std::fs::remove_file(f.root().join("link")).unwrap();
        f.symlink(&f.root().join(".env"), "link");
        ledger.plan(&f.ctx, "link").unwrap();
        ledger.plan(&f.ctx, "link").unwrap();
        assert!(ledger.recheck(&f.ctx, "link").is_err());
    }

    #[test]
    fn plans_are_per_agent() {
        let f = Fixture::new();
        f.write("a.txt", "x");
        let ledger = Ledger::default();
        ledger.plan(&f.ctx, "a.txt").unwrap();
        let other = ToolContext {
            agent: "b".into(),
            ..f.ctx.clone()
        };
        assert!(ledger.recheck(&other, "a.txt").is_err());
    }
}
