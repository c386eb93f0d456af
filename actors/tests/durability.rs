//! When the audit log's records are on disk: a record made before a side effect is durable
//! before that side effect starts (a model call; a write), while records after a side
//! effect and before reads ride on the next group commit (one durable wait per side effect,
//! not one per record). Each side effect here reads the log file itself at the moment it
//! runs, so the tests see what a crash at that moment would leave.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use codex_actors::{start, RunConfig, ToolSpec};
use common::*;
use serde_json::json;

fn log_path(workspace: &Path, run: &str) -> PathBuf {
    workspace.join(".codex/runs").join(run).join("audit.jsonl")
}

/// The complete lines of the log on disk now.
fn lines_on_disk(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(str::to_owned)
        .collect()
}

fn config(dir: &tempfile::TempDir, run: &str, agents: Vec<codex_actors::AgentPlan>) -> RunConfig {
    let mut c = RunConfig::new(run, dir.path(), agents);
    c.service_wait = Duration::from_secs(5);
    c
}

/// Forty agents at once, so that a reservation that did not wait for the disk would be
/// caught before its commit in some model call (with one agent the commit usually wins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_is_on_disk_before_its_model_call_starts() {
    let dir = tempfile::tempdir().unwrap();
    let run = "reserve-durable";
    let log = log_path(dir.path(), run);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let agents = (0..40)
        .map(|k| {
            let (seen, log) = (Arc::clone(&seen), log.clone());
            let name = format!("a{k}");
            let needle = format!(r#""agent":"{name}""#);
            let model = FnModel::arc(0, move |r| {
                let reserves = lines_on_disk(&log)
                    .iter()
                    .filter(|l| l.contains(r#""op":"reserve""#) && l.contains(&needle))
                    .count();
                seen.lock().unwrap().push((r.turn, reserves));
                match r.turn {
                    0..=2 => Ok(call("read", json!({"path": "a.txt"}), 20, 10)),
                    _ => Ok(text("done", 20, 10)),
                }
            });
            let mut p = plan(&name, 10_000, model);
            p.spec.tools = vec!["read".into()];
            p.tools = vec![Arc::new(Read)];
            p.spec.permissions.read = vec!["**".into()];
            p
        })
        .collect();
    let report = start(config(&dir, run, agents))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.success_count, 40, "{report:?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 160);
    for (turn, reserves) in seen {
        assert_eq!(
            reserves,
            turn as usize + 1,
            "model call {turn} started with {reserves} of its agent's reservation records on disk"
        );
    }
}

#[tokio::test]
async fn a_write_decision_is_on_disk_before_the_write_runs() {
    let dir = tempfile::tempdir().unwrap();
    let run = "write-durable";
    let probe = Arc::new(ProbeWrite {
        log: log_path(dir.path(), run),
        found: Mutex::new(Vec::new()),
    });
    let model = FnModel::arc(0, |r| match r.turn {
        0 | 1 => Ok(call(
            "probe_write",
            json!({"path": format!("artifacts/f{}", r.turn)}),
            20,
            10,
        )),
        _ => Ok(text("done", 20, 10)),
    });
    let mut p = plan("a", 10_000, model);
    p.spec.tools = vec!["probe_write".into()];
    p.tools = vec![Arc::clone(&probe) as Arc<dyn Tool>];
    p.spec.permissions.write = vec!["artifacts/**".into()];
    let report = start(config(&dir, run, vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.success_count, 1, "{report:?}");
    let found = probe.found.lock().unwrap().clone();
    assert_eq!(
        found,
        [
            ("artifacts/f0".to_owned(), true),
            ("artifacts/f1".to_owned(), true)
        ],
        "each write ran with its policy decision on disk"
    );
}

#[tokio::test]
async fn records_of_reads_reach_the_disk_with_the_next_durable_record() {
    let dir = tempfile::tempdir().unwrap();
    let run = "read-later";
    let log = log_path(dir.path(), run);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let model = {
        let seen = Arc::clone(&seen);
        FnModel::arc(0, move |r| {
            let tool_calls = lines_on_disk(&log)
                .iter()
                .filter(|l| l.contains(r#""type":"tool_call""#))
                .count();
            seen.lock().unwrap().push(tool_calls);
            match r.turn {
                0 | 1 => Ok(call("read", json!({"path": "a.txt"}), 20, 10)),
                _ => Ok(text("done", 20, 10)),
            }
        })
    };
    let mut p = plan("a", 10_000, model);
    p.spec.tools = vec!["read".into()];
    p.tools = vec![Arc::new(Read)];
    p.spec.permissions.read = vec!["**".into()];
    let report = start(config(&dir, run, vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.success_count, 1, "{report:?}");
    // Each read's record is on disk by the next model call (its reservation waited).
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
    let all = lines_on_disk(&log_path(dir.path(), run));
    assert_eq!(
        all.iter()
            .filter(|l| l.contains(r#""type":"tool_call""#))
            .count(),
        2
    );
}

/// `read {path}`: plans a read and returns a fixed text.
struct Read;

#[async_trait::async_trait]
impl Tool for Read {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "read".into(),
            description: "read a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }
    }

    fn plan(&self, args: &serde_json::Value, _: &ToolContext) -> Result<Vec<Access>, ToolError> {
        Ok(vec![Access::Read(
            args["path"].as_str().unwrap_or_default().to_owned(),
        )])
    }

    async fn invoke(
        &self,
        _args: serde_json::Value,
        _approved: &[Access],
        _ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput {
            content: "contents".into(),
            written: Vec::new(),
            sandbox: None,
        })
    }
}

/// `probe_write {path}`: plans a write of `path`; when invoked, notes whether the log on
/// disk already holds the policy decision that allowed it.
struct ProbeWrite {
    log: PathBuf,
    found: Mutex<Vec<(String, bool)>>,
}

#[async_trait::async_trait]
impl Tool for ProbeWrite {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "probe_write".into(),
            description: "write a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }
    }

    fn plan(&self, args: &serde_json::Value, _: &ToolContext) -> Result<Vec<Access>, ToolError> {
        Ok(vec![Access::Write(
            args["path"].as_str().unwrap_or_default().to_owned(),
        )])
    }

    async fn invoke(
        &self,
        args: serde_json::Value,
        _approved: &[Access],
        _ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let path = args["path"].as_str().unwrap_or_default().to_owned();
        let on_disk = lines_on_disk(&self.log).iter().any(|l| {
            l.contains(r#""type":"policy_decision""#) && l.contains(&format!("\"{path}\""))
        });
        self.found.lock().unwrap().push((path.clone(), on_disk));
        Ok(ToolOutput {
            content: format!("wrote {path}"),
            written: Vec::new(),
            sandbox: None,
        })
    }
}
