//! `run.json`: what a run was asked to do, written before its first agent starts so that
//! `codex resume` can take it up again.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use codex_actors::AgentPlan;
use serde::{Deserialize, Serialize};

/// The file's name in a run directory.
pub const FILE_NAME: &str = "run.json";

/// One of the run's own agents, as it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestAgent {
    /// The agent (its definition's name).
    pub agent: String,
    /// Its goal.
    pub goal: String,
    /// Its scope (`""`: the whole workspace).
    pub scope: String,
    /// Its budget.
    pub budget: u64,
}

/// What a run was asked to do; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunManifest {
    /// The run's own agents, in order.
    pub agents: Vec<ManifestAgent>,
    /// The run's global budget.
    pub total_budget: u64,
    /// `--max-concurrency`, if given.
    pub max_concurrency: Option<usize>,
    /// The process that ran it (to refuse resuming a run that is still going).
    pub pid: u32,
}

impl RunManifest {
    /// The manifest of a run of `plans` by this process.
    pub fn new(
        plans: &[AgentPlan],
        total_budget: Option<u64>,
        max_concurrency: Option<usize>,
    ) -> Self {
        let agents: Vec<ManifestAgent> = plans
            .iter()
            .map(|p| ManifestAgent {
                agent: p.spec.name.clone(),
                goal: p.spec.goal.clone(),
                scope: p.spec.scope.clone(),
                budget: p.spec.budget,
            })
            .collect();
        Self {
            total_budget: total_budget.unwrap_or_else(|| agents.iter().map(|a| a.budget).sum()),
            agents,
            max_concurrency,
            pid: std::process::id(),
        }
    }

    /// Writes it into `run_dir` atomically.
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let path = run_dir.join(FILE_NAME);
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("could not create {}", run_dir.display()))?;
        crate::atomic_file::write(&path, &json, crate::atomic_file::Replace::Allowed).map(drop)
    }

    /// Reads the manifest of the run in `run_dir`.
    pub fn read(run_dir: &Path) -> Result<Self> {
        let path: PathBuf = run_dir.join(FILE_NAME);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} is missing: this run was made by an older codex and cannot be resumed; \
                 start a new run instead",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a run manifest", path.display()))
    }

    /// Whether the process that ran it is still alive and is a codex.
    pub fn still_running(&self) -> bool {
        if self.pid == std::process::id() {
            return false;
        }
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("codex"))
    }
}
