//! Which working copy an attempt on a worker gets.
//!
//! An agent that may write files or run programs gets its own ([`AttemptTree`]): what it
//! leaves there is its change. A read-only agent (no `write`, no `exec`: it cannot change a
//! file) shares one copy with every other read-only attempt of the same run on this
//! worker, prepared once, when the first of them starts, and removed once none has used it
//! for [`KEEP_IDLE`]. A run of a hundred reviewers then costs one clone per worker, not a hundred.
//!
//! The table of shared copies belongs to the worker's main loop (it counts the attempts
//! using each); an attempt gets the copy's once-cell and prepares it if it is the first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use codex_actors::AgentSpec;
use tokio::sync::OnceCell;

use super::checkout::AttemptTree;
use super::Base;

/// A shared copy, prepared by the first attempt that needs it, in its own directory (a new
/// copy of the same run never reuses the directory of one being removed).
#[derive(Clone)]
pub struct SharedCell {
    cell: Arc<OnceCell<Arc<AttemptTree>>>,
    dir: PathBuf,
}

/// Whether `spec`'s agent can change the workspace (it then gets a copy of its own).
pub fn may_change(spec: &AgentSpec) -> bool {
    !spec.permissions.write.is_empty() || !spec.permissions.exec.is_empty()
}

/// An attempt's working copy.
pub enum Copy {
    /// Its own: its change is what it leaves there.
    Own(AttemptTree),
    /// Shared with the run's other read-only attempts here: it changes nothing.
    Shared(Arc<AttemptTree>),
}

impl Copy {
    /// Its own copy of `checkout` at `base`, in `dir`.
    pub async fn own(checkout: &Path, dir: &Path, base: &Base) -> Result<Self> {
        let (checkout, dir, base) = (checkout.to_owned(), dir.to_owned(), base.clone());
        let tree =
            tokio::task::spawn_blocking(move || AttemptTree::prepare(&checkout, &dir, &base))
                .await??;
        Ok(Copy::Own(tree))
    }

    /// The run's shared copy, prepared now if no attempt did yet.
    pub async fn shared(shared: &SharedCell, checkout: &Path, base: &Base) -> Result<Self> {
        let tree = (shared.cell)
            .get_or_try_init(|| async {
                let (checkout, dir, base) = (checkout.to_owned(), shared.dir.clone(), base.clone());
                let tree = tokio::task::spawn_blocking(move || {
                    AttemptTree::prepare(&checkout, &dir, &base)
                })
                .await??;
                anyhow::Ok(Arc::new(tree))
            })
            .await?;
        Ok(Copy::Shared(Arc::clone(tree)))
    }

    /// Where the agent works.
    pub fn dir(&self) -> &Path {
        match self {
            Copy::Own(tree) => &tree.dir,
            Copy::Shared(tree) => &tree.dir,
        }
    }

    /// What the attempt changed (nothing, in a shared copy).
    pub fn change(&self) -> Result<String> {
        match self {
            Copy::Own(tree) => tree.change(),
            Copy::Shared(_) => Ok(String::new()),
        }
    }

    /// Removes an own copy (a shared one goes with its last user).
    pub fn remove(self) {
        if let Copy::Own(tree) = self {
            tree.remove();
        }
    }
}

/// How long a shared copy nobody uses is kept for the run's next attempts.
pub const KEEP_IDLE: Duration = Duration::from_secs(60);

/// The shared copies of this worker, by run, with how many attempts use each.
pub struct SharedCopies {
    /// Where the copies go.
    root: PathBuf,
    by_run: HashMap<String, Entry>,
    /// Copies made so far (each gets a directory of its own).
    made: u64,
}

struct Entry {
    shared: SharedCell,
    users: usize,
    /// Since when no attempt uses it.
    idle_since: Option<Instant>,
}

impl SharedCopies {
    /// Shared copies in `root`.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            by_run: HashMap::new(),
            made: 0,
        }
    }

    /// The copy of `run` for one more attempt.
    pub fn take(&mut self, run: &str) -> SharedCell {
        if !self.by_run.contains_key(run) {
            self.made += 1;
            let shared = SharedCell {
                cell: Arc::default(),
                dir: self.root.join(format!("{run}-shared-{}", self.made)),
            };
            let entry = Entry {
                shared,
                users: 0,
                idle_since: None,
            };
            self.by_run.insert(run.to_owned(), entry);
        }
        let entry = self.by_run.get_mut(run).expect("inserted above");
        entry.users += 1;
        entry.idle_since = None;
        entry.shared.clone()
    }

    /// One attempt of `run` is done with it (at `now`).
    pub fn give_back(&mut self, run: &str, now: Instant) {
        if let Some(entry) = self.by_run.get_mut(run) {
            entry.users = entry.users.saturating_sub(1);
            if entry.users == 0 {
                entry.idle_since = Some(now);
            }
        }
    }

    /// Forgets every copy (the worker stops); returns their directories.
    pub fn all(&mut self) -> Vec<PathBuf> {
        self.by_run.drain().map(|(_, e)| e.shared.dir).collect()
    }

    /// Removes the copies nobody used for `keep` (at `now`); returns their directories,
    /// whose removal is the caller's.
    pub fn sweep(&mut self, now: Instant, keep: Duration) -> Vec<PathBuf> {
        let idle = |e: &Entry| e.idle_since.is_some_and(|t| now.duration_since(t) >= keep);
        let gone: Vec<String> = (self.by_run.iter())
            .filter(|(_, e)| idle(e))
            .map(|(run, _)| run.clone())
            .collect();
        gone.iter()
            .filter_map(|run| self.by_run.remove(run))
            .filter(|e| e.shared.cell.initialized())
            .map(|e| e.shared.dir)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_copy_lives_while_used_and_a_while_after() {
        let mut copies = SharedCopies::new(PathBuf::from("/w"));
        let t0 = Instant::now();
        let first = copies.take("r1");
        let second = copies.take("r1");
        assert!(Arc::ptr_eq(&first.cell, &second.cell), "one copy per run");
        let other = copies.take("r2");
        assert!(!Arc::ptr_eq(&first.cell, &other.cell), "runs do not share");
        copies.give_back("r1", t0);
        copies.give_back("r1", t0);
        let soon = copies.take("r1");
        assert!(
            Arc::ptr_eq(&first.cell, &soon.cell),
            "idle for less than KEEP_IDLE: kept"
        );
        copies.give_back("r1", t0);
        assert!(copies.sweep(t0 + KEEP_IDLE / 2, KEEP_IDLE).is_empty());
        copies.sweep(t0 + KEEP_IDLE, KEEP_IDLE);
        let next = copies.take("r1");
        assert!(
            !Arc::ptr_eq(&first.cell, &next.cell),
            "swept after KEEP_IDLE"
        );
        assert_ne!(
            first.dir, next.dir,
            "a new copy never reuses a directory being removed"
        );
        assert!(
            Arc::ptr_eq(&other.cell, &copies.take("r2").cell),
            "in use: never swept"
        );
    }

    #[test]
    fn only_agents_that_cannot_change_files_share() {
        let mut spec = AgentSpec::new("a", "g", 10);
        spec.permissions.read = vec!["**".into()];
        assert!(!may_change(&spec));
        spec.permissions.exec = vec!["cargo".into()];
        assert!(may_change(&spec));
        spec.permissions.exec.clear();
        spec.permissions.write = vec!["src/**".into()];
        assert!(may_change(&spec));
    }
}
