//! `codex agent-create "PROMPT"`: the model writes an agent definition, codex checks it,
//! shows it, optionally saves it, and runs it on its goal. The MCP tool `create_agent`
//! (`mcp/server.rs`) does the same through the same functions: [`Creator::create`] (write,
//! check, adjust, cap), [`save`] and [`plan`]; only how the run is driven differs.
//!
//! The definition is written by one model call through the engine's `Model` trait (a
//! system prompt describing the YAML schema, then the user's prompt). It is checked with the
//! same parser as definition files (`definition::parse_definition`) and converted to an
//! `AgentSpec` (so a missing goal or a bad pattern is caught too). An invalid answer goes
//! back to the model with the errors, at most [`MAX_RETRIES`] times; still invalid is an
//! error, and nothing is saved or run. A name or budget the caller gives replaces the
//! model's (a malformed name is refused before any model call).
//!
//! A model-written agent gets no shell and no network unless `[agent_create]` in
//! `codex-actors.toml` allows them (`allow_shell`, `allow_network`): such permissions are
//! removed, and a note says so. Saving never replaces a file unless forced (`--force`; the
//! MCP tool never does). The run that follows is assembled like `codex delegate`
//! (`commands::run::plan_for`) and driven by `commands::run::drive` here, or within the
//! server's budget by `codex mcp-server`.
//!
//! The generation calls come out of a budget before any run exists: each holds its worst
//! case (prompt estimate + output cap, the cap clamped to what it got) from a
//! `mcp::budget::ServerBudget` actor and settles with its usage. For `codex mcp-server` that
//! is the session's budget; for `codex agent-create` one started with `--budget` (no cap
//! without it), and the run then gets what the generation left. `--budget` stays the saved
//! definition's budget. They are not in an audit log: the log belongs to the run that
//! follows (its AuditActor), which does not exist yet, and may never (an invalid answer,
//! `--dry-run`).

use std::io::Write as _;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use codex_actors::delegate::AgentResolver;
use codex_actors::model::collect_response;
use codex_actors::tool::Toolbox;
use codex_actors::{AgentPlan, ChatMessage, Model, ModelRequest, Role};
use ractor::ActorRef;
use tokio::sync::Mutex;

use super::run::{self, How, Models, RunOptions};
use super::tasks::Task;
use crate::atomic_file::{self, Replace, Written};
use crate::cli::{AgentCreateArgs, ModelArgs, RunArgs};
use crate::definition::{default_codex_home, parse_definition, AgentDefinition, Catalog};
use crate::delegation::{self, Resolver};
use crate::interrupt::Interrupts;
use crate::mcp::budget::{self, ServerBudget, ServerBudgetMsg};
use crate::mcp::client::McpServers;
use crate::providers::config::{AgentCreateConfig, Config};
use crate::tools;

/// The name the generation calls are made under; a replay script keys their turns on it.
pub const CREATOR: &str = "agent-create";

/// How often an invalid definition goes back to the model with its errors.
pub const MAX_RETRIES: u32 = 2;

/// The most tokens one generation call may write.
const MAX_OUTPUT_TOKENS: u64 = 4096;

/// The fewest output tokens worth a generation call: a definition cut shorter is invalid.
const MIN_OUTPUT_TOKENS: u64 = 1024;

/// What the model is told about the format.
const SYSTEM_PROMPT: &str = r#"You write agent definitions for codex, an orchestrator of LLM coding agents.
Reply with one YAML document and nothing else (no prose, no code fences). The schema:

name: my-agent                  # required: lowercase letters, digits, `-` and `_`
goal: "What the agent achieves"  # required: the default goal
instructions: |                 # required: the agent's system prompt
  You ...
tools:
  fs: { read: true, write: ["artifacts/"] }   # read: bool; write: false, true, or paths/globs
  net: { allow: ["https://docs.rs/*"] }        # URL patterns for web_fetch (only if needed)
  shell: { exec: ["cargo"] }                   # program names (only if needed)
  delegate: { agents: ["code-reviewer"] }      # agents it may hand parts to (only if needed)
policies:
  secrets: { redact: true }
  permissions:
    filesystem: ["src/**", "tests/**"]         # optional: the readable globs
success_criteria: ["..."]
artifacts: ["artifacts/report.md"]
budget: 20000          # tokens
deadline: 10m
max_turns: 20
max_output_tokens: 4096

Give the agent the least permissions its goal needs. Globs are relative to the workspace root."#;

/// Runs `codex agent-create`. A signal while the definition is being written ends the
/// command at once (nothing saved or run, exit `128 + signal`); one during the run cancels
/// it like the run commands do.
pub async fn run(
    workspace: &Path,
    args: &AgentCreateArgs,
    mut interrupts: Interrupts,
) -> Result<ExitCode> {
    if let Some(out) = &args.output {
        run::check_writable("-o", out)?;
    }
    let mut models = Models::new(&args.models, &[CREATOR])?;
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

/// What a caller asks for: the description, and the choices that replace the model's.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// What the agent should be and do, in words.
    pub prompt: String,
    /// The agent's name (`--name`).
    pub name: Option<String>,
    /// The agent's token budget (`--budget`).
    pub budget: Option<u64>,
}

/// A definition the model wrote, checked, adjusted to the [`Request`] and capped by
/// `[agent_create]`: ready to show, save and run.
#[derive(Debug, Clone)]
pub struct Created {
    /// The definition.
    pub definition: AgentDefinition,
    /// The definition as YAML (what `--save` writes), checked like a definition file.
    pub yaml: String,
    /// What was changed in the model's answer and why (permissions removed).
    pub notes: Vec<String>,
    /// Tokens the model calls that wrote it used (charged to the budget they held from).
    pub generation_tokens: u64,
}

/// The model that writes definitions and what it may let them do: the part of
/// `codex agent-create` shared with the MCP tool `create_agent`.
pub struct Creator {
    model: Arc<dyn Model>,
    model_name: Option<String>,
    allow: AgentCreateConfig,
    /// The agents a generated one may delegate to, checked against the ceiling.
    catalog: Catalog,
}

impl Creator {
    /// The generation model (the one agent [`CREATOR`] gets from `models`) and the
    /// `[agent_create]` limits of codex-actors.toml (with `-c` overrides from `flags`).
    pub async fn new(workspace: &Path, models: &mut Models, flags: &ModelArgs) -> Result<Self> {
        let home = default_codex_home();
        let config = Config::load(home.as_deref(), &flags.config)?;
        let model = models.model_for(CREATOR, None, None).await?;
        Ok(Creator {
            model,
            model_name: flags.model.clone(),
            allow: config.agent_create,
            catalog: crate::containment::handoff::catalog(workspace)?,
        })
    }

    /// Has the model write a definition for `request` (invalid answers go back with their
    /// errors, at most [`MAX_RETRIES`] times), applies the request's name and budget,
    /// removes the permissions `[agent_create]` does not allow (one note each) and checks
    /// the result again. Each model call holds its worst case (prompt estimate + output
    /// cap) from `budget` first, its output cap clamped to what it got, and settles with
    /// its usage. `log` gets a line per model call (its tokens, or why its answer was
    /// invalid) as it happens. Nothing is saved or run.
    pub async fn create(
        &self,
        request: &Request,
        budget: &ActorRef<ServerBudgetMsg>,
        log: &mut (dyn FnMut(String) + Send),
    ) -> Result<Created> {
        let (name, agent_budget) = overrides(request)?;
        let writer = Writer {
            model: self.model.as_ref(),
            model_name: self.model_name.clone(),
            budget,
        };
        let (mut definition, generation_tokens) = writer.generate(&request.prompt, log).await?;
        if let Some(name) = name {
            definition.name = name;
        }
        if agent_budget.is_some() {
            definition.budget = agent_budget;
        }
        let mut notes = cap(&mut definition, &self.allow);
        notes.extend(cap_delegation(&mut definition, &self.catalog, &self.allow));
        let yaml =
            serde_yaml::to_string(&definition).context("cannot write the definition as YAML")?;
        parse_definition(&yaml, "<generated>").context("the adjusted definition is invalid")?;
        Ok(Created {
            definition,
            yaml,
            notes,
            generation_tokens,
        })
    }
}

/// One generation: the model, its name for the request, the budget its calls hold from.
struct Writer<'a> {
    model: &'a dyn Model,
    model_name: Option<String>,
    budget: &'a ActorRef<ServerBudgetMsg>,
}

impl Writer<'_> {
    /// Asks the model for a definition until one is valid, or the retries are used up; the
    /// definition and the tokens every call used.
    async fn generate(
        &self,
        prompt: &str,
        log: &mut (dyn FnMut(String) + Send),
    ) -> Result<(AgentDefinition, u64)> {
        let mut messages = vec![
            ChatMessage::text(Role::System, SYSTEM_PROMPT),
            ChatMessage::text(Role::User, prompt),
        ];
        let mut last_error = String::new();
        let mut used = 0;
        for turn in 0..=MAX_RETRIES {
            let (text, tokens) = self.call(turn, &messages).await?;
            used += tokens;
            log(format!("definition written ({tokens} tokens)"));
            match validate(&text) {
                Ok(def) => return Ok((def, used)),
                Err(e) => {
                    last_error = format!("{e:#}");
                    log(format!(
                        "the model's definition is invalid (try {} of {}): {last_error}",
                        turn + 1,
                        MAX_RETRIES + 1
                    ));
                    messages.push(ChatMessage::text(Role::Assistant, text));
                    messages.push(ChatMessage::text(Role::User, correction(&last_error)));
                }
            }
        }
        bail!(
            "the model wrote no valid agent definition in {} tries (last error: {last_error}); \
             nothing was saved or run. Rephrase the prompt, or write the YAML yourself \
             (`codex agents show code-reviewer` shows one)",
            MAX_RETRIES + 1
        )
    }

    /// One model call within the budget: holds the prompt estimate plus the output cap
    /// (the cap clamped to what was held), then settles with the reported usage (or an
    /// estimate, when the provider reports none; nothing for a failed call, whose usage
    /// is unknown, as in the engine). Its text and the tokens charged.
    async fn call(&self, turn: u32, messages: &[ChatMessage]) -> Result<(String, u64)> {
        let prompt_tokens = self.model.estimate_prompt_tokens(messages, &[]);
        let held = budget::hold(self.budget, prompt_tokens + MAX_OUTPUT_TOKENS)
            .await?
            .unwrap_or(0);
        let max_output_tokens = held.saturating_sub(prompt_tokens).min(MAX_OUTPUT_TOKENS);
        if max_output_tokens < MIN_OUTPUT_TOKENS {
            budget::settle(self.budget, held, 0);
            bail!(
                "the budget has {held} tokens left, too few to write a definition (about \
                 {prompt_tokens} for the prompt and at least {MIN_OUTPUT_TOKENS} for the \
                 answer); nothing was saved or run. Give a larger --budget"
            );
        }
        let request = ModelRequest {
            agent: CREATOR.to_owned(),
            attempt: 1,
            turn,
            model: self.model_name.clone(),
            messages: messages.to_vec(),
            tools: Vec::new().into(),
            max_output_tokens,
            purpose: Default::default(),
        };
        let response = collect_response(self.model.stream(request)).await;
        let used = response.as_ref().map_or(0, |r| match r.usage {
            Some(u) => u.total(),
            None => prompt_tokens + (r.text.len() as u64).div_ceil(3).max(1),
        });
        budget::settle(self.budget, held, used);
        let response =
            response.map_err(|e| anyhow!("the model could not write a definition: {e}"))?;
        Ok((response.text, used))
    }
}

/// The message that sends a definition back to the model.
fn correction(error: &str) -> String {
    format!("That definition is invalid:\n{error}\nReply with the corrected YAML only.")
}

/// The model's text as a definition: parsed like a file, and convertible to a spec.
fn validate(text: &str) -> Result<AgentDefinition> {
    let parsed = parse_definition(strip_fences(text), "<generated>")?;
    parsed.definition.to_spec(None, None, None, None)?;
    Ok(parsed.definition)
}

/// The YAML inside a ```yaml fence, if the model used one anyway.
fn strip_fences(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let body = rest.split_once('\n').map_or("", |(_, b)| b);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

/// The request's name and budget, checked (before any model call), to replace the
/// model's choices.
fn overrides(request: &Request) -> Result<(Option<String>, Option<NonZeroU64>)> {
    if let Some(name) = &request.name {
        if !crate::definition::schema::is_valid_name(name) {
            bail!("name `{name}`: use lowercase letters, digits, `-` and `_`, e.g. `my-agent`");
        }
    }
    let budget = request
        .budget
        .map(|b| NonZeroU64::new(b).ok_or_else(|| anyhow!("the budget must be more than 0")))
        .transpose()?;
    Ok((request.name.clone(), budget))
}

/// Removes the shell and network permissions the configuration does not allow; one note
/// per removal.
fn cap(def: &mut AgentDefinition, allow: &AgentCreateConfig) -> Vec<String> {
    let mut notes = Vec::new();
    let exec = &mut def.tools.shell.exec;
    if !allow.allow_shell && !exec.is_empty() {
        notes.push(format!(
            "removed the shell permission (exec: {}); set `allow_shell = true` under \
             [agent_create] in codex-actors.toml to keep it",
            exec.join(", ")
        ));
        exec.clear();
    }
    let net = &mut def.tools.net.allow;
    let policy = &mut def.policies.permissions.network;
    let nothing_to_remove = net.is_empty() && policy.is_empty();
    if !allow.allow_network && !nothing_to_remove {
        let urls: Vec<String> = net.drain(..).chain(policy.drain(..)).collect();
        notes.push(format!(
            "removed the network permission ({}); set `allow_network = true` under \
             [agent_create] in codex-actors.toml to keep it",
            urls.join(", ")
        ));
    }
    notes
}

/// What in `def` goes beyond the ceiling `allow` (shell, network), for a note.
fn beyond_ceiling(def: &AgentDefinition, allow: &AgentCreateConfig) -> Option<String> {
    let network = def
        .tools
        .net
        .allow
        .iter()
        .chain(&def.policies.permissions.network);
    if !allow.allow_shell && !def.tools.shell.exec.is_empty() {
        Some(format!("runs {}", def.tools.shell.exec.join(", ")))
    } else if !allow.allow_network && network.clone().next().is_some() {
        Some(format!(
            "fetches {}",
            network.cloned().collect::<Vec<_>>().join(", ")
        ))
    } else {
        None
    }
}

/// The ceiling is transitive: a generated agent keeps a delegation only to agents of
/// `catalog` that, with every agent they may delegate to in turn, stay within `allow`;
/// `*` becomes the names that do. One note per removal (an agent not in the catalog is
/// removed too: it cannot be checked).
fn cap_delegation(
    def: &mut AgentDefinition,
    catalog: &Catalog,
    allow: &AgentCreateConfig,
) -> Vec<String> {
    let mut notes = Vec::new();
    let wanted = std::mem::take(&mut def.tools.delegate.agents);
    let star = wanted.iter().any(|a| a == "*");
    let names: Vec<String> = if star {
        catalog.names().iter().map(|n| n.to_string()).collect()
    } else {
        wanted
    };
    let mut kept = Vec::new();
    for name in names {
        let Some(target) = catalog.get(&name) else {
            notes.push(format!(
                "removed the delegation to `{name}`: no such agent to check against the ceiling"
            ));
            continue;
        };
        let reach = crate::delegation::reachable(catalog, &[&target.definition]);
        match reach
            .iter()
            .find_map(|d| beyond_ceiling(d, allow).map(|why| (d.name.clone(), why)))
        {
            Some((culprit, why)) if !star => notes.push(format!(
                "removed the delegation to `{name}`: `{culprit}`{} {why}, beyond [agent_create]'s ceiling",
                if culprit == name { String::new() } else { format!(" (which `{name}` may delegate to)") }
            )),
            Some(_) => {}
            None => kept.push(name),
        }
    }
    if star {
        notes.push(format!(
            "replaced delegation to `*` by the agents within [agent_create]'s ceiling: {}",
            if kept.is_empty() {
                "none".to_owned()
            } else {
                kept.join(", ")
            }
        ));
    }
    def.tools.delegate.agents = kept;
    notes
}

/// Where [`save`] writes the definition of agent `name`: `.codex/agents/NAME.yaml`.
pub fn saved_path(workspace: &Path, name: &str) -> PathBuf {
    workspace.join(".codex/agents").join(format!("{name}.yaml"))
}

/// Writes `created` to [`saved_path`]. An existing file is replaced only with `force`;
/// otherwise it is an error that ends with `if_exists` (what the caller's user can do).
pub fn save(workspace: &Path, created: &Created, force: bool, if_exists: &str) -> Result<PathBuf> {
    let path = saved_path(workspace, &created.definition.name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Atomic either way: a reader never sees half a definition, and without `force` a
    // file created meanwhile is never overwritten.
    let replace = match force {
        true => Replace::Allowed,
        false => Replace::Refused,
    };
    match atomic_file::write(&path, created.yaml.as_bytes(), replace)
        .context("cannot save the definition")?
    {
        Written::Done => {}
        Written::Exists => bail!(
            "{} exists, so nothing was saved or run; {if_exists}",
            path.display()
        ),
    }
    Ok(path)
}

/// The new agent as the engine runs it on its own goal and budget, like `codex delegate`
/// (`run::plan_for`): its model from `models`, its tools, the tools of `servers` (the MCP
/// servers its `tools.mcp` names, started by the caller).
pub async fn plan(
    workspace: &Path,
    def: &AgentDefinition,
    models: &mut Models,
    toolbox: &Toolbox,
    servers: &McpServers,
) -> Result<AgentPlan> {
    let task = Task {
        agent: def.name.clone(),
        goal: None,
        scope: None,
        budget: None,
        deadline: None,
    };
    let how = How {
        models,
        recorder: None,
        deadline: None,
        toolbox,
        mcp: servers,
    };
    run::plan_for(workspace, def, task, how).await
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
    };
    let catalog = Catalog::load(workspace)?;
    let mut delegates = delegation::reachable(&catalog, &[def]);
    delegates.retain(|d| d.name != def.name);
    // Its programs (and MCP servers) run in the sandbox `[sandbox]` sets up, as a run's.
    let agents: Vec<&AgentDefinition> = std::iter::once(def).chain(delegates.clone()).collect();
    let sandbox = run::sandbox_for(&run_args, &agents)?;
    let run_id = codex_actors::new_run_id();
    let servers = run::mcp_servers_of_run(
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
    let result = run::drive(workspace, vec![plan], opts, None, Some(resolving)).await;
    resolver.finish().await;
    servers.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(yaml: &str) -> AgentDefinition {
        validate(yaml).unwrap()
    }

    #[test]
    fn fences_are_stripped() {
        assert_eq!(strip_fences("```yaml\nname: a\n```"), "name: a");
        assert_eq!(strip_fences("name: a\n"), "name: a");
    }

    #[test]
    fn a_definition_without_a_goal_is_invalid() {
        let e = validate("name: a\ninstructions: hi\n").unwrap_err();
        assert!(format!("{e:#}").contains("goal"), "{e:#}");
    }

    #[test]
    fn the_ceiling_holds_through_every_agent_a_delegate_may_reach() {
        let catalog = Catalog::handed(
            Path::new("/ws"),
            vec![
                def("name: ops\ngoal: g\ninstructions: i\ntools:\n  shell: {exec: [sh]}\n"),
                def("name: relay\ngoal: g\ninstructions: i\ntools:\n  delegate: {agents: [ops]}\n"),
                def("name: fetcher\ngoal: g\ninstructions: i\ntools:\n  net: {allow: ['https://x.dev/*']}\n"),
                def("name: reader\ngoal: g\ninstructions: i\ntools:\n  fs: {read: true}\n"),
            ],
        );
        let yaml = "name: gen\ngoal: g\ninstructions: i\ntools:\n  delegate: {agents: [ops, relay, fetcher, reader, ghost], via: mcp}\n";
        let mut d = def(yaml);
        let notes = cap_delegation(&mut d, &catalog, &AgentCreateConfig::default());
        assert_eq!(d.tools.delegate.agents, ["reader"]);
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert!(
            notes[1].contains("`ops` (which `relay` may delegate to) runs sh"),
            "{notes:?}"
        );
        let allowed = AgentCreateConfig {
            allow_shell: true,
            allow_network: true,
        };
        let mut d = def(yaml);
        cap_delegation(&mut d, &catalog, &allowed);
        assert_eq!(
            d.tools.delegate.agents,
            ["ops", "relay", "fetcher", "reader"]
        );
        let mut star =
            def("name: gen\ngoal: g\ninstructions: i\ntools:\n  delegate: {agents: ['*']}\n");
        let notes = cap_delegation(&mut star, &catalog, &AgentCreateConfig::default());
        assert_eq!(star.tools.delegate.agents, ["reader"]);
        assert!(
            notes[0].contains("within [agent_create]'s ceiling: reader"),
            "{notes:?}"
        );
    }

    #[test]
    fn shell_and_network_are_removed_unless_allowed() {
        let yaml = "name: a\ngoal: g\ninstructions: i\ntools:\n  shell: {exec: [cargo]}\n  net: {allow: ['https://docs.rs/*']}\n";
        let mut d = def(yaml);
        let notes = cap(&mut d, &AgentCreateConfig::default());
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(d.tools.shell.exec.is_empty() && d.tools.net.allow.is_empty());
        let mut d = def(yaml);
        let all = AgentCreateConfig {
            allow_shell: true,
            allow_network: true,
        };
        assert!(cap(&mut d, &all).is_empty());
        assert_eq!(d.tools.shell.exec, ["cargo"]);
    }

    /// A creator whose model answers `answers`, one per generation call, each using 700
    /// tokens.
    fn creator(answers: &[&str]) -> Creator {
        use crate::providers::replay::{ReplayModel, ReplayScript, Turn};
        let turns = answers
            .iter()
            .map(|a| Turn::say(*a).with_usage(600, 100))
            .collect();
        let script = ReplayScript::scripted([(CREATOR, turns)]);
        Creator {
            model: Arc::new(ReplayModel::new(Arc::new(script))),
            model_name: None,
            allow: AgentCreateConfig::default(),
            catalog: Catalog::default(),
        }
    }

    /// A budget actor with `cap`.
    async fn budget(cap: Option<u64>) -> ActorRef<ServerBudgetMsg> {
        ractor::Actor::spawn(None, ServerBudget, cap)
            .await
            .unwrap()
            .0
    }

    #[tokio::test]
    async fn every_generation_call_is_charged_to_the_budget() {
        let invalid = "name: a\ninstructions: no goal\n";
        let c = creator(&[invalid, "name: a\ngoal: g\ninstructions: i\n"]);
        let b = budget(Some(20_000)).await;
        let request = Request {
            prompt: "p".into(),
            ..Request::default()
        };
        let created = c.create(&request, &b, &mut |_| {}).await.unwrap();
        assert_eq!(created.generation_tokens, 1400);
        // Nothing is held any more, and the two calls are spent.
        let left = budget::hold(&b, u64::MAX).await.unwrap();
        assert_eq!(left, Some(20_000 - 1400));
    }

    #[tokio::test]
    async fn a_budget_too_small_for_an_answer_is_refused_before_the_call() {
        // The model has no turn to play: a call would be an error of another kind.
        let c = creator(&[]);
        let b = budget(Some(900)).await;
        let request = Request {
            prompt: "p".into(),
            ..Request::default()
        };
        let e = c.create(&request, &b, &mut |_| {}).await.unwrap_err();
        assert!(
            format!("{e:#}").contains("the budget has 900 tokens left, too few"),
            "{e:#}"
        );
        assert_eq!(budget::hold(&b, 900).await.unwrap(), Some(900));
    }

    #[tokio::test]
    async fn the_request_replaces_the_models_name_and_budget() {
        let c = creator(&["name: a\ngoal: g\ninstructions: i\nbudget: 100\n"]);
        let request = Request {
            prompt: "p".into(),
            name: Some("b".into()),
            budget: Some(5000),
        };
        let b = budget(None).await;
        let created = c.create(&request, &b, &mut |_| {}).await.unwrap();
        assert_eq!(created.definition.name, "b");
        assert!(created.yaml.contains("name: b\n") && created.yaml.contains("budget: 5000\n"));
    }

    #[tokio::test]
    async fn a_bad_name_is_refused_before_any_model_call() {
        // The model has no turn to play: a call would be an error of another kind.
        let c = creator(&[]);
        let request = Request {
            prompt: "p".into(),
            name: Some("Not A Name".into()),
            budget: None,
        };
        let mut calls = 0;
        let b = budget(None).await;
        let e = c
            .create(&request, &b, &mut |_| calls += 1)
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("name `Not A Name`"), "{e:#}");
        assert_eq!(calls, 0);
    }

    #[test]
    fn save_refuses_an_existing_file_unless_forced() {
        let ws = tempfile::tempdir().unwrap();
        let created = Created {
            definition: def("name: a\ngoal: g\ninstructions: i\n"),
            yaml: "new".into(),
            notes: Vec::new(),
            generation_tokens: 0,
        };
        let path = save(ws.path(), &created, false, "do this").unwrap();
        assert_eq!(path, ws.path().join(".codex/agents/a.yaml"));
        std::fs::write(&path, "mine").unwrap();
        let e = save(ws.path(), &created, false, "do this").unwrap_err();
        assert!(
            e.to_string()
                .ends_with("exists, so nothing was saved or run; do this"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
        save(ws.path(), &created, true, "do this").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}
