//! What a tool call that ran agents answers, for a model to act on.
//!
//! The structured content is the report (the `AgentReport` of `delegate`, the `RunReport`
//! of `delegate_parallel`): it is for programs and stays as it is. The text is what a model
//! reads, so it must not let a failure pass for done work: it names each agent's status
//! and, for every agent that did not complete, the reason (the report's error, or what its
//! status means when there is none), then each final answer and the run's summary. When no
//! agent completed, the result is `isError: true`.

use codex_actors::{AgentReport, AgentStatus, RunReport};
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::ErrorData;
use serde::Serialize;

use crate::output;

/// The result of a call that ran `report`'s agents: `structured` (its report) plus the
/// text; an error result when none of the run's own agents completed.
pub fn run_result(
    report: &RunReport,
    structured: impl Serialize,
) -> Result<CallToolResult, ErrorData> {
    let mut result = structured_result(structured, run_text(report))?;
    if no_agent_completed(report) {
        result.is_error = Some(true);
    }
    Ok(result)
}

/// Structured content plus a text summary.
pub fn structured_result(value: impl Serialize, text: String) -> Result<CallToolResult, ErrorData> {
    let value = serde_json::to_value(value)
        .map_err(|e| ErrorData::internal_error(format!("cannot encode the result: {e}"), None))?;
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}

/// Whether none of the run's own agents completed (delegated agents report to them).
pub fn no_agent_completed(report: &RunReport) -> bool {
    !report
        .agents
        .iter()
        .any(|a| a.depth == 0 && a.status == AgentStatus::Completed)
}

/// The text of a run's result: one line per agent (its status; the reason when it did not
/// complete), each final answer, and the run's summary with its audit log.
pub fn run_text(report: &RunReport) -> String {
    let mut text = String::new();
    for agent in &report.agents {
        text.push_str(&agent_status(agent));
        text.push('\n');
    }
    let answers = output::final_messages(report);
    if !answers.is_empty() {
        text.push_str(&answers);
    }
    text.push_str(&output::summary(report, &audit_path(report)));
    text
}

/// `alpha: completed (730/5,000 tokens)`, or `beta: failed (…): REASON`; a delegated agent
/// is indented under its parent.
fn agent_status(a: &AgentReport) -> String {
    let indent = "  ".repeat(a.depth as usize);
    let mut line = format!(
        "{indent}{}: {} ({}/{} tokens)",
        a.agent,
        a.status.label(),
        output::tokens(a.tokens_used),
        output::tokens(a.budget)
    );
    if a.status != AgentStatus::Completed {
        let reason = a
            .error
            .as_deref()
            .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| default_reason(a.status).to_owned());
        line.push_str(&format!(": {reason}"));
    }
    line
}

/// Why an agent with `status` did not complete, when its report gives no error.
fn default_reason(status: AgentStatus) -> &'static str {
    match status {
        AgentStatus::Completed => "",
        AgentStatus::Running => "it was still running when the run ended",
        AgentStatus::Failed => "it failed without an error message",
        AgentStatus::BudgetExceeded => "its token budget ran out before its final answer",
        AgentStatus::TimedOut => "its deadline passed before its final answer",
        AgentStatus::MaxTurns => "it used its maximum number of turns without a final answer",
        AgentStatus::Cancelled => "the call was cancelled before it finished",
    }
}

/// Where a run's audit log is, relative to the workspace.
pub fn audit_path(report: &RunReport) -> String {
    format!(".codex/runs/{}/audit.jsonl", report.run_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, status: AgentStatus, error: Option<&str>) -> AgentReport {
        AgentReport {
            agent: name.into(),
            goal: "g".into(),
            scope: String::new(),
            status,
            tokens_used: 730,
            budget: 5000,
            duration_secs: 1.0,
            restarts: 0,
            artifacts: vec![],
            error: error.map(Into::into),
            final_message: (status == AgentStatus::Completed).then(|| "Done.".into()),
            parent: None,
            depth: 0,
            truncated: false,
        }
    }

    fn run(agents: Vec<AgentReport>) -> RunReport {
        let success_count = agents
            .iter()
            .filter(|a| a.status == AgentStatus::Completed)
            .count();
        RunReport {
            run_id: "20261130T000000Z-abcdef".into(),
            total_count: agents.len(),
            total_tokens: agents.iter().map(|a| a.tokens_used).sum(),
            total_budget: 10_000,
            wall_secs: 1.0,
            success_count,
            agents,
        }
    }

    #[test]
    fn the_text_names_each_status_and_the_reason_of_each_agent_that_did_not_complete() {
        let mut child = agent("lead/helper#1", AgentStatus::MaxTurns, None);
        child.depth = 1;
        child.parent = Some("lead".into());
        let report = run(vec![
            agent("lead", AgentStatus::Completed, None),
            child,
            agent(
                "tester",
                AgentStatus::BudgetExceeded,
                Some("budget exhausted:\n  5000 of 5000 tokens used"),
            ),
        ]);
        insta::assert_snapshot!(run_text(&report));
    }

    #[test]
    fn a_run_where_no_agent_completed_is_an_error_result_with_its_report() {
        let report = run(vec![agent(
            "alpha",
            AgentStatus::TimedOut,
            Some("deadline of 1s passed"),
        )]);
        let result = run_result(&report, &report.agents[0]).unwrap();
        assert_eq!(result.is_error, Some(true));
        assert_eq!(result.structured_content.unwrap()["status"], "timed_out");
    }

    #[test]
    fn a_run_where_one_agent_completed_is_not_an_error_result() {
        let report = run(vec![
            agent("alpha", AgentStatus::Completed, None),
            agent("beta", AgentStatus::Failed, Some("boom")),
        ]);
        let result = run_result(&report, &report).unwrap();
        assert_ne!(result.is_error, Some(true));
    }

    #[test]
    fn a_delegated_agent_that_completed_does_not_make_its_failed_parent_a_success() {
        let mut child = agent("lead/helper#1", AgentStatus::Completed, None);
        child.depth = 1;
        let report = run(vec![
            agent("lead", AgentStatus::Failed, Some("boom")),
            child,
        ]);
        assert!(no_agent_completed(&report));
    }
}
