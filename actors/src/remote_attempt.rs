//! The RemoteAttemptActor: the run's side of an agent attempt that runs on a worker (see
//! [`crate::protocol::remote`]).
//!
//! To its supervisor it is an agent attempt like any other: it exits normally once the
//! attempt reported its outcome, abnormally when the attempt failed or was lost, and the
//! supervisor's restart rules decide what comes next (a new attempt, placed again, which
//! any worker may take, continuing from the last checkpoint this actor passed on).
//!
//! It is also the fence around the attempt. It serves what the worker says one message at
//! a time, in order, and only while it lives, so a lost attempt's late messages reach no
//! one and are refused by the transport. While it lives it refuses: anything from a worker
//! other than the one that claimed the attempt; service requests that act for another
//! agent or another attempt, or write records about another agent; and it answers a
//! repeated message with its first answer ([`ReplyCache`]), so a redelivery is never
//! applied twice.
//!
//! Liveness: once claimed, the attempt must say something, or its worker's heartbeat must
//! arrive ([`Inbound::Alive`]), within [`RemoteHost::silence_limit`]; otherwise the actor
//! fails with "lost". Before a worker claims it, the attempt waits in the queue without a
//! limit (its deadline, if any, still applies: the supervisor kills it).

use std::path::PathBuf;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use crate::audit::AuditEvent;
use crate::protocol::{
    AgentMsg, AgentOutcome, AttemptAnswer, AttemptOrder, AttemptSays, Inbound, RemoteHost,
    ServiceRequest, Services, SupervisorPort,
};
use crate::replies::{ReplyCache, Seen};

/// Everything one remote attempt needs.
pub struct RemoteArgs {
    /// What the worker runs.
    pub order: AttemptOrder,
    /// Where the attempt's change goes on the run's side (the agent's root).
    pub root: PathBuf,
    /// The application's transport.
    pub host: Arc<dyn RemoteHost>,
    /// The run's services.
    pub services: Services,
    /// The attempt's handle on the run supervisor.
    pub supervisor: SupervisorPort,
}

/// See the module docs.
pub struct RemoteAttemptActor;

/// The attempt as the run sees it.
pub struct RemoteState {
    args: RemoteArgs,
    inbound: mpsc::Receiver<Inbound>,
    /// Ends the attempt on the transport when the actor stops.
    _guard: Box<dyn Send + Sync>,
    /// The worker that claimed it.
    worker: Option<String>,
    replies: ReplyCache<AttemptAnswer>,
}

/// What comes after a message.
enum Next {
    Continue,
    Done(AgentOutcome, Option<String>),
    Failed(String),
}

impl Actor for RemoteAttemptActor {
    type Msg = AgentMsg;
    type State = RemoteState;
    type Arguments = RemoteArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RemoteArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let placed = args.host.place(args.order.clone()).await?;
        myself.send_message(AgentMsg::Step)?;
        Ok(RemoteState {
            args,
            inbound: placed.inbound,
            _guard: placed.guard,
            worker: None,
            replies: ReplyCache::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        AgentMsg::Step: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match state.next_inbound().await? {
            Inbound::Alive => {}
            Inbound::Lost(why) => return Err(why.into()),
            Inbound::Said {
                worker,
                seq,
                says,
                reply,
            } => match state.said(worker, seq, says).await {
                (answer, Next::Continue) => {
                    let _ = reply.send(answer);
                }
                (answer, Next::Done(outcome, change)) => {
                    let outcome = state.deliver(outcome, change).await;
                    let _ = reply.send(answer);
                    state.args.supervisor.done(outcome)?;
                    myself.stop(None);
                    return Ok(());
                }
                (answer, Next::Failed(why)) => {
                    let _ = reply.send(answer);
                    return Err(why.into());
                }
            },
        }
        myself.send_message(AgentMsg::Step)?;
        Ok(())
    }
}

impl RemoteState {
    fn agent(&self) -> &str {
        &self.args.order.spec.name
    }

    fn attempt(&self) -> u32 {
        self.args.order.attempt
    }

    /// The next message; before a claim without a limit, after it within the silence
    /// limit.
    async fn next_inbound(&mut self) -> Result<Inbound, ActorProcessingErr> {
        let next = match &self.worker {
            None => self.inbound.recv().await,
            Some(worker) => {
                let limit = self.args.host.silence_limit();
                match tokio::time::timeout(limit, self.inbound.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        return Err(format!(
                        "lost: worker {worker} sent nothing (not even a heartbeat) for {limit:?}"
                    )
                        .into())
                    }
                }
            }
        };
        next.ok_or_else(|| "the transport to the workers closed".into())
    }

    /// Answers one message, once (see the module docs).
    async fn said(&mut self, worker: String, seq: u64, says: AttemptSays) -> (AttemptAnswer, Next) {
        if let AttemptSays::Claim { .. } = says {
            return (self.claim(worker).await, Next::Continue);
        }
        match &self.worker {
            Some(claimer) if *claimer == worker => {}
            other => {
                let why = match other {
                    Some(claimer) => {
                        format!("attempt {} is run by worker {claimer}", self.attempt())
                    }
                    None => format!("attempt {} was not claimed", self.attempt()),
                };
                return (
                    self.refuse(&worker, says.label(), why).await,
                    Next::Continue,
                );
            }
        }
        match self.replies.seen(seq) {
            Seen::Answered(answer) => return (answer, Next::Continue),
            Seen::Forgotten => {
                let why = format!("message {seq} is a repeat too old to answer again");
                return (
                    self.refuse(&worker, says.label(), why).await,
                    Next::Continue,
                );
            }
            Seen::New => {}
        }
        let (answer, next) = self.serve(&worker, says).await;
        self.replies.insert(seq, answer.clone());
        (answer, next)
    }

    async fn serve(&mut self, worker: &str, says: AttemptSays) -> (AttemptAnswer, Next) {
        let AttemptSays::Batch(items) = says else {
            return self.serve_one(worker, says).await;
        };
        let mut answers = Vec::with_capacity(items.len());
        let mut next = Next::Continue;
        for item in items {
            if !matches!(next, Next::Continue) {
                answers.push(AttemptAnswer::Refused(
                    "sent after the attempt's end".into(),
                ));
                continue;
            }
            let (answer, then) = self.serve_one(worker, item).await;
            answers.push(answer);
            next = then;
        }
        (AttemptAnswer::Batch(answers), next)
    }

    async fn serve_one(&mut self, worker: &str, says: AttemptSays) -> (AttemptAnswer, Next) {
        match says {
            AttemptSays::Claim { .. } | AttemptSays::Batch(_) => {
                let why = "a claim or a batch inside a batch".to_owned();
                (self.refuse(worker, says.label(), why).await, Next::Continue)
            }
            AttemptSays::Service(request) => (self.service(worker, request).await, Next::Continue),
            AttemptSays::Artifact(path) => {
                self.args.supervisor.artifact(path);
                (AttemptAnswer::Noted, Next::Continue)
            }
            AttemptSays::Checkpoint(checkpoint) => {
                self.args.supervisor.checkpoint(*checkpoint);
                (AttemptAnswer::Noted, Next::Continue)
            }
            AttemptSays::Done { outcome, change } => {
                (AttemptAnswer::Noted, Next::Done(outcome, change))
            }
            AttemptSays::Failed { why } => (
                AttemptAnswer::Noted,
                Next::Failed(format!("failed on worker {worker}: {why}")),
            ),
        }
    }

    /// The first worker to claim the attempt runs it; a repeated claim of the same worker
    /// is accepted again, any other refused.
    async fn claim(&mut self, worker: String) -> AttemptAnswer {
        match &self.worker {
            Some(claimer) if *claimer == worker => AttemptAnswer::Claimed,
            Some(claimer) => {
                let why = format!("attempt {} was claimed by worker {claimer}", self.attempt());
                self.refuse(&worker, "claim", why).await
            }
            None => {
                let event = AuditEvent::AttemptPlaced {
                    agent: self.agent().to_owned(),
                    attempt: self.attempt(),
                    worker: worker.clone(),
                };
                if let Err(e) = self.args.services.record(event).await {
                    return AttemptAnswer::Refused(e.to_string());
                }
                self.worker = Some(worker);
                AttemptAnswer::Claimed
            }
        }
    }

    async fn service(&mut self, worker: &str, request: ServiceRequest) -> AttemptAnswer {
        if let Err(why) = self.within_its_own(&request) {
            return self.refuse(worker, request.label(), why).await;
        }
        match self.args.services.serve(request).await {
            Ok(reply) => AttemptAnswer::Service(reply),
            Err(e) => AttemptAnswer::Refused(e.to_string()),
        }
    }

    /// A remote attempt acts for its own agent and attempt only.
    fn within_its_own(&self, request: &ServiceRequest) -> Result<(), String> {
        let (agent, attempt) = (self.agent(), self.attempt());
        if let Some((named, its_attempt)) = request.acts_for() {
            if named != agent || its_attempt.is_some_and(|a| a != attempt) {
                return Err(format!(
                    "attempt {attempt} of {agent} asked for {named}{}",
                    its_attempt.map_or(String::new(), |a| format!(" attempt {a}"))
                ));
            }
        }
        if let Some(other) = request.records().iter().find(|e| e.agent() != Some(agent)) {
            return Err(format!(
                "attempt {attempt} of {agent} wrote a `{}` record not about itself",
                other.kind()
            ));
        }
        Ok(())
    }

    /// Refuses what `worker` said, and records it.
    async fn refuse(&self, worker: &str, request: &str, why: String) -> AttemptAnswer {
        let event = AuditEvent::RemoteRefused {
            agent: self.agent().to_owned(),
            attempt: self.attempt(),
            worker: worker.to_owned(),
            request: request.to_owned(),
            why: why.clone(),
        };
        let _ = self.args.services.append(vec![event]).await;
        AttemptAnswer::Refused(why)
    }

    /// Applies the attempt's change on the run's side; a change that does not apply is
    /// reported in the outcome, never dropped silently.
    async fn deliver(&self, mut outcome: AgentOutcome, change: Option<String>) -> AgentOutcome {
        let Some(change) = change.filter(|c| !c.is_empty()) else {
            return outcome;
        };
        let delivered = self
            .args
            .host
            .deliver(self.agent(), &self.args.root, &change)
            .await;
        if let Err(why) = delivered {
            let why = format!("its change did not apply: {why}");
            outcome.error = Some(match outcome.error.take() {
                Some(e) => format!("{e}; {why}"),
                None => why,
            });
        }
        outcome
    }
}
