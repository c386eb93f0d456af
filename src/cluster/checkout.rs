//! The workspaces of remote attempts, in git.
//!
//! The coordinator sends a [`Base`]: its HEAD and a binary patch of everything uncommitted
//! (untracked files too, ignored ones and `.codex/runs/` not). A worker makes a detached
//! worktree of its own checkout at that commit, applies the patch and commits the result
//! locally, so that the attempt's change is exactly `git diff` from that commit to what
//! the agent left. The coordinator applies that change to the agent's root (`git apply`);
//! a change that does not apply is kept as a file and reported.
//!
//! A worker's checkout must already hold the commit (a clone of the same repository,
//! fetched): the coordinator never ships history.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::Base;
use crate::worktree::git::{self, git, git_with_input};

/// The base of the attempts of a run in `workspace` (`run_dir` holds scratch files).
pub fn base_of(workspace: &Path, run_dir: &Path) -> Result<Base> {
    if !git::is_repository_top(workspace) {
        bail!(
            "--cluster needs the workspace {} to be the top of a git repository: workers \
             start from its commit (run `git init && git add -A && git commit -m base`, \
             and clone it on each worker)",
            workspace.display()
        );
    }
    let commit = git(workspace, &["rev-parse", "--verify", "HEAD"]).with_context(|| {
        format!(
            "the workspace {} has no commit yet: commit once, and clone it on each worker",
            workspace.display()
        )
    })?;
    std::fs::create_dir_all(run_dir.join("worktrees"))?;
    let snapshot = git::snapshot(workspace, workspace, run_dir, "cluster-base")?;
    let patch = git(workspace, &["diff", "--binary", &commit, &snapshot])?;
    Ok(Base { commit, patch })
}

/// An attempt's worktree on a worker.
#[derive(Debug)]
pub struct AttemptTree {
    checkout: PathBuf,
    /// The worktree.
    pub dir: PathBuf,
    /// The local commit of the base (commit + patch).
    base: String,
}

impl AttemptTree {
    /// Makes `dir` a worktree of `checkout` at `base`.
    pub fn prepare(checkout: &Path, dir: &Path, base: &Base) -> Result<Self> {
        let commit = format!("{}^{{commit}}", base.commit);
        if git(checkout, &["cat-file", "-e", &commit]).is_err() {
            bail!(
                "commit {} is not in this worker's checkout {}: fetch it there \
                 (`git -C {} fetch <the coordinator's repository>`)",
                base.commit,
                checkout.display(),
                checkout.display()
            );
        }
        if dir.exists() {
            let _ = git(
                checkout,
                &["worktree", "remove", "--force", &dir.to_string_lossy()],
            );
            let _ = std::fs::remove_dir_all(dir);
        }
        let dir_text = dir.to_string_lossy().into_owned();
        git(
            checkout,
            &["worktree", "add", "--detach", &dir_text, &base.commit],
        )?;
        if !base.patch.is_empty() {
            git_with_input(
                dir,
                &["apply", "--binary", "--whitespace=nowarn"],
                base.patch.as_bytes(),
            )
            .context("the run's uncommitted changes do not apply to its commit here")?;
        }
        git(dir, &["add", "-A"])?;
        git(
            dir,
            &[
                "commit",
                "-q",
                "--no-verify",
                "--allow-empty",
                "-m",
                "codex: attempt base",
            ],
        )?;
        let base = git(dir, &["rev-parse", "HEAD"])?;
        Ok(Self {
            checkout: checkout.to_owned(),
            dir: dir.to_owned(),
            base,
        })
    }

    /// What the attempt changed, as a binary patch (empty: nothing).
    pub fn change(&self) -> Result<String> {
        git(&self.dir, &["add", "-A"])?;
        // The run's own files are never part of a change.
        let untrack = ["rm", "-r", "-q", "--cached", "--ignore-unmatch", ".codex"];
        git(&self.dir, &untrack)?;
        let mut patch = git(&self.dir, &["diff", "--cached", "--binary", &self.base])?;
        if !patch.is_empty() {
            patch.push('\n');
        }
        Ok(patch)
    }

    /// Removes the worktree.
    pub fn remove(self) {
        let dir = self.dir.to_string_lossy().into_owned();
        if git(&self.checkout, &["worktree", "remove", "--force", &dir]).is_err() {
            let _ = std::fs::remove_dir_all(&self.dir);
            let _ = git(&self.checkout, &["worktree", "prune"]);
        }
    }
}

/// Applies an attempt's `change` to `root`; the patch is kept at `keep` either way.
pub fn apply(root: &Path, change: &str, keep: &Path) -> Result<()> {
    if let Some(dir) = keep.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::atomic_file::write(
        keep,
        change.as_bytes(),
        crate::atomic_file::Replace::Allowed,
    )
    .with_context(|| format!("cannot keep the change at {}", keep.display()))?;
    git_with_input(
        root,
        &["apply", "--binary", "--whitespace=nowarn"],
        change.as_bytes(),
    )
    .map(|_| ())
    .with_context(|| format!("the change is kept at {}", keep.display()))
}
