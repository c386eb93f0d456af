//! Which working copy an attempt on a worker gets.
//!
//! An agent that may write files or run programs gets its own ([`AttemptTree`]): what it
//! leaves there is its change. A read-only agent (no `write`, no `exec`: it cannot change a
//! file) shares one copy with every other read-only attempt of the same run on this
//! worker, prepared once, when the first of them starts, and removed when the last of them
//! ends. A run of a hundred reviewers then costs one clone per worker, not a hundred.
//!
//! The table of shared copies belongs to the worker's main loop (it counts the attempts
//! using each); an attempt gets the copy's once-cell and prepares it if it is the first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The shared copies of this worker, by run, with how many attempts use each.
pub struct SharedCopies {
    /// Where the copies go.
    root: PathBuf,
    by_run: HashMap<String, (SharedCell, usize)>,
    /// Copies made so far (each gets a directory of its own).
    made: u64,
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
            self.by_run.insert(run.to_owned(), (shared, 0));
        }
        let (shared, users) = self.by_run.get_mut(run).expect("inserted above");
        *users += 1;
        shared.clone()
    }

    /// One attempt of `run` is done with it; the last one removes it.
    pub fn give_back(&mut self, run: &str) {
        let Some((_, users)) = self.by_run.get_mut(run) else {
            return;
        };
        *users -= 1;
        if *users > 0 {
            return;
        }
        if let Some((shared, _)) = self.by_run.remove(run) {
            if shared.cell.initialized() {
                tokio::task::spawn_blocking(move || std::fs::remove_dir_all(shared.dir));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_copy_lives_while_one_attempt_of_its_run_uses_it() {
        let mut copies = SharedCopies::new(PathBuf::from("/w"));
        let first = copies.take("r1");
        let second = copies.take("r1");
        assert!(Arc::ptr_eq(&first.cell, &second.cell), "one copy per run");
        let other = copies.take("r2");
        assert!(!Arc::ptr_eq(&first.cell, &other.cell), "runs do not share");
        copies.give_back("r1");
        let again = copies.take("r1");
        assert!(Arc::ptr_eq(&first.cell, &again.cell), "still in use: kept");
        copies.give_back("r1");
        copies.give_back("r1");
        let next = copies.take("r1");
        assert!(
            !Arc::ptr_eq(&first.cell, &next.cell),
            "the last user gave it back"
        );
        assert_ne!(
            first.dir, next.dir,
            "a new copy never reuses a directory being removed"
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
