//! `codex resume` through the binary: a run SIGKILLed mid-way is resumed from its
//! checkpoints and ends with the totals of a run that was never interrupted (within one
//! turn per agent: the call the kill cut short is charged, and made again).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{agent_report, agent_yaml, Workspace};

const AGENTS: [&str; 2] = ["alpha", "beta"];
const TURNS: usize = 6;

/// A replay script: each agent reads a file on turns 0..5, then answers; with `slow`, turn
/// 2 waits a minute, so a kill lands while it is in flight.
fn script(slow: bool) -> String {
    let mut yaml = String::from("agents:\n");
    for agent in AGENTS {
        yaml.push_str(&format!("  {agent}:\n    turns:\n"));
        for turn in 0..TURNS - 1 {
            yaml.push_str(&format!(
                "      - text: \"turn {turn}\"\n        tool_calls:\n          - {{ name: read_file, arguments: {{ path: src/lib.rs }} }}\n        usage: {{ input_tokens: {}, output_tokens: 20 }}\n",
                100 + 50 * turn
            ));
            if slow && turn == 2 {
                yaml.push_str("        delay_ms: 60000\n");
            }
        }
        yaml.push_str(&format!(
            "      - text: \"{agent} done\"\n        usage: {{ input_tokens: 500, output_tokens: 30 }}\n"
        ));
    }
    yaml
}

fn workspace() -> Workspace {
    let ws = Workspace::new();
    for agent in AGENTS {
        ws.agent(agent, &agent_yaml(agent, "false", 20_000));
    }
    ws.file("fast.yaml", &script(false));
    ws.file("slow.yaml", &script(true));
    ws
}

fn run_args(replay: &str) -> Vec<String> {
    [
        "delegate-parallel",
        "alpha,beta",
        "--goals",
        "Read the code,Read the code",
        "--replay",
        replay,
    ]
    .map(String::from)
    .to_vec()
}

/// The one run directory of `ws`.
fn run_dir(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root.join(".codex/runs"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
}

/// Whether every agent has a checkpoint at `turn` or later.
fn checkpointed(root: &Path, turn: u64) -> bool {
    let Some(dir) = run_dir(root) else {
        return false;
    };
    AGENTS.iter().all(|a| {
        std::fs::read(dir.join("agents").join(format!("{a}.json")))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|c| c["turn"].as_u64())
            .is_some_and(|t| t >= turn)
    })
}

/// The reservations a log holds that no commit settled: calls in flight when it stopped.
fn unsettled(log: &[serde_json::Value]) -> u64 {
    let mut open = std::collections::BTreeMap::new();
    for r in common::of_type(log, "budget_decision") {
        let agent = r["agent"].as_str().unwrap().to_owned();
        match r["op"].as_str() {
            Some("reserve") => open.insert(agent, r["granted"].as_u64().unwrap()),
            Some("commit") => open.remove(&agent),
            _ => None,
        };
    }
    open.values().sum()
}

fn total(results: &serde_json::Value) -> u64 {
    results["total_tokens"].as_u64().unwrap()
}

#[test]
fn a_killed_run_resumes_from_its_checkpoints_with_the_totals_of_an_uninterrupted_one() {
    // The reference: the same run, never interrupted.
    let reference = workspace();
    reference
        .codex()
        .args(run_args("fast.yaml"))
        .arg("-o")
        .arg(reference.results_path())
        .assert()
        .success();
    let expected = total(&reference.results());

    let ws = workspace();
    let mut child = ws
        .codex_std()
        .args(run_args("slow.yaml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("codex starts");
    // The event to wait for: both agents checkpointed after two turns (then turn 2 waits).
    let waited = Instant::now();
    while !checkpointed(&ws.root(), 2) {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the agents never reached turn 2"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL codex");
    child.wait().unwrap();
    let in_flight_at_kill = unsettled(&ws.audit());

    let out = ws
        .codex()
        .args(["resume", "last", "--replay", "fast.yaml", "-o"])
        .arg(ws.results_path())
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("Resuming run"), "{stderr}");
    let results = ws.results();
    for agent in AGENTS {
        let report = agent_report(&results, agent);
        assert_eq!(report["status"], "completed", "{report:#}");
        assert_eq!(report["final_message"], format!("{agent} done"));
    }
    // Exactly one turn per agent more at most: the call in flight when codex was killed
    // is charged its whole reservation, and made again.
    let resumed = total(&results);
    assert_eq!(
        resumed,
        expected + in_flight_at_kill,
        "resumed {resumed} tokens, uninterrupted {expected}, cut short {in_flight_at_kill}"
    );
    // One run, one chain: the log verifies and ends with the resumed run's end.
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .success();
}

#[test]
fn a_finished_run_is_not_resumed() {
    let ws = workspace();
    ws.codex().args(run_args("fast.yaml")).assert().success();
    ws.codex()
        .args(["resume", "last", "--replay", "fast.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("nothing to resume"));
}
