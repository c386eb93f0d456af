//! `codex sandbox check` and `codex sandbox run AGENT -- PROGRAM ARGS...`.
//!
//! `check` prints what this machine supports (Landlock ABI, user namespaces, seccomp) and
//! then starts `true` in a real sandbox, so a machine that claims the features but cannot
//! use them (a container that masks `/proc`, say) is caught too. Exit status 0 when agents'
//! programs can be sandboxed here, 1 when not.
//!
//! `run` runs one program exactly as that agent's `shell` would (the same derivation from
//! the agent's definition and scope, the same helper, limits and temporary directory),
//! with the terminal's stdin, stdout and stderr, and exits with the program's status. It
//! prints the sandbox on stderr first. It does not check `shell.exec` (it says when the
//! agent's shell would refuse the program): it is for trying policies.
//!
//! [`of_config`] and [`refuse_unconfined`] are how every command that runs agents (the run
//! commands, `codex mcp-server`, `codex agent-create`) sets up the sandbox of their programs
//! from `[sandbox]` of the config file (with `-c` overrides and `--sandbox`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use codex::sandbox::launch::{self, CallTemp, Ending};
use codex::sandbox::{Sandbox, SandboxConfig, SandboxMode, Support};
use codex_actors::spec::PolicyLayer;

use crate::cli::ModelArgs;
use crate::definition::{default_codex_home, AgentDefinition, Catalog};
use crate::providers::config::Config;

/// The sandbox of agents' programs as `[sandbox]` of the config file (with `flags`' `-c`
/// overrides) sets it up, `mode` (`--sandbox`) over it. The kernel is probed when it is on.
pub fn of_config(flags: &ModelArgs, mode: Option<SandboxMode>) -> Result<Arc<Sandbox>> {
    let home = default_codex_home();
    let mut config = Config::load(home.as_deref(), &flags.config)?.sandbox;
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

/// `codex sandbox ...`.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Print what this machine supports, and try a sandboxed program (exit 1 if it fails).
    Check,
    /// Run a program in the sandbox an agent's `shell` would give it.
    Run {
        /// The agent, by name.
        agent: String,
        /// The agent's scope (default: the whole workspace).
        #[arg(long, value_name = "PATH")]
        scope: Option<String>,
        /// The program (a bare name, looked up on PATH) and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "PROGRAM ARGS")]
        argv: Vec<String>,
    },
}

/// Runs `command` in `workspace`.
pub async fn run(workspace: &Path, command: SandboxCommand) -> Result<ExitCode> {
    let sandbox = configured()?;
    match command {
        SandboxCommand::Check => check(workspace, &sandbox).await,
        SandboxCommand::Run { agent, scope, argv } => {
            run_as(workspace, &sandbox, &agent, scope, &argv).await
        }
    }
}

/// The sandbox as `[sandbox]` of the config file sets it up, always on here.
fn configured() -> Result<Sandbox> {
    let home = default_codex_home();
    let mut config: SandboxConfig = Config::load(home.as_deref(), &[])?.sandbox;
    config.mode = codex::sandbox::SandboxMode::On;
    let home = home.map(|h| h.canonicalize().unwrap_or(h));
    Ok(Sandbox::new(config, home))
}

/// The lines `check` prints for `support`.
pub fn report(support: &Support) -> String {
    let line = |name: &str, r: Result<String, &String>| match r {
        Ok(what) => format!("{name:<16} {what}\n"),
        Err(why) => format!("{name:<16} MISSING: {why}\n"),
    };
    let mut out = String::new();
    out += &line(
        "landlock",
        support.landlock.as_ref().map(|abi| format!("ABI {abi}")),
    );
    out += &line(
        "user namespaces",
        support
            .namespaces
            .as_ref()
            .map(|()| "yes (user, mount, pid, net)".to_owned()),
    );
    out += &line(
        "seccomp",
        support.seccomp.as_ref().map(|()| "yes".to_owned()),
    );
    out
}

async fn check(workspace: &Path, sandbox: &Sandbox) -> Result<ExitCode> {
    let support = sandbox.support.clone().unwrap_or_else(Support::probe);
    print!("{}", report(&support));
    if !support.missing().is_empty() {
        println!(
            "\nAgents' programs cannot be sandboxed here: runs whose agents may run programs \
             are refused unless --sandbox=off."
        );
        return Ok(ExitCode::from(1));
    }
    let policy = sandbox.policy_for(&[], workspace);
    let trial = trial(sandbox, &policy, workspace).await;
    match trial {
        Ok(()) => {
            println!("{:<16} ok (`true` ran in a sandbox)", "trial");
            println!("\nAgents' programs run sandboxed here.");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            println!("{:<16} FAILED: {why}", "trial");
            Ok(ExitCode::from(1))
        }
    }
}

async fn trial(
    sandbox: &Sandbox,
    policy: &codex::sandbox::SandboxPolicy,
    workspace: &Path,
) -> Result<(), String> {
    let program = Path::new("/bin/true");
    let temp = CallTemp::new().map_err(|e| e.to_string())?;
    let mut command = launch::command(sandbox, policy, program, &[], &temp)?;
    let out = command
        .current_dir(workspace)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    match launch::ending(out.status, &out.stderr, policy) {
        Ending::SetupFailed(why) => Err(why),
        Ending::Killed(why) => Err(why),
        Ending::Normal if out.status.success() => Ok(()),
        Ending::Normal => Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

async fn run_as(
    workspace: &Path,
    sandbox: &Sandbox,
    agent: &str,
    scope: Option<String>,
    argv: &[String],
) -> Result<ExitCode> {
    if let Some(why) = sandbox.refusal() {
        bail!("{why}");
    }
    let catalog = Catalog::load(workspace)?;
    let def = &catalog.require(agent)?.definition;
    let spec = def.to_spec(None, scope, None, None)?;
    crate::commands::run::check_scope(workspace, &spec.name, &spec.scope)?;
    let layers = [PolicyLayer {
        permissions: spec.permissions.clone(),
        scope: spec.scope.clone(),
    }];
    let policy = sandbox.policy_for(&layers, workspace);
    let (program, args) = argv.split_first().context("give a program after `--`")?;
    let binary = codex::tools::process::find_on_path(program, workspace)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !spec.permissions.exec.iter().any(|e| e == program) {
        eprintln!(
            "note: `{program}` is not in {agent}'s shell.exec: its shell would refuse to start it"
        );
    }
    eprintln!("sandbox: {}", sandbox.describe(&policy));
    let temp = CallTemp::new().context("cannot create a temporary directory")?;
    let mut command = launch::command(sandbox, &policy, &binary, args, &temp)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let status = command
        .current_dir(workspace.join(&spec.scope))
        .status()
        .await
        .with_context(|| format!("cannot start {}", binary.display()))?;
    match launch::ending(status, &[], &policy) {
        Ending::Killed(why) => eprintln!("killed by the sandbox: {why}"),
        Ending::SetupFailed(_) | Ending::Normal => {}
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_what_is_missing_and_why() {
        let s = Support {
            landlock: Ok(6),
            namespaces: Err("cannot create them (EPERM)".into()),
            seccomp: Ok(()),
        };
        insta::assert_snapshot!(report(&s), @r"
        landlock         ABI 6
        user namespaces  MISSING: cannot create them (EPERM)
        seccomp          yes
        ");
    }
}
