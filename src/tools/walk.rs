//! Walking a directory tree the way the search tools do: `.gitignore` files respected (also
//! those of the ancestors between the workspace root and the starting directory), hidden
//! files and directories skipped, symlinks never followed, entries sorted by name.
//!
//! Files whose names look like secrets are skipped (see [`secret_file`]).
//!
//! Used by `grep`, `find_files` and the `codebase_search` index. The walk only lists
//! names; files are opened through [`super::beneath`], so an entry swapped for a symlink
//! after it was listed is refused when opened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::{DirEntry, WalkBuilder};

/// Walks `root/rel` (a resolved, workspace-relative path; `""` for the root).
pub fn walk(root: &Path, rel: &str) -> ignore::Walk {
    let start = root.join(rel);
    let ancestors = Arc::new(ancestor_ignores(root, &start));
    WalkBuilder::new(&start)
        .hidden(true)
        .parents(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| !ignored_by(&ancestors, e) && !secret_file(e))
        .build()
}

/// The `.gitignore` matchers of the directories from `root` down to `start`'s parent,
/// deepest first.
fn ancestor_ignores(root: &Path, start: &Path) -> Vec<Gitignore> {
    let mut dirs: Vec<PathBuf> = start
        .ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(root))
        .map(Path::to_path_buf)
        .collect();
    dirs.retain(|d| d.join(".gitignore").is_file());
    dirs.iter()
        .filter_map(|d| {
            let mut builder = GitignoreBuilder::new(d);
            builder.add(d.join(".gitignore"));
            builder.build().ok()
        })
        .collect()
}

/// Whether `entry` is a file whose name looks like a secret (`.env*`, `*.pem`, `*.key`,
/// `id_*`): searches never read those, whatever the agent's opt-ins (a definition that
/// opts in reads them by name, with `read_file`).
fn secret_file(entry: &DirEntry) -> bool {
    entry.depth() > 0
        && !entry.file_type().is_some_and(|t| t.is_dir())
        && entry
            .file_name()
            .to_str()
            .is_some_and(codex_actors::policy::protected::is_secret_file)
}

/// Whether the deepest ancestor `.gitignore` with an opinion on `entry` ignores it.
fn ignored_by(ancestors: &[Gitignore], entry: &DirEntry) -> bool {
    if entry.depth() == 0 {
        return false; // named explicitly
    }
    let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
    ancestors
        .iter()
        .map(|g| g.matched(entry.path(), is_dir))
        .find(|m| !m.is_none())
        .is_some_and(|m| m.is_ignore())
}

/// The regular files of a walk, workspace-relative, in walk order. Unreadable entries are
/// skipped.
pub fn files<'a>(root: &'a Path, rel: &str) -> impl Iterator<Item = PathBuf> + 'a {
    walk(root, rel).filter_map(move |entry| {
        let entry = entry.ok()?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            return None;
        }
        entry.path().strip_prefix(root).ok().map(Path::to_path_buf)
    })
}
