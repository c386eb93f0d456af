//! `codex agent-create "PROMPT"`: the model writes an agent definition
//! ([`crate::assembly::create`]), codex checks it, shows it, optionally saves it, and runs
//! it on its goal (assembled like `codex delegate` and driven by
//! [`crate::assembly::drive`]). `--budget` covers the generation calls and the run: the run
//! gets what the generation left; `--budget` stays the saved definition's budget.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use codex_actors::delegate::AgentResolver;
use tokio::sync::Mutex;

use crate::assembly::budget::ServerBudget;
use crate::assembly::create::{plan, save, Created, Creator, Request, CREATOR};
use crate::assembly::delegation::{self, Resolver};
use crate::assembly::drive::{self, check_writable, RunOptions};
use crate::assembly::models::Models;
use crate::assembly::toolbox;
use crate::cli::{AgentCreateArgs, RunArgs};
use crate::definition::{AgentDefinition, Catalog};
use crate::interrupt::Interrupts;
use crate::tools;

/// Runs `codex agent-create`. A signal while the definition is being written ends the
/// command at once (nothing saved or run, exit `128 + signal`); one during the run cancels
/// it like the run commands do.
pub async fn run(
    workspace: &Path,
    args: &AgentCreateArgs,
    mut interrupts: Interrupts,
) -> Result<ExitCode> {
    if let Some(out) = &args.output {
        check_writable("-o", out)?;
    }
    let mut models = Models::new(&args.models, &[CREATOR], false)?;
    let creator = Creator::new(workspace, &mut models, &args.models).await?;
    let request = Request {
        prompt: args.prompt.clone(),
        name: args.name.clone(),
        budget: args.budget,
    };
    // `--budget` covers the generation calls too: they hold from it one at a time.
    let (budget, _) = ractor::Actor::spawn(None, ServerBudget, args.budget)
        .await
        .map_err(|e| anyhow!("cannot start the budget actor: {e}"))?;
    let mut log = |line: String| eprintln!("{line}");
    let created = tokio::select! {
        created = creator.create(&request, &budget, &mut log) => created,
        signal = interrupts.received() => {
            budget.stop(None);
            eprintln!("{}: no definition was saved or run", signal.name());
            return Ok(ExitCode::from(signal.exit_code()));
        }
    };
    budget.stop(None);
    let created = created?;
    for note in &created.notes {
        eprintln!("note: {note}");
    }
    writeln!(std::io::stdout(), "{}", created.yaml)?;
    if args.save {
        let path = save(
            workspace,
            &created,
            args.force,
            "add --force to replace it, or choose another --name",
        )?;
        eprintln!("Saved {}", path.display());
    }
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    run_it(workspace, &created, args, models, interrupts).await
}

/// Runs the new agent on its goal, like `codex delegate`; with `--budget`, the run's budget
/// is what the generation calls left of it.
async fn run_it(
    workspace: &Path,
    created: &Created,
    args: &AgentCreateArgs,
    mut models: Models,
    interrupts: Interrupts,
) -> Result<ExitCode> {
    let total_budget = args
        .budget
        .map(|b| b.saturating_sub(created.generation_tokens));
    if total_budget == Some(0) {
        bail!(
            "writing the definition used all of --budget ({} tokens), so nothing is left to \
             run it; give a larger --budget",
            created.generation_tokens
        );
    }
    let def = &created.definition;
    let run_args = RunArgs {
        models: args.models.clone(),
        record: None,
        output: args.output.clone(),
        deadline: None,
        quiet: false,
        json: false,
        sandbox: None,
        isolation: None,
        apply: false,
        cluster: None,
    };
    let catalog = Catalog::load(workspace)?;
    let mut delegates = delegation::reachable(&catalog, &[def]);
    delegates.retain(|d| d.name != def.name);
    // Its programs (and MCP servers) run in the sandbox `[sandbox]` sets up, as a run's.
    let agents: Vec<&AgentDefinition> = std::iter::once(def).chain(delegates.clone()).collect();
    let sandbox = toolbox::sandbox_for(&run_args, &agents)?;
    let run_id = codex_actors::new_run_id();
    let servers = toolbox::mcp_servers_of_run(
        workspace,
        &args.models,
        &[def],
        &delegates,
        &run_id,
        &sandbox,
    )
    .await?;
    let toolbox = tools::toolbox_with(sandbox);
    let plan = match plan(workspace, def, &mut models, &toolbox, &servers).await {
        Ok(p) => p,
        Err(e) => {
            servers.shutdown().await;
            return Err(e);
        }
    };
    let opts = RunOptions {
        run: &run_args,
        total_budget,
        max_concurrency: None,
        resume: None,
        interrupts,
        run_id: Some(run_id),
        worktrees: Vec::new(),
        opening: servers.records(),
        remote: None,
    };
    // The new agent may delegate to the workspace's agents like any other.
    let resolver = Arc::new(Resolver::new(
        workspace,
        catalog,
        Arc::new(Mutex::new(models)),
        args.models.clone(),
        None,
        toolbox,
        servers.tools(),
    ));
    let resolving: Arc<dyn AgentResolver> = resolver.clone();
    let result = drive::drive(workspace, vec![plan], opts, None, Some(resolving)).await;
    resolver.finish().await;
    servers.shutdown().await;
    result
}
