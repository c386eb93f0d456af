//! The `git` program: an agent's worktree, its base commit, and its change at the end.
//!
//! Every call names its repository with `-C`, runs with a fixed identity (the base and
//! result commits must be made on a machine with no `user.name`), and never touches the
//! user's index, HEAD or branches: the base is built in a throwaway index file and made with
//! `commit-tree`, worktrees are detached.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{parse_numstat, ChangeSummary};

/// What the base commit leaves out: the runs (the worktrees themselves live there).
const RUNS_EXCLUDED: &str = "--exclude=/.codex/runs/";

/// Runs `git -C dir args…` with `index` as its index file if given; its stdout, or an
/// error quoting git's stderr.
fn git_in(dir: &Path, index: Option<&Path>, args: &[&str]) -> Result<Vec<u8>> {
    git_fed(dir, index, args, &[])
}

/// [`git_in`] with `input` on its stdin.
fn git_fed(dir: &Path, index: Option<&Path>, args: &[&str], input: &[u8]) -> Result<Vec<u8>> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    for (k, v) in [
        ("GIT_AUTHOR_NAME", "codex"),
        ("GIT_AUTHOR_EMAIL", "codex@localhost"),
        ("GIT_COMMITTER_NAME", "codex"),
        ("GIT_COMMITTER_EMAIL", "codex@localhost"),
    ] {
        cmd.env(k, v);
    }
    if let Some(index) = index {
        cmd.env("GIT_INDEX_FILE", index);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .context("could not run `git` (is it installed and on PATH?)")?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    // Fed from a thread: git may write before it has read all of its input.
    let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let out = child.wait_with_output().context("`git` did not finish")?;
    let _ = feeder.join();
    if !out.status.success() {
        bail!(
            "`git {}` in {} failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// [`git_in`] with the repository's own index, as text without the final newline.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = git_in(dir, None, args)?;
    Ok(String::from_utf8_lossy(&out).trim_end().to_owned())
}

/// Whether `workspace` is the top directory of a git repository's working tree.
pub fn is_repository_top(workspace: &Path) -> bool {
    let Ok(top) = git(workspace, &["rev-parse", "--show-toplevel"]) else {
        return false;
    };
    match (Path::new(&top).canonicalize(), workspace.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// An agent's worktree.
#[derive(Debug, Clone)]
pub struct Worktree {
    /// Its directory.
    pub path: PathBuf,
    /// Its base commit.
    pub base: String,
}

/// The worktree directory of `agent` in the run directory `run_dir`.
pub fn worktree_dir(run_dir: &Path, agent: &str) -> PathBuf {
    run_dir.join("worktrees").join(agent)
}

/// Creates `agent`'s worktree at HEAD plus the user's uncommitted changes, committed there
/// as its base (also written to `worktrees/.<agent>.base`). The user's index and HEAD are
/// left as they were. A worktree the run already has (a resumed run) is taken up again.
pub fn create(workspace: &Path, run_dir: &Path, agent: &str) -> Result<Worktree> {
    let path = worktree_dir(run_dir, agent);
    let base_file = run_dir.join("worktrees").join(format!(".{agent}.base"));
    if let (true, Ok(base)) = (path.is_dir(), std::fs::read_to_string(&base_file)) {
        let base = base.trim().to_owned();
        return Ok(Worktree { path, base });
    }
    std::fs::create_dir_all(run_dir.join("worktrees"))
        .with_context(|| format!("cannot create {}", run_dir.join("worktrees").display()))?;
    let base = snapshot(workspace, run_dir, agent)?;
    let target = path.to_string_lossy();
    git(
        workspace,
        &["worktree", "add", "--quiet", "--detach", &target, &base],
    )
    .with_context(|| format!("agent `{agent}`: could not create its worktree"))?;
    crate::atomic_file::write(
        &base_file,
        base.as_bytes(),
        crate::atomic_file::Replace::Allowed,
    )?;
    Ok(Worktree { path, base })
}

/// The commit of the workspace as the user has it: HEAD's tree updated with every
/// tracked and untracked, not ignored file (a copy of the user's index, so unchanged
/// files are not hashed again).
fn snapshot(workspace: &Path, run_dir: &Path, agent: &str) -> Result<String> {
    let index = run_dir.join("worktrees").join(format!(".{agent}.index"));
    let real = git(
        workspace,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
    )?;
    if Path::new(&real).is_file() {
        std::fs::copy(&real, &index).context("cannot copy the git index")?;
    }
    let head = git(workspace, &["rev-parse", "--verify", "--quiet", "HEAD"]).ok();
    // Tracked files as they are now, then the untracked ones that are not ignored.
    git_in(workspace, Some(&index), &["add", "-u", "--", "."])?;
    let untracked = git_in(
        workspace,
        None,
        &[
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            RUNS_EXCLUDED,
        ],
    )?;
    let args = ["update-index", "--add", "-z", "--stdin"];
    git_fed(workspace, Some(&index), &args, &untracked)?;
    let tree = String::from_utf8_lossy(&git_in(workspace, Some(&index), &["write-tree"])?)
        .trim()
        .to_owned();
    let _ = std::fs::remove_file(&index);
    let message = format!("codex: base of agent {agent} (HEAD and uncommitted changes)");
    let mut args = vec!["commit-tree", tree.as_str(), "-m", message.as_str()];
    if let Some(head) = head.as_deref() {
        args.extend(["-p", head]);
    }
    git(workspace, &args)
}

/// Commits what `agent` left in its worktree on top of its base, and stores the change as
/// `<run_dir>/changes/<agent>.patch` with its summary (`<agent>.json`).
pub fn record_change(
    workspace: &Path,
    run_dir: &Path,
    agent: &str,
    worktree: &Worktree,
) -> Result<ChangeSummary> {
    let wt = &worktree.path;
    git(wt, &["add", "-A", "--", "."])?;
    let tree = git(wt, &["write-tree"])?;
    let message = format!("codex: change of agent {agent}");
    let result = git(
        wt,
        &["commit-tree", &tree, "-p", &worktree.base, "-m", &message],
    )?;
    let patch = git_in(
        wt,
        None,
        &["diff", "--no-renames", "--binary", &worktree.base, &result],
    )?;
    let numstat = git(
        wt,
        &["diff", "--no-renames", "--numstat", &worktree.base, &result],
    )?;
    let files = parse_numstat(&numstat);
    let dir = run_dir.join("changes");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let patch_path = dir.join(format!("{agent}.patch"));
    crate::atomic_file::write(&patch_path, &patch, crate::atomic_file::Replace::Allowed)?;
    let summary = ChangeSummary {
        agent: agent.to_owned(),
        base: worktree.base.clone(),
        result,
        sha256: hex::encode(Sha256::digest(&patch)),
        patch: crate::output::relative(workspace, &patch_path),
        added: files.iter().filter_map(|f| f.added).sum(),
        removed: files.iter().filter_map(|f| f.removed).sum(),
        files,
    };
    let json = serde_json::to_string_pretty(&summary)? + "\n";
    crate::atomic_file::write(
        &dir.join(format!("{agent}.json")),
        json.as_bytes(),
        crate::atomic_file::Replace::Allowed,
    )?;
    Ok(summary)
}

/// Removes `agent`'s worktree (its commits stay in the object store until git's gc).
pub fn remove(workspace: &Path, run_dir: &Path, agent: &str) -> Result<()> {
    let path = worktree_dir(run_dir, agent);
    if path.exists() {
        git(
            workspace,
            &["worktree", "remove", "--force", &path.to_string_lossy()],
        )?;
    }
    Ok(())
}

/// The bytes of `path` at `commit`, `None` when it does not exist there.
pub fn blob(workspace: &Path, commit: &str, path: &str) -> Result<Option<Vec<u8>>> {
    let spec = format!("{commit}:{path}");
    if git(workspace, &["cat-file", "-e", &spec]).is_err() {
        return Ok(None);
    }
    git_in(workspace, None, &["cat-file", "blob", &spec]).map(Some)
}
