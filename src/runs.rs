//! Where a workspace's runs live (`.codex/runs/<id>/`), and which run a user means by
//! `RUN` on the command line (an id, a unique prefix, or `last`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The directory holding a workspace's runs.
pub fn runs_dir(workspace: &Path) -> PathBuf {
    workspace.join(".codex").join("runs")
}

/// The ids of the runs that have an audit log, sorted (oldest first).
pub fn run_ids(workspace: &Path) -> Result<Vec<String>> {
    let dir = runs_dir(workspace);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("audit.jsonl").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Resolves `RUN` (an id, a unique prefix, or `last`) to a run id and its log's path.
pub fn resolve(workspace: &Path, run: &str) -> Result<(String, PathBuf)> {
    let ids = run_ids(workspace)?;
    let dir = runs_dir(workspace);
    if ids.is_empty() {
        bail!(
            "no runs in {}: a run's audit log is written there by `codex delegate` or \
             `codex delegate-parallel` (is -C the right workspace?)",
            dir.display()
        );
    }
    let id = if run == "last" {
        ids.last().expect("not empty").clone()
    } else if ids.iter().any(|i| i == run) {
        run.to_owned()
    } else {
        let matching: Vec<&String> = ids.iter().filter(|i| i.starts_with(run)).collect();
        match matching.as_slice() {
            [one] => (*one).clone(),
            [] => bail!(
                "no run matches `{run}` in {}; `codex audit list` shows the runs",
                dir.display()
            ),
            many => bail!(
                "`{run}` matches {} runs ({}); give more of the id",
                many.len(),
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    let path = dir.join(&id).join("audit.jsonl");
    Ok((id, path))
}
