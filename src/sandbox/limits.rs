//! The `[sandbox]` section of `$CODEX_HOME/codex-actors.toml`: whether programs run in the
//! sandbox, and the resource limits (rlimits) each `shell` call gets.
//!
//! ```toml
//! [sandbox]
//! mode = "on"              # "on" (default): refuse to run programs without the sandbox;
//!                          # "off": run them with codex's own rights (--sandbox=off)
//! program_network = false  # true: programs of agents allowed some URL get the network
//!
//! [sandbox.limits]
//! cpu_secs = 600           # CPU time per call (SIGXCPU, then SIGKILL)
//! memory_mb = 16384        # address space per process
//! file_size_mb = 4096      # largest file a program may write
//! processes = 4096         # processes of the user, machine-wide (RLIMIT_NPROC counts per user)
//! open_files = 4096
//! ```

use serde::{Deserialize, Serialize};

/// Whether programs run in the OS sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Always; a run whose agents may run programs refuses to start where the kernel lacks
    /// what the sandbox needs.
    #[default]
    On,
    /// Never: programs run with codex's own rights.
    Off,
}

/// Resource limits of one sandboxed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_secs: u64,
    /// Address space per process, in MiB (RLIMIT_AS).
    pub memory_mb: u64,
    /// Largest file a program may write, in MiB (RLIMIT_FSIZE).
    pub file_size_mb: u64,
    /// Processes of the user (RLIMIT_NPROC; the kernel counts every process of the user).
    pub processes: u64,
    /// Open file descriptors per process (RLIMIT_NOFILE).
    pub open_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_secs: 600,
            memory_mb: 16 * 1024,
            file_size_mb: 4 * 1024,
            processes: 4096,
            open_files: 4096,
        }
    }
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cpu {} s, memory {} MiB, files {} MiB, processes {}, open files {}",
            self.cpu_secs, self.memory_mb, self.file_size_mb, self.processes, self.open_files
        )
    }
}

/// `[sandbox]` of the config file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// `on` (default) or `off`.
    #[serde(default)]
    pub mode: SandboxMode,
    /// Programs of agents allowed some URL get the network.
    #[serde(default)]
    pub program_network: bool,
    /// Per-call limits, `[sandbox.limits]`.
    #[serde(default)]
    pub limits: Limits,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_means_on_with_the_default_limits() {
        let c: SandboxConfig = toml::from_str("").unwrap();
        assert_eq!(c, SandboxConfig::default());
        assert_eq!(c.mode, SandboxMode::On);
    }

    #[test]
    fn limits_and_mode_are_read() {
        let c: SandboxConfig = toml::from_str("mode = \"off\"\n[limits]\ncpu_secs = 5").unwrap();
        assert_eq!(c.mode, SandboxMode::Off);
        assert_eq!(c.limits.cpu_secs, 5);
        assert_eq!(c.limits.memory_mb, Limits::default().memory_mb);
    }
}
