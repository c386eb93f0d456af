//! Containment: what keeps an agent from widening its own permissions, forging the audit
//! log, or reaching a key, on the application's side (the rules themselves are the
//! engine's pure policy, `codex_actors::policy::protected`).
//!
//! - [`confine`]: every agent of a run gets `$CODEX_HOME` as a protected path when it lies
//!   inside the workspace, and, in a child `codex mcp-server`, the policies of the agents
//!   that delegated to it ([`handoff`]).
//! - [`anchor_path`]: where a run's audit head is anchored when it ends.
//! - [`harden_process`]: this process's memory and `/proc/<pid>/environ` are closed to
//!   other processes of the same user (the programs agents run), so the provider keys it
//!   holds cannot be read from there.

pub mod handoff;

use std::path::{Path, PathBuf};

use codex_actors::AgentSpec;

use crate::definition::default_codex_home;

/// The anchor file: `$CODEX_HOME/anchors.jsonl` (`None` without a home directory).
pub fn anchor_path() -> Option<PathBuf> {
    default_codex_home().map(|h| h.join("anchors.jsonl"))
}

/// Narrows `spec` as every agent of a run must be: `$CODEX_HOME` never writable when it
/// is inside `workspace`, and within the handed-over ancestors' policies in a delegated
/// child process.
pub fn confine(workspace: &Path, spec: &mut AgentSpec) -> anyhow::Result<()> {
    if let Some(rel) = default_codex_home().and_then(|h| inside(workspace, &h)) {
        spec.permissions.protected.push(rel);
    }
    if let Some(handoff) = handoff::current()? {
        spec.ancestors.extend(handoff.ancestors);
    }
    Ok(())
}

/// `path` relative to `workspace` when it lies inside it (symlinks resolved).
fn inside(workspace: &Path, path: &Path) -> Option<String> {
    let root = workspace.canonicalize().ok()?;
    match crate::tools::paths::resolve(&root, &path.to_string_lossy()).ok()? {
        crate::tools::paths::Resolved::Inside(rel) => Some(rel),
        crate::tools::paths::Resolved::Outside(_) => None,
    }
}

/// Makes this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`): processes of the same
/// user can no longer read its `/proc/<pid>/environ`, `mem` or `maps`, nor ptrace it, so
/// a program an agent runs cannot read the provider keys from there. Children started
/// after this are dumpable again (exec resets the flag), which they need nothing from.
pub fn harden_process() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::warn!("cannot make this process non-dumpable: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_inside_the_workspace_is_found_relative_to_it() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("cfg/home")).unwrap();
        assert_eq!(
            inside(ws.path(), &ws.path().join("cfg/home")),
            Some("cfg/home".into())
        );
        assert_eq!(inside(ws.path(), Path::new("/elsewhere")), None);
    }
}
