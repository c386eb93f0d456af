//! `find_files`: the files whose path matches a glob, below a directory (default: the scope).
//!
//! The plan is one read of the directory searched, like `grep`. The walk is the search
//! tools' walk ([`super::walk`]): `.gitignore` respected, hidden entries skipped, symlinks
//! not followed, so nothing outside the approved directory is ever listed. A glob without
//! `/` matches file names at any depth (`*.rs`); a glob with `/` matches the
//! workspace-relative path (`src/**/*.rs`), with `*` not crossing `/`.

use std::path::Path;

use async_trait::async_trait;
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use globset::{GlobBuilder, GlobMatcher};
use serde_json::{json, Value};

use super::approved;
use super::args::Args;
use super::limits::FIND_MAX_FILES;
use super::paths::default_to_scope;
use super::{blocking, shown, spec, walk};

const NAME: &str = "find_files";
const KNOWN: &[&str] = &["pattern", "path"];

/// The `find_files` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct FindFiles;

/// A checked call.
struct Query<'a> {
    glob: GlobMatcher,
    /// Whether the glob names a path (has a `/`) rather than a file name.
    by_path: bool,
    path: &'a str,
}

#[async_trait]
impl Tool for FindFiles {
    fn spec(&self) -> ToolSpec {
        spec(
            NAME,
            "Find files by glob, e.g. `*.rs` (file names at any depth) or `src/**/test_*.py` \
             (workspace-relative paths; `*` does not cross `/`, `**` does). Searches your \
             scope unless `path` is given; skips files ignored by .gitignore and hidden \
             files. Returns one path per line, at most 1000.",
            json!({
                "pattern": {"type": "string", "description": "Glob to match, e.g. `*.rs` or `src/**/*.rs`."},
                "path": {"type": "string", "description": "Directory to search, relative to the workspace root. Default: your scope."},
            }),
            &["pattern"],
        )
    }

    fn plan(&self, arguments: &Value, ctx: &ToolContext) -> Result<Vec<Access>, ToolError> {
        let query = parse(arguments, ctx)?;
        Ok(vec![approved::plan_search(ctx, query.path)?])
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
            let query = parse(&arguments, &ctx)?;
            let checked = approved::recheck(&ctx, query.path, &approved)?;
            Ok(ToolOutput::text(find(&checked.root, &checked.rel, &query)))
        })
        .await
    }
}

fn parse<'a>(arguments: &'a Value, ctx: &'a ToolContext) -> Result<Query<'a>, ToolError> {
    let args = Args::parse(NAME, arguments, KNOWN)?;
    let pattern = args.string("pattern")?.trim_start_matches("./");
    let glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| ToolError::new(format!("find_files: invalid glob in `pattern`: {e}")))?
        .compile_matcher();
    Ok(Query {
        glob,
        by_path: pattern.contains('/'),
        path: default_to_scope(args.opt_string("path")?, &ctx.scope),
    })
}

fn find(root: &Path, rel: &str, query: &Query) -> String {
    let mut out = String::new();
    let mut count = 0;
    for file in walk::files(root, rel) {
        let subject = if query.by_path {
            Some(file.as_path())
        } else {
            file.file_name().map(Path::new)
        };
        if !subject.is_some_and(|s| query.glob.is_match(s)) {
            continue;
        }
        count += 1;
        if count <= FIND_MAX_FILES {
            out.push_str(&format!("{}\n", file.display()));
        }
    }
    match count {
        0 => format!("no files match in `{}`", shown(rel)),
        n if n > FIND_MAX_FILES => {
            out.push_str(&format!(
                "[output truncated: showing {FIND_MAX_FILES} of {n} files; narrow the pattern or path]\n"
            ));
            out
        }
        _ => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    async fn find_ok(f: &Fixture, args: Value) -> String {
        f.run(&FindFiles, args).await.unwrap().content
    }

    #[tokio::test]
    async fn name_glob_matches_at_any_depth() {
        let f = Fixture::new();
        f.write("a.rs", "");
        f.write("src/deep/b.rs", "");
        f.write("src/c.md", "");
        assert_eq!(
            find_ok(&f, json!({"pattern": "*.rs"})).await,
            "a.rs\nsrc/deep/b.rs\n"
        );
    }

    #[tokio::test]
    async fn path_glob_star_does_not_cross_directories() {
        let f = Fixture::new();
        f.write("src/a.rs", "");
        f.write("src/deep/b.rs", "");
        let out = find_ok(&f, json!({"pattern": "src/*.rs"})).await;
        assert_eq!(out, "src/a.rs\n");
        let out = find_ok(&f, json!({"pattern": "src/**/*.rs"})).await;
        assert_eq!(out, "src/a.rs\nsrc/deep/b.rs\n");
    }

    #[tokio::test]
    async fn defaults_to_the_scope_and_respects_gitignore() {
        let mut f = Fixture::new();
        f.ctx.scope = "src".into();
        f.write(".gitignore", "gen/\n");
        f.write("src/a.rs", "");
        f.write("src/gen/b.rs", "");
        f.write("other/c.rs", "");
        let plan = f.plan(&FindFiles, json!({"pattern": "*.rs"})).unwrap();
        assert_eq!(plan, [Access::ReadTree("src".into())]);
        assert_eq!(find_ok(&f, json!({"pattern": "*.rs"})).await, "src/a.rs\n");
    }

    #[tokio::test]
    async fn symlinks_are_not_followed() {
        let f = Fixture::new();
        f.outside_file("secret.rs", "");
        f.symlink(f.outside(), "out");
        let out = find_ok(&f, json!({"pattern": "*.rs"})).await;
        assert_eq!(out, "no files match in `.`");
    }

    #[tokio::test]
    async fn many_files_are_capped_with_a_note() {
        let f = Fixture::new();
        for i in 0..FIND_MAX_FILES + 5 {
            f.write(&format!("d/{i}.txt"), "");
        }
        let out = find_ok(&f, json!({"pattern": "*.txt"})).await;
        assert_eq!(out.lines().count(), FIND_MAX_FILES + 1);
        assert!(out.contains("of 1005 files"), "{out}");
    }

    #[tokio::test]
    async fn invalid_glob_is_named() {
        let f = Fixture::new();
        let err = f.plan(&FindFiles, json!({"pattern": "[z-a"})).unwrap_err();
        assert!(err.0.contains("`pattern`"), "{err}");
    }
}
