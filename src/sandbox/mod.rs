//! The OS sandbox of every program an agent runs (`shell`): Landlock, seccomp and
//! namespaces, derived from the agent's effective policy.
//!
//! The policy decides *whether* a program may start (`shell.exec` names it); once started,
//! a program does whatever its code does (`cargo` runs build scripts, `find -exec`, `env`,
//! `xargs` and `git -c alias.x='!...'` start other programs), so the kernel has to hold it
//! to what the agent may do. How a call is confined, one concept per file:
//!
//! - [`policy`]: the agent's permission layers → a [`SandboxPolicy`] (pure: which
//!   workspace trees a program may read and write, protected paths, network, limits);
//! - [`limits`]: the `[sandbox]` config section (mode, per-call rlimits);
//! - [`probe`]: what this kernel supports (Landlock ABI, user namespaces, seccomp);
//! - [`launch`]: codex's side: the helper command, a private temporary directory per call,
//!   what the program's end means (a limit killed it, the setup failed);
//! - [`enter`]: the helper (`codex __sandbox-exec`): namespaces, mounts, rlimits, then
//! - [`fs_rules`] (Landlock) and [`seccomp`], then `execve`.
//!
//! The sandbox is not a policy of its own: it is the policy the PolicyActor enforces per
//! tool call, widened to what the kernel can express (directory trees instead of globs;
//! see [`policy`]), and it never grants a program what no layer of its agent allows.

pub mod enter;
mod fs_rules;
pub mod launch;
pub mod limits;
pub mod policy;
pub mod probe;
pub mod seccomp;
pub mod secrets;

use std::path::{Path, PathBuf};

use codex_actors::spec::PolicyLayer;

pub use limits::{Limits, SandboxConfig, SandboxMode};
pub use policy::{Host, NetworkDenial, SandboxPolicy};
pub use probe::Support;

/// How a run's programs are confined: the mode, the limits and what the kernel supports.
/// One per run; immutable.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// `on` or `off`.
    pub mode: SandboxMode,
    /// Per-call limits.
    pub limits: Limits,
    /// Programs of agents allowed some URL get the network.
    pub program_network: bool,
    /// The helper executable (this program).
    pub helper: PathBuf,
    /// `$CODEX_HOME`, protected.
    pub codex_home: Option<PathBuf>,
    /// What the kernel supports (probed when the mode is `on`).
    pub support: Option<Support>,
    /// The directories programs need besides the system's ([`toolchain_dirs`]), found
    /// once per run rather than per call.
    pub toolchains: Vec<PathBuf>,
    /// Whether the kernel runs x32 system calls ([`probe::x32_syscalls`]).
    pub x32: bool,
}

impl Sandbox {
    /// From the `[sandbox]` config (with `--sandbox` already applied to `config.mode`).
    pub fn new(config: SandboxConfig, codex_home: Option<PathBuf>) -> Self {
        let support = (config.mode == SandboxMode::On).then(Support::probe);
        Self {
            mode: config.mode,
            limits: config.limits,
            program_network: config.program_network,
            helper: launch::this_executable(),
            codex_home,
            support,
            toolchains: toolchain_dirs(),
            x32: probe::x32_syscalls(),
        }
    }

    /// No sandbox: programs run with codex's rights.
    pub fn off() -> Self {
        Self::new(
            SandboxConfig {
                mode: SandboxMode::Off,
                ..SandboxConfig::default()
            },
            None,
        )
    }

    /// Why programs cannot run here, if the sandbox is on and the kernel lacks a feature
    /// it needs: an error to show before a run whose agents may run programs starts.
    pub fn refusal(&self) -> Option<String> {
        let missing = self.support.as_ref()?.missing();
        if missing.is_empty() {
            return None;
        }
        Some(format!(
            "the OS sandbox for agents' programs cannot run on this machine: {}. Programs \
             would run with codex's own rights; to accept that, pass --sandbox=off (or set \
             `mode = \"off\"` under [sandbox] in $CODEX_HOME/codex-actors.toml)",
            missing.join("; ")
        ))
    }

    /// The sandbox of a program run by an agent whose effective policy is `layers`.
    pub fn policy_for(&self, layers: &[PolicyLayer], workspace: &Path) -> SandboxPolicy {
        let host = Host {
            workspace: workspace.to_owned(),
            codex_home: self.codex_home.clone(),
            toolchains: self
                .toolchains
                .iter()
                .filter(|d| !d.starts_with(workspace))
                .cloned()
                .collect(),
            program_network: self.program_network,
        };
        let mut policy = SandboxPolicy::derive(layers, &host, self.limits);
        policy.network_denial = self.network_denial();
        policy
    }

    /// seccomp where Landlock scopes abstract Unix sockets (ABI 6+) and no x32 system
    /// call can go around the filter, else a network namespace (see [`NetworkDenial`]).
    fn network_denial(&self) -> NetworkDenial {
        match self.support.as_ref().map(|s| &s.landlock) {
            Some(Ok(abi)) if *abi >= 6 && !self.x32 => NetworkDenial::Seccomp,
            _ => NetworkDenial::Namespace,
        }
    }

    /// One line for the audit record of a call in `policy`.
    pub fn describe(&self, policy: &SandboxPolicy) -> String {
        let abi = match self.support.as_ref().map(|s| &s.landlock) {
            Some(Ok(abi)) => format!("landlock ABI {abi}"),
            _ => "landlock".to_owned(),
        };
        let ns = match (policy.network, policy.network_denial) {
            (false, NetworkDenial::Namespace) => "user+mount+pid+net",
            _ => "user+mount+pid",
        };
        let network = match (policy.network, policy.network_denial) {
            (true, _) => "allowed",
            (false, NetworkDenial::Namespace) => "none",
            (false, NetworkDenial::Seccomp) => "none (Unix sockets only)",
        };
        let list = |trees: &[String]| {
            if trees.is_empty() {
                "none".to_owned()
            } else {
                trees
                    .iter()
                    .map(|t| if t.is_empty() { "." } else { t.as_str() })
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        format!(
            "{abi}, seccomp, namespaces {ns}; read {}; write {}; network {}; limits {}",
            list(&policy.read),
            list(&policy.write),
            network,
            policy.limits
        )
    }
}

/// `$CODEX_HOME` if set and non-empty, else `$HOME/.codex` (as the definition loader reads
/// it).
pub fn codex_home() -> Option<PathBuf> {
    match std::env::var_os("CODEX_HOME") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".codex")),
    }
}

/// Directories programs need besides the system's: the absolute `PATH` entries, and the
/// toolchain homes `CARGO_HOME` and `RUSTUP_HOME` (default `~/.cargo`, `~/.rustup`), when
/// they exist. [`Sandbox::policy_for`] leaves out those inside the agent's workspace.
pub fn toolchain_dirs() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .collect();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for (var, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let dir = std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(default)));
        if let Some(dir) = dir.filter(|d| d.is_absolute()) {
            dirs.push(dir);
        }
    }
    dirs.retain(|d| d.exists());
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(support: Support) -> Sandbox {
        let mut s = Sandbox::off();
        s.mode = SandboxMode::On;
        s.support = Some(support);
        s
    }

    #[test]
    fn a_kernel_without_the_features_is_refused_naming_them_and_the_way_out() {
        let s = with(Support {
            landlock: Err("built in but not enabled".into()),
            namespaces: Err("cannot create them".into()),
            seccomp: Ok(()),
        });
        let why = s.refusal().expect("refused");
        assert!(why.contains("Landlock: built in but not enabled"), "{why}");
        assert!(why.contains("user namespaces: cannot create them"), "{why}");
        assert!(why.contains("--sandbox=off"), "{why}");
    }

    #[test]
    fn a_capable_kernel_or_the_sandbox_off_is_not_refused() {
        let s = with(Support {
            landlock: Ok(7),
            namespaces: Ok(()),
            seccomp: Ok(()),
        });
        assert_eq!(s.refusal(), None);
        assert_eq!(Sandbox::off().refusal(), None);
    }

    #[test]
    fn network_is_denied_by_seccomp_only_where_nothing_goes_around_it() {
        let abi = |abi| Support {
            landlock: Ok(abi),
            namespaces: Ok(()),
            seccomp: Ok(()),
        };
        let denial = |support, x32| {
            let mut s = with(support);
            s.x32 = x32;
            s.policy_for(&[], Path::new("/ws")).network_denial
        };
        assert_eq!(denial(abi(7), false), NetworkDenial::Seccomp);
        assert_eq!(denial(abi(6), false), NetworkDenial::Seccomp);
        assert_eq!(denial(abi(5), false), NetworkDenial::Namespace);
        assert_eq!(denial(abi(7), true), NetworkDenial::Namespace);
    }

    #[test]
    fn path_directories_inside_the_workspace_are_not_granted() {
        let mut s = Sandbox::off();
        s.toolchains = vec![PathBuf::from("/ws/bin"), PathBuf::from("/home/u/tools/bin")];
        let policy = s.policy_for(&[], Path::new("/ws"));
        assert!(policy.system.contains(&PathBuf::from("/home/u/tools/bin")));
        assert!(!policy.system.iter().any(|d| d.starts_with("/ws")));
    }

    #[test]
    fn the_audit_line_names_abi_namespaces_trees_and_limits() {
        let s = with(Support {
            landlock: Ok(7),
            namespaces: Ok(()),
            seccomp: Ok(()),
        });
        let layer = PolicyLayer {
            permissions: codex_actors::spec::Permissions {
                read: vec!["**".into()],
                write: vec!["tests/".into()],
                ..Default::default()
            },
            scope: String::new(),
        };
        let policy = s.policy_for(&[layer], Path::new("/ws"));
        insta::assert_snapshot!(s.describe(&policy), @"landlock ABI 7, seccomp, namespaces user+mount+pid; read .; write tests; network none (Unix sockets only); limits cpu 600 s, memory 16384 MiB, files 4096 MiB, processes 4096, open files 4096");
    }
}
