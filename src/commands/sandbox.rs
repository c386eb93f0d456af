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

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use codex::sandbox::launch::{self, CallTemp, Ending};
use codex::sandbox::{Sandbox, SandboxConfig, Support};
use codex_actors::spec::PolicyLayer;

use crate::cli::SandboxCommand;
use crate::definition::{default_codex_home, Catalog};
use crate::providers::config::Config;

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
    crate::assembly::plan::check_scope(workspace, &spec.name, &spec.scope)?;
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
