//! The audit log end to end: its hash chain survives AuditActor crashes, secrets never reach
//! it, and agents report their progress on the events channel.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use codex_actors::audit::{verify, Redactor};
use codex_actors::services::{service_name, ServiceKind};
use codex_actors::{start, RunConfig, RunEvent};
use common::*;
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};

fn config(dir: &tempfile::TempDir, run: &str, agents: Vec<codex_actors::AgentPlan>) -> RunConfig {
    let mut c = RunConfig::new(run, dir.path(), agents);
    c.service_wait = Duration::from_secs(5);
    c.redactor = Arc::new(Redactor::new(["env-secret-value-42".to_owned()]));
    c
}

fn log_bytes(dir: &tempfile::TempDir, run: &str) -> Vec<u8> {
    std::fs::read(dir.path().join(".codex/runs").join(run).join("audit.jsonl")).unwrap()
}

/// An agent that touches `artifacts/<path>` `turns` times, then answers `answer`.
fn toucher(
    name: &str,
    turns: u32,
    path: &'static str,
    answer: &'static str,
) -> codex_actors::AgentPlan {
    gated_toucher(name, turns, path, answer, Vec::new())
}

/// A [`toucher`] whose turns listed in `gates` (indexes) wait for a permit first.
fn gated_toucher(
    name: &str,
    turns: u32,
    path: &'static str,
    answer: &'static str,
    gates: Vec<(u32, Arc<Semaphore>)>,
) -> codex_actors::AgentPlan {
    let model = HookedModel::gated(gates, move |r| {
        if r.turn < turns {
            Ok(call(
                "touch",
                json!({"path": format!("artifacts/{path}")}),
                20,
                10,
            ))
        } else {
            Ok(text(answer, 20, 10))
        }
    });
    let mut p = plan(name, 10_000, model);
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    p.spec.permissions.write = vec!["artifacts/**".into()];
    p
}

#[tokio::test]
async fn the_chain_continues_across_audit_actor_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let run = "chain-kill";
    // Both agents wait in their third and fifth turns while the AuditActor is killed.
    let gates = [Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0))];
    let agent = |name, path| {
        let at = vec![(2, Arc::clone(&gates[0])), (4, Arc::clone(&gates[1]))];
        gated_toucher(name, 8, path, "done", at)
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut c = config(&dir, run, vec![agent("a", "t"), agent("b", "u")]);
    c.events = Some(tx);
    let handle = start(c).await.unwrap();
    for (turn, gate) in [(3, &gates[0]), (5, &gates[1])] {
        wait_for_turn(&mut rx, turn, 2).await;
        ractor::registry::where_is(service_name(run, ServiceKind::Audit))
            .expect("audit service registered")
            .kill();
        gate.add_permits(2);
    }
    let report = handle.wait().await.unwrap();
    assert_eq!(report.success_count, 2, "{report:?}");
    let v = verify(&log_bytes(&dir, run));
    assert!(v.intact(), "{v:?}");
    assert!(v.finished, "{v:?}");
    assert_eq!(v.torn_line, None);
}

#[tokio::test]
async fn secrets_in_tool_arguments_and_paths_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let run = "secret-args";
    let report = start(config(
        &dir,
        run,
        vec![toucher(
            "a",
            1,
            "env-secret-value-42-sk-abcdefghijkl",
            "Bearer abcdefghijklmnop",
        )],
    ))
    .await
    .unwrap()
    .wait()
    .await
    .unwrap();
    assert_eq!(report.success_count, 1, "{report:?}");
    let text = String::from_utf8(log_bytes(&dir, run)).unwrap();
    assert!(text.contains("[REDACTED]"), "{text}");
    assert!(!text.contains("env-secret-value-42"), "{text}");
    assert!(!text.contains("sk-abcdefghijkl"), "{text}");
    assert!(verify(text.as_bytes()).intact());
}

/// Whether any request of the model saw `needle` in a message.
fn watcher(seen: Arc<AtomicBool>, needle: &'static str, redact: bool) -> codex_actors::AgentPlan {
    let model = FnModel::arc(0, move |r| {
        if r.messages.iter().any(|m| m.content.contains(needle)) {
            seen.store(true, Ordering::SeqCst);
        }
        match r.turn {
            0 => Ok(call(
                "touch",
                json!({"path": format!("artifacts/{needle}")}),
                20,
                10,
            )),
            _ => Ok(text("done", 20, 10)),
        }
    });
    let mut p = plan("w", 10_000, model);
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    p.spec.permissions.write = vec!["artifacts/**".into()];
    p.spec.redact_secrets = redact;
    p
}

#[tokio::test]
async fn with_redact_secrets_the_model_never_sees_a_secret_in_tool_output() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(AtomicBool::new(false));
    let p = watcher(Arc::clone(&seen), "env-secret-value-42", true);
    start(config(&dir, "redact-on", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(!seen.load(Ordering::SeqCst), "the secret reached the model");
}

#[tokio::test]
async fn without_redact_secrets_tool_output_reaches_the_model_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(AtomicBool::new(false));
    let p = watcher(Arc::clone(&seen), "env-secret-value-42", false);
    start(config(&dir, "redact-off", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(seen.load(Ordering::SeqCst), "tool output was altered");
}

#[tokio::test]
async fn agents_report_model_calls_turns_and_tool_calls_as_events() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut c = config(&dir, "events", vec![toucher("a", 1, "t", "done")]);
    c.events = Some(tx);
    start(c).await.unwrap().wait().await.unwrap();
    let mut kinds = Vec::new();
    let mut used = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let RunEvent::TurnCompleted { tokens_used, .. } = &e {
            used.push(*tokens_used);
        }
        let tag = serde_json::to_value(&e).unwrap()["type"]
            .as_str()
            .unwrap()
            .to_owned();
        kinds.push(tag);
    }
    assert_eq!(
        kinds,
        [
            "agent_started",
            "model_call_started",
            "turn_completed",
            "tool_started",
            "tool_called",
            "model_call_started",
            "turn_completed",
            "agent_finished"
        ]
    );
    assert_eq!(
        used,
        [30, 60],
        "tokens used accumulate over the agent's turns"
    );
}

#[tokio::test]
async fn concurrent_records_are_all_acknowledged_on_disk_in_one_chain() {
    use codex_actors::audit::actor::{AuditActor, AuditArgs};
    use codex_actors::audit::AuditEvent;
    use codex_actors::services::Services;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let args = AuditArgs {
        path: path.clone(),
        run_id: "group".into(),
        redactor: Arc::new(Redactor::default()),
        first: None,
    };
    let (actor, join) = ractor::Actor::spawn(
        Some(service_name("group", ServiceKind::Audit)),
        AuditActor,
        args,
    )
    .await
    .unwrap();
    let services = Services::new("group", Duration::from_secs(5), Duration::from_secs(5));
    let tasks: Vec<_> = (0..40)
        .map(|agent| {
            let services = services.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for attempt in 0..25 {
                    let event = AuditEvent::AgentRestarted {
                        agent: format!("agent-{agent}"),
                        attempt,
                        delay_ms: 0,
                        reason: "test".into(),
                    };
                    seqs.push(services.record(event).await.unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    // Every acknowledged record is already on disk: read before stopping the actor.
    let v = verify(&std::fs::read(&path).unwrap());
    acknowledged.sort_unstable();
    assert_eq!(acknowledged, (1..=1000).collect::<Vec<u64>>());
    assert!(v.intact(), "{v:?}");
    assert_eq!(v.verified, 1000);
    actor.stop(None);
    join.await.unwrap();
}

#[tokio::test]
async fn records_made_together_are_consecutive_and_on_disk_when_acknowledged() {
    use codex_actors::audit::actor::{AuditActor, AuditArgs};
    use codex_actors::audit::{read_log, AuditEvent};
    use codex_actors::services::Services;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let args = AuditArgs {
        path: path.clone(),
        run_id: "together".into(),
        redactor: Arc::new(Redactor::default()),
        first: None,
    };
    let (actor, join) = ractor::Actor::spawn(
        Some(service_name("together", ServiceKind::Audit)),
        AuditActor,
        args,
    )
    .await
    .unwrap();
    let services = Services::new("together", Duration::from_secs(5), Duration::from_secs(5));
    let restart = |agent: &str, attempt| AuditEvent::AgentRestarted {
        agent: agent.into(),
        attempt,
        delay_ms: 0,
        reason: "test".into(),
    };
    // Another caller's records interleave with ours, but never inside a group.
    let other = {
        let services = services.clone();
        tokio::spawn(async move {
            for attempt in 0..50 {
                services.record(restart("other", attempt)).await.unwrap();
            }
        })
    };
    let mut lasts = Vec::new();
    for attempt in 0..50 {
        let group = vec![
            restart("grouped", attempt),
            restart("grouped", attempt + 1000),
        ];
        lasts.push(services.record_all(group).await.unwrap());
    }
    other.await.unwrap();
    // Acknowledged, so on disk: read before stopping the actor.
    let records = read_log(&path).unwrap();
    for last in lasts {
        let pair: Vec<_> = records
            .iter()
            .filter(|r| r.seq == last - 1 || r.seq == last)
            .map(|r| &r.event)
            .collect();
        assert!(
            matches!(
                pair[..],
                [AuditEvent::AgentRestarted { agent: a, attempt: x, .. }, AuditEvent::AgentRestarted { agent: b, attempt: y, .. }]
                    if a == "grouped" && b == "grouped" && *y == *x + 1000
            ),
            "{pair:?}"
        );
    }
    let v = verify(&std::fs::read(&path).unwrap());
    assert!(v.intact(), "{v:?}");
    assert_eq!(v.verified, 150);
    actor.stop(None);
    join.await.unwrap();
}
