//! A run whose agents run on a cluster's workers (`--cluster URL` or `[cluster] url`): the
//! coordinator's [`NatsHost`], made before anything runs, so an unreachable NATS server,
//! a workspace that is not a git repository or an agent workers cannot run is an error
//! here, not a run of failed agents.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use codex_actors::protocol::RemoteHost;

use crate::cli::RunArgs;
use crate::cluster::coordinator::{HostConfig, NatsHost};
use crate::cluster::{checkout, ClusterConfig, ModelChoice, Subjects, DEFAULT_SILENCE_LIMIT};
use crate::definition::deadline::parse_duration_of;
use crate::definition::{default_codex_home, AgentDefinition};
use crate::providers::config::Config;

/// The cluster of this run, if it has one.
pub fn cluster_of(run: &RunArgs) -> Result<Option<(String, ClusterConfig)>> {
    let home = default_codex_home();
    let config = Config::load(home.as_deref(), &run.models.config)?.cluster;
    Ok(run
        .cluster
        .clone()
        .or(config.url.clone())
        .map(|url| (url, config)))
}

/// The transport of a run whose agents (`defs`) run on the workers of `cluster`.
pub async fn remote_host(
    workspace: &Path,
    run_id: &str,
    run: &RunArgs,
    defs: &[&AgentDefinition],
    (url, cluster): (String, ClusterConfig),
) -> Result<Arc<dyn RemoteHost>> {
    if let Some(def) = defs.iter().find(|d| !d.tools.mcp.is_empty()) {
        bail!(
            "agent `{}` uses MCP servers (tools.mcp), which workers do not start: run it \
             without --cluster",
            def.name
        );
    }
    let subjects = Subjects::new(cluster.name.as_deref().unwrap_or("default"))?;
    let silence_limit = match &cluster.silence_limit {
        Some(text) => parse_duration_of("[cluster] silence_limit", text)?,
        None => DEFAULT_SILENCE_LIMIT,
    };
    let run_dir = workspace.join(".codex/runs").join(run_id);
    let base = checkout::base_of(workspace, &run_dir)?;
    let replay = match &run.models.replay {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the replay script {}", path.display()))?,
        ),
        None => None,
    };
    let models = ModelChoice {
        replay,
        provider: run.models.provider.clone(),
        model: run.models.model.clone(),
        definitions: defs
            .iter()
            .map(|d| (d.name.clone(), (d.provider.clone(), d.model.clone())))
            .collect(),
    };
    let host = NatsHost::start(HostConfig {
        url,
        subjects,
        run_id: run_id.to_owned(),
        run_dir,
        models,
        base,
        silence_limit,
    })
    .await?;
    Ok(host)
}
