//! `write_file`: create or replace a whole file.
//!
//! Whole-file writes only (no patching): simple to plan and to audit. The plan declares the
//! resolved path as a write; at invoke time the path is re-resolved and must be unchanged
//! ([`super::approved`]), then the file is written through [`super::beneath::write_atomic`]:
//! parent directories are created one by one without following symlinks, the content goes
//! to a temporary file in the same directory, and a `renameat` puts it in place, so readers
//! never see half a file and a symlink swapped in at the last moment is refused. Writing
//! inside any `.git` directory is refused outright: it could plant hooks that run later.

use std::path::Path;

use async_trait::async_trait;
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use serde_json::{json, Value};

use super::approved;
use super::args::Args;
use super::limits::WRITE_MAX_BYTES;
use super::paths::{check_not_root, check_write_target, Resolved};
use super::{beneath, blocking, spec};

const NAME: &str = "write_file";
const KNOWN: &[&str] = &["path", "content"];

/// The `write_file` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteFile;

#[async_trait]
impl Tool for WriteFile {
    fn spec(&self) -> ToolSpec {
        spec(
            NAME,
            "Create a file, or replace its whole content, in the workspace. Missing parent \
             directories are created. Give the complete new content: this is not a patch. \
             At most 1 MiB; files inside `.git` cannot be written.",
            json!({
                "path": {"type": "string", "description": "File path, relative to the workspace root."},
                "content": {"type": "string", "description": "The complete new content of the file."},
            }),
            &["path", "content"],
        )
    }

    fn plan(&self, arguments: &Value, ctx: &ToolContext) -> Result<Vec<Access>, ToolError> {
        let (path, _) = parse(arguments)?;
        let resolved = approved::plan(ctx, path)?;
        if let Resolved::Inside(rel) = &resolved {
            check_not_root(NAME, rel)?;
        }
        Ok(vec![resolved.write_access()])
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
            let (path, content) = parse(&arguments)?;
            let checked = approved::recheck(&ctx, path, &approved)?;
            check_write_target(NAME, &checked.root, &checked.rel)?;
            write(&checked.root, &checked.rel, content)
        })
        .await
    }
}

fn parse(arguments: &Value) -> Result<(&str, &str), ToolError> {
    let args = Args::parse(NAME, arguments, KNOWN)?;
    let path = args.string("path")?;
    let content = args.string("content")?;
    if content.len() > WRITE_MAX_BYTES {
        return Err(ToolError::new(format!(
            "write_file: `content` is {} bytes, more than the {WRITE_MAX_BYTES}-byte limit; \
             split the file into smaller files",
            content.len()
        )));
    }
    Ok((path, content))
}

fn write(root: &Path, rel: &str, content: &str) -> Result<ToolOutput, ToolError> {
    beneath::write_atomic(root, Path::new(rel), content.as_bytes()).map_err(|e| {
        if beneath::is_symlink_refusal(&e) {
            ToolError::new(format!(
                "`{rel}` is, or goes through, a symbolic link that appeared after the path \
                 was checked; refused"
            ))
        } else {
            ToolError::new(format!("cannot write `{rel}`: {e}"))
        }
    })?;
    Ok(ToolOutput {
        content: format!("wrote {} bytes to `{rel}`", content.len()),
        written: vec![rel.to_owned()],
        sandbox: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    #[tokio::test]
    async fn creates_parent_dirs_and_reports_written() {
        let f = Fixture::new();
        let args = json!({"path": "a/b/c.txt", "content": "hello"});
        let out = f.run(&WriteFile, args).await.unwrap();
        assert_eq!(out.written, ["a/b/c.txt"]);
        assert_eq!(f.read("a/b/c.txt"), "hello");
    }

    #[tokio::test]
    async fn replaces_an_existing_file() {
        let f = Fixture::new();
        f.write("a.txt", "old content");
        let args = json!({"path": "a.txt", "content": "new"});
        f.run(&WriteFile, args).await.unwrap();
        assert_eq!(f.read("a.txt"), "new");
    }

    #[tokio::test]
    async fn plan_declares_the_resolved_write() {
        let f = Fixture::new();
        f.write("src/lib.rs", "");
        let args = json!({"path": "./src/../src/new.rs", "content": ""});
        let plan = f.plan(&WriteFile, args).unwrap();
        assert_eq!(plan, [Access::Write("src/new.rs".into())]);
    }

    #[tokio::test]
    async fn refuses_when_target_became_a_symlink_after_plan() {
        let f = Fixture::new();
        f.write("a.txt", "mine");
        let secret = f.outside_file("secret", "original");
        let tool = WriteFile;
        let args = json!({"path": "a.txt", "content": "evil"});
        let plan = f.plan(&tool, args.clone()).unwrap();
        std::fs::remove_file(f.root().join("a.txt")).unwrap();
        f.symlink(&secret, "a.txt");
        assert!(tool.invoke(args, &plan, &f.ctx).await.is_err());
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "original");
    }

    #[tokio::test]
    async fn refuses_when_parent_became_a_symlink_after_plan() {
        let f = Fixture::new();
        f.write("dir/a.txt", "mine");
        let tool = WriteFile;
        let args = json!({"path": "dir/a.txt", "content": "evil"});
        let plan = f.plan(&tool, args.clone()).unwrap();
        std::fs::remove_dir_all(f.root().join("dir")).unwrap();
        f.symlink(f.outside(), "dir");
        assert!(tool.invoke(args, &plan, &f.ctx).await.is_err());
        assert!(!f.outside().join("a.txt").exists());
    }

    #[tokio::test]
    async fn symlink_escaping_the_workspace_is_planned_outside() {
        let f = Fixture::new();
        f.symlink(f.outside(), "out");
        let args = json!({"path": "out/x.txt", "content": "evil"});
        let plan = f.plan(&WriteFile, args).unwrap();
        assert!(matches!(&plan[..], [Access::Outside(_)]));
    }

    #[tokio::test]
    async fn writing_into_git_is_refused() {
        let f = Fixture::new();
        let args = json!({"path": ".git/hooks/pre-commit", "content": "#!/bin/sh"});
        // The policy denies it (a policy decision); were it ever allowed, the tool refuses.
        let plan = f.plan(&WriteFile, args.clone()).unwrap();
        assert_eq!(plan, [Access::Write(".git/hooks/pre-commit".into())]);
        let err = f.run(&WriteFile, args).await.unwrap_err();
        assert!(err.0.contains(".git"), "{err}");
        assert!(!f.root().join(".git").exists());
    }

    #[tokio::test]
    async fn oversized_content_is_refused() {
        let f = Fixture::new();
        let args = json!({"path": "big.txt", "content": "x".repeat(WRITE_MAX_BYTES + 1)});
        let err = f.plan(&WriteFile, args).unwrap_err();
        assert!(err.0.contains("limit"), "{err}");
    }

    #[tokio::test]
    async fn writing_a_directory_is_refused() {
        let f = Fixture::new();
        f.write("src/a.rs", "");
        let args = json!({"path": "src", "content": "x"});
        assert!(f.run(&WriteFile, args).await.is_err());
        assert_eq!(f.read("src/a.rs"), "");
    }

    #[tokio::test]
    async fn missing_content_is_named() {
        let f = Fixture::new();
        let err = f.plan(&WriteFile, json!({"path": "a"})).unwrap_err();
        assert!(err.0.contains("`content`"), "{err}");
    }
}
