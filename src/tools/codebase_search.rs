//! `codebase_search`: ranked search for an identifier or a description, as `path:line`
//! with a snippet.
//!
//! The index ([`super::search_index`]) covers the whole workspace and is built on the first
//! call of a run, then shared by every agent of the run: one tool instance serves them all
//! and keeps the index in a `tokio::sync::OnceCell`. The index is immutable data about the
//! files, not policy state; permissions are applied per call. The plan is one read of the
//! directory searched (default: the agent's scope), and only files below that approved
//! directory are returned, so an agent learns nothing of files it may not read.
//!
//! The snippet is read fresh from the file (through [`super::beneath`]): the best line of
//! the chunk for the query, with one line either side. Files changed since the index was
//! built are ranked by their old content; the note says so.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::approved;
use super::args::Args;
use super::limits::{cut_line, SEARCH_DEFAULT_RESULTS, SEARCH_MAX_RESULTS};
use super::paths::default_to_scope;
use super::search_index::{self, Hit, Index, CHUNK_LINES};
use super::{blocking, shown, spec};

const NAME: &str = "codebase_search";
const KNOWN: &[&str] = &["query", "path", "limit"];
/// Snippet lines are cut to this many characters.
const SNIPPET_LINE_CHARS: usize = 200;

/// The `codebase_search` tool, with its lazily built index.
#[derive(Debug, Default)]
pub struct CodebaseSearch {
    index: OnceCell<Arc<Index>>,
}

#[async_trait]
impl Tool for CodebaseSearch {
    fn spec(&self) -> ToolSpec {
        spec(
            NAME,
            "Ranked search of the workspace for an identifier (`parse_config`, \
             `HttpClient`) or a short description (`where are retries configured`). Returns \
             the best matches as `path:line` with a snippet. Searches your scope unless \
             `path` is given. The index is built once per run: confirm with read_file before \
             you edit.",
            json!({
                "query": {"type": "string", "description": "Identifier(s) or words to look for."},
                "path": {"type": "string", "description": "Directory to search, relative to the workspace root. Default: your scope."},
                "limit": {"type": "integer", "minimum": 1, "description": "Most results (default 10, at most 30)."},
            }),
            &["query"],
        )
    }

    fn plan(&self, arguments: &Value, ctx: &ToolContext) -> Result<Vec<Access>, ToolError> {
        let (_, path, _) = parse(arguments, ctx)?;
        Ok(vec![approved::plan_search(ctx, path)?])
    }

    async fn invoke(
        &self,
        arguments: Value,
        approved: &[Access],
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let (query, path, limit) = parse(&arguments, ctx)?;
        let (path, ctx2, approved) = (path.to_owned(), ctx.clone(), approved.to_vec());
        let checked = blocking(move || approved::recheck(&ctx2, &path, &approved)).await?;
        let index = self.index_for(&checked.root).await?;
        let query = query.to_owned();
        blocking(move || {
            let under = checked.rel.clone();
            let hits = index.search(&query, limit, |p| within(p, &under));
            Ok(ToolOutput::text(render(
                &checked.root,
                &checked.rel,
                &query,
                &hits,
            )))
        })
        .await
    }
}

impl CodebaseSearch {
    /// The shared index, built on first use; a call for another workspace (an embedder
    /// mixing workspaces) gets an index of its own, not cached.
    async fn index_for(&self, root: &Path) -> Result<Arc<Index>, ToolError> {
        let build = |root: &Path| {
            let root = root.to_owned();
            blocking(move || Ok(Arc::new(Index::build(&root))))
        };
        let index = self.index.get_or_try_init(|| build(root)).await?;
        if index.root() == root {
            Ok(index.clone())
        } else {
            build(root).await
        }
    }
}

fn parse<'a>(
    arguments: &'a Value,
    ctx: &'a ToolContext,
) -> Result<(&'a str, &'a str, usize), ToolError> {
    let args = Args::parse(NAME, arguments, KNOWN)?;
    let query = args.string("query")?;
    if search_index::terms(query).is_empty() {
        return Err(ToolError::new(
            "codebase_search: `query` has no searchable word; give an identifier or a few words",
        ));
    }
    let limit = args
        .opt_positive("limit")?
        .unwrap_or(SEARCH_DEFAULT_RESULTS);
    let path = default_to_scope(args.opt_string("path")?, &ctx.scope);
    Ok((query, path, limit.min(SEARCH_MAX_RESULTS)))
}

/// Whether workspace-relative `path` is `dir` or below it (`""` is the whole workspace).
fn within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn render(root: &Path, rel: &str, query: &str, hits: &[Hit]) -> String {
    if hits.is_empty() {
        return format!("no results for `{query}` in `{}`", shown(rel));
    }
    let words = search_index::terms(query);
    let mut out = String::new();
    for hit in hits {
        match snippet(root, hit, &words) {
            Some((line, text)) => {
                let _ = writeln!(out, "{}:{line}\n{text}", hit.path);
            }
            None => {
                let _ = writeln!(
                    out,
                    "{}:{} (changed since indexed)",
                    hit.path, hit.first_line
                );
            }
        }
    }
    out
}

/// The best line of the hit's chunk and the lines around it, read from the file now.
fn snippet(root: &Path, hit: &Hit, words: &[String]) -> Option<(usize, String)> {
    let text = search_index::read_text(root, Path::new(&hit.path))?;
    let lines: Vec<&str> = text.lines().collect();
    let first = hit.first_line - 1;
    let chunk = lines.get(first..(first + CHUNK_LINES).min(lines.len()))?;
    let score = |l: &&str| {
        let t = search_index::terms(l);
        words.iter().filter(|w| t.contains(w)).count()
    };
    let best = first + (0..chunk.len()).max_by_key(|&i| (score(&chunk[i]), usize::MAX - i))?;
    let from = best.saturating_sub(1);
    let to = (best + 2).min(lines.len());
    let mut out = String::new();
    for (i, line) in lines[from..to].iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>5}| {}",
            from + i + 1,
            cut_line(line, SNIPPET_LINE_CHARS)
        );
    }
    Some((best + 1, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    #[tokio::test]
    async fn returns_path_line_and_snippet() {
        let f = Fixture::new();
        f.write("src/a.rs", "// intro\nfn retry_with_backoff() {}\n// end\n");
        f.write("src/b.rs", "fn unrelated() {}\n");
        let out = f
            .run(
                &CodebaseSearch::default(),
                json!({"query": "retry backoff"}),
            )
            .await
            .unwrap()
            .content;
        assert!(out.starts_with("src/a.rs:2\n"), "{out}");
        assert!(out.contains("    2| fn retry_with_backoff() {}"), "{out}");
        assert!(!out.contains("src/b.rs"), "{out}");
    }

    #[tokio::test]
    async fn results_are_limited_to_the_approved_directory() {
        let mut f = Fixture::new();
        f.ctx.scope = "src".into();
        f.write("src/a.rs", "fn needle() {}\n");
        f.write("secret/b.rs", "fn needle() {}\n");
        let tool = CodebaseSearch::default();
        let plan = f.plan(&tool, json!({"query": "needle"})).unwrap();
        assert_eq!(plan, [Access::ReadTree("src".into())]);
        let out = f
            .run(&tool, json!({"query": "needle"}))
            .await
            .unwrap()
            .content;
        assert!(out.contains("src/a.rs") && !out.contains("secret"), "{out}");
    }

    #[tokio::test]
    async fn the_index_is_built_once_and_snippets_are_fresh() {
        let f = Fixture::new();
        f.write("a.rs", "fn needle() {}\n");
        let tool = CodebaseSearch::default();
        f.run(&tool, json!({"query": "needle"})).await.unwrap();
        f.write("b.rs", "fn needle() {}\n");
        f.write("a.rs", "fn needle() { changed }\n");
        let out = f
            .run(&tool, json!({"query": "needle"}))
            .await
            .unwrap()
            .content;
        assert!(!out.contains("b.rs"), "rebuilt: {out}");
        assert!(out.contains("changed"), "{out}");
    }

    #[tokio::test]
    async fn a_query_without_words_is_an_error() {
        let f = Fixture::new();
        let err = f
            .plan(&CodebaseSearch::default(), json!({"query": "a ?"}))
            .unwrap_err();
        assert!(err.0.contains("no searchable word"), "{err}");
    }

    /// Timing on a generated 10,000-file tree; run with
    /// `cargo nextest run -p codex --run-ignored only index_timing --no-capture`.
    #[test]
    #[ignore = "prints timings on a 10k-file tree; no assertion on time"]
    fn index_timing_on_10k_files() {
        let f = Fixture::new();
        for i in 0..10_000 {
            let body: String = (0..60)
                .map(|l| {
                    format!(
                        "fn item_{i}_{l}(value: u32) -> u32 {{ helper_{}(value) }}\n",
                        l % 7
                    )
                })
                .collect();
            f.write(&format!("src/m{}/file_{i}.rs", i % 100), body);
        }
        let start = std::time::Instant::now();
        let index = Index::build(f.root());
        let built = start.elapsed();
        let start = std::time::Instant::now();
        let hits = index.search("item_4242_3 helper value", 10, |_| true);
        println!(
            "indexed {} files in {built:?}; query in {:?}; top: {:?}",
            index.file_count(),
            start.elapsed(),
            hits.first()
        );
        assert_eq!(index.file_count(), 10_000);
    }
}
