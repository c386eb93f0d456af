//! `list_dir`: the entries of one directory, sorted, one per line.
//!
//! Not recursive: a model explores step by step, and a recursive listing of a large tree
//! would flood its context (`grep` covers searching). The directory is opened through
//! [`super::beneath`] and read from that descriptor, so a symlink swapped in after the plan
//! is refused. Entries are not followed: a symlink is shown as a symlink (`@`), whatever it
//! points to.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use async_trait::async_trait;
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use rustix::fs::{Dir, FileType};
use serde_json::{json, Value};

use super::approved;
use super::args::Args;
use super::limits::LIST_MAX_ENTRIES;
use super::paths::default_to_scope;
use super::{beneath, blocking, shown, spec};

const NAME: &str = "list_dir";
const KNOWN: &[&str] = &["path"];

/// The `list_dir` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListDir;

#[async_trait]
impl Tool for ListDir {
    fn spec(&self) -> ToolSpec {
        spec(
            NAME,
            "List the entries of a workspace directory (not recursive), sorted by name. \
             Directories end with `/`, symbolic links with `@`. Without `path`, lists your \
             scope (the part of the workspace you work in).",
            json!({
                "path": {"type": "string", "description": "Directory path, relative to the workspace root. Default: your scope."},
            }),
            &[],
        )
    }

    fn plan(&self, arguments: &Value, ctx: &ToolContext) -> Result<Vec<Access>, ToolError> {
        let path = parse(arguments, ctx)?;
        Ok(vec![approved::plan(ctx, path)?.read_access()])
    }

    async fn invoke(
        &self,
        arguments: Value,
        approved: &[Access],
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let approved = approved.to_vec();
        let path = parse(&arguments, ctx)?.to_owned();
        let ctx = ctx.clone();
        blocking(move || {
            let checked = approved::recheck(&ctx, &path, &approved)?;
            list(&checked.root, &checked.rel).map(ToolOutput::text)
        })
        .await
    }
}

fn parse<'a>(arguments: &'a Value, ctx: &'a ToolContext) -> Result<&'a str, ToolError> {
    let args = Args::parse(NAME, arguments, KNOWN)?;
    Ok(default_to_scope(args.opt_string("path")?, &ctx.scope))
}

fn list(root: &Path, rel: &str) -> Result<String, ToolError> {
    let fail = |e: std::io::Error| describe(rel, e);
    let dir = beneath::open_dir(root, Path::new(rel)).map_err(fail)?;
    let mut entries = read_entries(&dir).map_err(fail)?;
    entries.sort();
    Ok(render(rel, &entries))
}

/// Entry names with their type suffix (`/`, `@` or nothing), unsorted.
fn read_entries(dir: &OwnedFd) -> std::io::Result<Vec<(String, &'static str)>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => beneath::entry_type(dir, name)?.map(|(t, _)| t),
            known => Some(known),
        };
        names.push((name.to_string_lossy().into_owned(), suffix(kind)));
    }
    Ok(names)
}

fn suffix(kind: Option<FileType>) -> &'static str {
    match kind {
        Some(FileType::Directory) => "/",
        Some(FileType::Symlink) => "@",
        _ => "",
    }
}

fn render(rel: &str, entries: &[(String, &str)]) -> String {
    if entries.is_empty() {
        return format!("[`{}` is empty]", shown(rel));
    }
    let mut out: String = entries
        .iter()
        .take(LIST_MAX_ENTRIES)
        .map(|(name, suffix)| format!("{name}{suffix}\n"))
        .collect();
    if entries.len() > LIST_MAX_ENTRIES {
        out.push_str(&format!(
            "[output truncated: showing {LIST_MAX_ENTRIES} of {} entries; use grep to find files]\n",
            entries.len()
        ));
    }
    out
}

fn describe(rel: &str, e: std::io::Error) -> ToolError {
    let path = shown(rel);
    if e.kind() == std::io::ErrorKind::NotADirectory {
        ToolError::new(format!(
            "`{path}` is not a directory; use read_file for files"
        ))
    } else if beneath::is_symlink_refusal(&e) {
        ToolError::new(format!(
            "`{path}` changed into a symbolic link after it was checked; refused"
        ))
    } else {
        ToolError::new(format!("cannot list `{path}`: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    #[tokio::test]
    async fn entries_are_sorted_with_type_suffixes() {
        let f = Fixture::new();
        f.write("b.txt", "");
        f.write("a/x.rs", "");
        f.write("C.md", "");
        f.symlink(&f.root().join("b.txt"), "link");
        let out = f.run(&ListDir, json!({"path": "."})).await.unwrap();
        assert_eq!(out.content, "C.md\na/\nb.txt\nlink@\n");
    }

    #[tokio::test]
    async fn default_is_the_scope() {
        let mut f = Fixture::new();
        f.write("src/api/handler.rs", "");
        f.write("top.txt", "");
        f.ctx.scope = "src/api".into();
        let tool = ListDir;
        let plan = f.plan(&tool, json!({})).unwrap();
        assert_eq!(plan, [Access::Read("src/api".into())]);
        let out = f.run(&tool, json!({})).await.unwrap();
        assert_eq!(out.content, "handler.rs\n");
    }

    #[tokio::test]
    async fn empty_scope_defaults_to_the_root() {
        let f = Fixture::new();
        f.write("top.txt", "");
        let tool = ListDir;
        assert_eq!(
            f.plan(&tool, json!({})).unwrap(),
            [Access::Read(String::new())]
        );
        assert_eq!(f.run(&tool, json!({})).await.unwrap().content, "top.txt\n");
    }

    #[tokio::test]
    async fn many_entries_are_capped_with_a_note() {
        let f = Fixture::new();
        for i in 0..LIST_MAX_ENTRIES + 5 {
            f.write(&format!("d/f{i:05}"), "");
        }
        let out = f.run(&ListDir, json!({"path": "d"})).await.unwrap();
        assert_eq!(out.content.lines().count(), LIST_MAX_ENTRIES + 1);
        assert!(out.content.contains("showing 1000 of 1005 entries"));
    }

    #[tokio::test]
    async fn file_is_refused_with_a_hint() {
        let f = Fixture::new();
        f.write("a.txt", "");
        let err = f.run(&ListDir, json!({"path": "a.txt"})).await.unwrap_err();
        assert!(err.0.contains("read_file"), "{err}");
    }

    #[tokio::test]
    async fn symlinked_dir_to_outside_is_planned_outside() {
        let f = Fixture::new();
        f.symlink(f.outside(), "out");
        let plan = f.plan(&ListDir, json!({"path": "out"})).unwrap();
        assert!(matches!(&plan[..], [Access::Outside(_)]));
    }
}
