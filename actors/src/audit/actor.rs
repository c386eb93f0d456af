//! The AuditActor: the one writer of a run's audit log.
//!
//! [`AuditMsg::Record`] replies with the event's sequence number after the line is written,
//! so an event an agent was told is recorded is in the file. A write error fails the actor;
//! its supervisor restarts it (reopening the log and continuing the sequence), and callers
//! retry. If it cannot be brought back, the run stops: agents never run unaudited.

use std::path::PathBuf;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::event::AuditEvent;
use super::log::AuditLog;
use crate::services::reply;

/// Messages of the AuditActor.
#[derive(Debug)]
pub enum AuditMsg {
    /// Append an event; the reply is its sequence number.
    Record(AuditEvent, RpcReplyPort<u64>),
    /// Make the log durable (fsync).
    Flush(RpcReplyPort<()>),
}

/// Start arguments.
#[derive(Debug, Clone)]
pub struct AuditArgs {
    /// The log file.
    pub path: PathBuf,
    /// The run the records belong to.
    pub run_id: String,
}

/// See the module docs.
pub struct AuditActor;

impl Actor for AuditActor {
    type Msg = AuditMsg;
    type State = AuditLog;
    type Arguments = AuditArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: AuditArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        AuditLog::open(&args.path, &args.run_id)
            .map_err(|e| format!("cannot open audit log {}: {e}", args.path.display()).into())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        log: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AuditMsg::Record(event, port) => {
                let seq = log.append(event)?;
                reply(port, seq);
            }
            AuditMsg::Flush(port) => {
                log.sync()?;
                reply(port, ());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        log: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        log.sync()?;
        Ok(())
    }
}
