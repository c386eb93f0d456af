//! What a run prints for people: a line per agent as it starts, restarts and ends, then a
//! summary (the live view of a terminal is `progress.rs`). Pure functions from events and reports to text, so they can be snapshot-tested;
//! the caller decides where the text goes.

use codex_actors::{AgentReport, AgentStatus, RunEvent, RunReport};

/// `path` relative to the workspace, for messages.
pub fn relative(workspace: &std::path::Path, path: &std::path::Path) -> String {
    path.strip_prefix(workspace)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The plain line for a live run event: agents starting, restarting and ending. Finer
/// events (model calls, turns, tool calls) have no plain line; the live view and `--json`
/// show them.
pub fn event_line(event: &RunEvent, budget_of: impl Fn(&str) -> u64) -> Option<String> {
    Some(match event {
        RunEvent::AgentStarted { agent, attempt: 1 } => {
            format!("[start]   {agent} (budget {})", tokens(budget_of(agent)))
        }
        RunEvent::AgentStarted { agent, attempt } => {
            format!("[start]   {agent} (attempt {attempt})")
        }
        RunEvent::AgentRestarting {
            agent,
            reason,
            delay_ms,
        } => format!("[restart] {agent} in {delay_ms} ms: {}", one_line(reason)),
        RunEvent::AgentFinished(report) => agent_line(report),
        RunEvent::AgentDelegated {
            agent,
            parent,
            budget,
        } => format!(
            "[delegate] {parent} -> {agent} (budget {})",
            tokens(*budget)
        ),
        RunEvent::ModelCallStarted { .. }
        | RunEvent::ContextCompacted { .. }
        | RunEvent::TurnCompleted { .. }
        | RunEvent::ToolStarted { .. }
        | RunEvent::ToolCalled { .. } => return None,
    })
}

/// The line for an agent that ended.
pub fn agent_line(a: &AgentReport) -> String {
    let tag = match a.status {
        AgentStatus::Completed => "[done]   ",
        AgentStatus::Cancelled => "[cancel] ",
        _ => "[fail]   ",
    };
    let mut line = format!(
        "{tag} {} {} in {:.1}s, {}/{} tokens, {} restart{}",
        a.agent,
        a.status.label(),
        a.duration_secs,
        tokens(a.tokens_used),
        tokens(a.budget),
        a.restarts,
        if a.restarts == 1 { "" } else { "s" }
    );
    if !a.artifacts.is_empty() {
        line.push_str(&format!(", artifacts: {}", a.artifacts.join(", ")));
    }
    if a.truncated {
        line.push_str(", its answer cut off by the output cap (max_output_tokens)");
    }
    if let Some(e) = &a.error {
        line.push_str(&format!("\n          {}", one_line(e)));
    }
    line
}

/// The summary after a run.
pub fn summary(r: &RunReport, audit_log: &str) -> String {
    // A cancelled run did not do the work, so a speed-up would compare nothing.
    let cancelled = r.agents.iter().any(|a| a.status == AgentStatus::Cancelled);
    let speedup = match r.speedup() {
        Some(s) if r.total_count > 1 && !cancelled => {
            format!(" (speed-up {s:.1}x over running them one by one)")
        }
        _ => String::new(),
    };
    let share = if r.total_budget > 0 {
        format!(
            " ({:.1}%)",
            100.0 * r.total_tokens as f64 / r.total_budget as f64
        )
    } else {
        String::new()
    };
    let cut: Vec<&str> = r
        .agents
        .iter()
        .filter(|a| a.truncated)
        .map(|a| a.agent.as_str())
        .collect();
    let truncated = if cut.is_empty() {
        String::new()
    } else {
        format!(
            "\nTruncated: the answer of {} was cut off by the output cap (raise max_output_tokens)",
            cut.join(", ")
        )
    };
    format!(
        "Run {}: {}/{} agents completed in {:.1}s{speedup}{truncated}\nTokens: {} / {}{share}\nAudit log: {audit_log}",
        r.run_id,
        r.success_count,
        r.total_count,
        r.wall_secs,
        tokens(r.total_tokens),
        tokens(r.total_budget),
    )
}

/// Each agent's final answer, for the end of the output.
pub fn final_messages(r: &RunReport) -> String {
    let mut out = String::new();
    for a in &r.agents {
        if let Some(m) = &a.final_message {
            out.push_str(&format!("--- {} ---\n{}\n", a.agent, m.trim_end()));
        }
    }
    out
}

/// What `--quiet` prints before the summary: each agent's final answer, and for one that
/// did not complete, its status and why.
pub fn outcomes(r: &RunReport) -> String {
    let mut out = String::new();
    for a in &r.agents {
        if let Some(m) = &a.final_message {
            out.push_str(&format!("--- {} ---\n{}\n", a.agent, m.trim_end()));
        }
        if a.status != AgentStatus::Completed {
            let why = a.error.as_deref().map(one_line).unwrap_or_default();
            out.push_str(&format!("{} {}: {why}\n", a.agent, a.status.label()));
        }
    }
    out
}

/// `12345` → `12,345`.
pub fn tokens(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(agent: &str, status: AgentStatus) -> AgentReport {
        AgentReport {
            truncated: false,
            agent: agent.into(),
            goal: "g".into(),
            scope: String::new(),
            status,
            tokens_used: 2345,
            budget: 6000,
            duration_secs: 1.84,
            restarts: if status == AgentStatus::Completed {
                0
            } else {
                3
            },
            artifacts: if status == AgentStatus::Completed {
                vec!["artifacts/review.md".into()]
            } else {
                vec![]
            },
            error: (status != AgentStatus::Completed)
                .then(|| "failed after 3 restarts\n  (limit 3 within 1m); last error: boom".into()),
            final_message: Some("All good.".into()),
            parent: None,
            depth: 0,
        }
    }

    #[test]
    fn tokens_have_thousands_separators() {
        assert_eq!(tokens(0), "0");
        assert_eq!(tokens(999), "999");
        assert_eq!(tokens(1000), "1,000");
        assert_eq!(tokens(1234567), "1,234,567");
    }

    #[test]
    fn agent_lines_read_well() {
        let lines = [
            agent_line(&report("code-reviewer", AgentStatus::Completed)),
            agent_line(&report("test-gen", AgentStatus::Failed)),
            event_line(
                &RunEvent::AgentStarted {
                    agent: "a".into(),
                    attempt: 1,
                },
                |_| 5000,
            )
            .unwrap(),
            event_line(
                &RunEvent::AgentRestarting {
                    agent: "a".into(),
                    reason: "panicked: boom".into(),
                    delay_ms: 100,
                },
                |_| 0,
            )
            .unwrap(),
        ];
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn summary_reads_well() {
        let r = RunReport {
            run_id: "20261124T000000Z-abcdef".into(),
            agents: vec![
                report("code-reviewer", AgentStatus::Completed),
                report("test-gen", AgentStatus::Completed),
            ],
            total_tokens: 4690,
            total_budget: 11000,
            wall_secs: 2.0,
            success_count: 2,
            total_count: 2,
        };
        insta::assert_snapshot!(summary(&r, ".codex/runs/x/audit.jsonl"));
    }

    #[test]
    fn a_cancelled_run_claims_no_speed_up() {
        let r = RunReport {
            run_id: "r".into(),
            agents: vec![
                report("a", AgentStatus::Completed),
                report("b", AgentStatus::Cancelled),
            ],
            total_tokens: 4690,
            total_budget: 12000,
            wall_secs: 1.0,
            success_count: 1,
            total_count: 2,
        };
        let text = summary(&r, "log");
        assert!(!text.contains("speed-up"), "{text}");
    }

    #[test]
    fn quiet_outcomes_give_each_answer_and_each_failure_reason() {
        let r = RunReport {
            run_id: "r".into(),
            agents: vec![
                report("a", AgentStatus::Completed),
                report("b", AgentStatus::Failed),
            ],
            total_tokens: 0,
            total_budget: 0,
            wall_secs: 1.0,
            success_count: 1,
            total_count: 2,
        };
        insta::assert_snapshot!(outcomes(&r));
    }
}
