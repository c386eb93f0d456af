//! The workspaces of remote attempts, in git.
//!
//! The coordinator sends a [`Base`]: its HEAD and a binary patch of everything uncommitted
//! (untracked files too, ignored ones and `.codex/runs/` not). A worker makes a shared
//! clone of its own checkout (`git clone --shared`: the checkout's objects are borrowed,
//! not copied, and each attempt has its own repository, so attempts prepared at once do
//! not race on one repository's worktree list), checks out that commit, applies the
//! patch and commits the result locally, so that the attempt's change is exactly `git diff` from that commit to what
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
    let diff = ["diff", "--binary", &commit, &snapshot];
    let patch = git::git_text(workspace, &diff, "an uncommitted change of the workspace")?;
    Ok(Base { commit, patch })
}

/// An attempt's working copy on a worker.
#[derive(Debug)]
pub struct AttemptTree {
    /// The working copy.
    pub dir: PathBuf,
    /// The local commit of the base (commit + patch).
    base: String,
}

impl AttemptTree {
    /// Makes `dir` a working copy of `checkout` at `base`.
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
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {} for the attempt", dir.display()))?;
        }
        let (from, to) = (checkout.to_string_lossy(), dir.to_string_lossy());
        git(
            checkout,
            &["clone", "-q", "--shared", "--no-checkout", &from, &to],
        )?;
        git(dir, &["checkout", "-q", "--detach", &base.commit])?;
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
            dir: dir.to_owned(),
            base,
        })
    }

    /// What the attempt changed, as a binary patch (empty: nothing).
    pub fn change(&self) -> Result<String> {
        git(&self.dir, &["add", "-A"])?;
        // The run's own files (`.codex/`) are never part of a change.
        let diff = [
            "diff",
            "--cached",
            "--binary",
            &self.base,
            "--",
            ".",
            ":(exclude).codex",
        ];
        git::git_text(&self.dir, &diff, "the attempt's change")
    }

    /// Removes the working copy.
    pub fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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
