//! What an agent attempt running in another process (a worker, see the application's
//! `cluster` module) and the run say to each other, as data that crosses the process.
//!
//! The run keeps its supervisor and its services; only the attempt moves. The attempt on
//! the worker reaches the services with the same requests an attempt in the run's process
//! makes ([`ServiceRequest`], served by [`crate::protocol::Services::serve`]), and tells
//! the run what it would tell its supervisor ([`AttemptSays`]). Each message carries a
//! sequence number: a repeat (a reply lost on the way) gets the answer of the first
//! ([`crate::replies::ReplyCache`]), so nothing is applied twice.
//!
//! On the run's side an attempt is a RemoteAttemptActor (`remote_attempt.rs`), fed by the
//! application's [`RemoteHost`]: it places the attempt ([`AttemptOrder`]) and hands over
//! what the worker says ([`Inbound`]). The actor exists while the attempt is the agent's
//! current one; what a lost attempt says later has no one to answer it and is refused.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::agent::AgentOutcome;
use crate::audit::AuditEvent;
use crate::budget::{LedgerError, ReservationId, ReserveOutcome, ReserveRequest, Settlement};
use crate::checkpoint::Checkpoint;
use crate::policy::Decision;
use crate::spec::AgentSpec;
use crate::tool::Access;

/// A request of an agent attempt to the run's services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceRequest {
    /// [`crate::protocol::Services::reserve`].
    Reserve(ReserveRequest),
    /// [`crate::protocol::Services::commit`].
    Commit {
        /// The reservation.
        id: ReservationId,
        /// Tokens the call used.
        used: u64,
    },
    /// [`crate::protocol::Services::commit_recorded`]: a commit and the records of the
    /// call, applied together (a worker that dies after the commit cannot lose them).
    CommitRecorded {
        /// The reservation.
        id: ReservationId,
        /// Tokens the call used.
        used: u64,
        /// The call's record (`model_call`); the commit's own record is made on the run's
        /// side from the settlement.
        call: Box<AuditEvent>,
    },
    /// [`crate::protocol::Services::decide`].
    Decide {
        /// The agent.
        agent: String,
        /// What it wants to do.
        access: Access,
    },
    /// [`crate::protocol::Services::record`].
    Record(AuditEvent),
    /// [`crate::protocol::Services::record_all`].
    RecordAll(Vec<AuditEvent>),
    /// [`crate::protocol::Services::append`].
    Append(Vec<AuditEvent>),
    /// [`crate::protocol::Services::flush_audit`].
    Flush,
}

impl ServiceRequest {
    /// The agent the request acts for, when it names one: a remote attempt may act only for
    /// its own agent, and reserve only under its own attempt.
    pub fn acts_for(&self) -> Option<(&str, Option<u32>)> {
        match self {
            ServiceRequest::Reserve(r) => Some((&r.id.agent, Some(r.id.attempt))),
            ServiceRequest::Commit { id, .. } | ServiceRequest::CommitRecorded { id, .. } => {
                Some((&id.agent, Some(id.attempt)))
            }
            ServiceRequest::Decide { agent, .. } => Some((agent, None)),
            ServiceRequest::Record(_)
            | ServiceRequest::RecordAll(_)
            | ServiceRequest::Append(_)
            | ServiceRequest::Flush => None,
        }
    }

    /// The audit records the request would write.
    pub fn records(&self) -> &[AuditEvent] {
        match self {
            ServiceRequest::Record(event) => std::slice::from_ref(event),
            ServiceRequest::CommitRecorded { call, .. } => std::slice::from_ref(&**call),
            ServiceRequest::RecordAll(events) | ServiceRequest::Append(events) => events,
            _ => &[],
        }
    }

    /// A short name for messages (`reserve`, `commit`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            ServiceRequest::Reserve(_) => "reserve",
            ServiceRequest::Commit { .. } | ServiceRequest::CommitRecorded { .. } => "commit",
            ServiceRequest::Decide { .. } => "decide",
            ServiceRequest::Record(_) => "record",
            ServiceRequest::RecordAll(_) => "record_all",
            ServiceRequest::Append(_) => "append",
            ServiceRequest::Flush => "flush",
        }
    }
}

/// The services' answer to a [`ServiceRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceReply {
    /// To `Reserve`.
    Reserved(Result<ReserveOutcome, LedgerError>),
    /// To `Commit` and `CommitRecorded`.
    Committed(Result<Settlement, LedgerError>),
    /// To `Decide`.
    Decided(Decision),
    /// To `Record` and `RecordAll`: the (last) record's sequence number.
    Recorded(u64),
    /// To `Append` and `Flush`.
    Done,
}

/// What a remote attempt tells the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptSays {
    /// A worker took the attempt from the queue and will run it. Only the first worker to
    /// claim an attempt runs it; any other is refused.
    Claim {
        /// The worker's name.
        worker: String,
    },
    /// A request to the run's services.
    Service(ServiceRequest),
    /// The attempt wrote this workspace-relative file.
    Artifact(String),
    /// The attempt's conversation after a complete turn.
    Checkpoint(Box<Checkpoint>),
    /// The attempt ended with an outcome.
    Done {
        /// How it ended.
        outcome: AgentOutcome,
        /// Its change to the workspace, as a patch (`git diff --binary`), if it made one.
        change: Option<String>,
    },
    /// The attempt failed on the worker without an outcome (it crashed, or its workspace
    /// could not be prepared): the run's restart rules decide what comes next.
    Failed {
        /// Why.
        why: String,
    },
    /// Several messages in one, served in order (a worker sends what the attempt does not
    /// wait for together with the next thing it waits for: one round trip, not three).
    /// Never nested, never with a claim.
    Batch(Vec<AttemptSays>),
}

impl AttemptSays {
    /// A short name for messages.
    pub fn label(&self) -> &'static str {
        match self {
            AttemptSays::Claim { .. } => "claim",
            AttemptSays::Service(request) => request.label(),
            AttemptSays::Artifact(_) => "artifact",
            AttemptSays::Checkpoint(_) => "checkpoint",
            AttemptSays::Done { .. } => "done",
            AttemptSays::Failed { .. } => "failed",
            AttemptSays::Batch(items) => items.first().map_or("batch", AttemptSays::label),
        }
    }
}

/// The run's answer to what a remote attempt said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptAnswer {
    /// The claim is accepted: run the attempt.
    Claimed,
    /// The services' answer.
    Service(ServiceReply),
    /// Taken note of.
    Noted,
    /// Refused, with why (the attempt is no longer the agent's current one, was claimed by
    /// another worker, acted for another agent, or a service failed).
    Refused(String),
    /// The answers to a [`AttemptSays::Batch`], in order.
    Batch(Vec<AttemptAnswer>),
}

/// What the application's transport hands a RemoteAttemptActor.
#[derive(Debug)]
pub enum Inbound {
    /// The attempt said something; the answer goes to `reply`.
    Said {
        /// The worker that says it (only the one that claimed the attempt is heard).
        worker: String,
        /// Its sequence number (from 1, per attempt and worker).
        seq: u64,
        /// What it said.
        says: AttemptSays,
        /// Where the answer goes.
        reply: oneshot::Sender<AttemptAnswer>,
    },
    /// The worker running the attempt is alive (a heartbeat).
    Alive,
    /// The worker is lost (the transport knows it without waiting for the timeout).
    Lost(String),
}

/// Everything a worker needs to run one attempt, besides what the application adds (the
/// model to use, the commit and changes the workspace starts from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptOrder {
    /// The run.
    pub run_id: String,
    /// The agent (its root is the run's; the worker replaces it with its own checkout).
    pub spec: AgentSpec,
    /// Which attempt, from 1.
    pub attempt: u32,
    /// When the agent's first attempt started.
    pub first_started: DateTime<Utc>,
    /// Tokens its earlier attempts spent.
    pub tokens_before: u64,
    /// Whether the attempt sends a checkpoint after every turn.
    pub checkpoints: bool,
    /// Where it continues from, if not its goal.
    pub resume_from: Option<Checkpoint>,
}

/// The application's side of remote attempts: it places them on workers and carries what
/// they say (see the module docs).
#[async_trait::async_trait]
pub trait RemoteHost: Send + Sync {
    /// Places `order` and returns what its worker says, in order. The returned guard is
    /// dropped when the attempt ends on the run's side (it finished, failed, was cancelled
    /// or lost): the transport then tells the worker to stop and refuses what the attempt
    /// says afterwards.
    async fn place(&self, order: AttemptOrder) -> Result<Placed, String>;

    /// Applies a finished attempt's change to `root`, the agent's workspace on the run's
    /// side.
    async fn deliver(&self, agent: &str, root: &Path, change: &str) -> Result<(), String>;

    /// How long a claimed attempt may stay silent (no message, no heartbeat of its worker)
    /// before it is failed as lost.
    fn silence_limit(&self) -> Duration;
}

/// A placed attempt: what its worker says, and a guard that ends it when dropped.
pub struct Placed {
    /// What the worker says.
    pub inbound: mpsc::Receiver<Inbound>,
    /// Dropped when the attempt ends on the run's side.
    pub guard: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for Placed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placed").finish_non_exhaustive()
    }
}
