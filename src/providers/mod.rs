//! Model providers: the implementations of [`codex_actors::Model`] the commands can use.
//!
//! - [`replay`]: plays scripted turns from a YAML file (`--replay FILE`): the engine's test
//!   double and the demo that needs no API key.

pub mod replay;

use std::path::Path;
use std::sync::Arc;

use codex_actors::Model;

pub use replay::{ReplayModel, ReplayScript};

/// The replay model for the script at `path`, ready to share between `agents`. Fails with
/// the file's name (and line, column and field for malformed YAML) if the script cannot be
/// loaded, and names any agent the script has no turns for (and no `default`), before
/// anything runs.
pub fn replay_model(path: &Path, agents: &[&str]) -> anyhow::Result<Arc<dyn Model>> {
    let script = ReplayScript::load(path)?;
    let missing: Vec<&str> = agents
        .iter()
        .copied()
        .filter(|a| script.script_for(a).is_none())
        .collect();
    if !missing.is_empty() {
        let have: Vec<&str> = script.agent_names().collect();
        anyhow::bail!(
            "replay script {} has no turns for {} (it has: {}); add them, or a `default` script",
            path.display(),
            missing
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", "),
            have.join(", ")
        );
    }
    Ok(Arc::new(ReplayModel::new(Arc::new(script))))
}
