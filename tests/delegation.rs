//! The `delegate` tool through the binary: an agent whose definition allows it hands goals
//! to other agents, in-process (children under the same run supervisor) or over MCP (each
//! child in its own `codex mcp-server` process). The children's spend never exceeds what the
//! parent had, the depth limit holds, and cancelling the parent cancels them.

mod common;

use std::time::{Duration, Instant};

use common::{agent_report, of_type, read_audit, read_json, Workspace};
use serde_json::Value;

/// `lead` may delegate to `worker` (and `deep`), `via` the given transport.
fn lead_yaml(via: &str, budget: u64) -> String {
    format!(
        "name: lead\n\
         goal: Split the work\n\
         instructions: Delegate, then summarise.\n\
         tools:\n  fs: {{ read: true }}\n  delegate:\n    agents: [worker, deep]\n    via: {via}\n\
         budget: {budget}\n\
         max_output_tokens: 200\n"
    )
}

const WORKER: &str = "name: worker\n\
    goal: Do a part\n\
    instructions: Follow the script.\n\
    tools:\n  fs: { read: true }\n\
    budget: 3000\n\
    max_output_tokens: 200\n";

/// A replay script: `lead` delegates `calls` (YAML flow mappings) in one turn, then
/// answers; `worker` answers at once (after `worker_delay_ms`).
fn script(calls: &[&str], worker_delay_ms: u64) -> String {
    let calls: String = calls
        .iter()
        .map(|c| format!("          - {{ name: delegate, arguments: {c} }}\n"))
        .collect();
    format!(
        "agents:\n\
         \x20 lead:\n    turns:\n      - text: Delegating.\n        tool_calls:\n{calls}\
         \x20       usage: {{ input_tokens: 200, output_tokens: 40 }}\n\
         \x20     - text: All parts are done.\n        usage: {{ input_tokens: 300, output_tokens: 20 }}\n\
         \x20 worker:\n    turns:\n      - text: Part done.\n        delay_ms: {worker_delay_ms}\n\
         \x20       usage: {{ input_tokens: 120, output_tokens: 30 }}\n"
    )
}

const TWO_PARTS: [&str; 2] = [
    "{ agent: worker, goal: part one, budget: 2000 }",
    "{ agent: worker, goal: part two, budget: 2000 }",
];

fn workspace(via: &str, lead_budget: u64, script_text: &str) -> Workspace {
    let ws = Workspace::new();
    ws.agent("lead", &lead_yaml(via, lead_budget));
    ws.agent("worker", WORKER);
    ws.replay(script_text);
    ws
}

fn run_lead(ws: &Workspace) -> Value {
    ws.codex()
        .args(["delegate", "lead", "--goal", "Split the work", "--replay"])
        .arg(ws.path("replay.yaml"))
        .arg("-o")
        .arg(ws.results_path())
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
    ws.results()
}

/// The audit log of the run whose report is `results`.
fn audit_of(ws: &Workspace, results: &Value) -> Vec<Value> {
    let run = results["run_id"].as_str().unwrap();
    read_audit(&ws.path(&format!(".codex/runs/{run}/audit.jsonl")))
}

fn children(results: &Value) -> Vec<&Value> {
    results["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["parent"] == "lead")
        .collect()
}

/// Both transports: two children, each completed, their spend inside the lead's.
fn assert_two_children_within_the_leads_budget(results: &Value, lead_budget: u64) {
    let lead = agent_report(results, "lead");
    assert_eq!(lead["status"], "completed", "{lead:#}");
    let kids = children(results);
    let mut names: Vec<&str> = kids.iter().map(|c| c["agent"].as_str().unwrap()).collect();
    names.sort_unstable(); // in the order they started: resolving them races
    assert_eq!(names, ["lead/worker#1", "lead/worker#2"]);
    let mut spent = 0;
    for c in &kids {
        assert_eq!(c["status"], "completed", "{c:#}");
        assert_eq!(c["depth"], 1);
        assert_eq!(c["final_message"], "Part done.");
        let used = c["tokens_used"].as_u64().unwrap();
        assert!(used > 0 && used <= c["budget"].as_u64().unwrap(), "{c:#}");
        assert!(c["budget"].as_u64().unwrap() <= 2000, "{c:#}");
        spent += used;
    }
    let lead_used = lead["tokens_used"].as_u64().unwrap();
    assert!(
        spent < lead_used,
        "the lead's usage includes its children's"
    );
    assert!(lead_used <= lead_budget);
    assert_eq!(results["total_tokens"].as_u64().unwrap(), lead_used);
    assert_eq!(results["total_count"], 1);
}

#[test]
fn a_lead_delegates_to_two_children_in_process() {
    let ws = workspace("in-process", 8000, &script(&TWO_PARTS, 0));
    let results = run_lead(&ws);
    assert_two_children_within_the_leads_budget(&results, 8000);
    let audit = audit_of(&ws, &results);
    let delegated = of_type(&audit, "agent_delegated");
    assert_eq!(delegated.len(), 2);
    for d in &delegated {
        assert_eq!(
            (d["agent"].as_str(), d["child_depth"].as_u64()),
            (Some("lead"), Some(1))
        );
        assert_eq!(d["transport"], "in-process");
    }
    let child_calls = of_type(&audit, "model_call")
        .into_iter()
        .filter(|r| r["agent"] == "lead/worker#1")
        .count();
    assert_eq!(
        child_calls, 1,
        "an in-process child's model calls are in the run's log"
    );
    let started: Vec<&Value> = of_type(&audit, "agent_started")
        .into_iter()
        .filter(|r| r["agent_name"] != "lead")
        .collect();
    assert!(started
        .iter()
        .all(|r| r["parent"] == "lead" && r["depth"] == 1));
}

#[test]
fn a_lead_delegates_to_two_children_over_mcp() {
    let ws = workspace("mcp", 8000, &script(&TWO_PARTS, 0));
    let results = run_lead(&ws);
    assert_two_children_within_the_leads_budget(&results, 8000);
    let audit = audit_of(&ws, &results);
    let delegated = of_type(&audit, "agent_delegated");
    assert!(
        delegated.iter().all(|d| d["transport"] == "mcp"),
        "{delegated:#?}"
    );
    // Each child ran as its own run of a child codex, with its own audit log, capped by
    // the envelope it was given.
    let runs: Vec<_> = std::fs::read_dir(ws.path(".codex/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with(results["run_id"].as_str().unwrap()))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in runs {
        let log = read_audit(&run.join("audit.jsonl"));
        let started = &of_type(&log, "run_started")[0];
        assert_eq!(started["agents"], serde_json::json!(["worker"]));
        assert!(started["total_budget"].as_u64().unwrap() <= 2000);
    }
}

#[test]
fn a_child_never_gets_more_than_its_parent_has_left() {
    // The lead has 3000 tokens; it asks for two children of 2000 each.
    let ws = workspace("in-process", 3000, &script(&TWO_PARTS, 0));
    ws.codex()
        .args(["delegate", "lead", "--goal", "Split the work", "--replay"])
        .arg(ws.path("replay.yaml"))
        .arg("-o")
        .arg(ws.results_path())
        .timeout(Duration::from_secs(60))
        .assert()
        // Whether everyone completes on what is left is not the point: the run ends (0 or 1).
        .code(predicates::ord::lt(2));
    let results = ws.results();
    assert_eq!(children(&results).len(), 2, "{results:#}");
    let carved: u64 = children(&results)
        .iter()
        .map(|c| c["budget"].as_u64().unwrap())
        .sum();
    assert!(carved <= 3000, "{results:#}");
    let lead = agent_report(&results, "lead");
    assert!(lead["tokens_used"].as_u64().unwrap() <= 3000, "{lead:#}");
    assert!(results["total_tokens"].as_u64().unwrap() <= 3000);
}

#[test]
fn delegation_over_mcp_stops_at_the_depth_limit() {
    // `deep` delegates to `deep` over MCP, again and again: each level is a new process.
    let ws = Workspace::new();
    ws.agent("lead", &lead_yaml("mcp", 40_000));
    ws.agent(
        "deep",
        "name: deep\n\
         goal: Go deeper\n\
         instructions: Delegate.\n\
         tools:\n  delegate:\n    agents: [deep]\n    via: mcp\n\
         budget: 30000\n\
         max_output_tokens: 200\n",
    );
    let call = "{ name: delegate, arguments: { agent: deep, goal: deeper } }";
    let turns = format!(
        "    turns:\n      - text: Going down.\n        tool_calls:\n          - {call}\n\
         \x20       usage: {{ input_tokens: 100, output_tokens: 20 }}\n\
         \x20     - text: Back up.\n        usage: {{ input_tokens: 100, output_tokens: 20 }}\n"
    );
    ws.replay(&format!("agents:\n  lead:\n{turns}  deep:\n{turns}"));
    let results = run_lead(&ws);
    assert_eq!(agent_report(&results, "lead")["status"], "completed");
    // Levels 1, 2 and 3 ran (one process each); the level-3 agent was refused a fourth.
    let mut refused = Vec::new();
    let mut levels = 0;
    for entry in std::fs::read_dir(ws.path(".codex/runs")).unwrap() {
        let log = read_audit(&entry.unwrap().path().join("audit.jsonl"));
        levels += 1;
        for d in of_type(&log, "agent_delegated") {
            if let Some(why) = d["refused"].as_str() {
                refused.push(why.to_owned());
            }
        }
    }
    assert_eq!(levels, 4, "the lead's run and three child processes");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("depth limit"), "{}", refused[0]);
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && cmdline.contains("mcp-server") {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn interrupting_the_lead_cancels_its_children_over_mcp_and_stops_their_processes() {
    let ws = workspace("mcp", 8000, &script(&TWO_PARTS, 60_000));
    let root = ws.root().display().to_string();
    let mut child = ws
        .codex_std()
        .args([
            "delegate",
            "lead",
            "--goal",
            "Split the work",
            "--quiet",
            "--replay",
        ])
        .arg(ws.path("replay.yaml"))
        .arg("-o")
        .arg(ws.results_path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Wait until both child servers run their agents: three runs (the lead's and one per
    // child) have started an agent.
    let runs_started = || {
        std::fs::read_dir(ws.path(".codex/runs"))
            .map(|dirs| {
                dirs.flatten()
                    .filter(|d| {
                        std::fs::read_to_string(d.path().join("audit.jsonl"))
                            .is_ok_and(|log| log.contains("\"type\":\"agent_started\""))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    while runs_started() < 3 {
        assert!(
            // A hang guard, not a timing assertion: three processes start on a busy machine.
            started.elapsed() < Duration::from_secs(120),
            "children never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    interrupt(child.id());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a cancelled run exits 1");
    let results = read_json(&ws.results_path());
    assert_eq!(agent_report(&results, "lead")["status"], "cancelled");
    for c in children(&results) {
        assert_eq!(c["status"], "cancelled", "{c:#}");
    }
    // The lead waited for its children to end: none is left, and each ended its own log.
    assert!(
        processes_mentioning(&root).is_empty(),
        "child servers still running: {:?}",
        processes_mentioning(&root)
    );
    let lead_run = results["run_id"].as_str().unwrap();
    let mut child_logs = 0;
    for entry in std::fs::read_dir(ws.path(".codex/runs")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.ends_with(lead_run) {
            continue;
        }
        child_logs += 1;
        let log = read_audit(&dir.join("audit.jsonl"));
        let last = log.last().unwrap();
        assert_eq!(last["type"], "run_finished", "{last:#}");
        assert_eq!(last["cancelled"], true, "{last:#}");
    }
    assert_eq!(child_logs, 2);
}

/// Sends SIGINT to `pid` with the `kill` program.
fn interrupt(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT failed");
}

#[test]
fn a_child_whose_mcp_server_is_missing_is_refused_and_the_lead_goes_on() {
    let ws = Workspace::new();
    ws.agent("lead", &lead_yaml("in-process", 8000));
    // `worker` needs an MCP server no configuration names: the lead's own run is fine.
    ws.agent(
        "worker",
        &format!("{WORKER}tools:\n  mcp: [\"gh.*\"]\n")
            .replace("tools:\n  fs: { read: true }\n", ""),
    );
    ws.replay(&script(&TWO_PARTS[..1], 0));
    let results = run_lead(&ws);
    assert_eq!(agent_report(&results, "lead")["status"], "completed");
    assert!(children(&results).is_empty(), "{results:#}");
    let audit = audit_of(&ws, &results);
    let refused = of_type(&audit, "agent_delegated")[0]["refused"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(refused.contains("MCP server `gh`"), "{refused}");
    assert!(refused.contains("[mcp_servers.gh]"), "{refused}");
}
