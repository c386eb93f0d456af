//! A definition's `restart:` settings (`type`, `max`, `within`) through the binary: an agent
//! whose every attempt panics (a replay script's `fault: panic`) is restarted as its
//! definition says, and the run reports it.
//!
//! What the engine does with `type: temporary` is right in effect today (one attempt, no
//! restart) but reported as if a restart limit had been reached, because the supervisor
//! passes every exit as abnormal and treats "done" like "escalate"; the test of the report
//! it should give waits for that fix (issue #11, engine half).

mod common;

use common::{agent_report, agent_yaml, of_type, Workspace};
use predicates::prelude::*;
use serde_json::Value;

/// A script in which every attempt of `doomed` panics on its first turn.
const ALWAYS_PANICS: &str = r#"
agents:
  doomed:
    turns:
      - fault: panic
        fault_message: "doomed model stream exploded"
"#;

/// Runs `doomed`, defined with `restart` (YAML lines under `restart:`, or none), with
/// `--json`; returns its report in `-o`, its attempts (the `agent_started` events) and the
/// audit log's `agent_restarted` records.
fn run_doomed(restart: Option<&str>) -> (Value, Vec<u64>, usize) {
    let ws = Workspace::new();
    let mut yaml = agent_yaml("doomed", "false", 20_000);
    if let Some(r) = restart {
        yaml.push_str(&format!("restart:\n{r}"));
    }
    ws.agent("doomed", &yaml);
    let replay = ws.replay(ALWAYS_PANICS);
    let out = ws
        .codex()
        .args(["delegate", "doomed", "--goal", "g", "--json", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let attempts = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "agent_started" && e["agent"] == "doomed")
        .map(|e| e["attempt"].as_u64().unwrap())
        .collect();
    let results = ws.results();
    let report = agent_report(&results, "doomed").clone();
    let restarted = of_type(&ws.audit(), "agent_restarted").len();
    (report, attempts, restarted)
}

fn error(report: &Value) -> &str {
    report["error"].as_str().unwrap_or_default()
}

#[test]
fn without_restart_settings_an_agent_is_restarted_three_times_within_a_minute() {
    let (report, attempts, restarted) = run_doomed(None);
    assert_eq!(report["status"], "failed");
    assert_eq!(report["restarts"], 3);
    assert_eq!(attempts, [1, 2, 3, 4]);
    assert_eq!(restarted, 3);
    assert!(error(&report).contains("limit 3 within 1m"), "{report}");
    assert!(error(&report).contains("doomed model stream exploded"));
}

#[test]
fn a_temporary_agent_makes_one_attempt_and_is_not_restarted() {
    let (report, attempts, restarted) = run_doomed(Some("  type: temporary\n"));
    assert_eq!(report["status"], "failed");
    assert_eq!(report["restarts"], 0);
    assert_eq!(attempts, [1]);
    assert_eq!(restarted, 0);
    assert!(error(&report).contains("doomed model stream exploded"));
}

#[test]
fn a_temporary_agents_failure_says_it_is_not_restarted_rather_than_a_limit_reached() {
    let (report, _, _) = run_doomed(Some("  type: temporary\n"));
    let error = error(&report);
    assert!(!error.contains("limit"), "{error}");
    assert!(error.contains("temporary"), "{error}");
}

#[test]
fn max_one_gives_up_after_one_restart() {
    let (report, attempts, restarted) = run_doomed(Some("  max: 1\n"));
    assert_eq!(report["status"], "failed");
    assert_eq!(report["restarts"], 1);
    assert_eq!(attempts, [1, 2]);
    assert_eq!(restarted, 1);
    assert!(
        error(&report).contains("failed after 1 restarts (limit 1 within 1m)"),
        "{report}"
    );
}

#[test]
fn within_is_the_window_the_restarts_are_counted_in() {
    let (report, attempts, _) = run_doomed(Some("  max: 2\n  within: 1h\n"));
    assert_eq!(attempts, [1, 2, 3]);
    assert!(error(&report).contains("(limit 2 within 1h)"), "{report}");
}

#[test]
fn a_bad_restart_type_is_refused_before_the_run_naming_the_field_and_the_accepted_types() {
    let ws = Workspace::new();
    let yaml = agent_yaml("doomed", "false", 20_000) + "restart:\n  type: sometimes\n";
    ws.agent("doomed", &yaml);
    let replay = ws.replay(ALWAYS_PANICS);
    ws.codex()
        .args(["delegate", "doomed", "--goal", "g", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("field `restart.type`"))
        .stderr(predicate::str::contains(
            "expected one of `permanent`, `transient`, `temporary`",
        ));
    assert!(!ws.has_runs(), "a run started despite the bad definition");
}
