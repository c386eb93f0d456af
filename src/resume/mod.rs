//! Resuming a run that was killed or interrupted (`codex resume RUN`).
//!
//! A run leaves three things in `.codex/runs/<run>/`: its audit log, a manifest of what was
//! asked for ([`manifest::RunManifest`]: each agent's goal, scope and budget, the run's
//! total, the process that runs it), and each agent's last checkpoint (see
//! `codex_actors::checkpoint`). Resuming reads the log ([`past::PastRun`]): agents that
//! finished keep their results; each of the others gets the budget it had left and
//! continues from its checkpoint, in the same run directory and the same audit log, so the
//! run's record stays one chain.

pub mod manifest;
pub mod past;

use std::collections::BTreeMap;

use codex_actors::{AgentReport, AgentStatus, RunReport};

use manifest::RunManifest;
use past::PastRun;

/// A run taken up again: what its earlier part did, to fold into the report of the part
/// that runs now.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    /// The run's id (the same directory and audit log).
    pub run_id: String,
    /// What the run was asked to do.
    pub manifest: RunManifest,
    /// What its log says.
    pub past: PastRun,
}

impl Resumed {
    /// The agents that still have work: not finished, with budget left; each with the
    /// budget it has left.
    pub fn remaining(&self) -> Vec<(&manifest::ManifestAgent, u64)> {
        self.manifest
            .agents
            .iter()
            .filter_map(|a| {
                let past = self.past.agents.get(&a.agent)?;
                let left = a.budget.saturating_sub(past.used);
                (past.finished.is_none() && left > 0).then_some((a, left))
            })
            .collect()
    }

    /// What the run's global budget has left.
    pub fn total_left(&self) -> u64 {
        let used: u64 = self.past.agents.values().map(|a| a.used).sum();
        self.manifest.total_budget.saturating_sub(used)
    }

    /// The whole run's report: `now` (the agents that ran now, with what they had used
    /// before added back) and the agents that had finished, in the run's order.
    pub fn merge(&self, now: RunReport) -> RunReport {
        let mut own = Vec::new();
        let mut delegated: Vec<AgentReport> = Vec::new();
        let mut ran: BTreeMap<String, AgentReport> = BTreeMap::new();
        for report in now.agents {
            if report.parent.is_some() {
                delegated.push(report);
            } else {
                ran.insert(report.agent.clone(), report);
            }
        }
        for a in &self.manifest.agents {
            let past = self.past.agents.get(&a.agent).cloned().unwrap_or_default();
            let report = match ran.remove(&a.agent) {
                Some(mut r) => {
                    r.tokens_used += past.used;
                    r.budget = a.budget;
                    r
                }
                None => earlier_report(a, &past),
            };
            own.push(report);
        }
        let total_tokens = own.iter().map(|a| a.tokens_used).sum();
        let success_count = own
            .iter()
            .filter(|a| a.status == AgentStatus::Completed)
            .count();
        let total_count = own.len();
        own.extend(delegated);
        RunReport {
            run_id: self.run_id.clone(),
            agents: own,
            total_tokens,
            total_budget: self.manifest.total_budget,
            wall_secs: now.wall_secs,
            success_count,
            total_count,
        }
    }
}

/// The report of an agent that did not run now: it had finished (from its log record), or
/// it had no budget left.
fn earlier_report(a: &manifest::ManifestAgent, past: &past::PastAgent) -> AgentReport {
    let finished = past.finished.as_ref();
    AgentReport {
        agent: a.agent.clone(),
        goal: a.goal.clone(),
        scope: a.scope.clone(),
        status: finished.map_or(AgentStatus::BudgetExceeded, |f| f.status),
        tokens_used: finished.map_or(past.used, |f| f.tokens_used.max(past.used)),
        budget: a.budget,
        duration_secs: finished.and_then(|f| f.duration_secs).unwrap_or(0.0),
        restarts: finished.map_or(0, |f| f.attempt.saturating_sub(1)),
        artifacts: finished.map(|f| f.artifacts.clone()).unwrap_or_default(),
        error: match finished {
            Some(f) => f.error.clone(),
            None => Some("its budget was spent before the run was interrupted".into()),
        },
        // The audit log keeps no final answers; the earlier `-o` file has them.
        final_message: None,
        parent: None,
        depth: 0,
        truncated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::manifest::ManifestAgent;
    use super::past::PastAgent;
    use super::*;

    fn report(agent: &str, status: AgentStatus, tokens: u64, budget: u64) -> AgentReport {
        AgentReport {
            agent: agent.into(),
            goal: "g".into(),
            scope: String::new(),
            status,
            tokens_used: tokens,
            budget,
            duration_secs: 1.0,
            restarts: 0,
            artifacts: vec![],
            error: None,
            final_message: Some("done".into()),
            parent: None,
            depth: 0,
            truncated: false,
        }
    }

    fn resumed() -> Resumed {
        let agent = |name: &str| ManifestAgent {
            agent: name.into(),
            goal: "g".into(),
            scope: String::new(),
            budget: 1_000,
        };
        let finished = codex_actors::audit::AgentExecutionEvent {
            agent_name: "a".into(),
            attempt: 2,
            status: AgentStatus::Completed,
            goal: "g".into(),
            start_time: chrono::Utc::now(),
            end_time: None,
            duration_secs: Some(3.0),
            tokens_used: 400,
            artifacts: vec!["x.md".into()],
            error: None,
        };
        Resumed {
            run_id: "r".into(),
            manifest: RunManifest {
                agents: vec![agent("a"), agent("b"), agent("c")],
                total_budget: 3_000,
                max_concurrency: None,
                pid: 0,
            },
            past: PastRun {
                agents: [
                    (
                        "a".into(),
                        PastAgent {
                            finished: Some(finished),
                            used: 400,
                        },
                    ),
                    (
                        "b".into(),
                        PastAgent {
                            finished: None,
                            used: 300,
                        },
                    ),
                    (
                        "c".into(),
                        PastAgent {
                            finished: None,
                            used: 1_000,
                        },
                    ),
                ]
                .into(),
                finished: false,
            },
        }
    }

    #[test]
    fn only_unfinished_agents_with_budget_left_run_again_with_what_they_had_left() {
        let r = resumed();
        let left: Vec<(&str, u64)> = r
            .remaining()
            .iter()
            .map(|(a, left)| (a.agent.as_str(), *left))
            .collect();
        assert_eq!(left, vec![("b", 700)]);
        assert_eq!(r.total_left(), 1_300);
    }

    #[test]
    fn the_merged_report_has_every_agent_in_order_with_its_whole_usage() {
        let r = resumed();
        let now = RunReport {
            run_id: "r".into(),
            agents: vec![report("b", AgentStatus::Completed, 200, 700)],
            total_tokens: 200,
            total_budget: 1_300,
            wall_secs: 2.0,
            success_count: 1,
            total_count: 1,
        };
        let merged = r.merge(now);
        let rows: Vec<(&str, AgentStatus, u64, u64)> = merged
            .agents
            .iter()
            .map(|a| (a.agent.as_str(), a.status, a.tokens_used, a.budget))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("a", AgentStatus::Completed, 400, 1_000),
                ("b", AgentStatus::Completed, 500, 1_000),
                ("c", AgentStatus::BudgetExceeded, 1_000, 1_000),
            ]
        );
        assert_eq!(merged.total_tokens, 1_900);
        assert_eq!(merged.total_budget, 3_000);
        assert_eq!((merged.success_count, merged.total_count), (2, 3));
        assert_eq!(merged.agents[0].artifacts, vec!["x.md".to_owned()]);
        assert_eq!(merged.agents[0].restarts, 1);
    }
}
