//! End-to-end tests of the `codex` binary: each test builds a throwaway workspace (sources,
//! agent definitions in `.codex/agents/`, a replay script), runs `codex -C <ws> ...` with an
//! empty `CODEX_HOME`, and checks what the run printed, the `-o` JSON and the audit log.
//!
//! No assertion depends on timing: what ran at once is read from the order of the
//! supervisor's own events, and slow turns last an hour so that only the deadline or the
//! signal under test can end them.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    agent_report, agent_yaml, assert_seq_gapless, by_seq, copy_tree, of_type, read_json, Workspace,
};
use predicates::prelude::*;
use serde_json::Value;

/// Two agents whose every turn waits `delay_ms`: a tool-call turn, then the final answer.
fn two_waiting_agents(ws: &Workspace, delay_ms: u64) -> std::path::PathBuf {
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    ws.agent("beta", &agent_yaml("beta", "false", 20_000));
    ws.replay(&format!(
        r#"
agents:
  default:
    turns:
      - text: "Looking around."
        tool_calls: [{{name: list_dir, arguments: {{}}}}]
        usage: {{input_tokens: 300, output_tokens: 20}}
        delay_ms: {delay_ms}
      - text: "Done."
        usage: {{input_tokens: 400, output_tokens: 10}}
        delay_ms: {delay_ms}
"#
    ))
}

fn statuses(results: &Value) -> Vec<String> {
    results["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Parallelism
// ---------------------------------------------------------------------------------------

/// The `--json` events of a run, in order.
fn json_events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The position of the first event of `kind` about `agent`.
fn position(events: &[Value], kind: &str, agent: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == kind && (e["agent"] == agent || e["report"]["agent"] == agent))
        .unwrap_or_else(|| panic!("no {kind} event for {agent} in {events:#?}"))
}

// The supervisor emits `agent_started` and `agent_finished` itself, in the order it does
// them, so their order says what ran at once: no timing involved.

#[test]
fn agents_run_in_parallel() {
    let ws = Workspace::new();
    let replay = two_waiting_agents(&ws, 100);
    let out = ws
        .codex()
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "a,b",
            "--json",
        ])
        .arg("--replay")
        .arg(&replay)
        .output()
        .unwrap();
    assert!(out.status.success());
    let events = json_events(&out.stdout);
    for (one, other) in [("alpha", "beta"), ("beta", "alpha")] {
        assert!(
            position(&events, "agent_started", one) < position(&events, "agent_finished", other),
            "{one} started only after {other} finished: {events:#?}"
        );
    }
}

#[test]
fn max_concurrency_one_runs_agents_one_after_another() {
    let ws = Workspace::new();
    let replay = two_waiting_agents(&ws, 100);
    let out = ws
        .codex()
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "a,b",
            "--json",
        ])
        .args(["--max-concurrency", "1", "--replay"])
        .arg(&replay)
        .output()
        .unwrap();
    assert!(out.status.success());
    let events = json_events(&out.stdout);
    assert!(
        position(&events, "agent_finished", "alpha") < position(&events, "agent_started", "beta"),
        "beta started before alpha finished despite --max-concurrency 1: {events:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Supervision
// ---------------------------------------------------------------------------------------

#[test]
fn agent_that_panics_once_is_restarted_and_completes() {
    let ws = Workspace::new();
    ws.agent("flaky", &agent_yaml("flaky", "false", 20_000));
    let replay = ws.replay(
        r#"
agents:
  flaky:
    turns:
      - text: "Listing."
        tool_calls: [{name: list_dir}]
        fault: panic
        fault_message: "flaky model stream exploded"
        attempts: [1]
      - text: "All good."
"#,
    );
    ws.codex()
        .args(["delegate", "flaky", "--goal", "survive", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success()
        .stdout(predicate::str::contains("[restart] flaky"));
    let results = ws.results();
    let flaky = agent_report(&results, "flaky");
    assert_eq!(flaky["status"], "completed");
    assert_eq!(flaky["restarts"], 1);
    assert_eq!(flaky["final_message"], "All good.");

    let audit = ws.audit();
    let restarts = of_type(&audit, "agent_restarted");
    assert_eq!(restarts.len(), 1, "{restarts:#?}");
    assert_eq!(restarts[0]["agent"], "flaky");
    assert_eq!(restarts[0]["attempt"], 2);
    assert!(restarts[0]["reason"]
        .as_str()
        .unwrap()
        .contains("flaky model stream exploded"));
}

#[test]
fn agent_that_always_panics_fails_after_three_restarts_while_sibling_completes() {
    let ws = Workspace::new();
    ws.agent("doomed", &agent_yaml("doomed", "false", 20_000));
    ws.agent("steady", &agent_yaml("steady", "false", 20_000));
    let replay = ws.replay(
        r#"
agents:
  doomed:
    turns:
      - fault: panic
        fault_message: "doomed model stream exploded"
  steady:
    turns:
      - text: "Steady answer."
"#,
    );
    ws.codex()
        .args([
            "delegate-parallel",
            "doomed,steady",
            "--goals",
            "a,b",
            "--replay",
        ])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .code(1);
    let results = ws.results();
    let doomed = agent_report(&results, "doomed");
    assert_eq!(doomed["status"], "failed");
    assert_eq!(doomed["restarts"], 3);
    assert!(
        doomed["error"]
            .as_str()
            .unwrap()
            .contains("doomed model stream exploded"),
        "error does not mention the panic: {}",
        doomed["error"]
    );
    assert_eq!(agent_report(&results, "steady")["status"], "completed");
    assert_eq!(results["success_count"], 1);
    assert_eq!(results["total_count"], 2);
    assert_eq!(of_type(&ws.audit(), "agent_restarted").len(), 3);
}

#[test]
fn fatal_model_error_fails_the_agent_without_restarts() {
    let ws = Workspace::new();
    ws.agent("keyless", &agent_yaml("keyless", "false", 20_000));
    let replay = ws.replay(
        r#"
agents:
  keyless:
    turns:
      - fault: fatal
        fault_message: "invalid api key"
"#,
    );
    ws.codex()
        .args(["delegate", "keyless", "--goal", "g", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .code(1);
    let results = ws.results();
    let keyless = agent_report(&results, "keyless");
    assert_eq!(keyless["status"], "failed");
    assert_eq!(keyless["restarts"], 0);
    assert!(keyless["error"]
        .as_str()
        .unwrap()
        .contains("invalid api key"));
    assert!(of_type(&ws.audit(), "agent_restarted").is_empty());
}

#[test]
fn transient_model_error_restarts_the_agent() {
    let ws = Workspace::new();
    ws.agent("retry", &agent_yaml("retry", "false", 20_000));
    let replay = ws.replay(
        r#"
agents:
  retry:
    turns:
      - text: "Answer after a retry."
        fault: error
        fault_message: "rate limited"
        attempts: [1]
"#,
    );
    ws.codex()
        .args(["delegate", "retry", "--goal", "g", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    let results = ws.results();
    let retry = agent_report(&results, "retry");
    assert_eq!(retry["status"], "completed");
    assert_eq!(retry["restarts"], 1);
    assert_eq!(retry["final_message"], "Answer after a retry.");
    let audit = ws.audit();
    let restarts = of_type(&audit, "agent_restarted");
    assert_eq!(restarts.len(), 1);
    assert!(restarts[0]["reason"]
        .as_str()
        .unwrap()
        .contains("rate limited"));
}

// ---------------------------------------------------------------------------------------
// Budgets
// ---------------------------------------------------------------------------------------

#[test]
fn agent_whose_budget_runs_out_stops_without_exceeding_it() {
    let ws = Workspace::new();
    ws.agent(
        "spender",
        "name: spender\ngoal: spend\ntools:\n  fs:\n    read: true\nbudget: 3000\nmax_output_tokens: 100\n",
    );
    let turn = "      - tool_calls: [{name: list_dir}]\n        usage: {input_tokens: 600, output_tokens: 100}\n";
    let replay = ws.replay(&format!(
        "agents:\n  spender:\n    turns:\n{}      - text: \"never reached\"\n",
        turn.repeat(8)
    ));
    ws.codex()
        .args(["delegate", "spender", "--goal", "spend", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .code(1);

    let results = ws.results();
    let spender = agent_report(&results, "spender");
    assert_eq!(spender["status"], "budget_exceeded");
    let used = spender["tokens_used"].as_u64().unwrap();
    assert!(used > 0);
    assert!(used <= spender["budget"].as_u64().unwrap(), "{spender:#}");
    assert!(results["total_tokens"].as_u64().unwrap() <= results["total_budget"].as_u64().unwrap());

    let audit = ws.audit();
    let decisions: Vec<&Value> = by_seq(&audit)
        .into_iter()
        .filter(|r| r["agent"] == "spender")
        .collect();
    let committed: u64 = decisions
        .iter()
        .filter(|r| r["type"] == "budget_decision" && r["op"] == "commit")
        .map(|r| r["granted"].as_u64().unwrap())
        .sum();
    assert_eq!(
        committed, used,
        "committed grants do not add up to tokens_used"
    );

    let first_denial = decisions
        .iter()
        .position(|r| r["type"] == "budget_decision" && !r["denied"].is_null())
        .expect("a reservation was denied");
    let calls_after: Vec<&&Value> = decisions[first_denial..]
        .iter()
        .filter(|r| r["type"] == "model_call")
        .collect();
    assert!(
        calls_after.is_empty(),
        "model called after a denied reservation: {calls_after:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------------------

#[test]
fn write_outside_permissions_is_denied_and_audited() {
    let ws = Workspace::new();
    let replay = ws.replay(
        r##"
agents:
  code-reviewer:
    turns:
      - text: "Trying to write where I should not."
        tool_calls:
          - name: write_file
            arguments: {path: src/evil.rs, content: "evil"}
          - name: write_file
            arguments: {path: artifactsX/evil.md, content: "evil"}
          - name: write_file
            arguments: {path: artifacts/review.md, content: "# Review"}
      - text: "Review done."
"##,
    );
    ws.codex()
        .args(["delegate", "code-reviewer", "--goal", "review", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();

    assert!(!ws.path("src/evil.rs").exists(), "src/evil.rs was written");
    assert!(
        !ws.path("artifactsX/evil.md").exists(),
        "artifactsX/evil.md was written"
    );
    assert!(ws.path("artifacts/review.md").exists());

    let results = ws.results();
    let reviewer = agent_report(&results, "code-reviewer");
    assert_eq!(reviewer["status"], "completed");
    assert_eq!(
        reviewer["artifacts"],
        serde_json::json!(["artifacts/review.md"])
    );

    let audit = ws.audit();
    for target in ["src/evil.rs", "artifactsX/evil.md"] {
        let decision = of_type(&audit, "policy_decision")
            .into_iter()
            .find(|r| r["access"]["target"] == target)
            .unwrap_or_else(|| panic!("no policy decision for {target}"));
        assert_eq!(decision["allowed"], false, "{decision:#}");
        assert_eq!(decision["access"]["kind"], "write");
        assert!(!decision["rule"].as_str().unwrap().is_empty());

        let call = of_type(&audit, "tool_call")
            .into_iter()
            .find(|r| r["arguments"].as_str().unwrap().contains(target))
            .unwrap_or_else(|| panic!("no tool_call for {target}"));
        assert_eq!(call["outcome"], "denied", "{call:#}");
    }
}

#[test]
fn scope_limits_writes_to_its_subtree() {
    let ws = Workspace::new();
    ws.dir("artifacts");
    ws.agent("writer", &agent_yaml("writer", "true", 20_000));
    let replay = ws.replay(
        r##"
agents:
  writer:
    turns:
      - tool_calls:
          - name: write_file
            arguments: {path: src/x.rs, content: "fn x() {}"}
          - name: write_file
            arguments: {path: artifacts/x.md, content: "# x"}
      - text: "Wrote what I could."
"##,
    );
    ws.codex()
        .args([
            "delegate",
            "writer",
            "--goal",
            "write",
            "--scope",
            "artifacts",
        ])
        .arg("--replay")
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();

    assert!(!ws.path("src/x.rs").exists());
    assert_eq!(
        std::fs::read_to_string(ws.path("artifacts/x.md")).unwrap(),
        "# x"
    );
    let results = ws.results();
    let writer = agent_report(&results, "writer");
    assert_eq!(writer["scope"], "artifacts");
    assert_eq!(writer["artifacts"], serde_json::json!(["artifacts/x.md"]));

    let audit = ws.audit();
    let denied = of_type(&audit, "policy_decision")
        .into_iter()
        .find(|r| r["access"]["target"] == "src/x.rs")
        .expect("a policy decision for src/x.rs");
    assert_eq!(denied["allowed"], false);
    assert!(
        denied["rule"].as_str().unwrap().contains("scope"),
        "rule does not mention the scope: {denied:#}"
    );
}

#[test]
fn scope_outside_the_workspace_is_refused_before_anything_runs() {
    let ws = Workspace::new();
    ws.agent("writer", &agent_yaml("writer", "true", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    for (scope, problem) in [("/etc", "absolute"), ("../", "..")] {
        ws.codex()
            .args(["delegate", "writer", "--goal", "g", "--scope", scope])
            .arg("--replay")
            .arg(&replay)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--scope"))
            .stderr(predicate::str::contains(problem));
    }
    assert!(!ws.has_runs());
}

#[test]
fn scope_that_is_not_a_directory_is_refused_before_anything_runs() {
    let ws = Workspace::new();
    ws.agent("writer", &agent_yaml("writer", "true", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    ws.codex()
        .args(["delegate", "writer", "--goal", "g", "--scope", "nowhere"])
        .arg("--replay")
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("scope `nowhere`"));
    assert!(!ws.has_runs());
}

// ---------------------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------------------

#[test]
fn malformed_agent_file_stops_only_its_own_agent_naming_file_line_and_field() {
    let ws = Workspace::new();
    ws.agent("worker", &agent_yaml("worker", "false", 20_000));
    ws.agent("bad", "name: bad\ngoal: Do the work\nbudget: lots\n");
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    // Its own run is refused before anything runs...
    ws.codex()
        .args(["delegate", "bad", "--goal", "g", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.yaml:3:"))
        .stderr(predicate::str::contains("`budget`"));
    assert!(!ws.has_runs(), "a run started despite a broken definition");
    // ...while other agents run, with a warning naming the broken file.
    ws.codex()
        .args(["delegate", "worker", "--goal", "g", "--replay"])
        .arg(&replay)
        .assert()
        .success()
        .stderr(predicate::str::contains("bad.yaml:3:"));
    ws.codex()
        .args(["agents", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("worker"))
        .stderr(predicate::str::contains("bad.yaml"));
}

#[test]
fn a_broken_override_never_falls_back_to_the_bundled_agent() {
    let ws = Workspace::new();
    ws.agent("mine", "name: code-reviewer\ngoal: g\nbudget: lots\n");
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    ws.codex()
        .args(["delegate", "code-reviewer", "--goal", "g", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "agent `code-reviewer` cannot be used",
        ))
        .stderr(predicate::str::contains("mine.yaml:3:"));
    assert!(!ws.has_runs(), "the bundled code-reviewer ran instead");
}

#[test]
fn agents_validate_fails_on_an_unknown_field_with_a_suggestion_unless_allowed() {
    let ws = Workspace::new();
    let file = ws.agent(
        "typo",
        &format!("{}budgett: 5000\n", agent_yaml("typo", "false", 20_000)),
    );
    ws.codex()
        .args(["agents", "validate"])
        .arg(&file)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("did you mean `budget`?"));
    ws.codex()
        .args(["agents", "validate", "--allow-unknown"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("warning"));
}

#[test]
fn unknown_field_in_agent_file_is_a_warning_and_the_run_goes_ahead() {
    let ws = Workspace::new();
    ws.agent(
        "worker",
        &format!("{}colour: blue\n", agent_yaml("worker", "false", 20_000)),
    );
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    ws.codex()
        .args(["delegate", "worker", "--goal", "g", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success()
        .stderr(predicate::str::contains("warning"))
        .stderr(predicate::str::contains("worker.yaml"))
        .stderr(predicate::str::contains("colour"));
    assert_eq!(agent_report(&ws.results(), "worker")["status"], "completed");
    // A typo of a known field says which one was meant.
    ws.agent(
        "worker",
        &format!("{}max_turn: 3\n", agent_yaml("worker", "false", 20_000)),
    );
    ws.codex()
        .args(["delegate", "worker", "--goal", "g", "--replay"])
        .arg(&replay)
        .assert()
        .success()
        .stderr(predicate::str::contains("did you mean `max_turns`?"));
}

// ---------------------------------------------------------------------------------------
// Flag errors: exit 2, nothing runs
// ---------------------------------------------------------------------------------------

fn flag_error_workspace() -> (Workspace, std::path::PathBuf) {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    ws.agent("beta", &agent_yaml("beta", "false", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    (ws, replay)
}

#[test]
fn goals_count_mismatch_is_an_error_before_anything_runs() {
    let (ws, replay) = flag_error_workspace();
    ws.codex()
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "a,b,c",
            "--replay",
        ])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--goals"))
        .stderr(predicate::str::contains("3 values"))
        .stderr(predicate::str::contains("2 agents"));
    assert!(!ws.has_runs());
}

#[test]
fn unknown_agent_is_an_error_listing_the_available_agents() {
    let (ws, replay) = flag_error_workspace();
    ws.codex()
        .args(["delegate", "nosuch", "--goal", "g", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown agent `nosuch`"))
        .stderr(predicate::str::contains("alpha"))
        .stderr(predicate::str::contains("beta"))
        .stderr(predicate::str::contains("code-reviewer"));
    assert!(!ws.has_runs());
}

#[test]
fn invalid_deadline_is_a_clear_error() {
    let (ws, replay) = flag_error_workspace();
    ws.codex()
        .args(["delegate", "alpha", "--goal", "g", "--deadline", "banana"])
        .arg("--replay")
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--deadline"))
        .stderr(predicate::str::contains("banana"));
    assert!(!ws.has_runs());
}

#[test]
fn missing_replay_flag_says_what_to_pass() {
    let (ws, _replay) = flag_error_workspace();
    ws.codex()
        .args(["delegate", "alpha", "--goal", "g"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--replay"));
    assert!(!ws.has_runs());
}

// ---------------------------------------------------------------------------------------
// Deadlines and cancellation
// ---------------------------------------------------------------------------------------

#[test]
fn deadline_stops_a_slow_agent_as_timed_out() {
    let ws = Workspace::new();
    ws.agent("slow", &agent_yaml("slow", "false", 20_000));
    // An hour-long turn: only the deadline can end this run.
    let replay =
        ws.replay("agents:\n  slow:\n    turns:\n      - text: late\n        delay_ms: 3600000\n");
    ws.codex()
        .args([
            "delegate",
            "slow",
            "--goal",
            "g",
            "--deadline",
            "1s",
            "--replay",
        ])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .timeout(Duration::from_secs(600))
        .assert()
        .code(1);
    let slow = agent_report(&ws.results(), "slow").clone();
    assert_eq!(slow["status"], "timed_out");
    assert!(slow["error"].as_str().unwrap().contains("deadline"));
}

/// Sends SIGINT to `pid`.
fn interrupt(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT failed");
}

#[test]
fn ctrl_c_cancels_every_agent_and_still_writes_results_and_audit() {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    ws.agent("beta", &agent_yaml("beta", "false", 20_000));
    let replay =
        ws.replay("agents:\n  default:\n    turns:\n      - text: late\n        delay_ms: 10000\n");
    let mut child = ws
        .codex_std()
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "a,b",
            "--replay",
        ])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn codex");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut starts = 0;
    while starts < 2 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!("codex ended before both agents started; stdout so far:\n{seen}");
        }
        if line.starts_with("[start]") {
            starts += 1;
        }
        seen.push_str(&line);
    }
    interrupt(child.id());

    // A safety net against a hang, not a timing assertion.
    let give_up = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("codex did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stdout.read_to_string(&mut seen).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        matches!(status.code(), Some(c) if c != 0),
        "expected a non-zero exit code, got {status:?}\nstdout:\n{seen}\nstderr:\n{stderr}"
    );

    let results = ws.results();
    assert_eq!(
        statuses(&results),
        ["cancelled", "cancelled"],
        "{results:#}"
    );

    let audit = ws.audit();
    assert_seq_gapless(&audit);
    let last = audit.last().unwrap();
    assert_eq!(last["type"], "run_finished", "{last:#}");
    assert_eq!(last["cancelled"], true);
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn results_json_has_exactly_the_documented_keys() {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    ws.codex()
        .args(["delegate", "alpha", "--goal", "g", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    let results = ws.results();
    assert_eq!(
        keys(&results),
        BTreeSet::from([
            "run_id",
            "agents",
            "total_tokens",
            "total_budget",
            "wall_secs",
            "success_count",
            "total_count",
        ])
    );
    let agent = &results["agents"][0];
    assert_eq!(
        keys(agent),
        BTreeSet::from([
            "agent",
            "goal",
            "scope",
            "status",
            "tokens_used",
            "budget",
            "duration_secs",
            "restarts",
            "artifacts",
            "error",
            "final_message",
        ])
    );
    // The run id names the run's directory.
    let run_id = results["run_id"].as_str().unwrap();
    assert_eq!(ws.run_dir().file_name().unwrap().to_str().unwrap(), run_id);
    assert_eq!(agent["status"], "completed");
    assert_eq!(agent["final_message"], "hi");
    assert!(agent["error"].is_null());
}

#[test]
fn bundled_demo_runs_as_documented() {
    let ws = Workspace::empty();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    copy_tree(
        &demo,
        &ws.root(),
        &["artifacts", ".codex", "tests/parser_tests.rs", "target"],
    );
    assert!(!ws.path("artifacts/review.md").exists());
    assert!(!ws.path("tests/parser_tests.rs").exists());
    ws.codex()
        .args(["delegate-parallel", "code-reviewer,test-gen"])
        .args([
            "--goals",
            "Review src/ for bugs,Write tests for src/parser.rs",
        ])
        .args(["--budgets", "6000,6000", "--replay"])
        .arg(ws.path("replay.yaml"))
        .arg("-o")
        .arg(ws.path("results.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains("2/2 agents completed"));
    let results = read_json(&ws.path("results.json"));
    assert_eq!(statuses(&results), ["completed", "completed"]);
    assert!(ws.path("artifacts/review.md").is_file());
    assert!(ws.path("tests/parser_tests.rs").is_file());
}

#[test]
fn bundled_delegation_demo_runs_as_documented() {
    let ws = Workspace::empty();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    copy_tree(
        &demo,
        &ws.root(),
        &["artifacts", ".codex", "tests/parser_tests.rs", "target"],
    );
    ws.codex()
        .args([
            "delegate",
            "tech-lead",
            "--goal",
            "Get src/ reviewed and tested",
        ])
        .arg("--replay")
        .arg(ws.path("replay.yaml"))
        .arg("-o")
        .arg(ws.path("results.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "[delegate] tech-lead -> tech-lead/code-reviewer#1 (budget 6,000)",
        ))
        .stdout(predicate::str::contains("1/1 agents completed"));
    let results = read_json(&ws.path("results.json"));
    assert_eq!(statuses(&results), ["completed", "completed", "completed"]);
    // The children wrote what the main demo's agents write, within the lead's permissions.
    assert!(ws.path("artifacts/review.md").is_file());
    assert!(ws.path("tests/parser_tests.rs").is_file());
    let children: u64 = results["agents"].as_array().unwrap()[1..]
        .iter()
        .map(|c| c["tokens_used"].as_u64().unwrap())
        .sum();
    let lead = results["agents"][0]["tokens_used"].as_u64().unwrap();
    assert!(children < lead && lead <= 30_000);
}

// ---------------------------------------------------------------------------------------
// `codex agents`
// ---------------------------------------------------------------------------------------

#[test]
fn agents_list_shows_the_bundled_agents() {
    let ws = Workspace::new();
    let mut assert = ws.codex().args(["agents", "list"]).assert().success();
    for name in [
        "code-reviewer",
        "test-gen",
        "sec-audit",
        "docs-gen",
        "researcher",
        "tech-lead",
    ] {
        assert = assert.stdout(predicate::str::contains(name));
    }
}

#[test]
fn agents_validate_rejects_a_bad_file_and_names_the_problem() {
    let ws = Workspace::new();
    let bad = ws.file("defs/bad.yaml", "name: bad\nmax_turns: many\n");
    ws.codex()
        .args(["agents", "validate"])
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("bad.yaml:2:"))
        .stdout(predicate::str::contains("max_turns"));
}

#[test]
fn agents_validate_accepts_a_good_file() {
    let ws = Workspace::new();
    let good = ws.file("defs/good.yaml", &agent_yaml("good", "false", 1000));
    ws.codex()
        .args(["agents", "validate"])
        .arg(&good)
        .assert()
        .success();
}

#[test]
fn agents_show_prints_the_effective_permissions() {
    let ws = Workspace::new();
    ws.codex()
        .args(["agents", "show", "code-reviewer"])
        .assert()
        .success()
        .stdout(predicate::str::contains("name: code-reviewer"))
        .stdout(predicate::str::is_match(r"(?m)^#\s+read:\s+\*\*$").unwrap())
        .stdout(predicate::str::is_match(r"(?m)^#\s+write:\s+artifacts/\*\*$").unwrap());
}

// ---------------------------------------------------------------------------------------
// `codex delegate`
// ---------------------------------------------------------------------------------------

#[test]
fn delegate_runs_one_agent_with_goal_budget_and_scope_and_prints_a_summary() {
    let ws = Workspace::new();
    ws.agent("worker", &agent_yaml("worker", "true", 20_000));
    let replay = ws.replay(
        r#"
agents:
  worker:
    turns:
      - tool_calls:
          - name: write_file
            arguments: {path: src/tidy.rs, content: "// tidy"}
      - text: "Tidied src/."
"#,
    );
    ws.codex()
        .args(["delegate", "worker", "--goal", "Tidy the sources"])
        .args(["--budget", "5000", "--scope", "src", "--replay"])
        .arg(&replay)
        .assert()
        .success()
        .stdout(predicate::str::contains("[start]   worker (budget 5,000)"))
        .stdout(predicate::str::contains("[done]    worker completed"))
        .stdout(predicate::str::contains("artifacts: src/tidy.rs"))
        .stdout(predicate::str::contains("--- worker ---\nTidied src/."))
        .stdout(predicate::str::contains("1/1 agents completed"))
        .stdout(predicate::str::is_match(r"Tokens: [\d,]+ / 5,000").unwrap())
        .stdout(predicate::str::contains("Audit log: .codex/runs/"));
    assert!(ws.path("src/tidy.rs").is_file());

    let audit = ws.audit();
    let started = of_type(&audit, "agent_started");
    assert_eq!(started[0]["goal"], "Tidy the sources");
    assert_eq!(of_type(&audit, "run_started")[0]["total_budget"], 5000);
}

// ---------------------------------------------------------------------------------------
// Audit log invariants
// ---------------------------------------------------------------------------------------

#[test]
fn audit_log_starts_with_run_started() {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    // The order is decided by a race, so give it several chances to show.
    for _ in 0..10 {
        ws.codex()
            .args(["delegate", "alpha", "--goal", "g", "--replay"])
            .arg(&replay)
            .assert()
            .success();
        let audit = ws.audit();
        assert_seq_gapless(&audit);
        assert_eq!(audit[0]["type"], "run_started", "{:#}", audit[0]);
        std::fs::remove_dir_all(ws.path(".codex/runs")).unwrap();
    }
}

#[test]
fn a_replay_script_without_turns_for_an_agent_is_refused_before_anything_runs() {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    let replay = ws.replay("agents:\n  someone-else:\n    turns:\n      - text: hi\n");
    ws.codex()
        .args(["delegate", "alpha", "--goal", "g", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no turns for `alpha`"))
        .stderr(predicates::str::contains("someone-else"));
    assert!(!ws.path(".codex/runs").exists());
}
