//! The ExternalAgentActor: one attempt of a delegated agent that runs outside this process
//! (a [`crate::delegate::ExternalAgent`], such as a child `codex mcp-server`).
//!
//! The engine cannot meter another process's model calls one by one, so it meters the run
//! as one call: before it starts, the actor reserves the child's whole envelope (the most
//! the child may spend, which the external side is told and enforces); when it ends, the
//! actor commits the usage the external side reports. A report beyond the envelope is an
//! overrun, recorded and shown like a provider's. The run is audited like an agent's
//! (started, budget decisions, finished); its own model and tool calls are in the external
//! side's audit log.
//!
//! A kill (cancellation, deadline, the parent ending) drops the external future, which
//! must cancel the external run. An `Err` from the external side (the process died) fails
//! the attempt, and the supervisor decides whether to restart it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::audit::{AgentExecutionEvent, AuditEvent, BudgetOp};
use crate::budget::{ReservationId, ReserveOutcome, ReserveRequest};
use crate::delegate::ExternalAgent;
use crate::protocol::{AgentMsg, AgentOutcome, Services, SupervisorPort};
use crate::report::AgentStatus;
use crate::spec::AgentSpec;

/// Everything one attempt needs.
pub struct ExternalArgs {
    /// Which attempt, from 1.
    pub attempt: u32,
    /// When its first attempt started.
    pub first_started: DateTime<Utc>,
    /// Tokens spent by earlier attempts.
    pub tokens_before: u64,
    /// The child (its budget is the envelope).
    pub spec: Arc<AgentSpec>,
    /// Where it runs.
    pub runner: Arc<dyn ExternalAgent>,
    /// Its depth in the delegation tree.
    pub depth: u32,
    /// The run's services.
    pub services: Services,
    /// The attempt's handle on the run supervisor.
    pub supervisor: SupervisorPort,
}

/// See the module docs.
pub struct ExternalAgentActor;

impl Actor for ExternalAgentActor {
    type Msg = AgentMsg;
    type State = ExternalArgs;
    type Arguments = ExternalArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ExternalArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let event = AuditEvent::AgentStarted(AgentExecutionEvent::started(
            &state.spec.name,
            &state.spec.goal,
            state.attempt,
            state.first_started,
            state.tokens_before,
        ));
        state.services.record(event).await?;
        myself.send_message(AgentMsg::Step)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        AgentMsg::Step: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let outcome = state.run().await?;
        state.supervisor.done(outcome)?;
        myself.stop(None);
        Ok(())
    }
}

impl ExternalArgs {
    async fn run(&self) -> Result<AgentOutcome, ActorProcessingErr> {
        let id = ReservationId {
            agent: self.spec.name.clone(),
            attempt: self.attempt,
            turn: 0,
        };
        let wanted = self.spec.budget.saturating_sub(self.tokens_before);
        let req = ReserveRequest {
            id: id.clone(),
            prompt_tokens: 0,
            max_output_tokens: wanted,
            min_output_tokens: 1,
        };
        let grant = match self.services.reserve(req).await? {
            ReserveOutcome::Granted(g) => g,
            ReserveOutcome::Denied(d) => {
                let why = format!("budget exhausted: {} tokens left", d.available);
                // An external run's reservations record no `available` (0).
                let event = AuditEvent::budget_denied(&self.spec.name, wanted, 0, why.clone());
                self.services.record(event).await?;
                return Ok(outcome(AgentStatus::BudgetExceeded, None, Some(why)));
            }
        };
        let op = BudgetOp::Reserve;
        let event = AuditEvent::budget_granted(&self.spec.name, op, wanted, grant.granted, 0);
        self.services.record(event).await?;
        let mut spec = (*self.spec).clone();
        spec.budget = grant.granted;
        let result = self.runner.run(&spec, self.depth).await?;
        let s = self.services.commit(id, result.tokens_used).await?;
        let commit = AuditEvent::budget_settled(&self.spec.name, result.tokens_used, &s);
        self.services.record(commit).await?;
        for path in result.artifacts {
            self.supervisor.artifact(path);
        }
        if s.overrun > 0 {
            let error = format!(
                "the external agent reported {} tokens for an envelope of {}: {} over, recorded as an overrun",
                result.tokens_used, s.granted, s.overrun
            );
            return Ok(outcome(
                AgentStatus::BudgetExceeded,
                result.final_message,
                Some(error),
            ));
        }
        Ok(outcome(result.status, result.final_message, result.error))
    }
}

fn outcome(
    status: AgentStatus,
    final_message: Option<String>,
    error: Option<String>,
) -> AgentOutcome {
    AgentOutcome::new(status, final_message, error)
}
