//! Recursive delegation end to end in the engine: children under the same supervisor, with
//! carved budgets, intersected permissions, a depth cap, cancellation that cascades, and
//! audit records that say who delegated to whom.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use codex_actors::audit::{AuditEvent, BudgetOp};
use codex_actors::delegate::{
    AgentResolver, ChildPlan, ChildRunner, DelegateRequest, DelegateTool, ExternalAgent,
    ExternalOutcome, ParentInfo,
};
use codex_actors::model::{ModelEvent, ModelRequest, Role, ToolCall, Usage};
use codex_actors::services::ServiceKind;
use codex_actors::tool::Tool;
use codex_actors::{start, AgentSpec, AgentStatus, Model, Permissions, RunConfig, RunReport};
use common::*;
use serde_json::json;

/// What a test's resolver knows of one agent.
#[derive(Clone)]
struct Def {
    model: Arc<dyn Model>,
    budget: u64,
    permissions: Permissions,
    tools: Vec<Arc<dyn Tool>>,
    external: Option<Arc<dyn ExternalAgent>>,
}

/// Resolves children from a fixed table, as the application does from definitions.
struct Table(BTreeMap<String, Def>);

#[async_trait::async_trait]
impl AgentResolver for Table {
    async fn resolve(
        &self,
        request: &DelegateRequest,
        parent: &ParentInfo,
    ) -> Result<ChildPlan, String> {
        let def = self
            .0
            .get(&request.agent)
            .ok_or_else(|| format!("unknown agent `{}`", request.agent))?;
        let mut spec = AgentSpec::new(
            &request.agent,
            &request.goal,
            request.budget.unwrap_or(def.budget),
        );
        spec.scope = request
            .scope
            .clone()
            .unwrap_or_else(|| parent.scope.clone());
        spec.max_output_tokens = 200;
        spec.permissions = def.permissions.clone();
        spec.tools = def.tools.iter().map(|t| t.spec().name).collect();
        let runner = match &def.external {
            Some(e) => ChildRunner::External(Arc::clone(e)),
            None => ChildRunner::InProcess {
                model: Arc::clone(&def.model),
                tools: def.tools.clone(),
            },
        };
        Ok(ChildPlan { spec, runner })
    }
}

fn def(model: Arc<dyn Model>, budget: u64) -> Def {
    Def {
        model,
        budget,
        permissions: Permissions::default(),
        tools: Vec::new(),
        external: None,
    }
}

/// A delegating def: may delegate to `targets`, with the `delegate` tool.
fn delegating(model: Arc<dyn Model>, budget: u64, targets: &[&str]) -> Def {
    Def {
        permissions: Permissions {
            delegate: targets.iter().map(|t| t.to_string()).collect(),
            ..Permissions::default()
        },
        tools: vec![Arc::new(DelegateTool)],
        ..def(model, budget)
    }
}

/// A top-level agent that may delegate to `targets`.
fn lead(budget: u64, model: Arc<dyn Model>, targets: &[&str]) -> codex_actors::AgentPlan {
    let mut p = plan("lead", budget, model);
    p.spec.permissions.delegate = targets.iter().map(|t| t.to_string()).collect();
    p.spec.tools = vec!["delegate".into()];
    p.tools = vec![Arc::new(DelegateTool)];
    p
}

fn run_config(
    dir: &tempfile::TempDir,
    run: &str,
    lead: codex_actors::AgentPlan,
    table: Table,
) -> RunConfig {
    let mut c = RunConfig::new(run, dir.path(), vec![lead]);
    c.resolver = Some(Arc::new(table));
    c.service_wait = Duration::from_secs(5);
    c
}

/// One model turn asking for several `delegate` calls at once.
fn delegate_calls(calls: &[serde_json::Value], input: u64, output: u64) -> Vec<ModelEvent> {
    let mut events: Vec<ModelEvent> = calls
        .iter()
        .enumerate()
        .map(|(i, args)| {
            ModelEvent::ToolCall(ToolCall {
                id: format!("d{i}"),
                name: "delegate".into(),
                arguments: args.clone(),
            })
        })
        .collect();
    events.push(ModelEvent::Usage(Usage {
        input_tokens: input,
        output_tokens: output,
    }));
    events
}

/// The tool results the model got back in its last turn.
fn tool_results(r: &ModelRequest) -> Vec<String> {
    r.messages
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| m.content.clone())
        .collect()
}

/// A lead that delegates `calls` on turn 0, then answers with what the children said.
fn delegating_model(calls: Vec<serde_json::Value>) -> Arc<dyn Model> {
    FnModel::arc(0, move |r| match r.turn {
        0 => Ok(delegate_calls(&calls, 100, 50)),
        _ => Ok(text(&tool_results(r).join("\n---\n"), 100, 50)),
    })
}

async fn run(config: RunConfig) -> RunReport {
    start(config).await.unwrap().wait().await.unwrap()
}

#[tokio::test]
async fn a_parent_delegates_to_two_children_and_gets_both_reports() {
    let dir = tempfile::tempdir().unwrap();
    let child = FnModel::arc(0, |r| Ok(text(&format!("done: {}", r.agent), 30, 20)));
    let table = Table(BTreeMap::from([
        ("tester".into(), def(Arc::clone(&child), 2_000)),
        ("reviewer".into(), def(child, 2_000)),
    ]));
    let calls = vec![
        json!({"agent": "tester", "goal": "write tests"}),
        json!({"agent": "reviewer", "goal": "review"}),
    ];
    let lead = lead(10_000, delegating_model(calls), &["tester", "reviewer"]);
    let report = run(run_config(&dir, "two", lead, table)).await;

    let lead = report_of(&report, "lead");
    assert_eq!(lead.status, AgentStatus::Completed, "{lead:?}");
    // Children are numbered in the order their calls reached the supervisor.
    let mut names: Vec<&str> = report.agents[1..]
        .iter()
        .map(|a| a.agent.as_str())
        .collect();
    names.sort_unstable();
    let expected = [
        ["lead/reviewer#1", "lead/tester#2"],
        ["lead/reviewer#2", "lead/tester#1"],
    ];
    assert!(expected.contains(&[names[0], names[1]]), "{names:?}");
    let answer = lead.final_message.as_deref().unwrap();
    for name in &names {
        assert!(answer.contains(&format!("done: {name}")), "{answer}");
        let c = report_of(&report, name);
        assert_eq!(c.status, AgentStatus::Completed);
        assert_eq!((c.parent.as_deref(), c.depth), (Some("lead"), 1));
        assert_eq!(c.tokens_used, 50);
    }
    // The lead's usage includes its children's; the run counts each token once.
    assert_eq!(lead.tokens_used, 150 + 150 + 50 + 50);
    assert_eq!(report.total_tokens, lead.tokens_used);
    assert_eq!((report.success_count, report.total_count), (1, 1));
}

fn report_of<'a>(r: &'a RunReport, agent: &str) -> &'a codex_actors::AgentReport {
    r.agents
        .iter()
        .find(|a| a.agent == agent)
        .unwrap_or_else(|| panic!("no report of {agent}: {:?}", r.agents))
}

#[tokio::test]
async fn a_childs_budget_is_carved_out_of_what_its_parent_has_left() {
    let dir = tempfile::tempdir().unwrap();
    // The child would spend far more than the lead has: each turn asks for a tool that
    // does not exist, so it keeps going until its envelope is spent.
    let greedy = FnModel::arc(0, |_| Ok(call("nothing", json!({}), 150, 150)));
    let table = Table(BTreeMap::from([("greedy".into(), def(greedy, 50_000))]));
    let calls = vec![json!({"agent": "greedy", "goal": "spend", "budget": 50_000})];
    let lead = lead(3_000, delegating_model(calls), &["greedy"]);
    let report = run(run_config(&dir, "carve", lead, table)).await;

    let child = report_of(&report, "lead/greedy#1");
    // The lead had 3000 - its first turn's grant held; the envelope is what was left.
    assert!(child.budget < 3_000, "{child:?}");
    assert!(child.tokens_used <= child.budget, "{child:?}");
    assert_eq!(child.status, AgentStatus::BudgetExceeded);
    let lead = report_of(&report, "lead");
    assert!(lead.tokens_used <= 3_000, "{lead:?}");
    assert!(report.total_tokens <= 3_000);
    let log = audit(dir.path(), "carve");
    let carve = log
        .iter()
        .find(|r| {
            matches!(
                &r.event,
                AuditEvent::BudgetDecision {
                    op: BudgetOp::Carve,
                    ..
                }
            )
        })
        .expect("a carve record");
    let AuditEvent::BudgetDecision {
        agent,
        requested,
        granted,
        ..
    } = &carve.event
    else {
        unreachable!()
    };
    assert_eq!((agent.as_str(), *requested), ("lead", 50_000));
    assert_eq!(*granted, child.budget);
    let close = log
        .iter()
        .find(|r| {
            matches!(
                &r.event,
                AuditEvent::BudgetDecision {
                    op: BudgetOp::Close,
                    ..
                }
            )
        })
        .expect("a close record");
    assert_eq!(close.event.agent(), Some("lead/greedy#1"));
}

#[tokio::test]
async fn a_child_may_do_only_what_its_parent_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let writer = FnModel::arc(0, |r| match r.turn {
        0 => Ok(call("touch", json!({"path": "secret/x"}), 10, 10)),
        1 => Ok(call("touch", json!({"path": "out/x"}), 10, 10)),
        _ => Ok(text(&tool_results(r).join(" | "), 10, 10)),
    });
    let mut child = def(writer, 2_000);
    child.permissions.write = vec!["**".into()];
    child.tools = vec![Arc::new(Touch)];
    let table = Table(BTreeMap::from([("writer".into(), child)]));
    let calls = vec![json!({"agent": "writer", "goal": "write"})];
    let mut lead = lead(10_000, delegating_model(calls), &["writer"]);
    lead.spec.permissions.write = vec!["out/**".into()];
    let report = run(run_config(&dir, "narrow", lead, table)).await;

    let answer = report_of(&report, "lead/writer#1")
        .final_message
        .clone()
        .unwrap();
    assert!(answer.contains("permission denied"), "{answer}");
    assert!(answer.contains("created out/x"), "{answer}");
    assert!(!dir.path().join("secret/x").exists());
    assert!(dir.path().join("out/x").exists());
    let log = audit(dir.path(), "narrow");
    let denied = of_type(&log, "policy_decision")
        .into_iter()
        .find_map(|r| match &r.event {
            AuditEvent::PolicyDecision {
                allowed: false,
                rule,
                agent,
                ..
            } => Some((agent.clone(), rule.clone())),
            _ => None,
        })
        .expect("a denial");
    assert_eq!(denied.0, "lead/writer#1");
    assert!(
        denied.1.starts_with("delegating agent's policy"),
        "{}",
        denied.1
    );
}

#[tokio::test]
async fn an_agent_may_delegate_only_to_the_agents_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let table = Table(BTreeMap::from([(
        "other".into(),
        def(FnModel::arc(0, |_| Ok(text("hi", 1, 1))), 1_000),
    )]));
    let calls = vec![json!({"agent": "other", "goal": "x"})];
    let lead = lead(5_000, delegating_model(calls), &["tester"]);
    let report = run(run_config(&dir, "not-named", lead, table)).await;
    assert_eq!(report.agents.len(), 1, "no child was started");
    let answer = report.agents[0].final_message.clone().unwrap();
    assert!(answer.contains("permission denied"), "{answer}");
}

#[tokio::test]
async fn delegation_stops_at_the_depth_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Every level delegates to `deep` once, then reports what it got back.
    let model = delegating_model(vec![json!({"agent": "deep", "goal": "go deeper"})]);
    let table = Table(BTreeMap::from([(
        "deep".into(),
        delegating(Arc::clone(&model), 5_000, &["deep"]),
    )]));
    let lead = lead(50_000, model, &["deep"]);
    let mut config = run_config(&dir, "depth", lead, table);
    config.max_delegation_depth = 2;
    let report = run(config).await;

    let names: Vec<(&str, u32)> = report
        .agents
        .iter()
        .map(|a| (a.agent.as_str(), a.depth))
        .collect();
    assert_eq!(
        names,
        [("lead", 0), ("lead/deep#1", 1), ("lead/deep#1/deep#1", 2)]
    );
    let deepest = report_of(&report, "lead/deep#1/deep#1");
    let answer = deepest.final_message.as_deref().unwrap();
    assert!(answer.contains("depth limit"), "{answer}");
    let log = audit(dir.path(), "depth");
    let refused = of_type(&log, "agent_delegated")
        .into_iter()
        .filter(|r| {
            matches!(
                &r.event,
                AuditEvent::AgentDelegated {
                    refused: Some(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(refused, 1);
}

#[tokio::test]
async fn cancelling_the_run_cancels_the_children_mid_call() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let slow = FnModel::arc(30_000, move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(text("too late", 1, 1))
    });
    let table = Table(BTreeMap::from([("slow".into(), def(slow, 2_000))]));
    let two = vec![
        json!({"agent": "slow", "goal": "a"}),
        json!({"agent": "slow", "goal": "b"}),
    ];
    let lead = lead(10_000, delegating_model(two), &["slow"]);
    let handle = start(run_config(&dir, "cancel", lead, table))
        .await
        .unwrap();
    let canceller = handle.canceller();
    let log_path = dir.path().join(".codex/runs/cancel/audit.jsonl");
    wait_for(|| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        log.matches("\"type\":\"agent_started\"").count() >= 3
    })
    .await;
    canceller.cancel();
    let report = handle.wait().await.unwrap();
    for a in &report.agents {
        assert_eq!(a.status, AgentStatus::Cancelled, "{a:?}");
    }
    assert_eq!(report.agents.len(), 3);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "a child's model call finished"
    );
}

#[tokio::test]
async fn when_a_parent_ends_its_children_are_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    // The child's call lasts an hour: only its parent's end can stop it. The parent's
    // deadline leaves it ample time to delegate first, even on a loaded machine.
    let slow = FnModel::arc(3_600_000, |_| Ok(text("too late", 1, 1)));
    let table = Table(BTreeMap::from([("slow".into(), def(slow, 2_000))]));
    let calls = vec![json!({"agent": "slow", "goal": "a"})];
    let mut lead = lead(10_000, delegating_model(calls), &["slow"]);
    lead.spec.deadline = Some(Duration::from_secs(3));
    let report = run(run_config(&dir, "parent-ends", lead, table)).await;
    assert_eq!(report_of(&report, "lead").status, AgentStatus::TimedOut);
    let child = report_of(&report, "lead/slow#1");
    assert_eq!(child.status, AgentStatus::Cancelled);
    assert!(
        child.error.as_deref().unwrap().contains("`lead`"),
        "{child:?}"
    );
}

#[tokio::test]
async fn a_child_that_crashes_is_restarted_and_its_parent_gets_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = FnModel::arc(0, |r| {
        if r.attempt == 1 {
            panic!("scripted crash of {}", r.agent);
        }
        Ok(text("recovered", 5, 5))
    });
    let steady = FnModel::arc(0, |_| Ok(text("steady", 5, 5)));
    let table = Table(BTreeMap::from([
        ("flaky".into(), def(flaky, 1_000)),
        ("steady".into(), def(steady, 1_000)),
    ]));
    let calls = vec![
        json!({"agent": "flaky", "goal": "a"}),
        json!({"agent": "steady", "goal": "b"}),
    ];
    let lead = lead(10_000, delegating_model(calls), &["flaky", "steady"]);
    let report = run(run_config(&dir, "child-crash", lead, table)).await;
    let flaky = report
        .agents
        .iter()
        .find(|a| a.agent.starts_with("lead/flaky#"))
        .unwrap();
    assert_eq!((flaky.status, flaky.restarts), (AgentStatus::Completed, 1));
    let steady = report
        .agents
        .iter()
        .find(|a| a.agent.starts_with("lead/steady#"))
        .unwrap();
    assert_eq!(
        (steady.status, steady.restarts),
        (AgentStatus::Completed, 0)
    );
    let lead = report_of(&report, "lead");
    assert_eq!((lead.status, lead.restarts), (AgentStatus::Completed, 0));
    assert!(lead.final_message.as_deref().unwrap().contains("recovered"));
}

#[tokio::test]
async fn a_budget_actor_crash_while_children_run_loses_no_usage() {
    let dir = tempfile::tempdir().unwrap();
    let child = FnModel::arc(300, |r| match r.turn {
        0 => Ok(call("nothing", json!({}), 20, 10)),
        _ => Ok(text("done", 20, 10)),
    });
    let table = Table(BTreeMap::from([("c".into(), def(child, 2_000))]));
    let calls = vec![
        json!({"agent": "c", "goal": "a", "budget": 1_000}),
        json!({"agent": "c", "goal": "b", "budget": 1_000}),
    ];
    let lead = lead(10_000, delegating_model(calls), &["c"]);
    let handle = start(run_config(&dir, "budget-crash", lead, table))
        .await
        .unwrap();
    let log_path = dir.path().join(".codex/runs/budget-crash/audit.jsonl");
    wait_for(|| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        log.matches("\"type\":\"agent_started\"").count() >= 3
    })
    .await;
    let budget = codex_actors::services::service_name("budget-crash", ServiceKind::Budget);
    ractor::registry::where_is(budget).unwrap().kill();
    let report = handle.wait().await.unwrap();
    for a in &report.agents {
        assert_eq!(a.status, AgentStatus::Completed, "{a:?}");
    }
    let children: u64 = report.agents[1..].iter().map(|a| a.tokens_used).sum();
    assert_eq!(children, 2 * 60);
    assert_eq!(report_of(&report, "lead").tokens_used, 300 + children);
    assert_eq!(report.total_tokens, 300 + children);
    let log = audit(dir.path(), "budget-crash");
    assert_eq!(of_type(&log, "service_restarted").len(), 1);
}

#[tokio::test]
async fn delegated_agents_audit_records_carry_parent_and_depth() {
    let dir = tempfile::tempdir().unwrap();
    let table = Table(BTreeMap::from([(
        "c".into(),
        def(FnModel::arc(0, |_| Ok(text("ok", 5, 5))), 1_000),
    )]));
    let lead = lead(
        5_000,
        delegating_model(vec![json!({"agent": "c", "goal": "g"})]),
        &["c"],
    );
    run(run_config(&dir, "lineage", lead, table)).await;
    let log = audit(dir.path(), "lineage");
    // Every record about the child carries its parent and depth; the lead's carry none.
    let about_child: Vec<_> = log
        .iter()
        .filter(|r| r.event.agent() == Some("lead/c#1"))
        .collect();
    assert!(about_child.len() >= 5, "{about_child:?}");
    for r in &about_child {
        assert_eq!((r.parent.as_deref(), r.depth), (Some("lead"), 1), "{r:?}");
    }
    let about_lead = log.iter().filter(|r| r.event.agent() == Some("lead"));
    assert!(about_lead
        .into_iter()
        .all(|r| r.parent.is_none() && r.depth == 0));
    // The delegation is recorded before anything of the child.
    let delegated = of_type(&log, "agent_delegated")[0].seq;
    let child_started = log
        .iter()
        .find(|r| r.event.agent() == Some("lead/c#1"))
        .unwrap()
        .seq;
    assert!(delegated < child_started);
    let bytes = std::fs::read(dir.path().join(".codex/runs/lineage/audit.jsonl")).unwrap();
    let verdict = codex_actors::audit::verify(&bytes);
    assert!(verdict.intact() && verdict.finished, "{verdict:?}");
}

/// Runs "elsewhere": reports a fixed usage, or more than its envelope when told to.
struct Elsewhere {
    used: u64,
    budgets: std::sync::mpsc::Sender<u64>,
}

#[async_trait::async_trait]
impl ExternalAgent for Elsewhere {
    async fn run(&self, spec: &AgentSpec, depth: u32) -> Result<ExternalOutcome, String> {
        let _ = self.budgets.send(spec.budget);
        Ok(ExternalOutcome {
            status: AgentStatus::Completed,
            final_message: Some(format!("external at depth {depth}")),
            error: None,
            tokens_used: self.used,
            artifacts: vec![],
        })
    }
}

/// A lead with 5000 tokens delegates once to `ext`, run elsewhere with a budget of
/// `budget` and reporting `used` tokens; the report, and the budget the external side got.
async fn external_run(run_id: &str, budget: u64, used: u64) -> (RunReport, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut ext = def(FnModel::arc(0, |_| unreachable!()), budget);
    ext.external = Some(Arc::new(Elsewhere { used, budgets: tx }));
    let table = Table(BTreeMap::from([("ext".into(), ext)]));
    let calls = vec![json!({"agent": "ext", "goal": "g"})];
    let lead = lead(5_000, delegating_model(calls), &["ext"]);
    let report = run(run_config(&dir, run_id, lead, table)).await;
    (report, rx.recv().unwrap())
}

#[tokio::test]
async fn an_external_child_gets_its_envelope_and_is_charged_what_it_reports() {
    let (report, told) = external_run("external", 1_500, 700).await;
    assert_eq!(told, 1_500, "the external side is told its envelope");
    let child = report_of(&report, "lead/ext#1");
    assert_eq!(
        (child.status, child.tokens_used),
        (AgentStatus::Completed, 700)
    );
    assert_eq!(child.final_message.as_deref(), Some("external at depth 1"));
    assert_eq!(report_of(&report, "lead").tokens_used, 150 + 150 + 700);
}

#[tokio::test]
async fn an_external_child_reporting_more_than_its_envelope_is_an_overrun() {
    let (report, _) = external_run("ext-over", 1_000, 1_400).await;
    let child = report_of(&report, "lead/ext#1");
    assert_eq!(child.status, AgentStatus::BudgetExceeded);
    assert!(
        child.error.as_deref().unwrap().contains("overrun"),
        "{child:?}"
    );
    assert_eq!(child.tokens_used, 1_400, "the overrun is shown, not hidden");
}

#[tokio::test]
async fn without_a_resolver_the_delegate_tool_says_delegation_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let lead = lead(
        5_000,
        delegating_model(vec![json!({"agent": "x", "goal": "g"})]),
        &["x"],
    );
    let mut config = RunConfig::new("no-resolver", dir.path(), vec![lead]);
    config.resolver = None;
    let report = run(config).await;
    let answer = report.agents[0].final_message.clone().unwrap();
    assert!(answer.contains("not available"), "{answer}");
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached within 10 s");
}
