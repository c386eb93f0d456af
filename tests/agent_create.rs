//! `codex agent-create` with the replay provider: the script's `agent-create` turns are the
//! model's answers (YAML text), and `default` plays the new agent's run.

mod common;

use common::{read_json, Workspace};
use predicates::prelude::*;

const VALID: &str = r#"
        name: doc-writer
        goal: Describe the crate
        instructions: Read the sources and describe them.
        tools:
          fs: { read: true }
        budget: 9000
        max_output_tokens: 200
"#;

/// A replay script whose generation turns answer `answers` in order.
fn script(ws: &Workspace, answers: &[&str]) -> std::path::PathBuf {
    let turns: String = answers
        .iter()
        .map(|a| format!("      - text: |\n{}\n", indent(a)))
        .collect();
    ws.replay(&format!(
        "agents:\n  agent-create:\n    turns:\n{turns}  default:\n    turns:\n      - text: \"The crate answers 42.\"\n        usage: {{input_tokens: 100, output_tokens: 10}}\n"
    ))
}

/// Re-indents a YAML answer as a block scalar of the script.
fn indent(text: &str) -> String {
    text.trim_matches('\n')
        .lines()
        .map(|l| format!("          {}", l.trim_start_matches("        ")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_valid_definition_is_shown_saved_and_run() {
    let ws = Workspace::new();
    let replay = script(&ws, &[VALID]);
    ws.codex()
        .args([
            "agent-create",
            "an agent that documents the crate",
            "--save",
        ])
        .arg("--replay")
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success()
        .stdout(predicate::str::contains("name: doc-writer"))
        .stdout(predicate::str::contains("1/1 agents completed"));
    let saved = std::fs::read_to_string(ws.path(".codex/agents/doc-writer.yaml")).unwrap();
    assert!(saved.contains("goal: Describe the crate"), "{saved}");
    let results = read_json(&ws.results_path());
    assert_eq!(results["agents"][0]["agent"], "doc-writer");
    assert_eq!(
        results["agents"][0]["final_message"],
        "The crate answers 42."
    );
    assert_eq!(results["agents"][0]["budget"], 9000);
    // The saved file is a definition like any other.
    ws.codex()
        .args(["agents", "show", "doc-writer"])
        .assert()
        .success();
}

#[test]
fn an_invalid_definition_goes_back_to_the_model_and_is_corrected() {
    let ws = Workspace::new();
    let invalid = "name: doc-writer\ninstructions: no goal here\n";
    let replay = script(&ws, &[invalid, VALID]);
    ws.codex()
        .args(["agent-create", "documents", "--dry-run", "--save"])
        .args(["--name", "docs", "--budget", "5000", "--replay"])
        .arg(&replay)
        .assert()
        .success()
        .stderr(predicate::str::contains("invalid (try 1 of 3)"))
        .stdout(predicate::str::contains("name: docs"))
        .stdout(predicate::str::contains("budget: 5000"));
    assert!(ws.path(".codex/agents/docs.yaml").exists());
    assert!(!ws.has_runs(), "--dry-run runs nothing");
}

#[test]
fn still_invalid_after_the_retries_is_an_error_and_nothing_is_saved() {
    let ws = Workspace::new();
    let bad = "name: Not A Name\ngoal: g\ninstructions: i\n";
    let replay = script(&ws, &[bad, bad, bad]);
    ws.codex()
        .args(["agent-create", "anything", "--save", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no valid agent definition in 3 tries",
        ))
        .stderr(predicate::str::contains("nothing was saved or run"));
    assert!(!ws.path(".codex/agents").exists());
    assert!(!ws.has_runs());
}

#[test]
fn shell_and_network_are_removed_and_an_existing_file_is_kept_without_force() {
    let ws = Workspace::new();
    let risky = "name: risky\ngoal: g\ninstructions: i\ntools:\n  shell: { exec: [cargo] }\n  net: { allow: ['https://docs.rs/*'] }\n";
    let replay = script(&ws, &[risky]);
    ws.codex()
        .args(["agent-create", "x", "--dry-run", "--save", "--replay"])
        .arg(&replay)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "removed the shell permission (exec: cargo)",
        ))
        .stderr(predicate::str::contains("removed the network permission"));
    let saved = std::fs::read_to_string(ws.path(".codex/agents/risky.yaml")).unwrap();
    assert!(
        !saved.contains("cargo") && !saved.contains("docs.rs"),
        "{saved}"
    );

    ws.codex()
        .args(["agent-create", "x", "--dry-run", "--save", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("add --force"));
    ws.codex()
        .args([
            "agent-create",
            "x",
            "--dry-run",
            "--save",
            "--force",
            "--replay",
        ])
        .arg(&replay)
        .assert()
        .success();
}

/// A script whose one generation turn answers VALID and reports 580 tokens.
fn counted_script(ws: &Workspace) -> std::path::PathBuf {
    ws.replay(&format!(
        "agents:\n  agent-create:\n    turns:\n      - text: |\n{}\n        usage: {{input_tokens: 500, output_tokens: 80}}\n  default:\n    turns:\n      - text: \"The crate answers 42.\"\n        usage: {{input_tokens: 100, output_tokens: 10}}\n",
        indent(VALID)
    ))
}

#[test]
fn the_generation_calls_count_against_the_budget() {
    let ws = Workspace::new();
    let replay = counted_script(&ws);
    ws.codex()
        .args(["agent-create", "documents", "--budget", "6000", "--save"])
        .arg("--replay")
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success()
        .stderr(predicate::str::contains("definition written (580 tokens)"))
        .stdout(predicate::str::contains("Tokens: 110 / 5,420"));
    let results = ws.results();
    assert_eq!(results["total_budget"], 5420);
    // The saved definition keeps the budget asked for; only this run had less.
    let saved = std::fs::read_to_string(ws.path(".codex/agents/doc-writer.yaml")).unwrap();
    assert!(saved.contains("budget: 6000"), "{saved}");
}

#[test]
fn a_budget_too_small_to_write_a_definition_is_refused_before_the_model_is_called() {
    let ws = Workspace::new();
    let replay = counted_script(&ws);
    ws.codex()
        .args(["agent-create", "documents", "--budget", "800", "--save"])
        .arg("--replay")
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the budget has 800 tokens left, too few to write a definition",
        ))
        .stderr(predicate::str::contains("definition written").not());
    assert!(!ws.path(".codex/agents").exists());
    assert!(!ws.has_runs());
}

#[test]
fn a_created_agent_may_delegate_to_the_workspaces_agents() {
    let ws = Workspace::new();
    ws.agent(
        "helper",
        "name: helper\ngoal: help\ninstructions: i\ntools:\n  fs: { read: true }\nbudget: 4000\nmax_output_tokens: 200\n",
    );
    let lead = r#"
        name: mini-lead
        goal: Get help
        instructions: Delegate to the helper.
        tools:
          fs: { read: true }
          delegate: { agents: [helper] }
        budget: 9000
        max_output_tokens: 200
"#;
    let answer: String = indent(lead);
    let replay = ws.replay(&format!(
        "agents:\n  agent-create:\n    turns:\n      - text: |\n{answer}\n\
         \x20 mini-lead:\n    turns:\n      - tool_calls: [{{name: delegate, arguments: {{agent: helper, goal: look, budget: 3000}}}}]\n\
         \x20     - text: The helper looked.\n\
         \x20 helper:\n    turns:\n      - text: Looked.\n        usage: {{input_tokens: 100, output_tokens: 10}}\n"
    ));
    ws.codex()
        .args(["agent-create", "a lead that asks the helper", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    let results = read_json(&ws.results_path());
    let child = &results["agents"][1];
    assert_eq!(child["agent"], "mini-lead/helper#1");
    assert_eq!(
        (&child["status"], &child["final_message"]),
        (&"completed".into(), &"Looked.".into())
    );
}
