//! What a run's tools run under and with: the OS sandbox for agents' programs (the config
//! file's `[sandbox]`, `--sandbox` over it; refused up front when it is on and the kernel
//! lacks it) and the MCP servers the agents' definitions name, started once per run.
//! The toolbox itself is `tools::toolbox_with(sandbox)`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};
use codex::sandbox::{Sandbox, SandboxMode};
use codex_actors::new_run_id;

use crate::cli::{ModelArgs, RunArgs};
use crate::definition::{default_codex_home, AgentDefinition};
use crate::mcp_client::McpServers;
use crate::providers;

/// The run's OS sandbox for agents' programs: `[sandbox]` of the config file, `--sandbox`
/// over it. When it is on and this kernel lacks what it needs, a run in which some agent
/// (`defs`, with every agent they may delegate to) may run programs is refused here,
/// before anything starts: never a silent run without it.
pub fn sandbox_for(run: &RunArgs, defs: &[&AgentDefinition]) -> Result<Arc<Sandbox>> {
    let sandbox = of_config(&run.models, run.sandbox)?;
    refuse_unconfined(&sandbox, defs)?;
    Ok(sandbox)
}

/// The sandbox of agents' programs as `[sandbox]` of the config file (with `flags`' `-c`
/// overrides) sets it up, `mode` (`--sandbox`) over it: how every command that runs agents
/// (the run commands, `codex mcp-server`, `codex agent-create`) sets it up.
pub fn of_config(flags: &ModelArgs, mode: Option<SandboxMode>) -> Result<Arc<Sandbox>> {
    let home = default_codex_home();
    let mut config = providers::config::Config::load(home.as_deref(), &flags.config)?.sandbox;
    if let Some(mode) = mode {
        config.mode = mode;
    }
    let home = home.map(|h| h.canonicalize().unwrap_or(h));
    Ok(Arc::new(Sandbox::new(config, home)))
}

/// Refuses, before anything starts, a run in which some agent of `defs` (with every agent
/// they may delegate to) may run programs while the sandbox is on and this kernel lacks
/// what it needs: never a silent run without it.
pub fn refuse_unconfined(sandbox: &Sandbox, defs: &[&AgentDefinition]) -> Result<()> {
    let runs_programs: Vec<&str> = defs
        .iter()
        .filter(|d| !d.tools.shell.exec.is_empty())
        .map(|d| d.name.as_str())
        .collect();
    if let (Some(why), false) = (sandbox.refusal(), runs_programs.is_empty()) {
        bail!(
            "refusing to run: agents {} may run programs, and {why}",
            runs_programs.join(", ")
        );
    }
    Ok(())
}

/// Starts the MCP servers (`[mcp_servers.NAME]` of codex-actors.toml) that `defs` list in
/// `tools.mcp`, and those of the agents they may delegate to (`delegates`, see
/// [`McpServers::start`]), once for the run. Their stderr goes to files of a fresh run
/// directory ([`mcp_servers_of_run`] names the run). Each runs in `sandbox`, derived from
/// the agents that use it (`crate::mcp_client::confine`).
pub async fn mcp_servers(
    workspace: &Path,
    flags: &ModelArgs,
    defs: &[&AgentDefinition],
    delegates: &[&AgentDefinition],
    sandbox: &Arc<Sandbox>,
) -> Result<McpServers> {
    mcp_servers_of_run(workspace, flags, defs, delegates, &new_run_id(), sandbox).await
}

/// [`mcp_servers`] for the run `run_id`: each server's stderr goes to
/// `.codex/runs/<run_id>/mcp-<name>.stderr`.
pub async fn mcp_servers_of_run(
    workspace: &Path,
    flags: &ModelArgs,
    defs: &[&AgentDefinition],
    delegates: &[&AgentDefinition],
    run_id: &str,
    sandbox: &Arc<Sandbox>,
) -> Result<McpServers> {
    let patterns: Vec<&String> = defs.iter().flat_map(|d| &d.tools.mcp).collect();
    let optional: Vec<&String> = delegates.iter().flat_map(|d| &d.tools.mcp).collect();
    if patterns.is_empty() && optional.is_empty() {
        return Ok(McpServers::default());
    }
    let home = default_codex_home();
    let config = providers::config::Config::load(home.as_deref(), &flags.config)?;
    let stderr_dir = workspace.join(".codex/runs").join(run_id);
    let agents: Vec<&AgentDefinition> = defs.iter().chain(delegates).copied().collect();
    let confiner = crate::mcp_client::confine::Confiner::new(Arc::clone(sandbox), &agents);
    McpServers::start(
        &config.mcp_servers,
        patterns,
        optional,
        workspace,
        &stderr_dir,
        &confiner,
    )
    .await
}
