//! Applying an agent's change to the user's working tree: a three-way merge per file
//! (the agent's base, the user's file as it is now, the agent's result), all or nothing.
//!
//! Every file of the change is merged in memory first; only when none conflicts is
//! anything written (each file atomically). A conflict leaves the user's tree untouched
//! and is reported per file. [`decide`] is the pure part: what a file's three versions
//! call for before any text merge.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{git, ChangeSummary};

/// What one file of a change needs, from its three versions (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The user's file already is what the agent made (or the agent left it as it was).
    Nothing,
    /// The user has not changed it since the agent's base: take the agent's version
    /// (`None`: delete it).
    Take(Option<Vec<u8>>),
    /// Both changed a text file: merge the lines.
    MergeText,
    /// Both changed it and the changes cannot be merged (a deletion or creation on one
    /// side, a binary file).
    Conflict,
}

/// What a file with versions `base`, `ours` (the user's now) and `theirs` (the agent's)
/// calls for.
pub fn decide(base: Option<&[u8]>, ours: Option<&[u8]>, theirs: Option<&[u8]>) -> Decision {
    if ours == theirs || base == theirs {
        return Decision::Nothing;
    }
    if ours == base {
        return Decision::Take(theirs.map(<[u8]>::to_vec));
    }
    match (base, ours, theirs) {
        (Some(b), Some(o), Some(t)) if ![b, o, t].iter().any(|x| x.contains(&0)) => {
            Decision::MergeText
        }
        _ => Decision::Conflict,
    }
}

/// A file of the change that could not be merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Workspace-relative path.
    pub path: String,
    /// The other agents of the run, already applied, whose changes touched it.
    pub applied_by: Vec<String>,
}

/// The outcome of applying one agent's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Every file was written; how many.
    Clean(usize),
    /// Nothing was written; these files conflict.
    Conflicts(Vec<Conflict>),
}

/// Applies `summary`'s change to `workspace`; `applied` are the summaries of the run's
/// agents already applied (to name them in conflicts).
pub fn apply(
    workspace: &Path,
    summary: &ChangeSummary,
    applied: &[ChangeSummary],
) -> Result<Applied> {
    let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    let mut conflicts = Vec::new();
    for file in &summary.files {
        let path = &file.path;
        let base = git::blob(workspace, &summary.base, path)?;
        let theirs = git::blob(workspace, &summary.result, path)?;
        let ours = read_user_file(workspace, path)?;
        let merged = match decide(base.as_deref(), ours.as_deref(), theirs.as_deref()) {
            Decision::Nothing => continue,
            Decision::Take(bytes) => Some(bytes),
            Decision::MergeText => merge_text(
                base.as_deref().unwrap_or_default(),
                ours.as_deref().unwrap_or_default(),
                theirs.as_deref().unwrap_or_default(),
            )?
            .map(Some),
            Decision::Conflict => None,
        };
        match merged {
            Some(bytes) => writes.push((path.clone(), bytes)),
            None => conflicts.push(Conflict {
                path: path.clone(),
                applied_by: applied
                    .iter()
                    .filter(|a| a.agent != summary.agent && a.files.iter().any(|f| &f.path == path))
                    .map(|a| a.agent.clone())
                    .collect(),
            }),
        }
    }
    if !conflicts.is_empty() {
        return Ok(Applied::Conflicts(conflicts));
    }
    for (path, bytes) in &writes {
        let target = workspace.join(path);
        match bytes {
            Some(bytes) => {
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                crate::atomic_file::write(&target, bytes, crate::atomic_file::Replace::Allowed)?;
            }
            None => std::fs::remove_file(&target)
                .with_context(|| format!("cannot remove {}", target.display()))?,
        }
    }
    Ok(Applied::Clean(writes.len()))
}

/// The user's file, `None` when it does not exist; a symlink is refused (the merge would
/// write through it).
fn read_user_file(workspace: &Path, path: &str) -> Result<Option<Vec<u8>>> {
    let full = workspace.join(path);
    match std::fs::symlink_metadata(&full) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", full.display())),
        Ok(m) if m.file_type().is_symlink() || !m.is_file() => {
            bail!("{path} is not a regular file in your tree; apply refused")
        }
        Ok(_) => {
            Ok(Some(std::fs::read(&full).with_context(|| {
                format!("cannot read {}", full.display())
            })?))
        }
    }
}

/// `git merge-file` of three texts: the merged bytes, or `None` on a conflict.
fn merge_text(base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Option<Vec<u8>>> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory for a merge")?;
    let [o, b, t] = ["ours", "base", "theirs"].map(|n| dir.path().join(n));
    std::fs::write(&o, ours)?;
    std::fs::write(&b, base)?;
    std::fs::write(&t, theirs)?;
    let out = std::process::Command::new("git")
        .args(["merge-file", "-p", "--quiet"])
        .args([&o, &b, &t])
        .stdin(std::process::Stdio::null())
        .output()
        .context("could not run `git merge-file`")?;
    match out.status.code() {
        Some(0) => Ok(Some(out.stdout)),
        Some(1..=127) => Ok(None),
        _ => bail!(
            "`git merge-file` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_the_user_left_as_the_base_takes_the_agents_version() {
        let d = decide(Some(b"a"), Some(b"a"), Some(b"b"));
        assert_eq!(d, Decision::Take(Some(b"b".to_vec())));
        assert_eq!(decide(Some(b"a"), Some(b"a"), None), Decision::Take(None));
        assert_eq!(
            decide(None, None, Some(b"new")),
            Decision::Take(Some(b"new".to_vec()))
        );
    }

    #[test]
    fn a_file_already_as_the_agent_made_it_needs_nothing() {
        assert_eq!(
            decide(Some(b"a"), Some(b"b"), Some(b"b")),
            Decision::Nothing
        );
        assert_eq!(
            decide(Some(b"a"), Some(b"x"), Some(b"a")),
            Decision::Nothing
        );
    }

    #[test]
    fn both_sides_changing_a_text_file_is_merged_line_by_line() {
        assert_eq!(
            decide(Some(b"a"), Some(b"b"), Some(b"c")),
            Decision::MergeText
        );
    }

    #[test]
    fn a_deletion_against_an_edit_or_a_binary_file_changed_on_both_sides_conflicts() {
        assert_eq!(decide(Some(b"a"), Some(b"b"), None), Decision::Conflict);
        assert_eq!(
            decide(None, Some(b"mine"), Some(b"theirs")),
            Decision::Conflict
        );
        assert_eq!(
            decide(Some(b"\0a"), Some(b"\0b"), Some(b"\0c")),
            Decision::Conflict
        );
    }

    #[test]
    fn merge_text_joins_distant_edits_and_refuses_overlapping_ones() {
        let base = b"1\n2\n3\n4\n5\n6\n7\n8\n";
        let ours = b"1 user\n2\n3\n4\n5\n6\n7\n8\n";
        let theirs = b"1\n2\n3\n4\n5\n6\n7\n8 agent\n";
        let merged = merge_text(base, ours, theirs).unwrap().unwrap();
        assert_eq!(merged, b"1 user\n2\n3\n4\n5\n6\n7\n8 agent\n");
        let clash = b"1 agent\n2\n3\n4\n5\n6\n7\n8\n";
        assert_eq!(merge_text(base, ours, clash).unwrap(), None);
    }
}
