//! `apply_patch`: apply a unified diff to one or more files, all of it or none of it.
//!
//! The plan declares, for every file the patch touches, a write of its resolved path, and a
//! read of it too when the file exists before (its content is the patch's context). Paths
//! inside `.git` and the workspace root are refused while planning, like `write_file`.
//!
//! At invoke time every path is re-checked against the approved plan
//! ([`super::approved`]), every file is read through [`super::beneath`] (no symlinks, no
//! hard-linked files) and every hunk is applied in memory ([`super::patch`]). Only when all
//! of them apply is anything written, each file atomically (`write_atomic`); a failure then
//! (a symlink swapped in at the last moment) restores the files already written to their
//! old content, best effort, and says so. The error names the file and the hunk that
//! failed.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use async_trait::async_trait;
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use serde_json::{json, Value};

use super::approved;
use super::args::Args;
use super::limits::PATCH_MAX_BYTES;
use super::patch::{self, FilePatch, Text};
use super::paths::{check_not_root, check_write_target, Resolved};
use super::{beneath, blocking, spec};

const NAME: &str = "apply_patch";
const KNOWN: &[&str] = &["patch"];

/// The `apply_patch` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyPatch;

/// One file's change, computed before anything is written.
struct Change {
    rel: String,
    /// The content before (`None`: the file is created).
    before: Option<String>,
    /// The content after (`None`: the file is deleted).
    after: Option<String>,
}

#[async_trait]
impl Tool for ApplyPatch {
    fn spec(&self) -> ToolSpec {
        spec(
            NAME,
            "Apply a unified diff (as `git diff` or `diff -u` print it) to one or more files. \
             Each file starts with `--- a/path` and `+++ b/path` (`/dev/null` to create or \
             delete a file), then `@@ -l,s +l,s @@` hunks whose ' ' and '-' lines must match \
             the file exactly. All hunks apply or none do; an error names the hunk that \
             failed. Read the file first.",
            json!({
                "patch": {"type": "string", "description": "The unified diff."},
            }),
            &["patch"],
        )
    }

    fn plan(&self, arguments: &Value, ctx: &ToolContext) -> Result<Vec<Access>, ToolError> {
        let files = parse(arguments)?;
        let mut plan = Vec::new();
        for file in &files {
            let resolved = approved::plan(ctx, file.path())?;
            if let Resolved::Inside(rel) = &resolved {
                check_not_root(NAME, rel)?;
            }
            if file.old.is_some() {
                push_new(&mut plan, resolved.read_access());
            }
            push_new(&mut plan, resolved.write_access());
        }
        Ok(plan)
    }

    async fn invoke(
        &self,
        arguments: Value,
        approved: &[Access],
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let approved = approved.to_vec();
        let ctx = ctx.clone();
        blocking(move || {
            let files = parse(&arguments)?;
            let mut root = None;
            let mut changes = Vec::new();
            for file in &files {
                let checked = approved::recheck(&ctx, file.path(), &approved)?;
                check_write_target(NAME, &checked.root, &checked.rel)?;
                changes.push(change(&checked.root, &checked.rel, file)?);
                root = Some(checked.root);
            }
            let root = root.ok_or_else(|| ToolError::new("apply_patch: the patch is empty"))?;
            commit(&root, &changes)
        })
        .await
    }
}

fn push_new(plan: &mut Vec<Access>, access: Access) {
    if !plan.contains(&access) {
        plan.push(access);
    }
}

fn parse(arguments: &Value) -> Result<Vec<FilePatch>, ToolError> {
    let args = Args::parse(NAME, arguments, KNOWN)?;
    let text = args.string("patch")?;
    if text.len() > PATCH_MAX_BYTES {
        return Err(ToolError::new(format!(
            "apply_patch: the patch is {} bytes, more than the {PATCH_MAX_BYTES}-byte limit; \
             split it",
            text.len()
        )));
    }
    let files = patch::parse(text).map_err(|e| ToolError::new(format!("apply_patch: {e}")))?;
    let mut seen = HashSet::new();
    for file in &files {
        if let (Some(old), Some(new)) = (&file.old, &file.new) {
            if old != new {
                return Err(ToolError::new(format!(
                    "apply_patch: renaming `{old}` to `{new}` is not supported; create the new \
                     file and delete the old one in two sections"
                )));
            }
        }
        if !seen.insert(file.path()) {
            return Err(ToolError::new(format!(
                "apply_patch: `{}` appears twice; put all its hunks in one section",
                file.path()
            )));
        }
    }
    Ok(files)
}

/// Computes one file's new content, in memory.
fn change(root: &Path, rel: &str, file: &FilePatch) -> Result<Change, ToolError> {
    let before = read_existing(root, rel)?;
    let fail =
        |e: String| ToolError::new(format!("apply_patch: `{rel}`: {e}; nothing was changed"));
    let old_text = match (&file.old, &before) {
        (None, Some(_)) => return Err(fail("the patch creates it, but it exists".into())),
        (Some(_), None) => return Err(fail("the file does not exist".into())),
        (_, Some(content)) => Text::from(content),
        (None, None) => Text::from(""),
    };
    let new_text = patch::apply(&old_text, &file.hunks).map_err(fail)?;
    let after = match &file.new {
        Some(_) => Some(new_text.to_string()),
        None if new_text.lines.is_empty() => None,
        None => return Err(fail("the patch deletes it, but lines would remain".into())),
    };
    Ok(Change {
        rel: rel.to_owned(),
        before,
        after,
    })
}

fn read_existing(root: &Path, rel: &str) -> Result<Option<String>, ToolError> {
    let mut file = match beneath::open_file(root, Path::new(rel)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(rel, "read", &e)),
    };
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| io_error(rel, "read", &e))?;
    Ok(Some(text))
}

/// Writes every change; on a failure, puts back the ones already made.
fn commit(root: &Path, changes: &[Change]) -> Result<ToolOutput, ToolError> {
    for (i, change) in changes.iter().enumerate() {
        if let Err(e) = write(root, &change.rel, change.after.as_deref()) {
            let restored = changes[..i]
                .iter()
                .all(|c| write(root, &c.rel, c.before.as_deref()).is_ok());
            let state = if restored {
                "the files already changed were restored"
            } else {
                "restoring the files already changed failed; check them"
            };
            return Err(ToolError::new(format!("{e}; {state}")));
        }
    }
    Ok(ToolOutput {
        content: summary(changes),
        written: changes.iter().map(|c| c.rel.clone()).collect(),
        sandbox: None,
    })
}

fn write(root: &Path, rel: &str, content: Option<&str>) -> Result<(), ToolError> {
    let path = Path::new(rel);
    let result = match content {
        Some(text) => beneath::write_atomic(root, path, text.as_bytes()),
        None => match beneath::remove_file(root, path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    result.map_err(|e| io_error(rel, "write", &e))
}

fn io_error(rel: &str, verb: &str, e: &std::io::Error) -> ToolError {
    if beneath::is_symlink_refusal(e) {
        ToolError::new(format!(
            "apply_patch: `{rel}` is, or goes through, a symbolic link; refused"
        ))
    } else if beneath::is_hard_link_refusal(e) {
        ToolError::new(format!(
            "apply_patch: `{rel}` has several hard links (it may be a file outside the \
             workspace); refused"
        ))
    } else {
        ToolError::new(format!("apply_patch: cannot {verb} `{rel}`: {e}"))
    }
}

fn summary(changes: &[Change]) -> String {
    let mut out = format!("applied the patch to {} file(s):\n", changes.len());
    for c in changes {
        let what = match (&c.before, &c.after) {
            (None, _) => "created",
            (_, None) => "deleted",
            _ => "modified",
        };
        out.push_str(&format!("  {what} {}\n", c.rel));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    const MODIFY_AND_CREATE: &str = "\
--- a/src/a.rs
+++ b/src/a.rs
@@ -1,2 +1,2 @@
 fn a() {}
-fn b() {}
+fn b() { 1 }
--- /dev/null
+++ b/src/new.rs
@@ -0,0 +1 @@
+fn new() {}
";

    #[tokio::test]
    async fn modifies_and_creates_files() {
        let f = Fixture::new();
        f.write("src/a.rs", "fn a() {}\nfn b() {}\n");
        let out = f
            .run(&ApplyPatch, json!({"patch": MODIFY_AND_CREATE}))
            .await
            .unwrap();
        assert_eq!(out.written, ["src/a.rs", "src/new.rs"]);
        assert_eq!(f.read("src/a.rs"), "fn a() {}\nfn b() { 1 }\n");
        assert_eq!(f.read("src/new.rs"), "fn new() {}\n");
    }

    #[tokio::test]
    async fn plan_reads_and_writes_existing_files_and_writes_new_ones() {
        let f = Fixture::new();
        f.write("src/a.rs", "fn a() {}\nfn b() {}\n");
        let plan = f
            .plan(&ApplyPatch, json!({"patch": MODIFY_AND_CREATE}))
            .unwrap();
        assert_eq!(
            plan,
            [
                Access::Read("src/a.rs".into()),
                Access::Write("src/a.rs".into()),
                Access::Write("src/new.rs".into())
            ]
        );
    }

    #[tokio::test]
    async fn one_failing_hunk_changes_nothing() {
        let f = Fixture::new();
        f.write("src/a.rs", "fn a() {}\nfn c() {}\n");
        let err = f
            .run(&ApplyPatch, json!({"patch": MODIFY_AND_CREATE}))
            .await
            .unwrap_err();
        assert!(err.0.contains("`src/a.rs`: hunk 1"), "{err}");
        assert_eq!(f.read("src/a.rs"), "fn a() {}\nfn c() {}\n");
        assert!(!f.root().join("src/new.rs").exists());
    }

    #[tokio::test]
    async fn deletes_a_file_whose_lines_are_all_removed() {
        let f = Fixture::new();
        f.write("old.txt", "a\nb\n");
        let patch = "--- a/old.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n";
        f.run(&ApplyPatch, json!({"patch": patch})).await.unwrap();
        assert!(!f.root().join("old.txt").exists());
    }

    #[tokio::test]
    async fn creating_an_existing_file_is_refused() {
        let f = Fixture::new();
        f.write("src/new.rs", "mine\n");
        f.write("src/a.rs", "fn a() {}\nfn b() {}\n");
        let err = f
            .run(&ApplyPatch, json!({"patch": MODIFY_AND_CREATE}))
            .await
            .unwrap_err();
        assert!(err.0.contains("exists"), "{err}");
        assert_eq!(f.read("src/a.rs"), "fn a() {}\nfn b() {}\n");
    }

    #[tokio::test]
    async fn git_internal_and_renames_are_refused() {
        let f = Fixture::new();
        let git = "--- /dev/null\n+++ b/.git/hooks/pre-commit\n@@ -0,0 +1 @@\n+#!/bin/sh\n";
        assert!(f.plan(&ApplyPatch, json!({"patch": git})).is_ok());
        assert!(f
            .run(&ApplyPatch, json!({"patch": git}))
            .await
            .unwrap_err()
            .0
            .contains(".git"));
        let rename = "--- a/x\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n";
        assert!(f
            .plan(&ApplyPatch, json!({"patch": rename}))
            .unwrap_err()
            .0
            .contains("renaming"));
    }
}
