//! Delegated children under isolation: a child of an isolated agent gets its own worktree,
//! made from its parent's worktree as it is when the `delegate` call is resolved, right
//! after it is made (uncommitted edits included; a sibling merged just before too), and its
//! change is merged into the parent's worktree when it finishes.
//!
//! Two pieces, both stateless over the run's directory (a worktree of agent `X` exists
//! at [`git::worktree_dir`]`(run, X)` exactly when `X` is isolated):
//!
//! - [`ChildWorktrees::root_for_child`], called by the application's resolver, creates the
//!   child's worktree when its parent has one; the resolver roots the child there
//!   (`AgentSpec::root`), so the engine runs it there like any isolated agent.
//! - [`IsolatingDelegate`] wraps the engine's `delegate` tool: when the child's report
//!   comes back, it records the child's change (`changes/<parent>+<agent>#<n>.patch`) and,
//!   if the child completed, merges it three-way into the parent's worktree with
//!   [`apply::apply`] (all or nothing). The parent's tool result gains a `worktree` member
//!   saying what happened: merged (with the files), or the conflicting files and the
//!   stored patch (nothing of the child written), or not merged because the child did not
//!   complete. The parent's own change, recorded when the run ends, then includes what
//!   was merged.
//!
//! The merge writes into the parent's worktree beyond what the `delegate` call planned:
//! every byte of it was written by the child under its own policy, which is the
//! intersection of its parent's and its own (the engine's rule), so the parent could
//! have written it too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use codex_actors::audit::{AuditEvent, WorktreeAction};
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput, Toolbox};
use serde::{Deserialize, Serialize};

use super::apply::{self, Applied};
use super::git;
use super::ChangeSummary;

/// What became of a delegated child's change in its parent's worktree, stored in the
/// child's change summary and told to the parent in its `delegate` tool result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IntoParent {
    /// Merged into the parent's worktree: these files were written there.
    Merged {
        /// Parent-relative paths written.
        files: Vec<String>,
    },
    /// Not merged: these files conflict with what the parent changed meanwhile. Nothing
    /// of the child's change was written; its patch stays stored.
    Conflicted {
        /// The conflicting files.
        files: Vec<String>,
    },
    /// Not merged: the child did not complete (its patch stays stored).
    NotCompleted,
}

/// The worktrees of one run's delegated children (see the module docs).
#[derive(Debug, Clone)]
pub struct ChildWorktrees {
    workspace: PathBuf,
    run_dir: PathBuf,
    /// Held while a child's change is merged into its parent's worktree. Two children of
    /// one parent that finish together would otherwise both read the parent's files
    /// before either wrote, both find no conflict, and the second would overwrite the
    /// first's lines. Merges take milliseconds; one at a time per run is enough.
    merging: Arc<std::sync::Mutex<()>>,
}

impl ChildWorktrees {
    /// For the run `run_id` of `workspace`.
    pub fn new(workspace: &Path, run_id: &str) -> Self {
        Self {
            workspace: workspace.to_owned(),
            run_dir: workspace.join(".codex/runs").join(run_id),
            merging: Arc::default(),
        }
    }

    /// The directory to root the child `child` of `parent` in: a new worktree made from
    /// the parent's as it is now, when the parent has one; `None` when the parent shares
    /// the workspace (the child then shares it too).
    pub fn root_for_child(&self, parent: &str, child: &str) -> Result<Option<PathBuf>> {
        let parent_root = git::worktree_dir(&self.run_dir, parent);
        if !parent_root.is_dir() {
            return Ok(None);
        }
        let worktree = git::create_from(&self.workspace, &parent_root, &self.run_dir, child)
            .with_context(|| format!("`{child}`: no worktree from its parent `{parent}`'s"))?;
        Ok(Some(worktree.path.canonicalize()?))
    }

    /// Records the change of the child `child` and, when it `completed`, merges it into
    /// `parent_root` (its parent's worktree). `None` when the child has no worktree.
    pub fn finish_child(
        &self,
        child: &str,
        parent_root: &Path,
        completed: bool,
    ) -> Result<Option<(ChangeSummary, IntoParent)>> {
        // A merge that panicked left nothing half-written (apply is all or nothing).
        let _one_at_a_time = self.merging.lock().unwrap_or_else(|e| e.into_inner());
        let path = git::worktree_dir(&self.run_dir, child);
        let Some(worktree) = git::existing(&self.run_dir, child) else {
            return Ok(None);
        };
        let mut summary = git::record_change(&self.workspace, &self.run_dir, child, &worktree)?;
        let outcome = match completed {
            false => IntoParent::NotCompleted,
            true => match apply::apply(parent_root, &summary, &[])? {
                Applied::Clean(_) => IntoParent::Merged {
                    files: summary.files.iter().map(|f| f.path.clone()).collect(),
                },
                Applied::Conflicts(c) => IntoParent::Conflicted {
                    files: c.into_iter().map(|c| c.path).collect(),
                },
            },
        };
        summary.into_parent = Some(outcome.clone());
        git::write_summary(&self.run_dir, &summary)?;
        if matches!(outcome, IntoParent::Merged { .. }) && path.exists() {
            // Its change lives on in the parent's worktree and in its patch.
            git::remove(&self.workspace, &self.run_dir, child)?;
        }
        Ok(Some((summary, outcome)))
    }

    /// The audit records of the run's delegated children's worktrees, for the run's
    /// closing step: each child's creation (its base) and its change. A child whose change
    /// was not recorded when it finished (its parent ended first) is recorded now, so
    /// nothing it wrote is lost.
    pub fn closing_records(&self) -> Vec<AuditEvent> {
        let mut records = Vec::new();
        for name in git::worktree_names(&self.run_dir) {
            if !name.contains('+') || git::summary_path(&self.run_dir, &name).exists() {
                continue;
            }
            let child = name.replace('+', "/");
            if let Some(worktree) = git::existing(&self.run_dir, &child) {
                if let Err(e) =
                    git::record_change(&self.workspace, &self.run_dir, &child, &worktree)
                {
                    eprintln!("warning: `{child}`: its change could not be recorded: {e:#}");
                }
            }
        }
        for summary in git::summaries(&self.run_dir) {
            if !summary.agent.contains('/') {
                continue;
            }
            records.push(AuditEvent::Worktree {
                agent: summary.agent.clone(),
                action: WorktreeAction::Created,
                commit: summary.base.clone(),
                sha256: None,
                files: None,
            });
            records.push(AuditEvent::Worktree {
                agent: summary.agent.clone(),
                action: WorktreeAction::ChangeRecorded,
                commit: summary.result.clone(),
                sha256: Some(summary.sha256.clone()),
                files: Some(summary.files.len()),
            });
        }
        records
    }

    /// `toolbox` with its `delegate` tool replaced by an [`IsolatingDelegate`] for this
    /// run.
    pub fn wrap(&self, toolbox: Toolbox) -> Toolbox {
        toolbox
            .into_iter()
            .map(
                |tool| match tool.spec().name == codex_actors::delegate::DELEGATE_TOOL {
                    true => Arc::new(IsolatingDelegate {
                        inner: tool,
                        children: self.clone(),
                    }) as Arc<dyn Tool>,
                    false => tool,
                },
            )
            .collect()
    }
}

/// The engine's `delegate` tool, followed by the merge of the child's change into the
/// delegating agent's worktree (see the module docs).
pub struct IsolatingDelegate {
    inner: Arc<dyn Tool>,
    children: ChildWorktrees,
}

#[async_trait::async_trait]
impl Tool for IsolatingDelegate {
    fn spec(&self) -> ToolSpec {
        self.inner.spec()
    }

    fn plan(
        &self,
        arguments: &serde_json::Value,
        ctx: &ToolContext,
    ) -> Result<Vec<Access>, ToolError> {
        self.inner.plan(arguments, ctx)
    }

    async fn invoke(
        &self,
        arguments: serde_json::Value,
        approved: &[Access],
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let mut output = self.inner.invoke(arguments, approved, ctx).await?;
        let Ok(mut report) = serde_json::from_str::<serde_json::Value>(&output.content) else {
            return Ok(output);
        };
        let (Some(child), Some(status)) = (report["agent"].as_str(), report["status"].as_str())
        else {
            return Ok(output);
        };
        let (child, completed) = (child.to_owned(), status == "completed");
        let (children, parent_root) = (self.children.clone(), ctx.workspace.clone());
        let finished = tokio::task::spawn_blocking(move || {
            children.finish_child(&child, &parent_root, completed)
        })
        .await
        .map_err(|e| ToolError::new(format!("internal error: the merge task failed: {e}")))?;
        let told = match finished {
            Ok(None) => return Ok(output),
            Ok(Some((summary, outcome))) => {
                if let IntoParent::Merged { files } = &outcome {
                    output.written.extend(files.iter().cloned());
                }
                told(&summary, &outcome)
            }
            Err(e) => serde_json::json!({
                "outcome": "error",
                "error": format!("the child's change could not be recorded or merged: {e:#}"),
            }),
        };
        report["worktree"] = told;
        output.content = serde_json::to_string_pretty(&report).expect("a report serializes");
        Ok(output)
    }
}

/// What the delegating model reads about its child's change.
fn told(summary: &ChangeSummary, outcome: &IntoParent) -> serde_json::Value {
    let mut value = serde_json::to_value(outcome).expect("an outcome serializes");
    let note = match outcome {
        IntoParent::Merged { .. } => "the child's change was merged into your worktree",
        IntoParent::Conflicted { .. } => {
            "the child's change conflicts with your edits of these files since you \
             delegated; nothing of it was written to your worktree (its patch is stored)"
        }
        IntoParent::NotCompleted => {
            "the child did not complete; its change was not merged (its patch is stored)"
        }
    };
    value["note"] = note.into();
    value["patch"] = summary.patch.clone().into();
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_reads_as_a_tagged_object() {
        let merged = IntoParent::Merged {
            files: vec!["a.txt".into()],
        };
        assert_eq!(
            serde_json::to_value(&merged).unwrap(),
            serde_json::json!({"outcome": "merged", "files": ["a.txt"]})
        );
        assert_eq!(
            serde_json::to_value(IntoParent::NotCompleted).unwrap(),
            serde_json::json!({"outcome": "not_completed"})
        );
    }
}
