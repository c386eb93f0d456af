//! Where a run's agents get their models: a replay script (`--replay` wins over
//! everything) or live providers chosen per agent ([`crate::providers::select`]). One
//! [`Models`] serves a whole run, its delegated agents included, so a replay script plays
//! on and a provider's rate gate is shared.

use std::sync::Arc;

use anyhow::Result;
use codex_actors::{Model, ModelError, ModelEvent, ModelRequest};
use futures::stream::BoxStream;

use crate::cli::ModelArgs;
use crate::definition::default_codex_home;
use crate::providers;

/// Where the agents' models come from: a replay script (`--replay` wins), or providers.
pub enum Models {
    /// Every agent plays its turns from the replay script.
    Replay(Arc<dyn Model>),
    /// A provider and model per agent (flags > definition > config file).
    Live(Box<providers::select::Selector>),
    /// The agents run on a cluster's workers, which build their models with their own
    /// config and keys (`--cluster` without `--replay`): none is built here.
    OnWorkers,
}

impl Models {
    /// From the flags; with `--replay`, the script must have turns for each of `agents`
    /// (or a `default`).
    pub fn new(run: &ModelArgs, agents: &[&str], on_workers: bool) -> Result<Self> {
        if let Some(path) = &run.replay {
            return Ok(Models::Replay(providers::replay_model(path, agents)?));
        }
        if on_workers {
            return Ok(Models::OnWorkers);
        }
        let home = default_codex_home();
        let config = providers::config::Config::load(home.as_deref(), &run.config)?;
        Ok(Models::Live(Box::new(providers::select::Selector::new(
            config,
            run.provider.clone(),
            run.model.clone(),
        ))))
    }

    /// The model of `agent`; a missing key or an unknown provider is an error here, before
    /// anything runs.
    pub async fn model_for(
        &mut self,
        agent: &str,
        provider: Option<&str>,
        model: Option<&str>,
    ) -> Result<Arc<dyn Model>> {
        match self {
            Models::Replay(m) => Ok(Arc::clone(m)),
            Models::Live(s) => s.model_for(agent, provider, model).await,
            Models::OnWorkers => Ok(Arc::new(OnWorkers)),
        }
    }
}

/// The model of an agent that runs on a worker: the worker builds the real one. Never
/// called by the run (its attempts run remotely); a delegated agent, which runs here,
/// fails with this explanation.
struct OnWorkers;

impl Model for OnWorkers {
    fn name(&self) -> String {
        "on-workers".into()
    }

    fn stream(&self, _: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        let why = "this agent's model is configured on the cluster's workers, not here: \
                   delegated agents of a --cluster run need --replay or a provider and key \
                   on the coordinator too";
        Box::pin(futures::stream::once(async move {
            Err(ModelError::Fatal(why.into()))
        }))
    }
}
