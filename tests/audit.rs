//! End-to-end tests of the audit log and of watching a run, driving the `codex` binary:
//! tampering is detected at the right line, a SIGKILLed run leaves a log that verifies, an
//! unwritable log directory stops the run before any agent, secrets from the environment
//! never reach the log, `--json` is JSON Lines, and the `codex audit` commands find runs.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{agent_yaml, Workspace};
use predicates::prelude::*;
use serde_json::Value;

/// One agent, `alpha`, that lists the workspace, then answers.
fn one_agent(ws: &Workspace) -> std::path::PathBuf {
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    ws.replay(
        r#"
agents:
  default:
    turns:
      - text: "Looking around."
        tool_calls: [{name: list_dir, arguments: {}}]
        usage: {input_tokens: 300, output_tokens: 20}
      - text: "Done."
        usage: {input_tokens: 400, output_tokens: 10}
"#,
    )
}

/// Runs `alpha` to completion and returns the path of its audit log.
fn finished_run(ws: &Workspace) -> std::path::PathBuf {
    let replay = one_agent(ws);
    ws.codex()
        .args(["delegate", "alpha", "--goal", "look", "--replay"])
        .arg(&replay)
        .assert()
        .success();
    ws.run_dir().join("audit.jsonl")
}

fn log_lines(path: &std::path::Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &std::path::Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// `codex audit verify last` must fail with status 1 naming `line`.
fn assert_tampered_at(ws: &Workspace, line: usize) {
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("TAMPERED: run"))
        .stdout(predicate::str::contains(format!("line {line}:")));
}

// ---------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------

#[test]
fn a_finished_run_verifies_and_exits_zero() {
    let ws = Workspace::new();
    finished_run(&ws);
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .success()
        .stdout(predicate::str::contains("OK: run"))
        .stdout(predicate::str::contains("The run finished"));
}

#[test]
fn an_edited_line_is_named_by_verify() {
    let ws = Workspace::new();
    let path = finished_run(&ws);
    let mut lines = log_lines(&path);
    lines[3] = lines[3].replace("\"alpha\"", "\"mallory\"");
    write_lines(&path, &lines);
    assert_tampered_at(&ws, 4);
}

#[test]
fn a_deleted_line_is_detected_at_the_line_that_took_its_place() {
    let ws = Workspace::new();
    let path = finished_run(&ws);
    let mut lines = log_lines(&path);
    lines.remove(2);
    write_lines(&path, &lines);
    assert_tampered_at(&ws, 3);
}

#[test]
fn reordered_lines_are_detected_at_the_first_moved_line() {
    let ws = Workspace::new();
    let path = finished_run(&ws);
    let mut lines = log_lines(&path);
    lines.swap(4, 5);
    write_lines(&path, &lines);
    assert_tampered_at(&ws, 5);
}

#[test]
fn a_line_cut_short_before_the_end_is_detected() {
    let ws = Workspace::new();
    let path = finished_run(&ws);
    let mut lines = log_lines(&path);
    let half = lines[2].len() / 2;
    lines[2].truncate(half);
    write_lines(&path, &lines);
    assert_tampered_at(&ws, 3);
}

#[test]
fn lines_cut_from_the_end_make_the_log_incomplete() {
    let ws = Workspace::new();
    let path = finished_run(&ws);
    let mut lines = log_lines(&path);
    lines.truncate(lines.len() - 2);
    write_lines(&path, &lines);
    // As after a crash: the run never ended, so it was never anchored (an anchored log cut
    // short is "rewritten after the run ended": tests/attacks.rs).
    std::fs::remove_file(ws.home().join("anchors.jsonl")).unwrap();
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("INCOMPLETE"));
}

#[test]
fn a_torn_last_line_is_reported_and_ignored() {
    let ws = Workspace::new();
    let path = finished_run(&ws);
    let n = log_lines(&path).len();
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":999,\"half a li");
    fs::write(&path, bytes).unwrap();
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .stdout(predicate::str::contains(format!("{n} lines verified")))
        .stdout(predicate::str::contains(format!("Line {} is torn", n + 1)));
}

// ---------------------------------------------------------------------------------------
// Durability
// ---------------------------------------------------------------------------------------

#[test]
fn a_run_killed_with_sigkill_leaves_a_log_that_verifies_up_to_its_last_complete_line() {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 200_000));
    ws.agent("beta", &agent_yaml("beta", "false", 200_000));
    let turn = "      - text: \"Looking.\"\n        tool_calls: [{name: list_dir, arguments: {}}]\n        usage: {input_tokens: 30, output_tokens: 5}\n        delay_ms: 150\n";
    let replay = ws.replay(&format!(
        "agents:\n  default:\n    turns:\n{}      - text: done\n",
        turn.repeat(40)
    ));
    let mut child = ws
        .codex_std()
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "a,b",
            "--json",
        ])
        .arg("--replay")
        .arg(&replay)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn codex");
    // Wait (by reading the event stream, not the clock) until a few model calls started.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut started: BTreeMap<String, usize> = BTreeMap::new();
    while started.values().sum::<usize>() < 6 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!("codex ended before it started six model calls");
        }
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if event["type"] == "model_call_started" {
            let agent = event["agent"].as_str().unwrap().to_owned();
            *started.entry(agent).or_default() += 1;
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    // A model call starts only once its reservation is on disk, and with it every record the
    // agent made before (its previous tool calls among them).
    let log = ws.audit();
    let count = |ty: &str, op: Option<&str>, agent: &str| {
        log.iter()
            .filter(|r| r["type"] == ty && r["agent"] == agent)
            .filter(|r| op.is_none_or(|op| r["op"] == op))
            .count()
    };
    for (agent, calls) in &started {
        let reserves = count("budget_decision", Some("reserve"), agent);
        assert!(
            reserves >= *calls,
            "{agent}: {reserves} reservations on disk for {calls} calls started"
        );
        let tools = count("tool_call", None, agent);
        assert!(
            tools + 1 >= *calls,
            "{agent}: {tools} tool calls on disk, {calls} model calls started"
        );
    }
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("OK: run"))
        .stdout(predicate::str::contains("INCOMPLETE"));
    // Nothing writes the log any more: the run was killed, not "running".
    ws.codex()
        .args(["audit", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("killed (no run_finished)"));
    ws.codex()
        .args(["audit", "stats", "last"])
        .assert()
        .success()
        .stdout(predicate::str::contains("killed"))
        .stdout(predicate::str::contains("running").not());
}

#[test]
fn readme_lists_every_record_type_the_engine_writes() {
    let readme =
        fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let show: String = readme
        .lines()
        .skip_while(|l| !l.starts_with("- `show RUN"))
        .take_while(|l| l.starts_with("- `show RUN") || l.starts_with("  "))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!show.is_empty(), "README has no `show RUN` item");
    for kind in codex_actors::audit::KINDS {
        assert!(
            show.contains(&format!("`{kind}`")),
            "README's `audit show --type` list lacks `{kind}`"
        );
    }
}

#[test]
fn show_accepts_every_record_type_the_engine_writes() {
    let ws = Workspace::new();
    finished_run(&ws);
    for kind in codex_actors::audit::KINDS {
        ws.codex()
            .args(["audit", "show", "last", "--type", kind])
            .assert()
            .success();
    }
}

#[test]
fn an_unwritable_log_directory_stops_the_run_before_any_agent() {
    let ws = Workspace::new();
    ws.agent("writer", &agent_yaml("writer", "true", 20_000));
    let replay = ws.replay(
        r#"
agents:
  default:
    turns:
      - tool_calls: [{name: write_file, arguments: {path: out.txt, content: "x"}}]
      - text: done
"#,
    );
    // `.codex/runs` is a file, so no run directory can be created in it.
    ws.file(".codex/runs", "not a directory");
    ws.codex()
        .args(["delegate", "writer", "--goal", "write", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("[start]").not())
        .stderr(predicate::str::contains("cannot open audit log"))
        .stderr(predicate::str::contains("must be writable"))
        .stderr(predicate::str::contains("No agent was started"));
    assert!(!ws.path("out.txt").exists(), "an agent ran unaudited");
}

// ---------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------

#[test]
fn no_secret_from_the_environment_reaches_the_log() {
    let ws = Workspace::new();
    ws.agent("leaky", &agent_yaml("leaky", "true", 50_000));
    let key = "sk-test-0123456789abcdefABCDEF";
    let token = "plain-token-value-without-format-77";
    let replay = ws.replay(&format!(
        r#"
agents:
  default:
    turns:
      - text: "My key is {key} and my token {token}."
        tool_calls:
          - {{name: write_file, arguments: {{path: notes.txt, content: "key={key} token={token}"}}}}
          - {{name: grep, arguments: {{pattern: "{token}"}}}}
          - {{name: read_file, arguments: {{path: "{token}/{key}.txt"}}}}
      - text: "Done: {key} {token}"
"#
    ));
    ws.codex()
        .env("MY_API_KEY", key)
        .env("SERVICE_TOKEN", token)
        .args([
            "delegate",
            "leaky",
            "--goal",
            &format!("use {token}"),
            "--replay",
        ])
        .arg(&replay)
        .assert()
        .success();
    let log = fs::read_to_string(ws.run_dir().join("audit.jsonl")).unwrap();
    assert!(log.contains("[REDACTED]"), "nothing was redacted:\n{log}");
    assert!(!log.contains(key), "the API key reached the log:\n{log}");
    assert!(!log.contains(token), "the token reached the log:\n{log}");
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .success();
}

// ---------------------------------------------------------------------------------------
// Watching a run
// ---------------------------------------------------------------------------------------

#[test]
fn json_output_is_one_json_object_per_line_from_run_started_to_run_finished() {
    let ws = Workspace::new();
    let replay = one_agent(&ws);
    let out = ws
        .codex()
        .args(["delegate", "alpha", "--goal", "look", "--json", "--replay"])
        .arg(&replay)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let events: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "run_started",
            "agent_started",
            "model_call_started",
            "turn_completed",
            "tool_started",
            "tool_called",
            "model_call_started",
            "turn_completed",
            "agent_finished",
            "run_finished"
        ]
    );
    assert_eq!(events[3]["usage"]["input_tokens"], 300);
    assert_eq!(events[7]["tokens_used"], 730);
    assert_eq!(events[9]["success_count"], 1);
}

#[test]
fn quiet_prints_the_summary_but_no_agent_lines() {
    let ws = Workspace::new();
    let replay = one_agent(&ws);
    ws.codex()
        .args(["delegate", "alpha", "--goal", "look", "--quiet", "--replay"])
        .arg(&replay)
        .assert()
        .success()
        .stdout(predicate::str::contains("[start]").not())
        .stdout(predicate::str::contains("[done]").not())
        .stdout(predicate::str::contains("1/1 agents completed"));
}

#[test]
fn completion_prints_a_script_for_the_shell() {
    Workspace::new()
        .codex()
        .args(["completion", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_codex()"));
}

// ---------------------------------------------------------------------------------------
// Finding runs
// ---------------------------------------------------------------------------------------

#[test]
fn a_run_is_found_by_its_id_or_a_unique_prefix() {
    let ws = Workspace::new();
    finished_run(&ws);
    let id = ws
        .run_dir()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for run in [id.as_str(), &id[..10]] {
        ws.codex()
            .args(["audit", "stats", run])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("Run {id}")));
    }
    ws.codex()
        .args(["audit", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(&id))
        .stdout(predicate::str::contains("finished 1/1"));
}

#[test]
fn an_unknown_run_says_how_to_list_the_runs() {
    let ws = Workspace::new();
    finished_run(&ws);
    ws.codex()
        .args(["audit", "show", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no run matches `nope`"))
        .stderr(predicate::str::contains("codex audit list"));
}

#[test]
fn a_workspace_without_runs_says_where_runs_come_from() {
    Workspace::new()
        .codex()
        .args(["audit", "verify", "last"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no runs in"));
}

#[test]
fn show_filters_by_agent_and_type() {
    let ws = Workspace::new();
    finished_run(&ws);
    let out = ws
        .codex()
        .args([
            "audit",
            "show",
            "last",
            "--agent",
            "alpha",
            "--type",
            "tool_call",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("list_dir"), "{out}");
}

#[test]
fn tail_follow_on_a_finished_run_prints_its_end_and_returns() {
    let ws = Workspace::new();
    finished_run(&ws);
    ws.codex()
        .args(["audit", "tail", "last", "-n", "2", "--follow"])
        .assert()
        .success()
        .stdout(predicate::str::contains("run_finished"));
}

#[test]
fn export_jsonl_is_the_log_verbatim_and_csv_has_a_row_per_record() {
    let ws = Workspace::new();
    let path = finished_run(&ws);
    let n = log_lines(&path).len();
    ws.codex()
        .args(["audit", "export", "last", "--format", "jsonl"])
        .assert()
        .success()
        .stdout(fs::read_to_string(&path).unwrap());
    let csv = ws
        .codex()
        .args(["audit", "export", "last", "--format", "csv"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.starts_with("seq,ts,type,agent,summary,prev_hash,hash\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), n + 1);
}

#[test]
fn no_secret_from_the_environment_reaches_the_output_or_the_results() {
    let ws = Workspace::new();
    ws.agent("leaky", &agent_yaml("leaky", "true", 50_000));
    let key = "sk-test-0123456789abcdefABCDEF";
    let token = "plain-token-value-without-format-77";
    let replay = ws.replay(&format!(
        "agents:\n  default:\n    turns:\n      - text: \"Done: {key} {token}\"\n"
    ));
    for mode in [None, Some("--json")] {
        let mut cmd = ws.codex();
        cmd.env("MY_API_KEY", key)
            .env("SERVICE_TOKEN", token)
            .args([
                "delegate",
                "leaky",
                "--goal",
                &format!("use {token}"),
                "--replay",
            ])
            .arg(&replay)
            .arg("-o")
            .arg(ws.results_path());
        if let Some(flag) = mode {
            cmd.arg(flag);
        }
        let out = cmd.assert().success();
        let printed = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        let results = fs::read_to_string(ws.results_path()).unwrap();
        for (what, text) in [("stdout", &printed), ("-o", &results)] {
            assert!(
                !text.contains(key),
                "{mode:?}: the key reached {what}:\n{text}"
            );
            assert!(
                !text.contains(token),
                "{mode:?}: the token reached {what}:\n{text}"
            );
        }
        assert!(results.contains("[REDACTED]"), "{results}");
    }
}
