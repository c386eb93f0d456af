//! How agents (and the supervisor's background tasks) reach the run's service actors: a
//! protocol-level client that knows the services' mailboxes, not the actors.
//!
//! Services are registered in ractor's registry under per-run names (`<run_id>/budget`, ...),
//! so a restarted service is found again under the same name with no reference to update.
//! Every call has a timeout (`call_t!`). A call that fails, because the service is down or
//! being restarted, is retried with exponential backoff until `wait` has passed; only then
//! does the caller see an error. The requests are idempotent (the budget ledger's
//! reservation ids are chosen by the caller; an audit record may at worst be written twice,
//! never lost), so a retry after a lost reply is safe.
//!
//! This is what keeps an agent from running unmetered, unaudited or unchecked while a
//! service restarts: it waits for the service, and if the service does not come back, its
//! attempt fails.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use ractor::{call_t, ActorRef, Message, MessagingErr, RpcReplyPort};

use super::audit::AuditMsg;
use super::budget::{BudgetMsg, Carved, Closed, EndedAttempts};
use super::policy::PolicyMsg;
use super::remote::{ServiceReply, ServiceRequest};
use crate::audit::AuditEvent;
use crate::budget::{
    CarveRequest, LedgerError, ReservationId, ReserveOutcome, ReserveRequest, Settlement,
};
pub use crate::identity::{service_name, ServiceKind};
use crate::policy::Decision;
use crate::tool::Access;

/// A service could not be reached within the wait, or refused the request.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ServiceError {
    /// Down for longer than the caller may wait.
    #[error("the {0} service did not answer within {1:?}")]
    Unavailable(&'static str, Duration),
    /// Stopped for good: the run is ending without it (see [`Services::without_audit`]).
    #[error("the {0} service was stopped for the rest of the run")]
    Stopped(&'static str),
    /// The budget ledger refused the request as malformed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The run refused a remote attempt's request (see [`ServiceLink`]).
    #[error("the run refused the request: {0}")]
    Refused(String),
}

/// How an attempt in another process reaches its run's services: the application's
/// transport carries each [`ServiceRequest`] to the run, which serves it with
/// [`Services::serve`]. Retries and repeats are the link's business (the run answers a
/// repeated request once, see [`crate::replies`]).
#[async_trait::async_trait]
pub trait ServiceLink: Send + Sync + std::fmt::Debug {
    /// Sends `request` and waits for the answer.
    async fn call(&self, request: ServiceRequest) -> Result<ServiceReply, ServiceError>;

    /// Sends `request` without waiting for its answer (an [`ServiceRequest::Append`]): it
    /// is delivered before anything sent after it.
    fn send(&self, request: ServiceRequest);
}

/// A handle on a run's services, cheap to clone.
#[derive(Debug, Clone)]
pub struct Services {
    /// The services' registry names, by [`ServiceKind`] (built once: looked up per call).
    names: Arc<[String; 3]>,
    call_timeout: Duration,
    wait: Duration,
    /// The audit log can no longer be written (a full disk) and the run is ending: audit
    /// calls fail at once instead of waiting for a service that will not come back.
    audit_lost: bool,
    /// Set for an attempt in another process: every request goes through the link.
    link: Option<Arc<dyn ServiceLink>>,
}

impl Services {
    /// Services of `run_id`; each call times out after `call_timeout` and is retried until
    /// `wait` has passed.
    pub fn new(run_id: impl Into<String>, call_timeout: Duration, wait: Duration) -> Self {
        let run_id = run_id.into();
        let name = |kind| service_name(&run_id, kind);
        let names = [
            name(ServiceKind::Budget),
            name(ServiceKind::Audit),
            name(ServiceKind::Policy),
        ];
        Self {
            names: Arc::new(names),
            call_timeout,
            wait,
            audit_lost: false,
            link: None,
        }
    }

    /// Services reached through `link`, for an attempt running in another process.
    pub fn linked(link: Arc<dyn ServiceLink>) -> Self {
        Self {
            names: Arc::new(Default::default()),
            call_timeout: Duration::ZERO,
            wait: Duration::ZERO,
            audit_lost: false,
            link: Some(link),
        }
    }

    /// These services without the audit service: its calls fail at once. For the end of a
    /// run whose audit log can no longer be written.
    pub fn without_audit(&self) -> Self {
        Self {
            audit_lost: true,
            ..self.clone()
        }
    }

    fn name(&self, kind: ServiceKind) -> &str {
        let i = match kind {
            ServiceKind::Budget => 0,
            ServiceKind::Audit => 1,
            ServiceKind::Policy => 2,
        };
        &self.names[i]
    }

    /// Reserves tokens (see [`crate::budget::BudgetLedger::reserve`]).
    pub async fn reserve(&self, req: ReserveRequest) -> Result<ReserveOutcome, ServiceError> {
        match self.request(ServiceRequest::Reserve(req)).await? {
            ServiceReply::Reserved(r) => Ok(r?),
            other => Err(unexpected(other)),
        }
    }

    /// Commits usage (see [`crate::budget::BudgetLedger::commit`]).
    pub async fn commit(&self, id: ReservationId, used: u64) -> Result<Settlement, ServiceError> {
        match self.request(ServiceRequest::Commit { id, used }).await? {
            ServiceReply::Committed(r) => Ok(r?),
            other => Err(unexpected(other)),
        }
    }

    /// Ends an agent's attempts up to `through_attempt`, charging their calls still in
    /// flight.
    pub async fn end_attempts(
        &self,
        agent: &str,
        through_attempt: u32,
    ) -> Result<EndedAttempts, ServiceError> {
        self.local_only("ending attempts")?;
        let r = self
            .call(ServiceKind::Budget, |reply| {
                BudgetMsg::EndAttempts(agent.to_owned(), through_attempt, reply)
            })
            .await?;
        Ok(r?)
    }

    /// Commits a call's usage and appends its record (`call`) with the commit's own: in one
    /// request, so an attempt in another process that dies after its commit cannot leave
    /// the ledger charged without the records of the call.
    pub async fn commit_recorded(
        &self,
        id: ReservationId,
        used: u64,
        call: AuditEvent,
    ) -> Result<Settlement, ServiceError> {
        let request = ServiceRequest::CommitRecorded {
            id,
            used,
            call: Box::new(call),
        };
        match self.request(request).await? {
            ServiceReply::Committed(r) => Ok(r?),
            other => Err(unexpected(other)),
        }
    }

    /// Carves a delegated agent's budget out of its parent's (see
    /// [`crate::budget::BudgetLedger::carve`]).
    pub async fn carve(&self, req: CarveRequest) -> Result<Carved, ServiceError> {
        self.local_only("carving a budget")?;
        let r = self
            .call(ServiceKind::Budget, |reply| {
                BudgetMsg::Carve(req.clone(), reply)
            })
            .await?;
        Ok(r?)
    }

    /// Closes a delegated agent's account (see [`crate::budget::BudgetLedger::close`]).
    pub async fn close(&self, child: &str) -> Result<Closed, ServiceError> {
        self.local_only("closing an account")?;
        let r = self
            .call(ServiceKind::Budget, |reply| {
                BudgetMsg::Close(child.to_owned(), reply)
            })
            .await?;
        Ok(r?)
    }

    /// Asks the PolicyActor about one access of `agent`.
    pub async fn decide(&self, agent: &str, access: &Access) -> Result<Decision, ServiceError> {
        let request = ServiceRequest::Decide {
            agent: agent.to_owned(),
            access: access.clone(),
        };
        match self.request(request).await? {
            ServiceReply::Decided(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    /// Appends an event to the audit log; returns its sequence number once it is written.
    pub async fn record(&self, event: AuditEvent) -> Result<u64, ServiceError> {
        match self.request(ServiceRequest::Record(event)).await? {
            ServiceReply::Recorded(seq) => Ok(seq),
            other => Err(unexpected(other)),
        }
    }

    /// Appends events (as consecutive lines) without waiting for them to be on disk: they
    /// are committed with the AuditActor's current batch, and a later [`Services::record`]
    /// or [`Services::flush_audit`] of this caller returns only once they are (see
    /// [`AuditMsg::Append`]). When the AuditActor is not there (restarting), waits like
    /// [`Services::record_all`] instead, so nothing is lost.
    pub async fn append(&self, events: Vec<AuditEvent>) -> Result<(), ServiceError> {
        if self.audit_lost {
            return Err(ServiceError::Stopped(ServiceKind::Audit.label()));
        }
        if let Some(link) = &self.link {
            link.send(ServiceRequest::Append(events));
            return Ok(());
        }
        self.append_here(events).await
    }

    async fn append_here(&self, events: Vec<AuditEvent>) -> Result<(), ServiceError> {
        let Some(actor) = ActorRef::<AuditMsg>::where_is(self.name(ServiceKind::Audit)) else {
            return self.record_all_here(events).await.map(|_| ());
        };
        // A send to a stopped actor hands the message back: no copy on the hot path.
        match actor.send_message(AuditMsg::Append(events)) {
            Ok(()) => Ok(()),
            Err(MessagingErr::SendErr(AuditMsg::Append(events))) => {
                self.record_all_here(events).await.map(|_| ())
            }
            Err(_) => Err(ServiceError::Stopped(ServiceKind::Audit.label())),
        }
    }

    /// Appends several events as consecutive lines, waiting once; returns the last one's
    /// sequence number once all are written.
    pub async fn record_all(&self, events: Vec<AuditEvent>) -> Result<u64, ServiceError> {
        match self.request(ServiceRequest::RecordAll(events)).await? {
            ServiceReply::Recorded(seq) => Ok(seq),
            other => Err(unexpected(other)),
        }
    }

    /// Makes the audit log durable (fsync).
    pub async fn flush_audit(&self) -> Result<(), ServiceError> {
        match self.request(ServiceRequest::Flush).await? {
            ServiceReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Sends `request` through the link of an attempt in another process, or serves it
    /// here.
    async fn request(&self, request: ServiceRequest) -> Result<ServiceReply, ServiceError> {
        match &self.link {
            Some(link) => link.call(request).await,
            None => self.serve(request).await,
        }
    }

    /// Serves `request` with this process's service actors: what a run does with the
    /// requests of its attempts in other processes.
    pub async fn serve(&self, request: ServiceRequest) -> Result<ServiceReply, ServiceError> {
        use ServiceKind::{Audit, Budget, Policy};
        Ok(match request {
            ServiceRequest::Reserve(req) => ServiceReply::Reserved(
                self.call(Budget, |r| BudgetMsg::Reserve(req.clone(), r))
                    .await?,
            ),
            ServiceRequest::Commit { id, used } => ServiceReply::Committed(
                self.call(Budget, |r| BudgetMsg::Commit(id.clone(), used, r))
                    .await?,
            ),
            ServiceRequest::CommitRecorded { id, used, call } => {
                let agent = id.agent.clone();
                let settled = self
                    .call(Budget, |r| BudgetMsg::Commit(id.clone(), used, r))
                    .await?;
                if let Ok(s) = &settled {
                    let commit = AuditEvent::budget_settled(&agent, used, s);
                    self.append_here(vec![*call, commit]).await?;
                }
                ServiceReply::Committed(settled)
            }
            ServiceRequest::Decide { agent, access } => ServiceReply::Decided(
                self.call(Policy, |reply| PolicyMsg::Decide {
                    agent: agent.clone(),
                    access: access.clone(),
                    reply,
                })
                .await?,
            ),
            ServiceRequest::Record(event) => ServiceReply::Recorded(
                self.call(Audit, |r| AuditMsg::Record(event.clone(), r))
                    .await?,
            ),
            ServiceRequest::RecordAll(events) => {
                ServiceReply::Recorded(self.record_all_here(events).await?)
            }
            ServiceRequest::Append(events) => {
                self.append_here(events).await?;
                ServiceReply::Done
            }
            ServiceRequest::Flush => {
                self.call(Audit, AuditMsg::Flush).await?;
                ServiceReply::Done
            }
        })
    }

    async fn record_all_here(&self, events: Vec<AuditEvent>) -> Result<u64, ServiceError> {
        self.call(ServiceKind::Audit, |reply| {
            AuditMsg::RecordAll(events.clone(), reply)
        })
        .await
    }

    /// Fails at once for an attempt in another process: ending attempts and carving
    /// budgets are the run supervisor's, never a remote attempt's.
    fn local_only(&self, what: &str) -> Result<(), ServiceError> {
        match &self.link {
            Some(_) => Err(ServiceError::Refused(format!(
                "{what} is not available to an attempt on a worker"
            ))),
            None => Ok(()),
        }
    }

    async fn call<M, T, F>(&self, kind: ServiceKind, build: F) -> Result<T, ServiceError>
    where
        M: Message,
        T: Send + 'static,
        F: Fn(RpcReplyPort<T>) -> M,
    {
        if kind == ServiceKind::Audit && self.audit_lost {
            return Err(ServiceError::Stopped(kind.label()));
        }
        let name = self.name(kind);
        let timeout_ms = self.call_timeout.as_millis() as u64;
        let attempt = || async {
            let actor = ActorRef::<M>::where_is(name).ok_or(())?;
            match call_t!(actor, &build, timeout_ms) {
                Ok(value) => Ok(value),
                Err(_) => Err(()),
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(5))
            .with_max_delay(Duration::from_millis(250))
            .with_max_times(usize::MAX)
            .with_total_delay(Some(self.wait));
        attempt
            .retry(backoff)
            .await
            .map_err(|()| ServiceError::Unavailable(kind.label(), self.wait))
    }
}

fn unexpected(reply: ServiceReply) -> ServiceError {
    ServiceError::Refused(format!(
        "an answer that does not match the request: {reply:?}"
    ))
}
