//! Agents that work for long: a context cap that every request respects over hundreds of
//! turns, and restarts that continue from the last checkpoint instead of from the goal.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codex_actors::audit::AuditEvent;
use codex_actors::context::{ContextPolicy, Retention};
use codex_actors::model::{estimate_prompt_tokens, CallPurpose, ModelError, ModelRequest};
use codex_actors::spec::RestartFrom;
use codex_actors::{start, AgentPlan, AgentStatus, RunConfig, RunReport};
use common::{audit, call, of_type, plan, text, FnModel, Touch};

fn config(dir: &tempfile::TempDir, run: &str, agents: Vec<AgentPlan>) -> RunConfig {
    let mut c = RunConfig::new(run, dir.path(), agents);
    c.service_wait = Duration::from_secs(5);
    c
}

async fn run(dir: &tempfile::TempDir, id: &str, p: AgentPlan) -> RunReport {
    start(config(dir, id, vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap()
}

/// A turn of an agent that touches `out/<turn>` until turn `last`, then answers `done`.
fn touch_until(r: &ModelRequest, last: u32) -> Vec<codex_actors::ModelEvent> {
    if r.turn < last {
        let path = format!("out/{}", r.turn);
        call("touch", serde_json::json!({ "path": path }), 10, 10)
    } else {
        text("done", 10, 10)
    }
}

fn with_touch(mut p: AgentPlan) -> AgentPlan {
    p.spec.tools = vec!["touch".into()];
    p.spec.permissions.write = vec!["out/**".into()];
    p.tools = vec![Arc::new(Touch)];
    p
}

/// What a model saw of each request: (purpose, prompt estimate + output cap).
type Seen = Arc<Mutex<Vec<(CallPurpose, u64)>>>;

/// 200 turns, each a tool call whose result is about 1,500 tokens (the file the tool
/// "read"), under a 4,000-token context: no request exceeds the cap, and the agent
/// finishes with its final answer.
async fn long_task(
    retention: Retention,
) -> (RunReport, Vec<(CallPurpose, u64)>, tempfile::TempDir) {
    const TURNS: u32 = 200;
    let dir = tempfile::tempdir().unwrap();
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let model = FnModel::arc(0, move |r: &ModelRequest| {
        let prompt = estimate_prompt_tokens(&r.messages, &r.tools);
        log.lock()
            .unwrap()
            .push((r.purpose, prompt + r.max_output_tokens));
        let input = prompt;
        Ok(match (r.purpose, r.turn + 1 < TURNS) {
            (CallPurpose::Compaction, _) => text("note: touched files out/0.. so far", input, 40),
            (CallPurpose::Turn, true) => {
                let path = format!("out/{}-{}.txt", r.turn, "p".repeat(4_500));
                call("touch", serde_json::json!({ "path": path }), input, 60)
            }
            (CallPurpose::Turn, false) => text("done after 200 turns", input, 20),
        })
    });
    let mut p = with_touch(plan("long", u64::MAX / 4, model));
    p.spec.max_turns = TURNS + 1;
    p.spec.context = ContextPolicy {
        max_tokens: Some(4_000),
        retention,
    };
    let report = run(&dir, "long", p).await;
    let seen = seen.lock().unwrap().clone();
    (report, seen, dir)
}

#[tokio::test]
async fn an_agent_with_a_4000_token_context_finishes_200_turns_within_the_cap() {
    let (report, seen, dir) = long_task(Retention::Job).await;
    let agent = &report.agents[0];
    assert_eq!(agent.status, AgentStatus::Completed, "{agent:?}");
    assert_eq!(agent.final_message.as_deref(), Some("done after 200 turns"));
    let over: Vec<_> = seen.iter().filter(|(_, size)| *size > 4_000).collect();
    assert!(over.is_empty(), "requests over the cap: {over:?}");
    let compactions = seen
        .iter()
        .filter(|(p, _)| *p == CallPurpose::Compaction)
        .count();
    assert!(compactions > 0, "a 200-turn task needs compacting");
    let log = audit(dir.path(), "long");
    assert!(of_type(&log, "context_compacted").len() >= compactions);
    // Compaction calls are budgeted and audited like any other call.
    assert_eq!(of_type(&log, "model_call").len(), seen.len());
}

#[tokio::test]
async fn retention_turn_keeps_within_the_cap_without_compaction_calls() {
    let (report, seen, _dir) = long_task(Retention::Turn).await;
    assert_eq!(report.agents[0].status, AgentStatus::Completed);
    assert!(seen.iter().all(|(_, size)| *size <= 4_000));
    assert!(seen.iter().all(|(p, _)| *p == CallPurpose::Turn));
}

#[tokio::test]
async fn without_a_cap_the_conversation_is_never_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |r: &ModelRequest| Ok(touch_until(r, 5)));
    let report = run(&dir, "nocap", with_touch(plan("a", 1_000_000, model))).await;
    assert_eq!(report.agents[0].status, AgentStatus::Completed);
    assert!(of_type(&audit(dir.path(), "nocap"), "context_compacted").is_empty());
}

/// An agent whose first attempt fails at turn 5 (a transient model error), counting the
/// turns each attempt starts from.
async fn crash_at_turn_5(from: RestartFrom) -> (RunReport, Vec<(u32, u32)>) {
    let dir = tempfile::tempdir().unwrap();
    let starts: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
    let calls = Arc::new(AtomicU64::new(0));
    let (log, counter) = (Arc::clone(&starts), Arc::clone(&calls));
    let model = FnModel::arc(0, move |r: &ModelRequest| {
        counter.fetch_add(1, Ordering::SeqCst);
        let mut log = log.lock().unwrap();
        if !log.iter().any(|(attempt, _)| *attempt == r.attempt) {
            log.push((r.attempt, r.turn));
        }
        if r.attempt == 1 && r.turn == 5 {
            return Err(ModelError::Transient("connection reset".into()));
        }
        Ok(touch_until(r, 8))
    });
    let mut p = with_touch(plan("a", 1_000_000, model));
    p.spec.restart_from = from;
    let report = run(&dir, "crash", p).await;
    let starts = starts.lock().unwrap().clone();
    (report, starts)
}

#[tokio::test]
async fn a_restarted_attempt_continues_from_the_last_checkpoint() {
    let (report, starts) = crash_at_turn_5(RestartFrom::Checkpoint).await;
    let a = &report.agents[0];
    assert_eq!((a.status, a.restarts), (AgentStatus::Completed, 1), "{a:?}");
    assert_eq!(starts, vec![(1, 0), (2, 5)]);
}

#[tokio::test]
async fn restart_from_goal_starts_again_from_the_first_turn() {
    let (report, starts) = crash_at_turn_5(RestartFrom::Goal).await;
    assert_eq!(report.agents[0].status, AgentStatus::Completed);
    assert_eq!(starts, vec![(1, 0), (2, 0)]);
}

#[tokio::test]
async fn a_restarted_attempt_gets_the_conversation_of_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // (turn, messages) of the restarted attempt's first request.
    let first: Arc<Mutex<Option<(u32, usize)>>> = Arc::default();
    let log = Arc::clone(&first);
    let model = FnModel::arc(0, move |r: &ModelRequest| {
        if r.attempt == 2 {
            log.lock()
                .unwrap()
                .get_or_insert((r.turn, r.messages.len()));
        }
        if r.attempt == 1 && r.turn == 5 {
            return Err(ModelError::Transient("reset".into()));
        }
        Ok(touch_until(r, 6))
    });
    let report = run(&dir, "resume", with_touch(plan("a", 1_000_000, model))).await;
    assert_eq!(report.agents[0].status, AgentStatus::Completed);
    // The task message, then an assistant call and its tool result for each of 5 turns.
    assert_eq!(*first.lock().unwrap(), Some((5, 1 + 2 * 5)));
    let log = audit(dir.path(), "resume");
    let restarted = log
        .iter()
        .any(|r| matches!(&r.event, AuditEvent::AgentRestarted { attempt: 2, .. }));
    assert!(restarted);
}
