//! Model providers: the implementations of [`codex_actors::Model`] the commands can use.
//!
//! - [`replay`]: plays scripted turns from a YAML file (`--replay FILE`): the engine's test
//!   double and the demo that needs no API key.
//! - [`http_model`]: real models over HTTP, in one of three wire protocols:
//!   [`responses`] (OpenAI Responses), [`chat`] (Chat Completions: OpenAI and every
//!   compatible server: Ollama, vLLM, llama.cpp, LM Studio, OpenRouter) and [`anthropic`]
//!   (Anthropic Messages). Each protocol module maps our conversation to its request and
//!   folds its server-sent events ([`protocol::Decoder`]); their JSON shapes are in
//!   [`wire`]. The transport is shared: [`http`] (POST, retries, status meanings), [`sse`]
//!   (events, idle timeout), [`gate`] (a rate-gate actor per provider).
//! - Which provider and model an agent gets: [`presets`], [`config`]
//!   (`$CODEX_HOME/codex-actors.toml`, `-c` overrides) and [`select`].
//!
//! Design: the engine only sees [`codex_actors::Model`]; HTTP, configuration and keys stay
//! in the application. Provider types are our own (no SDK), lenient about what servers
//! send, so a server that adds fields or leaves some out still works.

pub mod anthropic;
pub mod calls;
pub mod chat;
pub mod config;
// The fake model server of the tests lives with the tests (`tests/support/`), out of the
// production tree; the unit tests below include it by path.
#[cfg(test)]
#[path = "../../tests/support/fake_server.rs"]
pub mod fake_server;
pub mod gate;
pub mod http;
pub mod http_model;
pub mod presets;
pub mod protocol;
pub mod record;
pub mod replay;
pub mod responses;
pub mod select;
pub mod sse;
pub mod tokens;
pub mod wire;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;

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
