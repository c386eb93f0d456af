//! What agents are charged over long runs: prompt estimates calibrated on the provider's
//! counts, and overruns that come from an estimate's error rather than from a provider
//! ignoring its output cap.

mod common;

use std::sync::Arc;
use std::time::Duration;

use codex_actors::audit::{AuditEvent, BudgetOp};
use codex_actors::model::estimate_prompt_tokens;
use codex_actors::{start, AgentStatus, RunConfig};
use common::{audit, call, plan, text, FnModel, Touch};

const TURNS: u32 = 500;

fn config(dir: &tempfile::TempDir, run: &str, agents: Vec<codex_actors::AgentPlan>) -> RunConfig {
    let mut c = RunConfig::new(run, dir.path(), agents);
    c.service_wait = Duration::from_secs(5);
    c
}

/// The overruns the audit log recorded, over all commits.
fn overruns(dir: &tempfile::TempDir, run: &str) -> Vec<u64> {
    audit(dir.path(), run)
        .iter()
        .filter_map(|r| match &r.event {
            AuditEvent::BudgetDecision {
                op: BudgetOp::Commit,
                overrun,
                ..
            } if *overrun > 0 => Some(*overrun),
            _ => None,
        })
        .collect()
}

/// A provider whose tokenizer counts twice the engine's conservative estimate: without
/// calibration, the estimate falls further behind every turn and, after a few dozen turns,
/// by more than the output cap's slack.
#[tokio::test]
async fn a_calibrated_estimate_keeps_500_turns_free_of_overruns() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |r| {
        let counted = 2 * estimate_prompt_tokens(&r.messages, &r.tools);
        Ok(if r.turn + 1 < TURNS {
            let path = format!("out/{}.txt", r.turn);
            call("touch", serde_json::json!({ "path": path }), counted, 50)
        } else {
            text("done", counted, 50)
        })
    });
    let mut p = plan("long", u64::MAX / 4, model);
    p.spec.max_turns = TURNS + 1;
    p.spec.permissions.write = vec!["out/**".into()];
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    let report = start(config(&dir, "long", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let agent = &report.agents[0];
    assert_eq!(agent.status, AgentStatus::Completed, "{agent:?}");
    assert_eq!(overruns(&dir, "long"), Vec::<u64>::new());
}

/// A provider that once counts a prompt well above the estimate, but answers within its
/// output cap: the overrun is recorded, and the agent, which has budget left, goes on.
#[tokio::test]
async fn an_overrun_from_the_prompt_estimate_is_recorded_but_does_not_stop_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |r| {
        let estimate = estimate_prompt_tokens(&r.messages, &r.tools);
        Ok(match r.turn {
            0 => call(
                "touch",
                serde_json::json!({"path": "out/a"}),
                estimate + 1_000,
                50,
            ),
            _ => text("done", estimate, 50),
        })
    });
    let mut p = plan("a", 100_000, model);
    p.spec.permissions.write = vec!["out/**".into()];
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    let report = start(config(&dir, "estimate", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.agents[0].status, AgentStatus::Completed);
    let recorded = overruns(&dir, "estimate");
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0] > 0);
}

/// A provider that answers with more output tokens than the cap it was given is not an
/// estimate's error: the agent stops at once.
#[tokio::test]
async fn an_answer_beyond_its_output_cap_stops_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let model = FnModel::arc(0, |r| {
        let cap = r.max_output_tokens;
        Ok(call(
            "touch",
            serde_json::json!({"path": "out/a"}),
            10,
            cap + 500,
        ))
    });
    let mut p = plan("a", 100_000, model);
    p.spec.permissions.write = vec!["out/**".into()];
    p.spec.tools = vec!["touch".into()];
    p.tools = vec![Arc::new(Touch)];
    let report = start(config(&dir, "cap", vec![p]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.agents[0].status, AgentStatus::BudgetExceeded);
    assert_eq!(overruns(&dir, "cap").len(), 1);
}
