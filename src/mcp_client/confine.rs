//! The OS sandbox of the MCP servers codex starts for agents (`crate::sandbox`, the same
//! Landlock, seccomp and namespaces as an agent's `shell` call).
//!
//! A server is started once per run and shared by every agent of the run whose `tools.mcp`
//! names it, so its sandbox must hold for all of them: it is derived from the permission
//! layers of every such agent **and of every agent of the run that may delegate to one**
//! (a delegated agent's effective policy includes its ancestors' layers, and the server
//! must not give it more), intersected like a delegated agent's layers are
//! ([`SandboxPolicy::derive`]): a path is readable (writable) by the server only if every
//! one of those agents may read (write) it. Scopes are not applied (one server serves calls
//! of any scope), so a server may write wherever its users' permissions allow. Network:
//! none, as for programs (`[sandbox] program_network` applies alike).
//!
//! Besides what its users may read, a server may read its own files: the files (not
//! directories, so an argument `/` opens nothing) that its `command` and `args` name, and
//! the trees listed in `sandbox_read` (its installation: a virtualenv, a `node_modules`).
//! Its environment is codex's without secrets (`crate::tools::secrets`) plus its `env`;
//! it gets a private temporary directory for its lifetime. When codex ends, even by
//! SIGKILL, the server's PID namespace ends with it.
//!
//! A server that cannot work confined (it needs the network, or it is `codex mcp-server`
//! itself, which sandboxes its own agents) opts out with `sandbox = false` and a required
//! `sandbox_reason`; the opt-out is printed before the run starts and recorded in the
//! run's audit log ([`Confinement::record`]), as is every sandboxed server's sandbox.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use codex_actors::audit::AuditEvent;
use codex_actors::spec::PolicyLayer;

use codex::sandbox::launch::{self, CallTemp};
use codex::sandbox::{Sandbox, SandboxMode, SandboxPolicy};

use crate::definition::AgentDefinition;
use crate::providers::config::McpServerConfig;

/// How a run's servers are confined: its sandbox, and each server's permission layers.
#[derive(Clone)]
pub struct Confiner {
    sandbox: Arc<Sandbox>,
    layers: BTreeMap<String, Vec<PolicyLayer>>,
}

impl Confiner {
    /// For the run whose agents (its tasks' agents and every agent they may delegate to)
    /// are `agents`, confined by `sandbox`.
    pub fn new(sandbox: Arc<Sandbox>, agents: &[&AgentDefinition]) -> Self {
        Self {
            sandbox,
            layers: layers_by_server(agents),
        }
    }

    /// How the server `name` configured as `config` runs.
    pub fn confinement(
        &self,
        name: &str,
        config: &McpServerConfig,
        workspace: &Path,
    ) -> Confinement {
        if !config.sandbox {
            let reason = config.sandbox_reason.as_deref().unwrap_or("").trim();
            return Confinement::OptedOut(reason.to_owned());
        }
        if self.sandbox.mode == SandboxMode::Off {
            return Confinement::SandboxOff;
        }
        let layers = self.layers.get(name).map_or(&[][..], Vec::as_slice);
        let mut policy = self.sandbox.policy_for(layers, workspace);
        let cwd = config.cwd.as_deref().unwrap_or(workspace);
        policy.system.extend(own_files(config, cwd));
        Confinement::Sandboxed(policy)
    }

    /// The command that starts the server as `confinement` says, and the private
    /// temporary directory it keeps while it runs (sandboxed only). An error when the
    /// sandbox cannot run on this machine.
    pub fn command(
        &self,
        confinement: &Confinement,
        config: &McpServerConfig,
        cwd: &Path,
    ) -> Result<(tokio::process::Command, Option<CallTemp>), String> {
        let Confinement::Sandboxed(policy) = confinement else {
            let mut cmd = tokio::process::Command::new(&config.command);
            cmd.args(&config.args);
            return Ok((cmd, None));
        };
        if let Some(why) = self.sandbox.refusal() {
            return Err(format!(
                "it cannot be sandboxed: {why}; or give the server `sandbox = false` and a \
                 `sandbox_reason`"
            ));
        }
        // Found here, so a wrong command is named as such (not as a closed connection).
        let program = resolve(&config.command, cwd)?;
        let temp = CallTemp::new().map_err(|e| format!("temporary directory: {e}"))?;
        let cmd = launch::command(&self.sandbox, policy, &program, &config.args, &temp)?;
        Ok((cmd, Some(temp)))
    }

    /// The description of `policy`'s sandbox, for the audit log.
    pub fn describe(&self, policy: &SandboxPolicy) -> String {
        self.sandbox.describe(policy)
    }
}

/// How one server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confinement {
    /// In this sandbox.
    Sandboxed(SandboxPolicy),
    /// With codex's rights, because the run's sandbox is off (`--sandbox=off`, or
    /// `[sandbox] mode = "off"`), as its agents' programs.
    SandboxOff,
    /// With codex's rights, because its config says `sandbox = false`, with this reason.
    OptedOut(String),
}

impl Confinement {
    /// The line printed before the run starts, when the server runs unconfined by choice.
    pub fn warning(&self, name: &str) -> Option<String> {
        match self {
            Confinement::OptedOut(reason) => Some(format!(
                "warning: MCP server `{name}` runs without the OS sandbox, with codex's own \
                 rights ([mcp_servers.{name}] sandbox = false): {reason}"
            )),
            Confinement::Sandboxed(_) | Confinement::SandboxOff => None,
        }
    }

    /// The audit record of the server's start.
    pub fn record(&self, name: &str, confiner: &Confiner) -> AuditEvent {
        let (sandbox, unsandboxed) = match self {
            Confinement::Sandboxed(policy) => (Some(confiner.describe(policy)), None),
            Confinement::SandboxOff => (None, Some("the run's sandbox is off".to_owned())),
            Confinement::OptedOut(reason) => (
                None,
                Some(format!("[mcp_servers.{name}] sandbox = false: {reason}")),
            ),
        };
        AuditEvent::ServerStarted {
            server: name.to_owned(),
            sandbox,
            unsandboxed,
        }
    }
}

/// The server part of a `tools.mcp` pattern (`gh` of `gh.search` and `gh.*`).
fn server_of(pattern: &str) -> &str {
    pattern.split_once('.').map_or(pattern, |(s, _)| s)
}

/// For each server any of `agents` names in `tools.mcp`: the permission layers of the
/// agents that name it and of every agent that may delegate (directly or not) to one of
/// them, each over the whole workspace.
pub fn layers_by_server(agents: &[&AgentDefinition]) -> BTreeMap<String, Vec<PolicyLayer>> {
    let servers: BTreeSet<&str> = agents
        .iter()
        .flat_map(|a| a.tools.mcp.iter().map(|p| server_of(p)))
        .collect();
    servers
        .into_iter()
        .map(|server| {
            let users: Vec<&str> = agents
                .iter()
                .filter(|a| a.tools.mcp.iter().any(|p| server_of(p) == server))
                .map(|a| a.name.as_str())
                .collect();
            let layers = with_ancestors(agents, &users)
                .into_iter()
                .map(|a| PolicyLayer {
                    permissions: a.permissions(),
                    scope: String::new(),
                })
                .collect();
            (server.to_owned(), layers)
        })
        .collect()
}

/// The agents named `names` and every agent of `agents` that may delegate to one of them,
/// directly or through others.
fn with_ancestors<'a>(agents: &[&'a AgentDefinition], names: &[&str]) -> Vec<&'a AgentDefinition> {
    let mut found: BTreeSet<&str> = names.iter().copied().collect();
    loop {
        let before = found.len();
        for a in agents {
            let delegates_to_found = a
                .tools
                .delegate
                .agents
                .iter()
                .any(|d| d == "*" || found.contains(d.as_str()));
            if delegates_to_found {
                found.insert(a.name.as_str());
            }
        }
        if found.len() == before {
            break;
        }
    }
    let mut seen = BTreeSet::new();
    agents
        .iter()
        .copied()
        .filter(|a| found.contains(a.name.as_str()) && seen.insert(a.name.as_str()))
        .collect()
}

/// The executable `command` names: a path (relative ones from `cwd`), or a name found in
/// an absolute `PATH` directory.
fn resolve(command: &str, cwd: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if command.contains('/') {
        Some(cwd.join(command)).filter(|p| executable(p))
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .filter(|dir| dir.is_absolute() && !command.is_empty())
            .map(|dir| dir.join(command))
            .find(|p| executable(p))
    };
    found.ok_or_else(|| format!("cannot run `{command}`: no such executable file"))
}

/// The server's own files, readable in its sandbox: the existing files its `command` and
/// `args` name (relative ones from `cwd`; a command found on `PATH` is readable anyway, as
/// the `PATH` directories are), and `sandbox_read`.
fn own_files(config: &McpServerConfig, cwd: &Path) -> Vec<PathBuf> {
    let named = std::iter::once(&config.command)
        .chain(&config.args)
        .map(|a| cwd.join(a))
        .filter(|p| p.is_file());
    named
        .chain(config.sandbox_read.iter().map(|p| cwd.join(p)))
        .map(|p| p.canonicalize().unwrap_or(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(yaml: &str) -> AgentDefinition {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn names(layers: &BTreeMap<String, Vec<PolicyLayer>>, server: &str) -> Vec<Vec<String>> {
        layers[server]
            .iter()
            .map(|l| l.permissions.read.clone())
            .collect()
    }

    #[test]
    fn a_server_gets_the_layers_of_its_users_and_of_who_delegates_to_them() {
        let lead = def("name: lead\ninstructions: i\npolicies:\n  permissions:\n    filesystem: [\"src/**\"]\ntools:\n  delegate:\n    agents: [worker]\n");
        let worker =
            def("name: worker\ninstructions: i\ntools:\n  fs: {read: true}\n  mcp: [\"gh.*\"]\n");
        let other = def("name: other\ninstructions: i\npolicies:\n  permissions:\n    filesystem: [\"docs/**\"]\n");
        let layers = layers_by_server(&[&lead, &worker, &other]);
        assert_eq!(
            names(&layers, "gh"),
            [vec!["src/**".to_owned()], vec!["**".to_owned()]]
        );
    }

    #[test]
    fn only_servers_some_agent_names_get_layers() {
        let a = def("name: a\ninstructions: i\ntools:\n  mcp: [\"x.tool\", \"y\"]\n");
        let layers = layers_by_server(&[&a]);
        assert_eq!(layers.keys().collect::<Vec<_>>(), ["x", "y"]);
    }

    #[test]
    fn an_opt_out_wins_and_a_sandbox_that_is_off_confines_nothing() {
        let reader = def("name: r\ninstructions: i\ntools:\n  fs: {read: true}\n  mcp: [gh]\n");
        let on = {
            let mut s = Sandbox::off();
            s.mode = SandboxMode::On;
            Arc::new(s)
        };
        let ws = Path::new("/ws");
        let config = McpServerConfig {
            command: "gh-server".into(),
            ..McpServerConfig::default()
        };
        let opted_out = McpServerConfig {
            sandbox: false,
            sandbox_reason: Some(" needs the API ".into()),
            ..config.clone()
        };
        let confiner = Confiner::new(Arc::clone(&on), &[&reader]);
        let Confinement::Sandboxed(policy) = confiner.confinement("gh", &config, ws) else {
            panic!("not sandboxed");
        };
        assert_eq!(policy.read, [""]);
        assert!(policy.write.is_empty());
        assert_eq!(
            confiner.confinement("gh", &opted_out, ws),
            Confinement::OptedOut("needs the API".into())
        );
        let off = Confiner::new(Arc::new(Sandbox::off()), &[&reader]);
        assert_eq!(off.confinement("gh", &config, ws), Confinement::SandboxOff);
        assert_eq!(
            off.confinement("gh", &opted_out, ws),
            Confinement::OptedOut("needs the API".into())
        );
    }

    #[test]
    fn a_servers_own_files_are_the_existing_files_it_names_not_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.py"), "").unwrap();
        let config = McpServerConfig {
            command: "python3".into(),
            args: vec!["./server.py".into(), "/".into(), "missing.py".into()],
            sandbox_read: vec!["venv".into()],
            ..McpServerConfig::default()
        };
        let root = dir.path().canonicalize().unwrap();
        assert_eq!(
            own_files(&config, &root),
            [root.join("server.py"), root.join("venv")]
        );
    }
}
