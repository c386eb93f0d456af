//! The supervisor's background work: audit records and budget releases that wait for a
//! service (so the supervisor never does), the opening and closing records, and the final
//! report once every agent is final and every task has finished.

use ractor::ActorRef;
use tokio::task::JoinHandle;

use super::SupervisorState;
use crate::audit::{AuditEvent, BudgetOp};
use crate::protocol::{EndedAttempts, RunMsg, ServiceError};
use crate::report::{AgentReport, AgentStatus, RunReport};

impl SupervisorState {
    /// Keeps `task` to wait for before the run is reported, forgetting those already done
    /// (so a long run does not pile up finished handles).
    pub(super) fn background(&mut self, task: JoinHandle<()>) {
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(task);
    }

    /// Records an audit event from a background task that waits for the AuditActor.
    pub(super) fn record(&mut self, event: AuditEvent) {
        let services = self.services.clone();
        self.background(tokio::spawn(async move {
            if let Err(e) = services.record(event).await {
                record_lost(&e);
            }
        }));
    }

    /// Records `event`, then (after `delay`) sends `then` to the supervisor: what `then`
    /// starts is never recorded before the event that explains it.
    pub(super) fn record_then(
        &mut self,
        event: AuditEvent,
        me: ActorRef<RunMsg>,
        delay: std::time::Duration,
        then: RunMsg,
    ) {
        let services = self.services.clone();
        self.background(tokio::spawn(async move {
            if let Err(e) = services.record(event).await {
                record_lost(&e);
            }
            me.send_after(delay, move || then);
        }));
    }

    /// `run_started` is on disk: the application's opening records follow, then agents
    /// may start.
    pub(super) async fn begin(&mut self) {
        let opening = std::mem::take(&mut self.opening);
        if !opening.is_empty() {
            if let Err(e) = self.services.record_all(opening).await {
                record_lost(&e);
            }
        }
        self.begun = true;
    }

    /// Ends an agent's attempt (it ended, crashed or was killed): a model call it left in
    /// flight is charged in full, and audited, from a background task.
    pub(super) fn end_attempt(&mut self, agent: &str, attempt: u32) {
        let services = self.services.clone();
        let agent = agent.to_owned();
        self.background(tokio::spawn(async move {
            let ended = services.end_attempts(&agent, attempt).await;
            let EndedAttempts { charged, available } = match ended {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("could not end the attempt of {agent}: {e}");
                    return;
                }
            };
            if charged == 0 {
                return;
            }
            let op = BudgetOp::ChargeInFlight;
            let event = AuditEvent::budget_granted(&agent, op, charged, charged, available);
            if let Err(e) = services.record(event).await {
                record_lost(&e);
            }
        }));
    }

    /// Once every agent is final, waits (in a task) for the background work, then reports.
    pub(super) fn maybe_drain(&mut self, myself: &ActorRef<RunMsg>) {
        if self.draining || !self.agents.iter().all(|a| a.is_final()) {
            return;
        }
        self.draining = true;
        let mut tasks = std::mem::take(&mut self.tasks);
        // Every agent is final: what the checkpoint writer still holds is of no use
        // (`codex resume` never continues a final agent); it stops at its next file.
        if let Some((store, writer)) = self.checkpoint_store.take() {
            store.abandon();
            tasks.push(writer);
        }
        let me = myself.clone();
        tokio::spawn(async move {
            for t in tasks {
                let _ = t.await;
            }
            let _ = me.cast(RunMsg::Drained);
        });
    }

    /// The drain finished: report, unless work started meanwhile (a late child's account
    /// closing), which the next drain waits for.
    pub(super) fn drained(&mut self, myself: &ActorRef<RunMsg>) {
        if self.tasks.iter().any(|t| !t.is_finished()) {
            self.draining = false;
        } else {
            self.finalize(myself);
        }
    }

    fn finalize(&mut self, myself: &ActorRef<RunMsg>) {
        let report = self.report();
        let services = self.services.clone();
        let me = myself.clone();
        let finished = AuditEvent::RunFinished {
            total_tokens: report.total_tokens,
            success_count: report.success_count,
            total_count: report.total_count,
            wall_secs: report.wall_secs,
            cancelled: self.cancelled,
        };
        let closing = self.closing.take();
        tokio::spawn(async move {
            if let Some(closing) = closing {
                let records = closing.records().await;
                if !records.is_empty() {
                    if let Err(e) = services.record_all(records).await {
                        record_lost(&e);
                    }
                }
            }
            if let Err(e) = services.record(finished).await {
                record_lost(&e);
            }
            if let Err(e) = services.flush_audit().await {
                record_lost(&e);
            }
            let _ = me.cast(RunMsg::Finalized(Box::new(report)));
        });
    }

    /// The run's report, with token counts from the supervisor's copy of the ledger.
    fn report(&self) -> RunReport {
        let agents: Vec<AgentReport> = self
            .agents
            .iter()
            .filter_map(|slot| {
                let mut r = slot.report()?.clone();
                r.tokens_used = self.tokens_used(&r.agent);
                Some(r)
            })
            .collect();
        let own: Vec<&AgentReport> = agents.iter().filter(|a| a.parent.is_none()).collect();
        RunReport {
            run_id: self.run_id.clone(),
            success_count: own
                .iter()
                .filter(|a| a.status == AgentStatus::Completed)
                .count(),
            total_count: own.len(),
            total_tokens: self.ledger.global().used(),
            total_budget: self.ledger.global().limit,
            wall_secs: self.started.elapsed().as_secs_f64(),
            agents,
        }
    }
}

/// Logs an audit record that could not be written, unless the audit log was given up for
/// good (a full disk: said once, when it happened).
pub(super) fn record_lost(e: &ServiceError) {
    if !matches!(e, ServiceError::Stopped(_)) {
        tracing::error!("audit record lost: {e}");
    }
}
