//! `codex agent-create "PROMPT"`: the model writes an agent definition, codex checks it,
//! shows it, optionally saves it, and runs it on its goal.
//!
//! The definition is written by one model call through the engine's `Model` trait (a
//! system prompt describing the YAML schema, then the user's prompt). It is checked with the
//! same parser as definition files (`definition::parse_definition`) and converted to an
//! `AgentSpec` (so a missing goal or a bad pattern is caught too). An invalid answer goes
//! back to the model with the errors, at most [`MAX_RETRIES`] times; still invalid is an
//! error, and nothing is saved or run.
//!
//! A model-written agent gets no shell and no network unless `[agent_create]` in
//! `codex-actors.toml` allows them (`allow_shell`, `allow_network`): such permissions are
//! removed, and a note says so. The run that follows is assembled and driven like
//! `codex delegate` (`commands::run::plan_for`, `commands::run::drive`).
//!
//! The generation calls are not charged to a budget ledger (there is no run yet); their
//! usage is printed. `--budget` is the new agent's budget.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use codex_actors::model::collect_response;
use codex_actors::{ChatMessage, Model, ModelRequest, Role};

use super::run::{self, How, Models, RunOptions};
use super::tasks::Task;
use crate::cli::{AgentCreateArgs, RunArgs};
use crate::definition::{default_codex_home, parse_definition, AgentDefinition};
use crate::providers::config::{AgentCreateConfig, Config};
use crate::tools;

/// The name the generation calls are made under; a replay script keys their turns on it.
pub const CREATOR: &str = "agent-create";

/// How often an invalid definition goes back to the model with its errors.
pub const MAX_RETRIES: u32 = 2;

/// The most tokens one generation call may write.
const MAX_OUTPUT_TOKENS: u64 = 4096;

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

/// Runs `codex agent-create`.
pub async fn run(workspace: &Path, args: &AgentCreateArgs) -> Result<ExitCode> {
    if let Some(out) = &args.output {
        run::check_writable("-o", out)?;
    }
    let home = default_codex_home();
    let config = Config::load(home.as_deref(), &args.models.config)?;
    let mut models = Models::new(&args.models, &[CREATOR])?;
    let model = models.model_for(CREATOR, None, None).await?;
    let mut def = generate(model.as_ref(), &args.prompt, args.models.model.clone()).await?;
    adjust(&mut def, args)?;
    for note in cap(&mut def, &config.agent_create) {
        eprintln!("note: {note}");
    }
    let yaml = serde_yaml::to_string(&def).context("cannot write the definition as YAML")?;
    parse_definition(&yaml, "<generated>").context("the adjusted definition is invalid")?;
    println!("{yaml}");
    if args.save {
        let path = save(workspace, &def.name, &yaml, args.force)?;
        eprintln!("Saved {}", path.display());
    }
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    run_it(workspace, &def, args, &mut models).await
}

/// Asks the model for a definition until one is valid, or the retries are used up.
async fn generate(
    model: &dyn Model,
    prompt: &str,
    model_name: Option<String>,
) -> Result<AgentDefinition> {
    let mut messages = vec![
        ChatMessage::text(Role::System, SYSTEM_PROMPT),
        ChatMessage::text(Role::User, prompt),
    ];
    let mut last_error = String::new();
    for turn in 0..=MAX_RETRIES {
        let request = ModelRequest {
            agent: CREATOR.to_owned(),
            attempt: 1,
            turn,
            model: model_name.clone(),
            messages: messages.clone(),
            tools: Vec::new().into(),
            max_output_tokens: MAX_OUTPUT_TOKENS,
        };
        let response = collect_response(model.stream(request))
            .await
            .map_err(|e| anyhow!("the model could not write a definition: {e}"))?;
        if let Some(u) = response.usage {
            eprintln!("definition written ({} tokens)", u.total());
        }
        match validate(&response.text) {
            Ok(def) => return Ok(def),
            Err(e) => {
                last_error = format!("{e:#}");
                eprintln!(
                    "the model's definition is invalid (try {} of {}): {last_error}",
                    turn + 1,
                    MAX_RETRIES + 1
                );
                messages.push(ChatMessage::text(Role::Assistant, response.text));
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

/// Applies `--name` and `--budget`.
fn adjust(def: &mut AgentDefinition, args: &AgentCreateArgs) -> Result<()> {
    if let Some(name) = &args.name {
        if !crate::definition::schema::is_valid_name(name) {
            bail!("--name `{name}`: use lowercase letters, digits, `-` and `_`, e.g. `my-agent`");
        }
        def.name = name.clone();
    }
    if let Some(b) = args.budget {
        def.budget =
            Some(NonZeroU64::new(b).ok_or_else(|| anyhow!("--budget must be more than 0"))?);
    }
    Ok(())
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

/// Writes `.codex/agents/NAME.yaml`; an existing file needs `force`.
fn save(workspace: &Path, name: &str, yaml: &str, force: bool) -> Result<PathBuf> {
    let dir = workspace.join(".codex/agents");
    let path = dir.join(format!("{name}.yaml"));
    if path.exists() && !force {
        bail!(
            "{} exists; add --force to replace it, or choose another --name",
            path.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Runs the new agent on its goal, like `codex delegate`.
async fn run_it(
    workspace: &Path,
    def: &AgentDefinition,
    args: &AgentCreateArgs,
    models: &mut Models,
) -> Result<ExitCode> {
    let run_args = RunArgs {
        models: args.models.clone(),
        record: None,
        output: args.output.clone(),
        deadline: None,
        quiet: false,
        json: false,
    };
    let task = Task {
        agent: def.name.clone(),
        goal: None,
        scope: None,
        budget: args.budget,
        deadline: None,
    };
    let toolbox = tools::toolbox();
    let servers = run::mcp_servers(workspace, &args.models, &[def]).await?;
    let how = How {
        models,
        recorder: None,
        deadline: None,
        toolbox: &toolbox,
        mcp: &servers,
    };
    let plan = match run::plan_for(workspace, def, task, how).await {
        Ok(p) => p,
        Err(e) => {
            servers.shutdown().await;
            return Err(e);
        }
    };
    let opts = RunOptions {
        run: &run_args,
        total_budget: None,
        max_concurrency: None,
    };
    let result = run::drive(workspace, vec![plan], opts, None, None).await;
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
}
