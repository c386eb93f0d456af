//! What a delegating codex hands a child `codex mcp-server` ([`Handoff`]): the
//! definitions the child may run, taken from the parent run's catalog (read once, when the
//! run started), and the effective policy of the delegating agent, every ancestor's layer.
//!
//! The child reads it from [`HANDOFF_VAR`] (JSON) in one place ([`current`]): its
//! `delegate` calls use the handed definitions instead of the files on disk (a definition
//! written mid-run never changes a child), and every agent of its run is confined within
//! the handed layers ([`super::confine`]), so a child can never do what its parent could
//! not. The variable is set on the child's command only; an agent cannot set it (its
//! programs get their own environment and cannot start a codex of their own with one of
//! its choosing that would widen anything: a handoff only ever narrows).

use std::path::Path;

use anyhow::{Context as _, Result};
use codex_actors::PolicyLayer;
use serde::{Deserialize, Serialize};

use crate::definition::{AgentDefinition, Catalog};

/// The environment variable that carries the handoff to a child codex.
pub const HANDOFF_VAR: &str = "CODEX_DELEGATION_HANDOFF";

/// See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// The definitions the child may run or delegate to, from the parent run's catalog.
    pub agents: Vec<AgentDefinition>,
    /// The delegating agent's policy: its own layer first, then its ancestors'.
    pub ancestors: Vec<PolicyLayer>,
}

impl Handoff {
    /// The value of [`HANDOFF_VAR`] for a child.
    pub fn encode(&self) -> Result<String> {
        serde_json::to_string(self).context("cannot encode the delegation handoff")
    }
}

/// The handoff this process was started with, if any. A malformed one is an error (a child
/// must not run unconfined because its handoff did not parse).
pub fn current() -> Result<Option<Handoff>> {
    match std::env::var(HANDOFF_VAR) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{HANDOFF_VAR} is not a valid delegation handoff")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{HANDOFF_VAR}: {e}")),
    }
}

/// The catalog a run of this process uses: the handed definitions in a delegated child,
/// else the workspace's catalog, read now.
pub fn catalog(workspace: &Path) -> Result<Catalog> {
    match current()? {
        Some(handoff) => Ok(Catalog::handed(workspace, handoff.agents)),
        None => Catalog::load(workspace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codex_actors::Permissions;

    #[test]
    fn a_handoff_survives_its_encoding() {
        let def: AgentDefinition =
            serde_yaml::from_str("name: helper\ngoal: g\ntools:\n  shell:\n    exec: [cat]\n")
                .unwrap();
        let h = Handoff {
            agents: vec![def],
            ancestors: vec![PolicyLayer {
                permissions: Permissions {
                    read: vec!["src/**".into()],
                    ..Permissions::default()
                },
                scope: "src".into(),
            }],
        };
        let back: Handoff = serde_json::from_str(&h.encode().unwrap()).unwrap();
        assert_eq!(back, h);
    }
}
