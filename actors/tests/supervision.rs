//! The supervision tree end to end: parallel agents, restarts, escalation, budgets,
//! permissions, cancellation, and crashes of the service actors.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, Semaphore};

use codex_actors::audit::{AuditEvent, BudgetOp};
use codex_actors::model::ModelError;
use codex_actors::restart::RestartType;
use codex_actors::services::{service_name, ServiceKind};
use codex_actors::{start, AgentReport, AgentStatus, Permissions, RunConfig, RunEvent};
use common::*;
use serde_json::json;

fn config(dir: &tempfile::TempDir, run: &str, agents: Vec<codex_actors::AgentPlan>) -> RunConfig {
    let mut c = RunConfig::new(run, dir.path(), agents);
    c.service_wait = Duration::from_secs(5);
    c
}

fn kill_service(run: &str, kind: ServiceKind) {
    ractor::registry::where_is(service_name(run, kind))
        .expect("service registered")
        .kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_run_in_parallel_and_every_model_call_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    // Each agent's call waits until both are in a call at once: agents that ran one after
    // the other would never get past it (the timeout turns that hang into a failure).
    let both = Arc::new(tokio::sync::Barrier::new(2));
    let meeting = || {
        let both = Arc::clone(&both);
        HookedModel::arc(
            move |_| {
                let both = Arc::clone(&both);
                async move {
                    both.wait().await;
                }
                .boxed()
            },
            |r| match r.turn {
                0 => Ok(text("thinking", 10, 10)),
                _ => unreachable!(),
            },
        )
    };
    let agents = vec![plan("a", 1000, meeting()), plan("b", 1000, meeting())];
    let run = async {
        start(config(&dir, "par", agents))
            .await
            .unwrap()
            .wait()
            .await
            .unwrap()
    };
    let report = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the agents never were in a model call at the same time");
    assert_eq!(report.success_count, 2);
    let log = audit(dir.path(), "par");
    assert_eq!(of_type(&log, "model_call").len(), 2);
    let seqs: Vec<u64> = log.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>());
    assert_eq!(of_type(&log, "run_finished").len(), 1);
}

#[tokio::test]
async fn an_unavailable_agent_fails_at_once_and_its_siblings_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = || FnModel::arc(0, |_| Ok(text("done", 5, 5)));
    let mut blocked = plan("blocked", 1000, model());
    blocked.unavailable = Some("its MCP server did not start".into());
    let agents = vec![blocked, plan("free", 1000, model())];
    let report = start(config(&dir, "unavailable", agents))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let blocked = &report.agents[0];
    assert_eq!(blocked.status, AgentStatus::Failed);
    assert_eq!(
        blocked.error.as_deref(),
        Some("its MCP server did not start")
    );
    assert_eq!(blocked.tokens_used, 0);
    assert_eq!(report.agents[1].status, AgentStatus::Completed);
    let log = audit(dir.path(), "unavailable");
    assert_eq!(
        of_type(&log, "model_call").len(),
        1,
        "only `free` called its model"
    );
}

#[tokio::test]
async fn an_agent_that_panics_once_is_restarted_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |r| {
        if r.attempt == 1 {
            panic!("scripted panic");
        }
        Ok(text("done", 5, 5))
    });
    let report = start(config(&dir, "panic-once", vec![plan("a", 1000, model)]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let a = &report.agents[0];
    assert_eq!(a.status, AgentStatus::Completed, "{a:?}");
    assert_eq!(a.restarts, 1);
    let log = audit(dir.path(), "panic-once");
    let restarts = of_type(&log, "agent_restarted");
    assert_eq!(restarts.len(), 1);
    assert!(format!("{:?}", restarts[0].event).contains("scripted panic"));
}

#[tokio::test]
async fn an_agent_that_keeps_panicking_fails_while_its_sibling_completes() {
    let dir = tempfile::tempdir().unwrap();
    let crashing = FnModel::arc(0, |_| panic!("always"));
    let steady = FnModel::arc(50, |_| Ok(text("fine", 5, 5)));
    let agents = vec![plan("crashy", 1000, crashing), plan("steady", 1000, steady)];
    let report = start(config(&dir, "escalate", agents))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let crashy = &report.agents[0];
    assert_eq!(crashy.status, AgentStatus::Failed);
    assert_eq!(crashy.restarts, 3);
    assert!(
        crashy.error.as_deref().unwrap().contains("always"),
        "{crashy:?}"
    );
    assert_eq!(report.agents[1].status, AgentStatus::Completed);
    assert_eq!(report.agents[1].restarts, 0);
}

#[tokio::test]
async fn a_fatal_model_error_fails_the_agent_without_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |_| Err(ModelError::Fatal("bad key".into())));
    let report = start(config(&dir, "fatal", vec![plan("a", 1000, model)]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.agents[0].status, AgentStatus::Failed);
    assert_eq!(report.agents[0].restarts, 0);
    assert!(report.agents[0]
        .error
        .as_deref()
        .unwrap()
        .contains("bad key"));
}

#[tokio::test]
async fn an_agent_stops_at_its_budget_without_exceeding_it() {
    let dir = tempfile::tempdir().unwrap();
    // Every turn asks for a tool and reports its full grant as used.
    let model = FnModel::arc(0, |r| {
        let used = r.max_output_tokens;
        Ok(call("touch", json!({"path": "x"}), 0, used))
    });
    let mut p = plan("spender", 700, model);
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    p.spec.max_turns = 100;
    let report = start(config(&dir, "budget", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let a = &report.agents[0];
    assert_eq!(a.status, AgentStatus::BudgetExceeded, "{a:?}");
    assert!(a.tokens_used <= 700, "{a:?}");
    assert!(report.total_tokens <= report.total_budget);
    let log = audit(dir.path(), "budget");
    let denied = log.iter().any(|r| {
        matches!(
            &r.event,
            AuditEvent::BudgetDecision {
                denied: Some(_),
                ..
            }
        )
    });
    let wrapped = a.error.as_deref().unwrap_or_default().contains("wrap-up");
    assert!(denied || wrapped, "{a:?}");
}

#[tokio::test]
async fn usage_beyond_the_grant_is_recorded_as_overrun_and_stops_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |r| {
        Ok(call(
            "touch",
            json!({"path": "x"}),
            0,
            r.max_output_tokens * 10,
        ))
    });
    let mut p = plan("liar", 5000, model);
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    let report = start(config(&dir, "overrun", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let a = &report.agents[0];
    assert_eq!(a.status, AgentStatus::BudgetExceeded);
    assert!(a.error.as_deref().unwrap().contains("overrun"), "{a:?}");
    let log = audit(dir.path(), "overrun");
    assert!(log
        .iter()
        .any(|r| matches!(&r.event, AuditEvent::BudgetDecision { overrun, .. } if *overrun > 0)));
}

#[tokio::test]
async fn a_write_outside_the_permissions_is_denied_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |r| match r.turn {
        0 => Ok(call("touch", json!({"path": "src/evil.rs"}), 10, 10)),
        _ => {
            let last = r.messages.last().unwrap();
            Ok(text(&format!("tool said: {}", last.content), 10, 10))
        }
    });
    let mut p = plan("writer", 2000, model);
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    p.spec.permissions = Permissions {
        read: vec!["**".into()],
        write: vec!["artifacts/**".into()],
        ..Permissions::default()
    };
    let report = start(config(&dir, "deny", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let a = &report.agents[0];
    assert_eq!(a.status, AgentStatus::Completed);
    assert!(a
        .final_message
        .as_deref()
        .unwrap()
        .contains("permission denied"));
    assert!(!dir.path().join("src/evil.rs").exists());
    assert!(a.artifacts.is_empty());
    let log = audit(dir.path(), "deny");
    let decisions = of_type(&log, "policy_decision");
    assert_eq!(decisions.len(), 1);
    assert!(matches!(
        &decisions[0].event,
        AuditEvent::PolicyDecision { allowed: false, .. }
    ));
    assert!(
        matches!(&of_type(&log, "tool_call")[0].event, AuditEvent::ToolCall { outcome, .. } if *outcome == codex_actors::ToolOutcome::Denied)
    );
}

#[tokio::test]
async fn an_allowed_write_is_an_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |r| match r.turn {
        0 => Ok(call("touch", json!({"path": "artifacts/out.md"}), 10, 10)),
        _ => Ok(text("wrote it", 10, 10)),
    });
    let mut p = plan("writer", 2000, model);
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    p.spec.permissions.write = vec!["artifacts/**".into()];
    let report = start(config(&dir, "allow", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.agents[0].artifacts, ["artifacts/out.md"]);
    assert!(dir.path().join("artifacts/out.md").exists());
}

/// Ten turns, 30 tokens a turn; turns 4 and 7 wait at `gates` (so a service can be
/// killed while every agent is known to be mid-run).
fn long_runner(name: &str, gates: &[Arc<Semaphore>; 2]) -> codex_actors::AgentPlan {
    let gates = vec![(3, Arc::clone(&gates[0])), (6, Arc::clone(&gates[1]))];
    let model = HookedModel::gated(gates, |r| match r.turn {
        0..=8 => Ok(call("touch", json!({"path": "artifacts/t"}), 20, 10)),
        _ => Ok(text("done", 20, 10)),
    });
    let mut p = plan(name, 10_000, model);
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    p.spec.permissions.write = vec!["artifacts/**".into()];
    p
}

/// Runs two long runners and kills service `kind` twice: once while both wait in their
/// fourth turn, and again once both reached their seventh (so the restarted service has
/// served them in between). No sleeps: the test waits for the agents' events.
async fn run_with_service_killed(
    run: &str,
    kind: ServiceKind,
) -> (tempfile::TempDir, codex_actors::RunReport) {
    let dir = tempfile::tempdir().unwrap();
    let gates = [Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0))];
    let agents = vec![long_runner("a", &gates), long_runner("b", &gates)];
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut c = config(&dir, run, agents);
    c.events = Some(tx);
    let handle = start(c).await.unwrap();
    wait_for_turn(&mut rx, 4, 2).await;
    kill_service(run, kind);
    gates[0].add_permits(2);
    wait_for_turn(&mut rx, 7, 2).await;
    kill_service(run, kind);
    gates[1].add_permits(2);
    let report = handle.wait().await.unwrap();
    (dir, report)
}

#[tokio::test]
async fn a_budget_actor_crash_loses_no_committed_usage() {
    let (dir, report) = run_with_service_killed("kill-budget", ServiceKind::Budget).await;
    assert_eq!(report.success_count, 2, "{report:?}");
    // 10 turns × 30 tokens each, for each agent: all of it committed, none lost.
    for a in &report.agents {
        assert_eq!(a.tokens_used, 300, "{a:?}");
    }
    assert_eq!(report.total_tokens, 600);
    let log = audit(dir.path(), "kill-budget");
    assert_eq!(of_type(&log, "service_restarted").len(), 2);
    assert_eq!(of_type(&log, "model_call").len(), 20);
}

#[tokio::test]
async fn an_audit_actor_crash_loses_no_written_event() {
    let (dir, report) = run_with_service_killed("kill-audit", ServiceKind::Audit).await;
    assert_eq!(report.success_count, 2, "{report:?}");
    let log = audit(dir.path(), "kill-audit");
    let seqs: Vec<u64> = log.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "sequence has gaps"
    );
    assert!(of_type(&log, "model_call").len() >= 20);
    assert_eq!(of_type(&log, "agent_finished").len(), 2);
}

#[tokio::test]
async fn a_policy_actor_crash_never_lets_a_tool_run_unchecked() {
    let (dir, report) = run_with_service_killed("kill-policy", ServiceKind::Policy).await;
    assert_eq!(report.success_count, 2, "{report:?}");
    let log = audit(dir.path(), "kill-policy");
    let tools = of_type(&log, "tool_call").len();
    let decisions = of_type(&log, "policy_decision").len();
    assert!(tools >= 18);
    assert!(
        decisions >= tools,
        "{decisions} decisions for {tools} tool calls"
    );
}

#[tokio::test]
async fn cancelling_a_run_stops_every_agent_and_still_reports() {
    let dir = tempfile::tempdir().unwrap();
    // Calls that never return: only the cancellation can end this run.
    let never = Arc::new(Semaphore::new(0));
    let forever = || HookedModel::gated(vec![(0, Arc::clone(&never))], |_| Ok(text("never", 1, 1)));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut c = config(
        &dir,
        "cancel",
        vec![plan("a", 1000, forever()), plan("b", 1000, forever())],
    );
    c.events = Some(tx);
    let handle = start(c).await.unwrap();
    // Both hold a reservation for their call in flight.
    wait_for_turn(&mut rx, 1, 2).await;
    handle.canceller().cancel();
    let report = handle.wait().await.unwrap();
    assert!(report
        .agents
        .iter()
        .all(|a| a.status == AgentStatus::Cancelled));
    let log = audit(dir.path(), "cancel");
    assert_eq!(of_type(&log, "agent_finished").len(), 2);
    let charged: Vec<u64> = log
        .iter()
        .filter_map(|r| match &r.event {
            AuditEvent::BudgetDecision {
                op: BudgetOp::ChargeInFlight,
                granted,
                ..
            } => Some(*granted),
            _ => None,
        })
        .collect();
    assert_eq!(
        charged.len(),
        2,
        "each call cancelled in flight is charged its whole reservation, and audited"
    );
    assert!(charged.iter().all(|&c| c > 0));
    assert_eq!(report.total_tokens, charged.iter().sum::<u64>());
}

#[tokio::test]
async fn a_deadline_times_the_agent_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = plan(
        "slow",
        1000,
        FnModel::arc(10_000, |_| Ok(text("late", 1, 1))),
    );
    p.spec.deadline = Some(Duration::from_millis(100));
    let report = start(config(&dir, "deadline", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.agents[0].status, AgentStatus::TimedOut);
}

/// The most agents of a run that were started and not yet finished at once, from the
/// supervisor's own events (it emits both, in order, so this is exact).
fn peak_running(rx: &mut mpsc::UnboundedReceiver<RunEvent>) -> usize {
    let (mut live, mut peak) = (0usize, 0usize);
    while let Ok(event) = rx.try_recv() {
        match event {
            RunEvent::AgentStarted { attempt: 1, .. } => {
                live += 1;
                peak = peak.max(live);
            }
            RunEvent::AgentFinished(_) => live -= 1,
            _ => {}
        }
    }
    peak
}

/// Runs `n` agents of two turns each under `max_concurrency`; the report and the peak.
async fn run_limited(run: &str, n: usize, limit: usize) -> (codex_actors::RunReport, usize) {
    let dir = tempfile::tempdir().unwrap();
    let quick = || FnModel::arc(0, |_| Ok(text("ok", 1, 1)));
    let plans = (0..n)
        .map(|k| plan(&format!("agent-{k}"), 1000, quick()))
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut c = config(&dir, run, plans);
    c.max_concurrency = Some(limit);
    c.events = Some(tx);
    let report = start(c).await.unwrap().wait().await.unwrap();
    (report, peak_running(&mut rx))
}

// On a multi-threaded runtime, so agents could overlap if the limit let them: without it,
// every agent starts in the supervisor's first step, before any can finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_concurrency_one_runs_agents_one_after_another() {
    let (report, peak) = run_limited("serial", 3, 1).await;
    assert_eq!(report.success_count, 3);
    assert_eq!(peak, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_concurrency_two_never_runs_more_than_two_agents_and_runs_them_all() {
    let (report, peak) = run_limited("pairs", 6, 2).await;
    assert_eq!(report.success_count, 6);
    assert_eq!(peak, 2);
}

#[tokio::test]
async fn an_unwritable_audit_log_stops_the_run_before_any_agent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".codex"), b"a file, not a directory").unwrap();
    let called = Arc::new(AtomicU32::new(0));
    let c2 = Arc::clone(&called);
    let model = FnModel::arc(0, move |_| {
        c2.fetch_add(1, Ordering::SeqCst);
        Ok(text("x", 1, 1))
    });
    let err = start(config(&dir, "noaudit", vec![plan("a", 100, model)]))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("audit log"), "{err}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn duplicate_agent_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = || FnModel::arc(0, |_| Ok(text("x", 1, 1)));
    let err = start(config(
        &dir,
        "dup",
        vec![plan("a", 1, m()), plan("a", 1, m())],
    ))
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("appears twice"), "{err}");
}

#[tokio::test]
async fn an_agent_waits_for_siblings_in_flight_instead_of_failing_on_a_shared_budget() {
    let dir = tempfile::tempdir().unwrap();
    // Each agent asks for up to 800 tokens per call but uses 50; the run has only 1000, so
    // one call in flight holds most of the pool while the other agent must wait for it.
    let model = || {
        FnModel::arc(50, |r| match r.turn {
            0..=2 => Ok(call("touch", json!({"path": "artifacts/x"}), 25, 25)),
            _ => Ok(text("done", 25, 25)),
        })
    };
    let mk = |name: &str| {
        let mut p = plan(name, 1000, model());
        p.spec.max_output_tokens = 800;
        p.spec.tools = vec!["touch".into()];
        p.tools = vec![Arc::new(Touch)];
        p.spec.permissions.write = vec!["artifacts/**".into()];
        p
    };
    let mut c = config(&dir, "shared", vec![mk("a"), mk("b")]);
    c.total_budget = Some(1000);
    let report = start(c).await.unwrap().wait().await.unwrap();
    assert_eq!(report.success_count, 2, "{report:#?}");
    assert_eq!(report.total_tokens, 400);
}

/// An agent whose model panics on attempts up to `crashes` (then answers), with restart
/// policy `restart` and at most `max` restarts within an hour; counts the model's calls.
fn crashing_plan(
    name: &str,
    restart: RestartType,
    max: u32,
    crashes: u32,
    calls: Arc<AtomicU32>,
) -> codex_actors::AgentPlan {
    let model = FnModel::arc(0, move |r| {
        calls.fetch_add(1, Ordering::SeqCst);
        if r.attempt <= crashes {
            panic!("scripted crash {}", r.attempt);
        }
        Ok(text("done", 5, 5))
    });
    let mut p = plan(name, 1000, model);
    p.spec.restart.restart = restart;
    p.spec.restart.max_restarts = max;
    p.spec.restart.period = Duration::from_secs(3600);
    p
}

async fn run_one(dir: &tempfile::TempDir, run: &str, p: codex_actors::AgentPlan) -> AgentReport {
    let report = start(config(dir, run, vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    report.agents[0].clone()
}

#[tokio::test]
async fn a_crashed_temporary_agent_fails_at_once_and_says_it_is_not_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let p = crashing_plan("t", RestartType::Temporary, 3, 1, Arc::clone(&calls));
    let a = run_one(&dir, "temporary", p).await;
    assert_eq!(a.status, AgentStatus::Failed, "{a:?}");
    assert_eq!(a.restarts, 0);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a temporary agent runs once"
    );
    let error = a.error.unwrap();
    assert!(error.contains("scripted crash 1"), "{error}");
    assert!(
        error.contains("not restarted: its restart type is `temporary`"),
        "{error}"
    );
    assert!(!error.contains("after 0 restarts"), "{error}");
    let log = audit(dir.path(), "temporary");
    assert!(of_type(&log, "agent_restarted").is_empty());
}

#[tokio::test]
async fn a_crashed_transient_agent_is_restarted_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let p = crashing_plan("t", RestartType::Transient, 3, 1, Arc::clone(&calls));
    let a = run_one(&dir, "transient", p).await;
    assert_eq!(a.status, AgentStatus::Completed, "{a:?}");
    assert_eq!(a.restarts, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_permanent_agent_is_restarted_after_a_failure_it_reported_itself() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |r| match r.attempt {
        1 => Err(ModelError::Fatal("bad key".into())),
        _ => Ok(text("done", 5, 5)),
    });
    let mut p = plan("p", 1000, model);
    p.spec.restart.restart = RestartType::Permanent;
    let a = run_one(&dir, "permanent", p).await;
    assert_eq!(a.status, AgentStatus::Completed, "{a:?}");
    assert_eq!(a.restarts, 1);
    let log = audit(dir.path(), "permanent");
    let restarts = of_type(&log, "agent_restarted");
    assert_eq!(restarts.len(), 1);
    assert!(format!("{:?}", restarts[0].event).contains("bad key"));
}

#[tokio::test]
async fn a_transient_agent_that_reports_a_failure_is_not_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |_| Err(ModelError::Fatal("bad key".into())));
    let mut p = plan("t", 1000, model);
    p.spec.restart.restart = RestartType::Transient;
    let a = run_one(&dir, "transient-fails", p).await;
    assert_eq!(a.status, AgentStatus::Failed, "{a:?}");
    assert_eq!(a.restarts, 0);
    assert!(a.error.unwrap().contains("bad key"));
}

#[tokio::test]
async fn crashes_beyond_the_agents_own_intensity_escalate_to_failed() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let p = crashing_plan("i", RestartType::Transient, 1, u32::MAX, Arc::clone(&calls));
    let a = run_one(&dir, "intensity", p).await;
    assert_eq!(a.status, AgentStatus::Failed, "{a:?}");
    assert_eq!(a.restarts, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one attempt, one restart");
    let error = a.error.unwrap();
    assert!(
        error.starts_with("failed after 1 restarts (limit 1 within 1h)"),
        "{error}"
    );
}

#[tokio::test]
async fn restart_backoff_comes_from_the_agents_policy() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let mut p = crashing_plan("b", RestartType::Transient, 3, 3, calls);
    p.spec.restart.initial_backoff = Duration::from_millis(7);
    p.spec.restart.max_backoff = Duration::from_millis(20);
    let a = run_one(&dir, "backoff", p).await;
    assert_eq!(a.status, AgentStatus::Completed, "{a:?}");
    let log = audit(dir.path(), "backoff");
    let delays: Vec<u64> = of_type(&log, "agent_restarted")
        .iter()
        .map(|r| match &r.event {
            AuditEvent::AgentRestarted { delay_ms, .. } => *delay_ms,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(delays, [7, 14, 20], "doubling from 7 ms, capped at 20 ms");
}
