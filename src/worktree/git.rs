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

/// `git -C dir args…`'s whole stdout, as text (a patch keeps its final newline); output
/// that is not UTF-8 is an error naming `what`.
pub fn git_text(dir: &Path, args: &[&str], what: &str) -> Result<String> {
    let out = git_in(dir, None, args)?;
    String::from_utf8(out).map_err(|_| {
        anyhow::anyhow!("{what} is not UTF-8 text (a file in another encoding): commit it first")
    })
}

/// [`git`] with `input` on git's stdin.
pub fn git_with_input(dir: &Path, args: &[&str], input: &[u8]) -> Result<String> {
    let out = git_fed(dir, None, args, input)?;
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

/// The name of `agent`'s files (worktree directory, patch, summary): its run name with
/// each `/` of a delegated agent's lineage made `+` (`lead/test-gen#1` → `lead+test-gen#1`).
/// Agent names are `[a-z0-9][a-z0-9_-]*`, so the mapping back (`+` → `/`) is exact.
pub fn file_name(agent: &str) -> String {
    agent.replace('/', "+")
}

/// Where the run `run_dir` keeps what it knows of its worktrees (their bases, and where
/// they are when elsewhere): `<run_dir>/worktrees/`.
fn meta_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("worktrees")
}

/// The directory holding the worktrees of the run `run_dir`: `<run_dir>/worktrees/`, or
/// the place recorded by [`place_worktrees`] when the configuration put them elsewhere.
pub fn worktrees_root(run_dir: &Path) -> PathBuf {
    match std::fs::read_to_string(meta_dir(run_dir).join(LOCATION_FILE)) {
        Ok(dir) if !dir.trim().is_empty() => PathBuf::from(dir.trim_end_matches('\n')),
        _ => meta_dir(run_dir),
    }
}

/// The file of `<run_dir>/worktrees/` naming where the run's worktrees are, when not there.
const LOCATION_FILE: &str = ".location";

/// Puts the worktrees of the run `run_dir` (whose id is its directory's name) under
/// `dir/<run>/` instead of `<run_dir>/worktrees/` (`[worktrees] dir` of the config file),
/// recorded so every later command finds them. A run that already has a place (a resumed
/// run) keeps it.
pub fn place_worktrees(run_dir: &Path, dir: &Path) -> Result<()> {
    let file = meta_dir(run_dir).join(LOCATION_FILE);
    if file.exists() {
        return Ok(());
    }
    let run = run_dir.file_name().context("a run directory has a name")?;
    let place = std::path::absolute(dir.join(run))
        .with_context(|| format!("[worktrees] dir {}: not a usable path", dir.display()))?;
    std::fs::create_dir_all(&place).with_context(|| {
        format!(
            "[worktrees] dir: cannot create {} (choose a writable directory)",
            place.display()
        )
    })?;
    std::fs::create_dir_all(meta_dir(run_dir))?;
    let text = place.to_string_lossy().into_owned();
    crate::atomic_file::write(&file, text.as_bytes(), crate::atomic_file::Replace::Allowed)?;
    Ok(())
}

/// The worktree directory of `agent` in the run directory `run_dir`.
pub fn worktree_dir(run_dir: &Path, agent: &str) -> PathBuf {
    worktrees_root(run_dir).join(file_name(agent))
}

/// The agents (by file name) that have a worktree directory in the run `run_dir`.
pub fn worktree_names(run_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(worktrees_root(run_dir))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Creates `agent`'s worktree at HEAD plus the user's uncommitted changes, committed there
/// as its base (also written to `worktrees/.<agent>.base`). The user's index and HEAD are
/// left as they were. A worktree the run already has (a resumed run) is taken up again.
pub fn create(workspace: &Path, run_dir: &Path, agent: &str) -> Result<Worktree> {
    create_from(workspace, workspace, run_dir, agent)
}

/// [`create`] from `source`: the workspace, or the worktree of a delegating agent (its
/// child starts from it as it is, uncommitted edits included).
pub fn create_from(
    workspace: &Path,
    source: &Path,
    run_dir: &Path,
    agent: &str,
) -> Result<Worktree> {
    let path = worktree_dir(run_dir, agent);
    let base_file = meta_dir(run_dir).join(format!(".{}.base", file_name(agent)));
    if let (true, Ok(base)) = (path.is_dir(), std::fs::read_to_string(&base_file)) {
        let base = base.trim().to_owned();
        return Ok(Worktree { path, base });
    }
    std::fs::create_dir_all(meta_dir(run_dir))
        .with_context(|| format!("cannot create {}", meta_dir(run_dir).display()))?;
    let base = snapshot(workspace, source, run_dir, agent)?;
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

/// The commit of `source` (the user's workspace, or a delegating agent's worktree) as it
/// is: its HEAD's tree updated with every tracked and untracked, not ignored file (a copy
/// of its index, so unchanged files are not hashed again).
pub fn snapshot(workspace: &Path, source: &Path, run_dir: &Path, agent: &str) -> Result<String> {
    let index = meta_dir(run_dir).join(format!(".{}.index", file_name(agent)));
    let real = git(
        source,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
    )?;
    if Path::new(&real).is_file() {
        std::fs::copy(&real, &index).context("cannot copy the git index")?;
    }
    let head = git(source, &["rev-parse", "--verify", "--quiet", "HEAD"]).ok();
    // Tracked files as they are now, then the untracked ones that are not ignored.
    // No pathspec: `.` matches nothing in a repository without tracked files.
    git_in(source, Some(&index), &["add", "-u"])?;
    let mut listing = vec![
        "ls-files".to_owned(),
        "-z".to_owned(),
        "--others".to_owned(),
        "--exclude-standard".to_owned(),
        RUNS_EXCLUDED.to_owned(),
    ];
    // Worktrees placed inside the workspace by the configuration are not the user's work.
    if let Ok(inside) = worktrees_root(run_dir).strip_prefix(workspace) {
        listing.push(format!("--exclude=/{}/", inside.display()));
    }
    let listing: Vec<&str> = listing.iter().map(String::as_str).collect();
    let untracked = git_in(source, None, &listing)?;
    let args = ["update-index", "--add", "-z", "--stdin"];
    git_fed(source, Some(&index), &args, &untracked)?;
    let tree = String::from_utf8_lossy(&git_in(source, Some(&index), &["write-tree"])?)
        .trim()
        .to_owned();
    let _ = std::fs::remove_file(&index);
    let message = match source == workspace {
        true => format!("codex: base of agent {agent} (HEAD and uncommitted changes)"),
        false => format!("codex: base of agent {agent} (its parent's worktree)"),
    };
    let mut args = vec!["commit-tree", tree.as_str(), "-m", message.as_str()];
    if let Some(head) = head.as_deref() {
        args.extend(["-p", head]);
    }
    git(source, &args)
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
    git(wt, &["add", "-A"])?;
    // A child codex process run in the worktree keeps its own run there: not a change.
    let runs = [
        "rm",
        "-r",
        "-q",
        "--cached",
        "--ignore-unmatch",
        "--",
        ".codex/runs",
    ];
    git(wt, &runs)?;
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
    let patch_path = dir.join(format!("{}.patch", file_name(agent)));
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
        into_parent: None,
    };
    write_summary(run_dir, &summary)?;
    Ok(summary)
}

/// Writes `summary` as `<run_dir>/changes/<agent>.json` (atomically).
pub fn write_summary(run_dir: &Path, summary: &ChangeSummary) -> Result<()> {
    let json = serde_json::to_string_pretty(summary)? + "\n";
    crate::atomic_file::write(
        &summary_path(run_dir, &summary.agent),
        json.as_bytes(),
        crate::atomic_file::Replace::Allowed,
    )?;
    Ok(())
}

/// Where the change summary of `agent` is stored.
pub fn summary_path(run_dir: &Path, agent: &str) -> PathBuf {
    run_dir
        .join("changes")
        .join(format!("{}.json", file_name(agent)))
}

/// Every change summary stored in the run `run_dir`, by agent name (one that does not
/// parse is skipped with a warning).
pub fn summaries(run_dir: &Path) -> Vec<ChangeSummary> {
    let mut changes = Vec::new();
    let Ok(entries) = std::fs::read_dir(run_dir.join("changes")) else {
        return changes;
    };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let parsed = std::fs::read_to_string(&path)
            .map_err(anyhow::Error::from)
            .and_then(|t| Ok(serde_json::from_str::<ChangeSummary>(&t)?));
        match parsed {
            Ok(summary) => changes.push(summary),
            Err(e) => eprintln!("warning: {} is not a change summary: {e}", path.display()),
        }
    }
    changes.sort_by(|a, b| a.agent.cmp(&b.agent));
    changes
}

/// The worktree `agent` has in the run `run_dir`, if it has one (with its base).
pub fn existing(run_dir: &Path, agent: &str) -> Option<Worktree> {
    let path = worktree_dir(run_dir, agent);
    let base_file = meta_dir(run_dir).join(format!(".{}.base", file_name(agent)));
    let base = std::fs::read_to_string(base_file).ok()?.trim().to_owned();
    path.is_dir().then_some(Worktree { path, base })
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
