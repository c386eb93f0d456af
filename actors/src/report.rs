//! What a run produces: a status and a report per agent, and events while it runs.

use serde::{Deserialize, Serialize};

use crate::model::Usage;

/// How an agent ended (or `Running`, while it runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Started and not yet finished.
    Running,
    /// Gave its final answer.
    Completed,
    /// Crashed more often than its restart intensity allows, or met a fatal error.
    Failed,
    /// Its budget (or the run's) ran out; it reports what it had.
    BudgetExceeded,
    /// Its deadline passed.
    TimedOut,
    /// It used its maximum number of turns without a final answer.
    MaxTurns,
    /// The run was cancelled (Ctrl-C) before it finished.
    Cancelled,
}

impl AgentStatus {
    /// Whether the agent is done (any status but `Running`).
    pub fn is_final(self) -> bool {
        self != AgentStatus::Running
    }

    /// A short lowercase word for terminal output.
    pub fn label(self) -> &'static str {
        match self {
            AgentStatus::Running => "running",
            AgentStatus::Completed => "completed",
            AgentStatus::Failed => "failed",
            AgentStatus::BudgetExceeded => "budget exceeded",
            AgentStatus::TimedOut => "timed out",
            AgentStatus::MaxTurns => "max turns",
            AgentStatus::Cancelled => "cancelled",
        }
    }
}

/// One agent's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    /// The agent's name.
    pub agent: String,
    /// Its goal.
    pub goal: String,
    /// Its scope (`""` for the whole workspace).
    pub scope: String,
    /// How it ended.
    pub status: AgentStatus,
    /// Tokens charged to it over all attempts, overruns included, and those of the agents
    /// it delegated to (their budgets were carved out of its own).
    pub tokens_used: u64,
    /// Its token limit.
    pub budget: u64,
    /// From its first start to its end, restarts included.
    pub duration_secs: f64,
    /// How often its supervisor restarted it.
    pub restarts: u32,
    /// Workspace-relative paths of the files it wrote, over all attempts.
    pub artifacts: Vec<String>,
    /// Why it did not complete, if it did not.
    pub error: Option<String>,
    /// Its last answer, if it gave one.
    pub final_message: Option<String>,
    /// For a delegated agent: the agent that delegated to it. Absent for the run's own
    /// agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Depth in the delegation tree: 0 (absent) for the run's own agents.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub depth: u32,
    /// Its last answer was cut off by the output cap (it may be incomplete). In JSON only
    /// when true, so reports of agents that ended normally keep their shape.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// For serde: a depth of 0 (a run's own agent) is left out of JSON.
pub(crate) fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A whole run's result: the JSON that `-o FILE` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The run's id; its audit log is under `.codex/runs/<run_id>/`.
    pub run_id: String,
    /// One report per agent: the run's own agents in the order they were given, then the
    /// agents they delegated to (with `parent` set), in the order they started.
    pub agents: Vec<AgentReport>,
    /// Tokens charged over all agents.
    pub total_tokens: u64,
    /// The run's global budget.
    pub total_budget: u64,
    /// Wall-clock time of the run.
    pub wall_secs: f64,
    /// The run's own agents that completed (delegated agents report to their parents).
    pub success_count: usize,
    /// The run's own agents (not counting delegated ones).
    pub total_count: usize,
}

impl RunReport {
    /// Whether every agent completed.
    pub fn all_completed(&self) -> bool {
        self.success_count == self.total_count
    }

    /// The sum of the agents' own durations over the wall time: how much running them in
    /// parallel saved. `None` for a run that took no measurable time.
    pub fn speedup(&self) -> Option<f64> {
        // A delegated agent runs inside its parent's time.
        let sequential: f64 = self
            .agents
            .iter()
            .filter(|a| a.parent.is_none())
            .map(|a| a.duration_secs)
            .sum();
        (self.wall_secs > 0.0).then(|| sequential / self.wall_secs)
    }
}

/// How a tool call ended, in the audit log's `tool_call` records and the live
/// `tool_called` events: `ok`, `denied` (by the policy) or `error` (the tool failed, or the
/// call was refused before it ran).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolOutcome {
    /// The tool ran and returned its output.
    Ok,
    /// The policy denied an access the call needed; the tool did not run.
    Denied,
    /// The call failed: bad arguments, an unknown tool, or the tool's own error.
    Error,
}

impl ToolOutcome {
    /// `ok`, `denied` or `error`, as written in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolOutcome::Ok => "ok",
            ToolOutcome::Denied => "denied",
            ToolOutcome::Error => "error",
        }
    }
}

impl std::fmt::Display for ToolOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens during a run, for live output. Sent on the channel given to
/// [`crate::RunConfig::events`] by the supervisor (starts, restarts, ends) and by each agent
/// (its model calls, turns and tool calls); the run never waits for the receiver, and a
/// receiver that is gone is ignored.
///
/// Serialized (for `--json` output) as an object tagged by `type` in snake case, such as
/// `{"type":"tool_called","agent":"a","tool":"read_file","outcome":"ok"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// An agent (re)started; `attempt` counts from 1.
    AgentStarted {
        /// The agent.
        agent: String,
        /// Which attempt.
        attempt: u32,
    },
    /// An agent is about to call its model (its reservation was granted).
    ModelCallStarted {
        /// The agent.
        agent: String,
        /// Its attempt.
        attempt: u32,
        /// Turn within the attempt, from 1 (as attempts are).
        turn: u32,
    },
    /// A model call returned and its usage was committed to the budget.
    TurnCompleted {
        /// The agent.
        agent: String,
        /// Its attempt.
        attempt: u32,
        /// Turn within the attempt, from 1 (as attempts are).
        turn: u32,
        /// What the call used (reported, or estimated when the provider reported none).
        usage: Usage,
        /// The agent's usage over all its attempts after this call.
        tokens_used: u64,
        /// How many tool calls the model asked for.
        tool_calls: usize,
        /// The output cap cut the response off (absent when it did not).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    },
    /// A tool call is about to run (after its plan, before its policy decisions).
    ToolStarted {
        /// The agent.
        agent: String,
        /// The tool.
        tool: String,
    },
    /// A tool call ended.
    ToolCalled {
        /// The agent.
        agent: String,
        /// The tool.
        tool: String,
        /// How it ended.
        outcome: ToolOutcome,
    },
    /// An agent's attempt failed and a restart is scheduled.
    AgentRestarting {
        /// The agent.
        agent: String,
        /// Why the attempt failed.
        reason: String,
        /// Backoff before the restart, in milliseconds.
        delay_ms: u64,
    },
    /// An agent's conversation was brought under its context cap (see
    /// [`crate::context`]): `elided` tool outputs stubbed, `dropped` messages compacted.
    ContextCompacted {
        /// The agent.
        agent: String,
        /// The turn about to be taken.
        turn: u32,
        /// Tool outputs replaced by a stub.
        elided: usize,
        /// Messages dropped (0: eliding was enough).
        dropped: usize,
    },
    /// An agent delegated a goal: `agent` is the child, about to start.
    AgentDelegated {
        /// The child's name in the run (`parent/agent#n`).
        agent: String,
        /// The agent that delegated.
        parent: String,
        /// The budget carved out for the child.
        budget: u64,
    },
    /// An agent ended.
    AgentFinished(AgentReport),
}

impl RunEvent {
    /// The agent the event is about.
    pub fn agent(&self) -> &str {
        match self {
            RunEvent::AgentStarted { agent, .. }
            | RunEvent::ModelCallStarted { agent, .. }
            | RunEvent::TurnCompleted { agent, .. }
            | RunEvent::ToolStarted { agent, .. }
            | RunEvent::ToolCalled { agent, .. }
            | RunEvent::AgentRestarting { agent, .. }
            | RunEvent::ContextCompacted { agent, .. }
            | RunEvent::AgentDelegated { agent, .. } => agent,
            RunEvent::AgentFinished(report) => &report.agent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_outcomes_keep_their_wire_names() {
        for (outcome, wire) in [
            (ToolOutcome::Ok, "ok"),
            (ToolOutcome::Denied, "denied"),
            (ToolOutcome::Error, "error"),
        ] {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{wire}\""));
            assert_eq!(outcome.to_string(), wire);
            let back: ToolOutcome = serde_json::from_str(&json).unwrap();
            assert_eq!(back, outcome);
        }
    }
}
