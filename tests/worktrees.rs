//! Isolated writers, through the binary: each writing agent of a run in a git repository
//! works in its own worktree; its change is reviewed (`codex changes`) and merged into the
//! user's tree (`codex apply`, three-way, all or nothing per agent).

mod common;
#[path = "support/fake_server.rs"]
mod fake_server;

use std::path::Path;
use std::process::Command as Std;

use common::{agent_yaml, Workspace};
use fake_server::{script, FakeServer, Received, Reply};
use serde_json::{json, Value};

const NOTES: &str = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";

/// `git -C ws args…`, which must succeed.
fn git(ws: &Workspace, args: &[&str]) {
    let status = Std::new("git")
        .arg("-C")
        .arg(ws.root())
        .args(["-c", "user.name=user", "-c", "user.email=user@example.com"])
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

/// A git repository with `notes.txt` committed and two writing agents, `a` and `b`.
fn repository() -> Workspace {
    let ws = Workspace::new();
    ws.file("notes.txt", NOTES);
    ws.file(".gitignore", ".codex/runs/\nresults.json\nreplay.yaml\n");
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-qm", "init"]);
    ws.agent("a", &agent_yaml("a", "true", 20_000));
    ws.agent("b", &agent_yaml("b", "true", 20_000));
    ws
}

/// NOTES with line `n` (1-based) replaced by `text`.
fn notes_with(edits: &[(usize, &str)]) -> String {
    let mut lines: Vec<String> = NOTES.lines().map(str::to_owned).collect();
    for (n, text) in edits {
        lines[n - 1] = (*text).to_owned();
    }
    lines.join("\n") + "\n"
}

/// A replay turn writing `content` to `path`, then a final answer.
fn writes(path: &str, content: &str) -> Value {
    json!({"turns": [
        {"text": "writing", "tool_calls": [
            {"name": "write_file", "arguments": {"path": path, "content": content}}]},
        {"text": "done"}
    ]})
}

/// Runs `a` and `b` in parallel with their scripts; the run must complete.
fn run_both(ws: &Workspace, a: Value, b: Value) {
    let script = json!({"agents": {"a": a, "b": b}});
    let replay = ws.replay(&serde_yaml_string(&script));
    ws.codex()
        .args([
            "delegate-parallel",
            "a,b",
            "--goals",
            "edit,edit",
            "--replay",
        ])
        .arg(replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
}

/// JSON is YAML.
fn serde_yaml_string(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn agents_write_in_their_worktrees_and_the_users_tree_is_untouched_until_applied() {
    let ws = repository();
    run_both(
        &ws,
        writes("notes.txt", &notes_with(&[(1, "one")])),
        writes("new.txt", "created\n"),
    );
    assert_eq!(read(&ws.path("notes.txt")), NOTES);
    assert!(!ws.path("new.txt").exists());
    let results = ws.results();
    let a = &common::agent_report(&results, "a")["change"];
    assert_eq!(
        a["files"],
        json!([{"path": "notes.txt", "added": 1, "removed": 1}])
    );
    let b = &common::agent_report(&results, "b")["change"];
    assert_eq!(b["files"][0]["path"], "new.txt");
    let patch = read(&ws.run_dir().join("changes/b.patch"));
    assert!(patch.contains("+created"), "{patch}");
}

#[test]
fn the_audit_log_records_each_worktree_and_the_hash_of_each_change() {
    let ws = repository();
    run_both(
        &ws,
        writes("notes.txt", &notes_with(&[(1, "one")])),
        writes("new.txt", "created\n"),
    );
    let audit = ws.audit();
    let worktree = common::of_type(&audit, "worktree");
    let created: Vec<&str> = worktree
        .iter()
        .filter(|r| r["action"] == "created")
        .map(|r| r["agent"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["a", "b"]);
    let first_agent = common::of_type(&audit, "agent_started")[0]["seq"]
        .as_u64()
        .unwrap();
    assert!(worktree
        .iter()
        .filter(|r| r["action"] == "created")
        .all(|r| r["seq"].as_u64() < Some(first_agent)));
    let results = ws.results();
    for agent in ["a", "b"] {
        let change = &common::agent_report(&results, agent)["change"];
        let recorded = worktree
            .iter()
            .find(|r| r["action"] == "change_recorded" && r["agent"] == agent)
            .unwrap_or_else(|| panic!("no change_recorded for {agent}"));
        assert_eq!(recorded["sha256"], change["sha256"]);
        assert_eq!(recorded["commit"], change["result"]);
    }
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .success();
}

#[test]
fn two_agents_editing_one_file_in_different_places_both_apply() {
    let ws = repository();
    run_both(
        &ws,
        writes("notes.txt", &notes_with(&[(1, "one")])),
        writes("notes.txt", &notes_with(&[(10, "ten")])),
    );
    let out = ws
        .codex()
        .args(["changes", "last", "--stat"])
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&out.stdout);
    assert!(stat.contains("=== a") && stat.contains("=== b"), "{stat}");
    assert!(stat.contains("notes.txt | +1 -1"), "{stat}");
    ws.codex()
        .args(["apply", "last", "a", "b"])
        .assert()
        .success();
    assert_eq!(
        read(&ws.path("notes.txt")),
        notes_with(&[(1, "one"), (10, "ten")])
    );
}

#[test]
fn the_second_of_two_agents_editing_the_same_lines_conflicts_and_leaves_the_tree_unchanged() {
    let ws = repository();
    run_both(
        &ws,
        writes("notes.txt", &notes_with(&[(5, "five by a")])),
        writes("notes.txt", &notes_with(&[(5, "five by b")])),
    );
    ws.codex().args(["apply", "last", "a"]).assert().success();
    let after_a = read(&ws.path("notes.txt"));
    assert_eq!(after_a, notes_with(&[(5, "five by a")]));
    let out = ws.codex().args(["apply", "last", "b"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(
        text.contains("Conflict: b's change was not applied"),
        "{text}"
    );
    assert!(
        text.contains("notes.txt: b's change overlaps the applied change of a"),
        "{text}"
    );
    assert_eq!(read(&ws.path("notes.txt")), after_a);
}

#[test]
fn the_users_uncommitted_work_is_seen_by_the_agents_and_never_overwritten() {
    let ws = repository();
    // Uncommitted: an edit of a tracked file and an untracked file.
    ws.file("notes.txt", &notes_with(&[(3, "three by user")]));
    ws.file("draft.txt", "user draft\n");
    run_both(
        &ws,
        writes(
            "notes.txt",
            &notes_with(&[(3, "three by user"), (9, "nine")]),
        ),
        writes("other.txt", "b\n"),
    );
    let worktree = ws.run_dir().join("worktrees/a");
    assert_eq!(read(&worktree.join("draft.txt")), "user draft\n");
    // a's change is only its own line: the user's edit was its base.
    let results = ws.results();
    let change = &common::agent_report(&results, "a")["change"];
    assert_eq!(
        change["files"],
        json!([{"path": "notes.txt", "added": 1, "removed": 1}])
    );
    // The user edits on while the change waits; applying keeps both.
    ws.file(
        "notes.txt",
        &notes_with(&[(1, "one by user"), (3, "three by user")]),
    );
    ws.codex().args(["apply", "last", "a"]).assert().success();
    assert_eq!(
        read(&ws.path("notes.txt")),
        notes_with(&[(1, "one by user"), (3, "three by user"), (9, "nine")])
    );
    assert_eq!(read(&ws.path("draft.txt")), "user draft\n");
}

#[test]
fn isolation_shared_writes_into_the_workspace_and_records_no_change() {
    let ws = repository();
    let script = json!({"agents": {"a": writes("notes.txt", "shared\n")}});
    let replay = ws.replay(&serde_yaml_string(&script));
    ws.codex()
        .args([
            "delegate",
            "a",
            "--goal",
            "edit",
            "--isolation",
            "shared",
            "--replay",
        ])
        .arg(replay)
        .assert()
        .success();
    assert_eq!(read(&ws.path("notes.txt")), "shared\n");
    assert!(!ws.run_dir().join("worktrees").exists());
}

#[test]
fn a_worktree_outside_a_git_repository_is_refused_before_the_run() {
    let ws = Workspace::new();
    ws.agent("a", &agent_yaml("a", "true", 20_000));
    let script = json!({"agents": {"a": writes("x.txt", "x\n")}});
    let replay = ws.replay(&serde_yaml_string(&script));
    let out = ws
        .codex()
        .args([
            "delegate",
            "a",
            "--goal",
            "edit",
            "--isolation",
            "worktree",
            "--replay",
        ])
        .arg(replay)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("git init"), "{err}");
    assert!(!ws.path("x.txt").exists());
}

/// `lead`, a writer that may delegate to `a` and `b`.
fn with_lead(ws: &Workspace) {
    ws.agent(
        "lead",
        "name: lead\n\
         goal: Split the work\n\
         instructions: Delegate.\n\
         tools:\n  fs:\n    read: true\n    write: true\n  delegate:\n    agents: [a, b]\n\
         budget: 60000\n\
         max_output_tokens: 200\n",
    );
}

#[test]
fn a_delegated_child_starts_from_its_parents_worktree_and_its_change_arrives_in_its_parents() {
    let ws = repository();
    with_lead(&ws);
    // lead edits line 1 (uncommitted in its worktree), then delegates; the child's
    // content keeps lead's line 1 (it saw it) and adds line 10.
    let script = json!({"agents": {
        "lead": {"turns": [
            {"text": "editing", "tool_calls": [{"name": "write_file", "arguments":
                {"path": "notes.txt", "content": notes_with(&[(1, "one by lead")])}}]},
            {"text": "delegating", "tool_calls": [
                {"name": "delegate", "arguments": {"agent": "a", "goal": "edit"}}]},
            {"text": "done"}
        ]},
        "lead/a#1": writes("notes.txt", &notes_with(&[(1, "one by lead"), (10, "ten by child")])),
    }});
    let replay = ws.replay(&serde_yaml_string(&script));
    ws.codex()
        .args(["delegate", "lead", "--goal", "split", "--replay"])
        .arg(replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    assert_eq!(read(&ws.path("notes.txt")), NOTES);
    let run = ws.run_dir();
    // The child's own change is its line only: its base was lead's worktree as it was.
    let child = common::read_json(&run.join("changes/lead+a#1.json"));
    assert_eq!(
        child["files"],
        json!([{"path": "notes.txt", "added": 1, "removed": 1}])
    );
    assert_eq!(child["into_parent"]["outcome"], "merged");
    assert!(!run.join("worktrees/lead+a#1").exists(), "merged: removed");
    let results = ws.results();
    let change = &common::agent_report(&results, "lead")["change"];
    assert_eq!(
        change["files"],
        json!([{"path": "notes.txt", "added": 2, "removed": 2}])
    );
    let worktree = common::of_type(&ws.audit(), "worktree")
        .into_iter()
        .filter(|r| r["agent"] == "lead/a#1")
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(worktree, ["created", "change_recorded"]);
    ws.codex()
        .args(["apply", "last", "lead"])
        .assert()
        .success();
    assert_eq!(
        read(&ws.path("notes.txt")),
        notes_with(&[(1, "one by lead"), (10, "ten by child")])
    );
}

/// The first user message of a request: the task of the agent asking.
fn task_of(req: &Received) -> String {
    req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The tool results a request carries, parsed.
fn tool_results(req: &Received) -> Vec<Value> {
    req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| serde_json::from_str(m["content"].as_str()?).ok())
        .collect()
}

/// `lead` delegates to `a` and `b` at once; each child rewrites line 5 of notes.txt, then
/// reads it again until the server has seen both children ask (each has its worktree by
/// then), and only then answers: both start from lead's worktree as it was, and the
/// second to finish conflicts with the first, whichever it is (events, not timing).
fn rival_children() -> impl Fn(&Received, usize) -> Reply + Send + Sync + 'static {
    let started = std::sync::Mutex::new(std::collections::BTreeSet::new());
    move |req: &Received, _| {
        let task = task_of(req);
        let answered = req.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "tool");
        let events = if task.contains("LEAD-TASK") {
            if answered {
                script::chat(&["done"], &[], Some((100, 5)))
            } else {
                let a = json!({"agent": "a", "goal": "CHILD-A"}).to_string();
                let b = json!({"agent": "b", "goal": "CHILD-B"}).to_string();
                script::chat(
                    &["delegating"],
                    &[("d1", "delegate", &[&a]), ("d2", "delegate", &[&b])],
                    Some((100, 10)),
                )
            }
        } else {
            let who = if task.contains("CHILD-A") { "a" } else { "b" };
            let both = {
                let mut started = started.lock().unwrap();
                started.insert(who);
                started.len() == 2
            };
            if !answered {
                let content = notes_with(&[(5, &format!("five by {who}"))]);
                let args = json!({"path": "notes.txt", "content": content}).to_string();
                script::chat(
                    &["writing"],
                    &[("w", "write_file", &[&args])],
                    Some((100, 10)),
                )
            } else if both {
                script::chat(&["done"], &[], Some((100, 5)))
            } else {
                let args = json!({"path": "notes.txt"}).to_string();
                script::chat(
                    &["waiting"],
                    &[("r", "read_file", &[&args])],
                    Some((100, 10)),
                )
            }
        };
        Reply::sse(events)
    }
}

#[test]
fn a_child_whose_change_conflicts_with_its_parents_worktree_is_reported_to_the_parent() {
    let ws = repository();
    ws.agent(
        "lead",
        "name: lead\ngoal: g\ntools:\n  fs:\n    read: true\n    write: true\n  delegate:\n    agents: [a, b]\n\
         budget: 2000000\nmax_output_tokens: 200\n",
    );
    // Room for the waiting turns of whichever child asks first.
    for name in ["a", "b"] {
        let yaml = format!(
            "name: {name}\ngoal: g\ntools:\n  fs:\n    read: true\n    write: true\n\
             budget: 900000\nmax_turns: 1000\nmax_output_tokens: 200\n"
        );
        ws.agent(name, &yaml);
    }
    let server = FakeServer::with(rival_children());
    ws.codex()
        .args(["delegate", "lead", "--goal", "LEAD-TASK", "-o"])
        .arg(ws.results_path())
        .env_remove("OPENAI_BASE_URL")
        .env("OPENAI_API_KEY", "sk-worktrees-test-0123456789")
        .args(["--provider", "openai-chat", "--model", "m"])
        .args([
            "-c",
            &format!("providers.openai-chat.base_url={}/v1", server.url),
        ])
        .assert()
        .success();
    // lead's last request carries both children's reports: one merged, one conflicted.
    let received = server.received();
    let last = received
        .iter()
        .rfind(|r| task_of(r).contains("LEAD-TASK"))
        .unwrap();
    let reports = tool_results(last);
    assert_eq!(reports.len(), 2, "{reports:#?}");
    let outcome = |o: &str| reports.iter().find(|r| r["worktree"]["outcome"] == o);
    let merged = outcome("merged").expect("one child merged");
    let conflicted = outcome("conflicted").expect("one child conflicted");
    assert_eq!(conflicted["worktree"]["files"], json!(["notes.txt"]));
    let winner = merged["agent"].as_str().unwrap();
    let loser = conflicted["agent"].as_str().unwrap();
    // Nothing of the loser reached lead's worktree; its patch is stored.
    let results = ws.results();
    let lead = &common::agent_report(&results, "lead")["change"];
    let lead_patch = read(&ws.path(lead["patch"].as_str().unwrap()));
    let who = |agent: &str| agent.split('/').nth(1).unwrap().chars().next().unwrap();
    assert!(
        lead_patch.contains(&format!("+five by {}", who(winner))),
        "{lead_patch}"
    );
    assert!(
        !lead_patch.contains(&format!("five by {}", who(loser))),
        "{lead_patch}"
    );
    let stored = ws
        .run_dir()
        .join(format!("changes/{}.patch", loser.replace('/', "+")));
    assert!(read(&stored).contains(&format!("+five by {}", who(loser))));
    assert_eq!(read(&ws.path("notes.txt")), NOTES);
}

#[test]
fn a_killed_run_is_resumed_in_the_worktrees_it_had() {
    let ws = repository();
    ws.file("fast.yaml", &serde_yaml_string(&slow_script(0)));
    let mut child = start_slow_run(&ws);
    child.kill().expect("SIGKILL codex");
    child.wait().unwrap();
    ws.codex()
        .args(["resume", "last", "--replay", "fast.yaml", "-o"])
        .arg(ws.results_path())
        .assert()
        .success();
    assert_eq!(read(&ws.path("notes.txt")), NOTES);
    let results = ws.results();
    let change = &common::agent_report(&results, "a")["change"];
    assert_eq!(
        change["files"],
        json!([{"path": "notes.txt", "added": 1, "removed": 1}])
    );
}

#[test]
fn discard_removes_the_worktrees_and_keeps_the_patches() {
    let ws = repository();
    run_both(
        &ws,
        writes("notes.txt", &notes_with(&[(1, "one")])),
        writes("new.txt", "created\n"),
    );
    let run = ws.run_dir();
    ws.codex().args(["discard", "last", "a"]).assert().success();
    assert!(!run.join("worktrees/a").exists());
    assert!(run.join("worktrees/b").exists());
    ws.codex().args(["discard", "last"]).assert().success();
    assert!(!run.join("worktrees/b").exists());
    assert!(run.join("changes/a.patch").is_file() && run.join("changes/b.patch").is_file());
    assert_eq!(read(&ws.path("notes.txt")), NOTES);
}

#[test]
fn changes_of_an_unknown_agent_name_the_agents_that_have_one() {
    let ws = repository();
    run_both(&ws, writes("x.txt", "x\n"), writes("y.txt", "y\n"));
    let out = ws.codex().args(["changes", "last", "c"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no change of agent `c`; it has changes of: a, b"),
        "{err}"
    );
}

#[test]
fn the_os_sandbox_of_an_isolated_agents_programs_is_rooted_in_its_worktree() {
    let ws = repository();
    ws.agent(
        "runner",
        "name: runner\ngoal: g\ntools:\n  fs:\n    read: true\n    write: true\n  shell:\n    exec: [sh]\n\
         budget: 50000\nmax_output_tokens: 200\n",
    );
    // From .codex/runs/<run>/worktrees/runner, five levels up is the user's tree.
    let script = "echo made > made.txt; echo escaped > ../../../../../notes.txt; true";
    let replay = json!({"agents": {"runner": {"turns": [
        {"text": "go", "tool_calls": [
            {"name": "shell", "arguments": {"argv": ["sh", "-c", script]}}]},
        {"text": "done"}
    ]}}});
    let replay = ws.replay(&serde_yaml_string(&replay));
    ws.codex()
        .args(["delegate", "runner", "--goal", "g", "--replay"])
        .arg(replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    assert_eq!(read(&ws.path("notes.txt")), NOTES, "the escape was refused");
    let results = ws.results();
    let change = &common::agent_report(&results, "runner")["change"];
    assert_eq!(
        change["files"],
        json!([{"path": "made.txt", "added": 1, "removed": 0}])
    );
}

/// Runs `a` and `b` with `--apply` and extra `args`; the command's output.
fn run_both_applying(ws: &Workspace, a: Value, b: Value, args: &[&str]) -> std::process::Output {
    let script = json!({"agents": {"a": a, "b": b}});
    let replay = ws.replay(&serde_yaml_string(&script));
    ws.codex()
        .args([
            "delegate-parallel",
            "a,b",
            "--goals",
            "edit,edit",
            "--apply",
        ])
        .args(args)
        .arg("--replay")
        .arg(replay)
        .output()
        .unwrap()
}

#[test]
fn apply_on_a_run_command_applies_every_completed_change_in_order() {
    let ws = repository();
    let out = run_both_applying(
        &ws,
        writes("notes.txt", &notes_with(&[(1, "one")])),
        writes("notes.txt", &notes_with(&[(10, "ten")])),
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("--apply: applying a, b in order"), "{text}");
    assert_eq!(
        read(&ws.path("notes.txt")),
        notes_with(&[(1, "one"), (10, "ten")])
    );
}

#[test]
fn apply_on_a_run_command_stops_at_the_first_conflict_and_says_how_to_continue() {
    let ws = repository();
    let out = run_both_applying(
        &ws,
        writes("notes.txt", &notes_with(&[(5, "five by a")])),
        writes("notes.txt", &notes_with(&[(5, "five by b")])),
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    let run = ws.run_dir();
    let id = run.file_name().unwrap().to_string_lossy();
    assert!(text.contains("Applied a: 1 file(s) written"), "{text}");
    assert!(
        text.contains("Conflict: b's change was not applied (your tree is unchanged by it)"),
        "{text}"
    );
    assert!(
        text.contains("notes.txt: b's change overlaps the applied change of a"),
        "{text}"
    );
    assert!(text.contains(&format!("`codex apply {id} b`")), "{text}");
    assert_eq!(read(&ws.path("notes.txt")), notes_with(&[(5, "five by a")]));
}

#[test]
fn apply_and_discard_are_in_the_changes_log_which_audit_verify_checks() {
    let ws = repository();
    run_both(
        &ws,
        writes("notes.txt", &notes_with(&[(1, "one")])),
        writes("new.txt", "created\n"),
    );
    ws.codex().args(["apply", "last", "a"]).assert().success();
    ws.codex().args(["discard", "last", "b"]).assert().success();
    let out = ws
        .codex()
        .args(["audit", "verify", "last"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Anchored: the log ends as it did"), "{text}");
    assert!(text.contains("Changes log: 2 line(s) verified"), "{text}");
    assert!(
        text.contains(" applied a\n") && text.contains(" discarded b\n"),
        "{text}"
    );
    // An apply turned into a conflict afterwards is detected.
    let log = ws.run_dir().join("changes.jsonl");
    let edited = read(&log).replacen("\"type\":\"applied\"", "\"type\":\"conflicted\"", 1);
    std::fs::write(&log, edited).unwrap();
    let out = ws
        .codex()
        .args(["audit", "verify", "last"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Changes log TAMPERED: line 1"), "{text}");
}

#[test]
fn a_changes_log_cut_after_its_last_anchor_is_reported_rewritten() {
    let ws = repository();
    run_both(&ws, writes("x.txt", "x\n"), writes("y.txt", "y\n"));
    ws.codex().args(["apply", "last", "a"]).assert().success();
    ws.codex().args(["discard", "last", "b"]).assert().success();
    let log = ws.run_dir().join("changes.jsonl");
    let first = read(&log).lines().next().unwrap().to_owned() + "\n";
    std::fs::write(&log, first).unwrap();
    let out = ws
        .codex()
        .args(["audit", "verify", "last"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Changes log REWRITTEN"), "{text}");
}

/// `a` writes notes.txt, then reads it after `delay` ms, then answers.
fn slow_script(delay: u64) -> Value {
    json!({"agents": {"a": {"turns": [
        {"text": "writing", "tool_calls": [{"name": "write_file", "arguments":
            {"path": "notes.txt", "content": notes_with(&[(1, "one")])}}]},
        {"text": "reading", "delay_ms": delay, "tool_calls": [
            {"name": "read_file", "arguments": {"path": "notes.txt"}}]},
        {"text": "done"}
    ]}}})
}

/// Starts `codex delegate a` whose second turn waits a minute, and returns once `a` has
/// written notes.txt in its worktree and checkpointed (the event to wait for).
fn start_slow_run(ws: &Workspace) -> std::process::Child {
    ws.file("slow.yaml", &serde_yaml_string(&slow_script(60_000)));
    let child = ws
        .codex_std()
        .args(["delegate", "a", "--goal", "edit", "--replay", "slow.yaml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("codex starts");
    let checkpoint = || {
        std::fs::read_dir(ws.path(".codex/runs"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read(e.ok()?.path().join("agents/a.json")).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| c["turn"].as_u64())
            .is_some_and(|t| t >= 1)
    };
    let waited = std::time::Instant::now();
    while !checkpoint() {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(60),
            "no checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// The worktrees git knows of in `ws`, as `git worktree list --porcelain` says.
fn git_worktrees(ws: &Workspace) -> String {
    let out = Std::new("git")
        .arg("-C")
        .arg(ws.root())
        .args(["worktree", "list", "--porcelain"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn gc_never_removes_a_running_runs_worktrees() {
    let ws = repository();
    let mut child = start_slow_run(&ws);
    let out = ws
        .codex()
        .args(["gc", "--older-than", "0s"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    child.kill().expect("SIGKILL codex");
    child.wait().unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("a: kept (its run is running)"), "{text}");
    assert!(ws.run_dir().join("worktrees/a").is_dir());
}

#[test]
fn a_killed_runs_worktrees_are_listed_by_changes_and_cleaned_by_gc() {
    let ws = repository();
    let mut child = start_slow_run(&ws);
    child.kill().expect("SIGKILL codex");
    child.wait().unwrap();
    let worktree = ws.run_dir().join("worktrees/a");
    assert!(worktree.is_dir());
    // Listed, with what the agent wrote before it was killed.
    let out = ws.codex().args(["changes", "last"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("=== a: ") && text.contains("+one"), "{text}");
    // Kept within the retention period, removed past it.
    let out = ws.codex().args(["gc"]).output().unwrap();
    assert!(out.status.success());
    assert!(worktree.is_dir(), "within the default retention");
    let out = ws
        .codex()
        .args(["gc", "--older-than", "0s", "--dry-run"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Would remove"));
    assert!(worktree.is_dir(), "a dry run removes nothing");
    let out = ws
        .codex()
        .args(["gc", "--older-than", "0s"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 worktree(s) removed"), "{text}");
    assert!(!worktree.exists());
    assert!(!git_worktrees(&ws).contains("worktrees/a"), "pruned");
    let patch = read(&ws.run_dir().join("changes/a.patch"));
    assert!(patch.contains("+one"), "the change is kept: {patch}");
    assert_eq!(read(&ws.path("notes.txt")), NOTES);
}

#[test]
fn worktrees_can_live_outside_the_workspace() {
    let ws = repository();
    let outside = tempfile::tempdir().unwrap();
    let setting = format!("worktrees.dir={}", outside.path().display());
    let script = json!({"agents": {
        "a": writes("notes.txt", &notes_with(&[(1, "one")])),
        "b": writes("new.txt", "created\n"),
    }});
    let replay = ws.replay(&serde_yaml_string(&script));
    let out = ws
        .codex()
        .args([
            "delegate-parallel",
            "a,b",
            "--goals",
            "edit,edit",
            "-c",
            &setting,
        ])
        .arg("--replay")
        .arg(replay)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let id = ws.run_dir().file_name().unwrap().to_owned();
    let place = outside.path().join(&id);
    assert!(
        text.contains(&format!("under {}/", place.display())),
        "{text}"
    );
    assert_eq!(read(&place.join("a/notes.txt")), notes_with(&[(1, "one")]));
    assert!(!ws.run_dir().join("worktrees/a").exists());
    assert!(git_worktrees(&ws).contains(&place.join("b").display().to_string()));
    assert_eq!(read(&ws.path("notes.txt")), NOTES);
    // Reviewed and applied from there, like any worktree (no -c needed afterwards).
    let out = ws
        .codex()
        .args(["changes", "last", "--stat"])
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&out.stdout);
    assert!(
        stat.contains("notes.txt | +1 -1") && stat.contains("new.txt | +1 -0"),
        "{stat}"
    );
    ws.codex()
        .args(["apply", "last", "a", "b"])
        .assert()
        .success();
    assert_eq!(read(&ws.path("notes.txt")), notes_with(&[(1, "one")]));
    assert_eq!(read(&ws.path("new.txt")), "created\n");
    assert!(!place.join("a").exists() && !place.join("b").exists());
}

#[test]
fn the_readme_demos_review_step_works_as_written() {
    let ws = Workspace::empty();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    common::copy_tree(
        &demo,
        &ws.root(),
        &["artifacts", ".codex", "tests/parser_tests.rs", "target"],
    );
    git(&ws, &["init", "-q"]);
    ws.codex()
        .args(["delegate-parallel", "code-reviewer,test-gen"])
        .args([
            "--goals",
            "Review src/ for bugs,Write tests for src/parser.rs",
        ])
        .args(["--budgets", "6000,6000", "--replay"])
        .arg(ws.path("replay.yaml"))
        .assert()
        .success();
    assert!(!ws.path("artifacts/review.md").exists(), "not before apply");
    let out = ws
        .codex()
        .args(["changes", "last", "--stat"])
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&out.stdout);
    assert!(stat.contains("artifacts/review.md | +15 -0"), "{stat}");
    assert!(stat.contains("tests/parser_tests.rs | +38 -0"), "{stat}");
    let out = ws.codex().args(["changes", "last"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("+++ b/artifacts/review.md"));
    ws.codex()
        .args(["apply", "last", "test-gen", "code-reviewer"])
        .assert()
        .success();
    assert!(ws.path("artifacts/review.md").is_file());
    assert!(ws.path("tests/parser_tests.rs").is_file());
}

#[test]
fn a_child_codex_process_of_an_isolated_agent_works_in_its_own_worktree() {
    let ws = repository();
    ws.agent(
        "lead",
        "name: lead\ngoal: Split the work\ninstructions: Delegate.\n\
         tools:\n  fs:\n    read: true\n    write: true\n  delegate:\n    agents: [a]\n    via: mcp\n\
         budget: 60000\nmax_output_tokens: 200\n",
    );
    let script = json!({"agents": {
        "lead": {"turns": [
            {"text": "delegating", "tool_calls": [
                {"name": "delegate", "arguments": {"agent": "a", "goal": "edit", "budget": 20000}}]},
            {"text": "done"}
        ]},
        "a": writes("notes.txt", &notes_with(&[(2, "two by child")])),
    }});
    let replay = ws.replay(&serde_yaml_string(&script));
    ws.codex()
        .args(["delegate", "lead", "--goal", "split", "--replay"])
        .arg(replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    assert_eq!(read(&ws.path("notes.txt")), NOTES);
    let child = common::read_json(&ws.run_dir().join("changes/lead+a#1.json"));
    assert_eq!(child["into_parent"]["outcome"], "merged", "{child:#}");
    // Its own run's files (kept in its worktree) are not part of its change.
    assert_eq!(
        child["files"],
        json!([{"path": "notes.txt", "added": 1, "removed": 1}])
    );
    let results = ws.results();
    let change = &common::agent_report(&results, "lead")["change"];
    assert_eq!(
        change["files"],
        json!([{"path": "notes.txt", "added": 1, "removed": 1}])
    );
}

#[test]
fn apply_on_a_run_command_leaves_out_an_agent_that_did_not_complete() {
    let ws = repository();
    // b writes, then asks for a tool it does not have until its turns run out.
    ws.agent(
        "b",
        "name: b\ngoal: g\ntools:\n  fs:\n    read: true\n    write: true\nbudget: 20000\n\
         max_turns: 2\nmax_output_tokens: 200\n",
    );
    let stuck = json!({"turns": [
        {"text": "writing", "tool_calls": [{"name": "write_file", "arguments":
            {"path": "notes.txt", "content": notes_with(&[(10, "ten by b")])}}]},
        {"text": "again", "tool_calls": [{"name": "read_file", "arguments": {"path": "notes.txt"}}]},
        {"text": "again", "tool_calls": [{"name": "read_file", "arguments": {"path": "notes.txt"}}]}
    ]});
    let out = run_both_applying(
        &ws,
        writes("notes.txt", &notes_with(&[(1, "one by a")])),
        stuck,
        &["-o", &ws.results_path().display().to_string()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        common::agent_report(&ws.results(), "b")["status"],
        "max_turns"
    );
    assert_eq!(out.status.code(), Some(1), "b did not complete: {text}");
    assert!(
        text.contains("--apply: not applying b (did not complete"),
        "{text}"
    );
    assert!(text.contains("Applied a: 1 file(s) written"), "{text}");
    assert_eq!(read(&ws.path("notes.txt")), notes_with(&[(1, "one by a")]));
}
