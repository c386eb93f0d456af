//! The audit log's records: one JSON object per line, tagged by `type`.
//!
//! Every record carries the run id, a sequence number (gapless from 1, continued across
//! AuditActor restarts), a UTC timestamp, and its place in the hash chain (`prev_hash`,
//! `hash`; see [`super::chain`] for exactly what is hashed). A record about a delegated
//! agent also carries its `parent` and `depth` (read from its name:
//! [`crate::identity::AgentName`]). The agent start and finish records keep the field
//! names of the `AgentExecutionEvent` of the system this project is modelled on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::budget::Settlement;
use crate::context::Retention;
use crate::model::Usage;
use crate::report::{AgentStatus, ToolOutcome};
use crate::tool::{Access, DelegateRequest};

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When the AuditActor wrote it.
    pub ts: DateTime<Utc>,
    /// The run it belongs to.
    pub run_id: String,
    /// The hash of the line before ([`super::chain::GENESIS`] for the first line).
    #[serde(default)]
    pub prev_hash: String,
    /// SHA-256 (lowercase hex) of this line without its `hash` member.
    #[serde(default)]
    pub hash: String,
    /// For a record about a delegated agent: the agent that delegated to it (absent for
    /// the run's own agents and for records about no agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For a record about a delegated agent: its depth in the delegation tree (absent, 0,
    /// for the run's own agents).
    #[serde(default, skip_serializing_if = "crate::report::is_zero")]
    pub depth: u32,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// An agent starting or finishing (the seed's `AgentExecutionEvent`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentExecutionEvent {
    /// The agent.
    pub agent_name: String,
    /// Which attempt, from 1.
    pub attempt: u32,
    /// `running` at start; the final status at the end.
    pub status: AgentStatus,
    /// Its goal.
    pub goal: String,
    /// When the agent first started (RFC 3339).
    pub start_time: DateTime<Utc>,
    /// When it finished, for a finish record.
    pub end_time: Option<DateTime<Utc>>,
    /// From first start to finish, for a finish record.
    pub duration_secs: Option<f64>,
    /// Tokens charged so far.
    pub tokens_used: u64,
    /// Files it wrote.
    pub artifacts: Vec<String>,
    /// Why it did not complete.
    pub error: Option<String>,
}

impl AgentExecutionEvent {
    /// The start record of attempt `attempt` of `agent`: `running`, dated from the agent's
    /// first start, with the tokens its earlier attempts spent.
    pub fn started(
        agent: &str,
        goal: &str,
        attempt: u32,
        first_started: DateTime<Utc>,
        tokens_before: u64,
    ) -> Self {
        Self {
            agent_name: agent.to_owned(),
            attempt,
            status: AgentStatus::Running,
            goal: goal.to_owned(),
            start_time: first_started,
            end_time: None,
            duration_secs: None,
            tokens_used: tokens_before,
            artifacts: Vec::new(),
            error: None,
        }
    }
}

/// What a budget operation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetOp {
    /// A reservation before a model call.
    Reserve,
    /// The actual usage after a model call.
    Commit,
    /// Reservations given back (an agent ended, crashed or was cancelled). Written by
    /// earlier versions; a call abandoned in flight is now [`BudgetOp::ChargeInFlight`].
    Release,
    /// An attempt ended (crashed, cancelled, deadline) while a model call was in flight:
    /// its whole reservation is charged (`granted`), since the provider may have served it.
    ChargeInFlight,
    /// A delegated agent's budget carved out of its parent's (`agent` is the parent).
    Carve,
    /// A delegated agent ended: what was left of its budget went back to its parent
    /// (`agent` is the child).
    Close,
}

/// Every record type, as its `type` tag: the one list that `codex audit show --type`, the
/// docs and the tests use.
pub const KINDS: [&str; 16] = [
    "run_started",
    "agent_started",
    "agent_finished",
    "model_call",
    "budget_decision",
    "policy_decision",
    "tool_call",
    "agent_delegated",
    "agent_restarted",
    "context_compacted",
    "service_restarted",
    "run_finished",
    "worktree",
    "server_started",
    "attempt_placed",
    "remote_refused",
];

/// What happened to an isolated agent's worktree ([`AuditEvent::Worktree`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorktreeAction {
    /// Created before the agent started.
    Created,
    /// The agent's change was stored when the run ended.
    ChangeRecorded,
}

/// Everything the audit log records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditEvent {
    /// The run began.
    RunStarted {
        /// The agents, in order.
        agents: Vec<String>,
        /// The global budget.
        total_budget: u64,
    },
    /// An agent attempt began.
    AgentStarted(AgentExecutionEvent),
    /// An agent ended for good.
    AgentFinished(AgentExecutionEvent),
    /// A model call and what it cost.
    ModelCall {
        /// The agent.
        agent: String,
        /// Its attempt.
        attempt: u32,
        /// Turn within the attempt, from 1 (as attempts are).
        turn: u32,
        /// The model's name.
        model: String,
        /// Tokens granted for the call (prompt estimate + output).
        granted: u64,
        /// The output cap sent with the call.
        max_output_tokens: u64,
        /// Usage reported (or estimated, if the provider reported none).
        usage: Usage,
        /// Whether `usage` is the engine's estimate rather than the provider's report.
        usage_estimated: bool,
        /// How many tool calls the model asked for.
        tool_calls: usize,
        /// Why the call failed, if it did.
        error: Option<String>,
        /// The output cap cut the response off (absent when it did not).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    },
    /// A decision of the BudgetActor.
    BudgetDecision {
        /// The agent.
        agent: String,
        /// The operation.
        op: BudgetOp,
        /// Tokens asked for (reserve) or reported used (commit).
        requested: u64,
        /// Tokens granted (reserve; 0 if denied), or charged (commit).
        granted: u64,
        /// Tokens given back to the pool.
        released: u64,
        /// Usage beyond the grant (commit); non-zero stops the agent.
        overrun: u64,
        /// What the agent may still reserve after this operation.
        available: u64,
        /// Why a reservation was denied.
        denied: Option<String>,
    },
    /// A decision of the PolicyActor.
    PolicyDecision {
        /// The agent.
        agent: String,
        /// The tool whose call needed it.
        tool: String,
        /// What was asked for.
        access: Access,
        /// The verdict.
        allowed: bool,
        /// The rule that decided.
        rule: String,
    },
    /// A tool call, after its policy decisions.
    ToolCall {
        /// The agent.
        agent: String,
        /// The tool.
        tool: String,
        /// The model's id for the call.
        call_id: String,
        /// The arguments (cut to 2 KiB).
        arguments: String,
        /// How it ended (`ok`, `denied` or `error`).
        outcome: ToolOutcome,
        /// The error or denial, if any.
        error: Option<String>,
        /// Size of the output returned to the model.
        output_bytes: usize,
        /// The OS sandbox the call's program ran in (`shell`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sandbox: Option<String>,
    },
    /// An agent delegated a goal to another agent (the `delegate` tool); `refused` says
    /// why no child was started.
    AgentDelegated {
        /// The delegating agent.
        agent: String,
        /// The child's name in this run (`parent/agent#n`), if one was created.
        child: Option<String>,
        /// The agent delegated to, by definition name.
        target: String,
        /// The child's depth in the delegation tree (1 for a top-level agent's child). Not
        /// `depth`: that is the record's own, the delegating agent's.
        child_depth: u32,
        /// The goal given.
        goal: String,
        /// How the child runs: `in-process`, or an external agent's transport (`mcp`).
        transport: Option<String>,
        /// The budget asked for.
        wanted: u64,
        /// The budget carved out of the parent's (0 if refused).
        envelope: u64,
        /// Why the delegation was refused.
        refused: Option<String>,
    },
    /// An agent attempt failed and the supervisor scheduled a restart.
    AgentRestarted {
        /// The agent.
        agent: String,
        /// The attempt that will start.
        attempt: u32,
        /// Backoff before it.
        delay_ms: u64,
        /// Why the previous attempt failed.
        reason: String,
    },
    /// An agent's conversation was brought under its context cap before a call: old tool
    /// outputs elided, then, if needed, earlier turns dropped (with a handoff note written
    /// by the model call just before this record, when `retention` is `job`).
    ContextCompacted {
        /// The agent.
        agent: String,
        /// The turn about to be taken.
        turn: u32,
        /// Tool outputs replaced by a stub.
        elided: usize,
        /// Messages dropped from the conversation (0: eliding was enough).
        dropped: usize,
        /// What survived the drop: `job`, `turn` or `none`.
        retention: Retention,
        /// The prompt's estimated tokens afterwards.
        prompt_tokens: u64,
        /// The most prompt tokens the cap allows.
        cap: u64,
    },
    /// A service actor (budget, audit, policy) was restarted.
    ServiceRestarted {
        /// `budget`, `audit` or `policy`.
        service: String,
        /// Why it went down.
        reason: String,
    },
    /// An isolated agent's git worktree (the application's: the engine only records it):
    /// `created` at its base `commit` before the agent started, or `change_recorded` when
    /// the run ended (`commit`: the result; `sha256`: of the change's patch).
    Worktree {
        /// The agent.
        agent: String,
        /// What happened.
        action: WorktreeAction,
        /// The base commit (`created`) or the result commit (`change_recorded`).
        commit: String,
        /// SHA-256 of the change's patch (`change_recorded`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// Files the change touches (`change_recorded`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files: Option<usize>,
    },
    /// A worker claimed an agent's attempt and runs it (a run with remote attempts).
    AttemptPlaced {
        /// The agent.
        agent: String,
        /// Which attempt.
        attempt: u32,
        /// The worker's name.
        worker: String,
    },
    /// The run refused what a remote attempt said: the attempt was no longer the agent's
    /// current one (a worker that was partitioned or paused and came back), another worker
    /// had claimed it, or it acted for another agent. Nothing it asked for was applied.
    RemoteRefused {
        /// The agent.
        agent: String,
        /// The attempt that spoke.
        attempt: u32,
        /// The worker that said it.
        worker: String,
        /// What it said (`commit`, `reserve`, `done`, ...).
        request: String,
        /// Why it was refused.
        why: String,
    },
    /// A long-lived tool server the application started for the run's agents (an MCP
    /// server; the engine only records it): the OS sandbox it runs in, or why it runs
    /// without one.
    ServerStarted {
        /// The server's name.
        server: String,
        /// Its OS sandbox, described, when it runs in one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sandbox: Option<String>,
        /// Why it runs with the application's own rights, when it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unsandboxed: Option<String>,
    },
    /// The run ended.
    RunFinished {
        /// Tokens charged over all agents.
        total_tokens: u64,
        /// Agents that completed.
        success_count: usize,
        /// Agents in the run.
        total_count: usize,
        /// Wall-clock time.
        wall_secs: f64,
        /// Whether it was cancelled.
        cancelled: bool,
    },
}

/// Named constructors for the records built in more than one place.
impl AuditEvent {
    /// A budget decision that granted `granted` of `requested` tokens and released none: a
    /// reservation, a carve, a call left in flight charged in full.
    pub fn budget_granted(
        agent: &str,
        op: BudgetOp,
        requested: u64,
        granted: u64,
        available: u64,
    ) -> Self {
        AuditEvent::BudgetDecision {
            agent: agent.to_owned(),
            op,
            requested,
            granted,
            released: 0,
            overrun: 0,
            available,
            denied: None,
        }
    }

    /// A reservation of `requested` tokens denied because of `why`.
    pub fn budget_denied(agent: &str, requested: u64, available: u64, why: String) -> Self {
        AuditEvent::BudgetDecision {
            agent: agent.to_owned(),
            op: BudgetOp::Reserve,
            requested,
            granted: 0,
            released: 0,
            overrun: 0,
            available,
            denied: Some(why),
        }
    }

    /// A commit of `used` tokens, as the ledger settled it.
    pub fn budget_settled(agent: &str, used: u64, settlement: &Settlement) -> Self {
        AuditEvent::BudgetDecision {
            agent: agent.to_owned(),
            op: BudgetOp::Commit,
            requested: used,
            granted: settlement.charged,
            released: settlement.released,
            overrun: settlement.overrun,
            available: settlement.available,
            denied: None,
        }
    }

    /// Tokens given back (`released`) by `op`, such as a delegated agent's account closed.
    pub fn budget_released(agent: &str, op: BudgetOp, released: u64, available: u64) -> Self {
        AuditEvent::BudgetDecision {
            agent: agent.to_owned(),
            op,
            requested: 0,
            granted: 0,
            released,
            overrun: 0,
            available,
            denied: None,
        }
    }

    /// The `agent_delegated` record of `request` by `parent`, before anything is known of
    /// the child (no child, no envelope, not refused).
    pub fn delegation(parent: &str, child_depth: u32, request: &DelegateRequest) -> Self {
        AuditEvent::AgentDelegated {
            agent: parent.to_owned(),
            child: None,
            target: request.agent.clone(),
            child_depth,
            goal: request.goal.clone(),
            transport: None,
            wanted: request.budget.unwrap_or(0),
            envelope: 0,
            refused: None,
        }
    }
}

impl AuditEvent {
    /// The record's `type` tag, such as `tool_call` (one of [`KINDS`]).
    pub fn kind(&self) -> &'static str {
        // Exhaustive: a new record type must take its place in `KINDS` here.
        KINDS[match self {
            AuditEvent::RunStarted { .. } => 0,
            AuditEvent::AgentStarted(_) => 1,
            AuditEvent::AgentFinished(_) => 2,
            AuditEvent::ModelCall { .. } => 3,
            AuditEvent::BudgetDecision { .. } => 4,
            AuditEvent::PolicyDecision { .. } => 5,
            AuditEvent::ToolCall { .. } => 6,
            AuditEvent::AgentDelegated { .. } => 7,
            AuditEvent::AgentRestarted { .. } => 8,
            AuditEvent::ContextCompacted { .. } => 9,
            AuditEvent::ServiceRestarted { .. } => 10,
            AuditEvent::RunFinished { .. } => 11,
            AuditEvent::Worktree { .. } => 12,
            AuditEvent::ServerStarted { .. } => 13,
            AuditEvent::AttemptPlaced { .. } => 14,
            AuditEvent::RemoteRefused { .. } => 15,
        }]
    }

    /// The agent the event is about, if any.
    pub fn agent(&self) -> Option<&str> {
        match self {
            AuditEvent::AgentStarted(e) | AuditEvent::AgentFinished(e) => Some(&e.agent_name),
            AuditEvent::ModelCall { agent, .. }
            | AuditEvent::BudgetDecision { agent, .. }
            | AuditEvent::PolicyDecision { agent, .. }
            | AuditEvent::ToolCall { agent, .. }
            | AuditEvent::AgentDelegated { agent, .. }
            | AuditEvent::AgentRestarted { agent, .. }
            | AuditEvent::ContextCompacted { agent, .. }
            | AuditEvent::Worktree { agent, .. }
            | AuditEvent::AttemptPlaced { agent, .. }
            | AuditEvent::RemoteRefused { agent, .. } => Some(agent),
            AuditEvent::RunStarted { .. }
            | AuditEvent::ServiceRestarted { .. }
            | AuditEvent::ServerStarted { .. }
            | AuditEvent::RunFinished { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_distinct() {
        let set: std::collections::BTreeSet<_> = KINDS.iter().collect();
        assert_eq!(set.len(), KINDS.len());
    }

    #[test]
    fn kind_is_the_serialized_type_tag() {
        let events = [
            AuditEvent::RunStarted {
                agents: vec![],
                total_budget: 0,
            },
            AuditEvent::ServiceRestarted {
                service: "audit".into(),
                reason: "x".into(),
            },
            AuditEvent::RunFinished {
                total_tokens: 0,
                success_count: 0,
                total_count: 0,
                wall_secs: 0.0,
                cancelled: false,
            },
            AuditEvent::AgentRestarted {
                agent: "a".into(),
                attempt: 2,
                delay_ms: 1,
                reason: "x".into(),
            },
            AuditEvent::AgentDelegated {
                agent: "a".into(),
                child: Some("a/b#1".into()),
                target: "b".into(),
                child_depth: 1,
                goal: "g".into(),
                transport: Some("in-process".into()),
                wanted: 10,
                envelope: 10,
                refused: None,
            },
            AuditEvent::ServerStarted {
                server: "s".into(),
                sandbox: None,
                unsandboxed: Some("why".into()),
            },
        ];
        for e in events {
            let tag = serde_json::to_value(&e).unwrap()["type"].clone();
            assert_eq!(tag, e.kind(), "{e:?}");
        }
    }
}
