//! `grep`: regex search over the files under a path, ripgrep style.
//!
//! Files are found with an `ignore` walk that honours `.gitignore`/`.ignore`, skips hidden
//! entries (`.git`, `.codex`, ...) and never follows symlinks; they are searched with
//! `grep-searcher`, which skips binary files. The walk starts at the searched path and does
//! not read ignore files above it (they could be outside the workspace); instead the
//! `.gitignore` files of the directories between the workspace root and the searched path
//! are applied by hand, so searching `src/` honours the root `.gitignore`. As with ripgrep,
//! a path named explicitly is searched even if it is ignored or hidden. Each file is opened
//! through [`super::beneath`], so a symlink swapped in during the walk is skipped, not
//! followed. Output is `path:line:text`, capped in matches and bytes with a note.

use std::path::Path;

use async_trait::async_trait;
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use globset::{GlobBuilder, GlobMatcher};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder};
use serde_json::{json, Value};

use super::approved;
use super::args::Args;
use super::limits::{cut_line, GREP_MAX_BYTES, GREP_MAX_LINE_CHARS, GREP_MAX_MATCHES};
use super::paths::default_to_scope;
use super::walk::walk;
use super::{beneath, blocking, shown, spec};

const NAME: &str = "grep";
const KNOWN: &[&str] = &["pattern", "path", "include"];

/// The `grep` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grep;

/// A checked call: what to search for, where, and in which files.
struct Query<'a> {
    matcher: RegexMatcher,
    path: &'a str,
    include: Option<GlobMatcher>,
}

#[async_trait]
impl Tool for Grep {
    fn spec(&self) -> ToolSpec {
        spec(
            NAME,
            "Search file contents with a regular expression (Rust regex syntax; `(?i)` for \
             case-insensitive). Returns matching lines as `path:line:text`. Searches your \
             scope unless `path` is given; skips files ignored by .gitignore, hidden files \
             and binary files. At most 200 matches are shown.",
            json!({
                "pattern": {"type": "string", "description": "Regular expression to search for."},
                "path": {"type": "string", "description": "File or directory to search, relative to the workspace root. Default: your scope."},
                "include": {"type": "string", "description": "Only search files whose name or path matches this glob, e.g. `*.rs` or `src/**/*.ts`."},
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
            search(&checked.root, &checked.rel, &query).map(ToolOutput::text)
        })
        .await
    }
}

fn parse<'a>(arguments: &'a Value, ctx: &'a ToolContext) -> Result<Query<'a>, ToolError> {
    let args = Args::parse(NAME, arguments, KNOWN)?;
    let pattern = args.string("pattern")?;
    let matcher = RegexMatcherBuilder::new()
        .line_terminator(Some(b'\n'))
        .build(pattern)
        .map_err(|e| ToolError::new(format!("grep: invalid regex in `pattern`: {e}")))?;
    let include = args.opt_string("include")?.map(glob).transpose()?;
    let path = default_to_scope(args.opt_string("path")?, &ctx.scope);
    Ok(Query {
        matcher,
        path,
        include,
    })
}

fn glob(pattern: &str) -> Result<GlobMatcher, ToolError> {
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| ToolError::new(format!("grep: invalid glob in `include`: {e}")))
}

/// Matching lines found so far, with the caps applied.
#[derive(Default)]
struct Hits {
    out: String,
    count: usize,
    full: bool,
}

impl Hits {
    /// Adds one line; returns whether there is room for more.
    fn push(&mut self, rel: &str, number: u64, line: &str) -> bool {
        let line = cut_line(line.trim_end_matches(['\n', '\r']), GREP_MAX_LINE_CHARS);
        let entry = format!("{rel}:{number}:{line}\n");
        if self.count == GREP_MAX_MATCHES || self.out.len() + entry.len() > GREP_MAX_BYTES {
            self.full = true;
            return false;
        }
        self.out.push_str(&entry);
        self.count += 1;
        true
    }

    fn finish(mut self, rel: &str) -> String {
        if self.count == 0 {
            return format!("no matches in `{}`", shown(rel));
        }
        if self.full {
            self.out.push_str(&format!(
                "[output truncated: stopped after {} matches; narrow the pattern, path or include]\n",
                self.count
            ));
        }
        self.out
    }
}

fn search(root: &Path, rel: &str, query: &Query) -> Result<String, ToolError> {
    let mut searcher = SearcherBuilder::new()
        .binary_detection(BinaryDetection::quit(0))
        .line_number(true)
        .build();
    let mut hits = Hits::default();
    for entry in walk(root, rel) {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(file_rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        if included(query.include.as_ref(), file_rel) {
            search_file(&mut searcher, root, file_rel, &query.matcher, &mut hits);
        }
        if hits.full {
            break;
        }
    }
    Ok(hits.finish(rel))
}

fn included(include: Option<&GlobMatcher>, file_rel: &Path) -> bool {
    include
        .is_none_or(|g| g.is_match(file_rel) || file_rel.file_name().is_some_and(|n| g.is_match(n)))
}

/// Searches one file; unreadable files (or ones swapped for a symlink) are skipped.
fn search_file(
    searcher: &mut Searcher,
    root: &Path,
    file_rel: &Path,
    matcher: &RegexMatcher,
    hits: &mut Hits,
) {
    let Ok(file) = beneath::open_file(root, file_rel) else {
        return;
    };
    let shown_rel = file_rel.to_string_lossy();
    let sink = Lossy(|number, line| Ok(hits.push(&shown_rel, number, line)));
    let _ = searcher.search_file(matcher, &file, sink);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    async fn grep(f: &Fixture, args: Value) -> String {
        f.run(&Grep, args).await.unwrap().content
    }

    #[tokio::test]
    async fn finds_matches_as_path_line_text() {
        let f = Fixture::new();
        f.write("src/a.rs", "fn main() {}\nlet x = 1;\n");
        f.write("src/b.rs", "fn helper() {}\n");
        let out = grep(&f, json!({"pattern": "^fn"})).await;
        assert_eq!(out, "src/a.rs:1:fn main() {}\nsrc/b.rs:1:fn helper() {}\n");
    }

    #[tokio::test]
    async fn include_glob_filters_files() {
        let f = Fixture::new();
        f.write("src/a.rs", "needle\n");
        f.write("src/a.md", "needle\n");
        let out = grep(&f, json!({"pattern": "needle", "include": "*.rs"})).await;
        assert_eq!(out, "src/a.rs:1:needle\n");
    }

    #[tokio::test]
    async fn invalid_regex_is_an_error_naming_it() {
        let f = Fixture::new();
        let err = f.plan(&Grep, json!({"pattern": "(unclosed"})).unwrap_err();
        assert!(err.0.contains("invalid regex in `pattern`"), "{err}");
    }

    #[tokio::test]
    async fn invalid_include_glob_is_an_error() {
        let f = Fixture::new();
        let args = json!({"pattern": "x", "include": "[z-a"});
        let err = f.plan(&Grep, args).unwrap_err();
        assert!(err.0.contains("`include`"), "{err}");
    }

    #[tokio::test]
    async fn gitignore_is_respected() {
        let f = Fixture::new();
        f.write(".gitignore", "target/\n*.log\n");
        f.write("target/out.rs", "needle\n");
        f.write("src/run.log", "needle\n");
        f.write("src/a.rs", "needle\n");
        let out = grep(&f, json!({"pattern": "needle"})).await;
        assert_eq!(out, "src/a.rs:1:needle\n");
    }

    #[tokio::test]
    async fn root_gitignore_applies_when_searching_a_subdirectory() {
        let f = Fixture::new();
        f.write(".gitignore", "*.log\n");
        f.write("src/run.log", "needle\n");
        f.write("src/a.rs", "needle\n");
        let out = grep(&f, json!({"pattern": "needle", "path": "src"})).await;
        assert_eq!(out, "src/a.rs:1:needle\n");
    }

    #[tokio::test]
    async fn hidden_directories_are_skipped() {
        let f = Fixture::new();
        f.write(".git/config", "needle\n");
        f.write(".codex/log", "needle\n");
        f.write("a.txt", "needle\n");
        assert_eq!(
            grep(&f, json!({"pattern": "needle"})).await,
            "a.txt:1:needle\n"
        );
    }

    #[tokio::test]
    async fn symlinks_are_not_followed() {
        let f = Fixture::new();
        f.outside_file("secret", "needle\n");
        f.symlink(f.outside(), "out");
        f.symlink(&f.outside().join("secret"), "secret_link");
        f.write("inside/real.txt", "needle\n");
        f.symlink(&f.root().join("inside"), "alias");
        let out = grep(&f, json!({"pattern": "needle"})).await;
        assert_eq!(out, "inside/real.txt:1:needle\n");
    }

    #[tokio::test]
    async fn matches_are_capped_with_a_note() {
        let f = Fixture::new();
        f.write("many.txt", "hit\n".repeat(GREP_MAX_MATCHES + 50));
        let out = grep(&f, json!({"pattern": "hit"})).await;
        assert_eq!(out.lines().count(), GREP_MAX_MATCHES + 1);
        assert!(out.contains("stopped after 200 matches"), "{out}");
    }

    #[tokio::test]
    async fn binary_files_are_skipped() {
        let f = Fixture::new();
        f.write("blob.bin", b"needle\0\x01\x02");
        f.write("a.txt", "needle\n");
        assert_eq!(
            grep(&f, json!({"pattern": "needle"})).await,
            "a.txt:1:needle\n"
        );
    }

    #[tokio::test]
    async fn no_match_says_so() {
        let f = Fixture::new();
        f.write("a.txt", "hay\n");
        let out = grep(&f, json!({"pattern": "needle"})).await;
        assert_eq!(out, "no matches in `.`");
    }

    #[tokio::test]
    async fn defaults_to_the_scope() {
        let mut f = Fixture::new();
        f.ctx.scope = "src".into();
        f.write("src/a.rs", "needle\n");
        f.write("b.rs", "needle\n");
        let plan = f.plan(&Grep, json!({"pattern": "x"})).unwrap();
        assert_eq!(plan, [Access::ReadTree("src".into())]);
        assert_eq!(
            grep(&f, json!({"pattern": "needle"})).await,
            "src/a.rs:1:needle\n"
        );
    }

    #[tokio::test]
    async fn searching_a_single_file_works() {
        let f = Fixture::new();
        f.write("a.txt", "x\nneedle\n");
        f.write("b.txt", "needle\n");
        let out = grep(&f, json!({"pattern": "needle", "path": "a.txt"})).await;
        assert_eq!(out, "a.txt:2:needle\n");
    }
}
