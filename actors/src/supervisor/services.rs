//! The run's service actors (audit, budget, policy): spawned by the supervisor, and
//! restarted by [`crate::restart::decide`] with the services' policy when they exit. A
//! full disk under the audit log is not worth a restart: it stops the run at once.

use std::sync::Arc;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};

use super::{Child, SupervisorState};
use crate::audit::actor::{AuditActor, AuditArgs, DISK_FULL};
use crate::audit::AuditEvent;
use crate::budget::actor::{BudgetActor, BudgetArgs};
use crate::budget::LedgerOp;
use crate::identity::{service_name, ServiceKind};
use crate::policy::actor::PolicyActor;
use crate::protocol::{JournalPort, RunMsg};
use crate::report::AgentStatus;
use crate::restart::{decide, ExitKind, RestartDecision, RestartPolicy};

impl SupervisorState {
    pub(super) async fn spawn_service(
        &mut self,
        myself: &ActorRef<RunMsg>,
        kind: ServiceKind,
    ) -> Result<(), ActorProcessingErr> {
        let name = Some(service_name(&self.run_id, kind));
        let sup = myself.get_cell();
        let cell: ActorCell = match kind {
            ServiceKind::Audit => {
                let args = AuditArgs {
                    path: self.audit_path.clone(),
                    run_id: self.run_id.clone(),
                    redactor: Arc::clone(&self.redactor),
                    first: self.first_record.take(),
                };
                Actor::spawn_linked(name, AuditActor, args, sup)
                    .await?
                    .0
                    .into()
            }
            ServiceKind::Budget => {
                // Agents not running hold nothing: release what a lost release left open.
                for (i, slot) in self.agents.iter().enumerate() {
                    if !self.alive.contains_key(&i) {
                        let op = LedgerOp::EndAttempts(slot.spec.name.clone(), slot.attempts);
                        self.ledger.apply(&op);
                    }
                }
                let args = BudgetArgs {
                    ledger: self.ledger.clone(),
                    journal: Some(JournalPort::new(myself.clone())),
                };
                Actor::spawn_linked(name, BudgetActor, args, sup)
                    .await?
                    .0
                    .into()
            }
            ServiceKind::Policy => {
                let table = self.policies.clone();
                Actor::spawn_linked(name, PolicyActor, table, sup)
                    .await?
                    .0
                    .into()
            }
        };
        self.children.insert(cell.get_id(), Child::Service(kind));
        Ok(())
    }

    pub(super) fn service_exited(
        &mut self,
        myself: &ActorRef<RunMsg>,
        kind: ServiceKind,
        why: Option<String>,
    ) {
        if self.done.is_none() {
            return;
        }
        let why = why.unwrap_or_else(|| "stopped".into());
        if kind == ServiceKind::Audit && why.starts_with(DISK_FULL) {
            // Restarting cannot help: stop the run now, without waiting on the log.
            tracing::error!("{why}");
            self.services = self.services.without_audit();
            for t in self.tasks.drain(..) {
                t.abort();
            }
            let msg = format!("the run was stopped: {why}");
            self.cancel_all(AgentStatus::Failed, &msg);
            return;
        }
        let policy = RestartPolicy::service_default();
        let now = self.now();
        let history = self.service_history.entry(kind).or_default();
        match decide(&policy, history, now, ExitKind::Abnormal) {
            RestartDecision::Restart { delay } => {
                history.record(now, policy.period);
                tracing::warn!("{} service went down ({why}); restarting", kind.label());
                myself.send_after(delay, move || RunMsg::RestartService(kind));
                self.record(AuditEvent::ServiceRestarted {
                    service: kind.label().into(),
                    reason: why,
                });
            }
            RestartDecision::Escalate | RestartDecision::GiveUp | RestartDecision::Done => {
                let msg = format!(
                    "the {} service failed {} times within {:?} (last: {why}); the run was stopped so that no agent runs without it",
                    kind.label(),
                    policy.max_restarts + 1,
                    policy.period
                );
                tracing::error!("{msg}");
                self.cancel_all(AgentStatus::Failed, &msg);
            }
        }
    }
}
