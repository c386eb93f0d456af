//! A whole run of tasks, as `codex delegate`, `codex delegate-parallel` and `codex resume`
//! start it: the workspace's definitions, models, `--record`, the deadline, the sandbox,
//! each agent's isolation, the run's MCP servers and toolbox, the plans, delegation
//! ([`Resolver`]), then [`drive`]. Everything that can be wrong with the input is checked
//! before the first agent starts: unknown agents, scopes that do not exist, an unreadable
//! replay script, an unknown provider, a missing API key, an unwritable `-o`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use codex_actors::delegate::AgentResolver;
use codex_actors::new_run_id;
use tokio::sync::Mutex;

use super::cluster::{cluster_of, remote_host};
use super::delegation::{reachable, Resolver};
use super::drive::{check_writable, drive, RunOptions};
use super::isolation::{isolate, isolations};
use super::models::Models;
use super::plan::{assemble, definitions, Shared};
use super::task::Task;
use super::toolbox::{mcp_servers_of_run, sandbox_for};
use crate::definition::{parse_deadline_flag, Catalog};
use crate::providers::record::Recorder;
use crate::tools;
use crate::worktree::children::ChildWorktrees;

/// Runs `tasks` in `workspace`; the exit code says whether every agent completed.
pub async fn run(workspace: &Path, tasks: Vec<Task>, mut opts: RunOptions<'_>) -> Result<ExitCode> {
    let catalog = Catalog::load(workspace)?;
    for w in catalog.warnings() {
        eprintln!("warning: {w}");
    }
    let names: Vec<&str> = tasks.iter().map(|t| t.agent.as_str()).collect();
    let cluster = cluster_of(opts.run)?;
    let mut models = Models::new(&opts.run.models, &names, cluster.is_some())?;
    if let Some(path) = &opts.run.record {
        check_writable("--record", path)?;
    }
    let recorder = opts.run.record.as_deref().map(Recorder::new);
    let deadline = parse_deadline_flag(opts.run.deadline.as_deref())?;
    let defs = definitions(&catalog, &tasks)?;
    let sandbox = sandbox_for(opts.run, &reachable(&catalog, &defs))?;
    let run_id = opts.run_id.get_or_insert_with(new_run_id).clone();
    let isolations = isolations(workspace, opts.run.isolation, &defs)?;
    let servers = mcp_servers_of_run(
        workspace,
        &opts.run.models,
        &defs,
        &reachable(&catalog, &defs),
        &run_id,
        &sandbox,
    )
    .await?;
    opts.opening = servers.records();
    if let Some(cluster) = cluster {
        opts.remote = Some(remote_host(workspace, &run_id, opts.run, &defs, cluster).await?);
    }
    let children = ChildWorktrees::new(workspace, &run_id);
    let toolbox = children.wrap(tools::toolbox_with(sandbox));
    let shared = Shared {
        models: &mut models,
        recorder: recorder.as_ref(),
        deadline,
        toolbox: &toolbox,
        mcp: &servers,
    };
    let plans = match assemble(workspace, &catalog, tasks, shared).await {
        Ok(mut plans) => {
            isolate(workspace, &run_id, &mut plans, &isolations, opts.run).map(|worktrees| {
                opts.worktrees = worktrees;
                plans
            })
        }
        Err(e) => Err(e),
    };
    let resolver = Arc::new(
        Resolver::new(
            workspace,
            catalog,
            Arc::new(Mutex::new(models)),
            opts.run.models.clone(),
            recorder.as_ref().map(Recorder::tap),
            toolbox,
            servers.tools(),
        )
        .isolating(children),
    );
    let result = match plans {
        Ok(plans) => {
            let resolving: Arc<dyn AgentResolver> = resolver.clone();
            drive(workspace, plans, opts, recorder, Some(resolving)).await
        }
        Err(e) => Err(e),
    };
    resolver.finish().await;
    servers.shutdown().await;
    result
}
