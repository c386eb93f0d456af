//! What a killed run's audit log says about its agents, as pure code: which finished (with
//! their results), and how many tokens each of the others had been charged.
//!
//! An agent's usage is what its `commit` records charged (plus overruns) and its
//! `charge_in_flight` records, with those of the agents it delegated to (`lead/x#1`: their
//! usage is charged to their parent). A reservation whose call never settled (the process
//! was killed during the call) is charged in full, as the run itself would have charged it
//! had it ended normally: the provider may have served it.

use std::collections::BTreeMap;

use codex_actors::audit::{AgentExecutionEvent, AuditEvent, AuditRecord, BudgetOp};

/// One of the run's own agents, as the log left it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PastAgent {
    /// Its `agent_finished` record, if it finished.
    pub finished: Option<AgentExecutionEvent>,
    /// Tokens charged to it (and to the agents it delegated to).
    pub used: u64,
}

/// A run's log, read for resuming; see the module docs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PastRun {
    /// Keyed by the run's own agents' names.
    pub agents: BTreeMap<String, PastAgent>,
    /// Whether the log ends the run (`run_finished`).
    pub finished: bool,
}

impl PastRun {
    /// Reads `records` for the run's own `agents`.
    pub fn from_records(records: &[AuditRecord], agents: &[String]) -> Self {
        let mut past = PastRun {
            agents: agents
                .iter()
                .map(|a| (a.clone(), PastAgent::default()))
                .collect(),
            finished: false,
        };
        // The reservation each agent (own or delegated) has open: granted, not yet settled.
        let mut open: BTreeMap<String, u64> = BTreeMap::new();
        for record in records {
            match &record.event {
                AuditEvent::RunFinished { .. } => past.finished = true,
                AuditEvent::AgentFinished(e) => {
                    if let Some(a) = past.agents.get_mut(&e.agent_name) {
                        a.finished = Some(e.clone());
                    }
                }
                AuditEvent::BudgetDecision {
                    agent,
                    op,
                    granted,
                    overrun,
                    ..
                } => {
                    let charged = match op {
                        BudgetOp::Reserve => {
                            open.insert(agent.clone(), *granted);
                            0
                        }
                        BudgetOp::Commit => {
                            open.remove(agent);
                            granted + overrun
                        }
                        BudgetOp::ChargeInFlight => {
                            open.remove(agent);
                            *granted
                        }
                        BudgetOp::Release | BudgetOp::Carve | BudgetOp::Close => 0,
                    };
                    past.charge(agent, charged);
                }
                _ => {}
            }
        }
        for (agent, granted) in open {
            past.charge(&agent, granted);
        }
        past
    }

    /// Adds `tokens` to the run's own agent that `agent` is or descends from.
    fn charge(&mut self, agent: &str, tokens: u64) {
        let own = agent.split('/').next().unwrap_or(agent);
        if let Some(a) = self.agents.get_mut(own) {
            a.used += tokens;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use codex_actors::AgentStatus;

    fn record(event: AuditEvent) -> AuditRecord {
        AuditRecord {
            seq: 0,
            ts: Utc::now(),
            run_id: "r".into(),
            prev_hash: String::new(),
            hash: String::new(),
            parent: None,
            depth: 0,
            event,
        }
    }

    fn budget(agent: &str, op: BudgetOp, granted: u64, overrun: u64) -> AuditRecord {
        record(AuditEvent::BudgetDecision {
            agent: agent.into(),
            op,
            requested: granted,
            granted,
            released: 0,
            overrun,
            available: 0,
            denied: None,
        })
    }

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn usage_is_what_was_committed_and_charged_with_overruns() {
        let log = [
            budget("a", BudgetOp::Reserve, 1_000, 0),
            budget("a", BudgetOp::Commit, 300, 20),
            budget("a", BudgetOp::Reserve, 1_000, 0),
            budget("a", BudgetOp::ChargeInFlight, 1_000, 0),
        ];
        let past = PastRun::from_records(&log, &names());
        assert_eq!(past.agents["a"].used, 1_320);
        assert_eq!(past.agents["b"].used, 0);
        assert!(!past.finished);
    }

    #[test]
    fn a_call_the_kill_left_unsettled_is_charged_its_reservation() {
        let log = [
            budget("a", BudgetOp::Reserve, 800, 0),
            budget("a", BudgetOp::Commit, 300, 0),
            budget("a", BudgetOp::Reserve, 800, 0),
        ];
        assert_eq!(
            PastRun::from_records(&log, &names()).agents["a"].used,
            1_100
        );
    }

    #[test]
    fn delegated_agents_usage_counts_for_their_top_level_ancestor() {
        let log = [
            budget("a/b#1", BudgetOp::Reserve, 500, 0),
            budget("a/b#1", BudgetOp::Commit, 200, 0),
            budget("a/b#1/c#1", BudgetOp::Reserve, 100, 0),
            budget("a", BudgetOp::Carve, 5_000, 0),
        ];
        let past = PastRun::from_records(&log, &names());
        assert_eq!(past.agents["a"].used, 300);
        assert_eq!(
            past.agents["b"].used, 0,
            "b is another agent than a's child `b#1`"
        );
    }

    #[test]
    fn a_finished_agent_keeps_its_record_and_the_end_of_the_run_is_seen() {
        let finished = AgentExecutionEvent {
            agent_name: "b".into(),
            attempt: 1,
            status: AgentStatus::Completed,
            goal: "g".into(),
            start_time: Utc::now(),
            end_time: None,
            duration_secs: Some(1.0),
            tokens_used: 10,
            artifacts: vec![],
            error: None,
        };
        let log = [
            record(AuditEvent::AgentFinished(finished.clone())),
            record(AuditEvent::RunFinished {
                total_tokens: 10,
                success_count: 1,
                total_count: 2,
                wall_secs: 1.0,
                cancelled: false,
            }),
        ];
        let past = PastRun::from_records(&log, &names());
        assert_eq!(past.agents["b"].finished, Some(finished));
        assert!(past.finished);
    }
}
