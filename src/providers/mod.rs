//! Model providers: the implementations of [`codex_actors::Model`] the commands can use.
//!
//! - [`replay`]: plays scripted turns from a YAML file (`--replay FILE`): the engine's test
//!   double and the demo that needs no API key.

pub mod replay;

use std::path::Path;
use std::sync::Arc;

use codex_actors::Model;

pub use replay::{ReplayModel, ReplayScript};

/// The replay model for the script at `path`, ready to share between agents. Fails with the
/// file's name (and line, column and field for malformed YAML) if the script cannot be loaded.
pub fn replay_model(path: &Path) -> anyhow::Result<Arc<dyn Model>> {
    let script = ReplayScript::load(path)?;
    Ok(Arc::new(ReplayModel::new(Arc::new(script))))
}
