//! Tools agents can call: `read_file`, `list_dir`, `grep`, `find_files`, `codebase_search`
//! (reading), `write_file`, `apply_patch` (writing), `shell` (running allowed programs) and
//! `web_fetch` (fetching allowed URLs); the toolbox also holds the engine's `delegate`
//! ([`codex_actors::delegate::DelegateTool`]).
//!
//! Every tool follows the engine's contract (see [`codex_actors::tool`]): `plan` resolves the
//! paths a call names and declares them as accesses; the policy decides; only then does
//! `invoke` run, and it touches nothing but what the plan declared. The layers, each in its
//! own small module:
//!
//! - [`paths`]: model path → workspace-relative path or `Outside` (symlinks followed).
//! - [`approved`]: `invoke` re-resolves and refuses unless it gets the plan the policy
//!   approved (a symlink swapped in between is refused, not followed).
//! - [`beneath`]: files are opened component by component with `O_NOFOLLOW`, so a symlink
//!   swapped in after the checks is refused rather than followed.
//! - [`args`] and [`limits`]: argument checking and output caps shared by all tools.
//! - [`walk`]: the directory walk of the search tools (`.gitignore`, no hidden entries, no
//!   symlinks followed).
//! - [`patch`], [`search_index`], [`process`], [`html_text`]: the pure or
//!   self-contained parts of `apply_patch`, `codebase_search`, `shell` and `web_fetch`.
//!
//! Each tool caps its output and says so in a note; errors and denials go back to the model
//! as the tool's result.
//!
//! Blocking filesystem work runs on tokio's blocking pool ([`blocking`]). Unix only.

mod apply_patch;
pub mod approved;
mod args;
pub mod beneath;
mod codebase_search;
mod find_files;
mod grep;
mod html_text;
pub mod limits;
mod list_dir;
mod patch;
pub mod paths;
pub mod process;
mod read_file;
mod search_index;
mod shell;
#[cfg(test)]
mod test_support;
mod walk;
mod web_fetch;
mod write_file;

use std::sync::Arc;

use codex_actors::model::ToolSpec;
use codex_actors::tool::{ToolError, Toolbox};
use serde_json::{json, Value};

pub use apply_patch::ApplyPatch;
pub use codebase_search::CodebaseSearch;
pub use find_files::FindFiles;
pub use grep::Grep;
pub use list_dir::ListDir;
pub use read_file::ReadFile;
pub use shell::Shell;
pub use web_fetch::WebFetch;
pub use write_file::WriteFile;

/// All built-in tools, one instance each, for one run: every agent of the run shares them.
/// Tools keep no state, except `codebase_search`'s index (immutable, built on first use).
/// `shell` runs programs in the OS sandbox with the default settings (see
/// [`toolbox_with`]).
pub fn toolbox() -> Toolbox {
    let home = crate::sandbox::codex_home();
    toolbox_with(Arc::new(crate::sandbox::Sandbox::new(
        crate::sandbox::SandboxConfig::default(),
        home,
    )))
}

/// [`toolbox`] with `shell` confined as `sandbox` says.
pub fn toolbox_with(sandbox: Arc<crate::sandbox::Sandbox>) -> Toolbox {
    vec![
        Arc::new(ReadFile),
        Arc::new(ListDir),
        Arc::new(Grep),
        Arc::new(FindFiles),
        Arc::new(CodebaseSearch::default()),
        Arc::new(WriteFile),
        Arc::new(ApplyPatch),
        Arc::new(Shell::new(sandbox)),
        Arc::new(WebFetch),
        Arc::new(codex_actors::delegate::DelegateTool),
    ]
}

/// The tools of `toolbox` named in `names`, in that order; an unknown name is an error that
/// lists the available ones.
pub fn select(toolbox: &Toolbox, names: &[String]) -> anyhow::Result<Toolbox> {
    names
        .iter()
        .map(|name| {
            toolbox
                .iter()
                .find(|t| t.spec().name == *name)
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<String> = toolbox.iter().map(|t| t.spec().name).collect();
                    anyhow::anyhow!("unknown tool `{name}`; available: {}", known.join(", "))
                })
        })
        .collect()
}

/// A [`ToolSpec`] with an object schema: `properties`, `required`, no other keys.
fn spec(name: &str, description: &str, properties: Value, required: &[&str]) -> ToolSpec {
    ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters: json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }),
    }
}

/// Runs blocking filesystem work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, ToolError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ToolError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ToolError::new(format!("internal error: the tool task failed: {e}")))?
}

/// A relative path for messages: `.` for the workspace root.
fn shown(rel: &str) -> &str {
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolbox_has_every_tool() {
        let names: Vec<String> = toolbox().iter().map(|t| t.spec().name).collect();
        let expected = [
            "read_file",
            "list_dir",
            "grep",
            "find_files",
            "codebase_search",
            "write_file",
            "apply_patch",
            "shell",
            "web_fetch",
            "delegate",
        ];
        assert_eq!(names, expected);
    }

    #[test]
    fn schemas_are_closed_objects_with_declared_required_fields() {
        for tool in toolbox() {
            let spec = tool.spec();
            let p = &spec.parameters;
            assert_eq!(p["type"], "object", "{}", spec.name);
            assert_eq!(p["additionalProperties"], false, "{}", spec.name);
            let props = p["properties"].as_object().unwrap();
            for req in p["required"].as_array().unwrap() {
                assert!(props.contains_key(req.as_str().unwrap()), "{}", spec.name);
            }
            for prop in props.values() {
                assert!(prop["type"].is_string() && prop["description"].is_string());
            }
            assert!(spec.description.len() > 40, "{}", spec.name);
        }
    }

    #[test]
    fn select_picks_in_order_and_rejects_unknown() {
        let picked = select(&toolbox(), &["grep".into(), "read_file".into()]).unwrap();
        let names: Vec<String> = picked.iter().map(|t| t.spec().name).collect();
        assert_eq!(names, ["grep", "read_file"]);
        let err = select(&toolbox(), &["teleport".into()])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown tool `teleport`") && err.contains("write_file"));
    }

    #[tokio::test]
    async fn unknown_argument_is_rejected_by_every_tool() {
        let f = test_support::Fixture::new();
        for tool in toolbox() {
            let args = json!({"path": "a", "bogus": 1});
            let err = f.plan(tool.as_ref(), args).unwrap_err();
            assert!(err.0.contains("unknown argument `bogus`"), "{err}");
        }
    }
}
