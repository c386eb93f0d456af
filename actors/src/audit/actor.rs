//! The AuditActor: the one writer of a run's audit log, with group commit.
//!
//! [`AuditMsg::Record`] redacts and seals the event into the chain, queues its line, and
//! keeps the caller's reply port. The first record of a batch sends the actor a
//! [`AuditMsg::FlushBatch`] message; it queues behind every record already in the mailbox,
//! so when it is handled, the batch is everything that arrived in the meantime (ractor has
//! no mailbox peek; this is how the actor drains it). `FlushBatch` writes the batch with one
//! `write`, `fsync`s once, and only then replies to every caller of the batch. A batch is
//! also committed early when it reaches [`MAX_BATCH`] records, which bounds memory and
//! latency under a flood.
//!
//! So an event an agent was told is recorded is on disk, and one fsync serves many
//! records: under load, agents wait for at most one fsync plus the records ahead of them.
//!
//! [`AuditMsg::Append`] is a record nobody waits for: it joins the batch like any other and
//! is on disk when that batch is committed, which a later `Record` or `Flush` of the same
//! sender waits for (a mailbox keeps one sender's messages in order). Agents use it for
//! records that no side effect depends on (see `agent.rs`): one durable wait per side
//! effect instead of one per record. If the process dies before the next commit, such
//! records are lost exactly as a crash loses any record not yet committed; no model call,
//! write or program ever runs before the records made ahead of it are on disk.
//!
//! A write or fsync error is retried once: the log is reopened (the chain continues from
//! its last complete line, a torn tail is cut) and the batch's records that are not on disk
//! are appended again, so records nobody waits for are not lost either. A second error
//! fails the actor; the batch's callers get no reply and retry (see `services.rs`); its
//! supervisor restarts it, reopening the log. A full disk (or quota) is not worth a
//! restart: its failure message starts with [`DISK_FULL`], and the supervisor stops the run
//! at once. Either way agents never run unaudited.
//!
//! The first start writes the run's first record ([`AuditArgs::first`]) before it reports
//! itself started, so a log that cannot take a record stops the run before any agent runs.

use std::path::PathBuf;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::event::AuditEvent;
use super::log::AuditLog;
use super::redact::Redactor;
pub use crate::protocol::audit::AuditMsg;
use crate::protocol::reply;

/// A batch is committed as soon as it holds this many records.
pub const MAX_BATCH: usize = 256;

/// How the AuditActor's failure message starts when the disk (or the quota) is full.
pub const DISK_FULL: &str = "the disk is full";

/// Whether `e` says the disk or the quota is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    const EDQUOT: i32 = 122; // Linux
    e.kind() == std::io::ErrorKind::StorageFull
        || (cfg!(target_os = "linux") && e.raw_os_error() == Some(EDQUOT))
}

/// The failure message of a log that could not be written.
fn write_failure(path: &std::path::Path, e: &std::io::Error) -> ActorProcessingErr {
    if is_disk_full(e) {
        format!(
            "{DISK_FULL}: the audit log {} cannot be written ({e}); free some space and \
             run again",
            path.display()
        )
        .into()
    } else {
        format!("cannot write audit log {}: {e}", path.display()).into()
    }
}

/// Start arguments.
#[derive(Debug, Clone)]
pub struct AuditArgs {
    /// The log file.
    pub path: PathBuf,
    /// The run the records belong to.
    pub run_id: String,
    /// Applied to every record before it is sealed.
    pub redactor: Arc<Redactor>,
    /// Written and made durable before the actor counts as started (the run's
    /// `run_started`, on its first start only).
    pub first: Option<AuditEvent>,
}

/// See the module docs.
pub struct AuditActor;

/// The open log and the batch being gathered.
pub struct AuditState {
    log: AuditLog,
    /// The batch's events with their sequence numbers, to append again if its commit fails.
    batch: Vec<(u64, AuditEvent)>,
    waiting: Vec<(u64, RpcReplyPort<u64>)>,
    flush_sent: bool,
}

impl AuditState {
    /// Commits now if the batch is full; otherwise makes sure a `FlushBatch` is queued.
    fn schedule(&mut self, myself: &ActorRef<AuditMsg>) -> Result<(), ActorProcessingErr> {
        if self.batch.len() >= MAX_BATCH {
            self.commit()?;
        } else if !self.flush_sent {
            self.flush_sent = true;
            myself.send_message(AuditMsg::FlushBatch)?;
        }
        Ok(())
    }

    /// Appends `event` to the batch; returns its sequence number.
    fn append(&mut self, event: AuditEvent) -> Result<u64, ActorProcessingErr> {
        let seq = self.log.append(&event)?;
        self.batch.push((seq, event));
        Ok(seq)
    }

    /// Writes and fsyncs the batch (retrying once, see the module docs), then answers its
    /// callers.
    fn commit(&mut self) -> Result<(), ActorProcessingErr> {
        self.flush_sent = false;
        if let Err(e) = self.log.commit() {
            let retried = if is_disk_full(&e) {
                Err(e)
            } else {
                self.rewrite_batch()
            };
            if let Err(e) = retried {
                self.batch.clear();
                self.waiting.clear();
                return Err(write_failure(self.log.path(), &e));
            }
        }
        self.batch.clear();
        for (seq, port) in self.waiting.drain(..) {
            reply(port, seq);
        }
        Ok(())
    }

    /// After a failed commit: reopens the log and commits the batch's records that did not
    /// reach the disk (a prefix of the batch may have). They get the same sequence numbers.
    fn rewrite_batch(&mut self) -> std::io::Result<()> {
        self.log.reopen()?;
        let on_disk = self.log.next_seq();
        for (seq, event) in &self.batch {
            if *seq >= on_disk {
                self.log.append(event)?;
            }
        }
        self.log.commit()
    }
}

impl Actor for AuditActor {
    type Msg = AuditMsg;
    type State = AuditState;
    type Arguments = AuditArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: AuditArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut log = AuditLog::open(&args.path, &args.run_id, args.redactor).map_err(|e| {
            format!(
                "cannot open audit log {}: {e}; the directory must be writable",
                args.path.display()
            )
        })?;
        if let Some(first) = &args.first {
            log.append(first)?;
            log.commit().map_err(|e| write_failure(&args.path, &e))?;
        }
        Ok(AuditState {
            log,
            batch: Vec::new(),
            waiting: Vec::new(),
            flush_sent: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AuditMsg::Record(event, port) => {
                let seq = state.append(event)?;
                state.waiting.push((seq, port));
                state.schedule(&myself)?;
            }
            AuditMsg::Append(events) => {
                for event in events {
                    state.append(event)?;
                }
                state.schedule(&myself)?;
            }
            AuditMsg::RecordAll(events, port) => {
                let mut last = 0;
                for event in events {
                    last = state.append(event)?;
                }
                state.waiting.push((last, port));
                state.schedule(&myself)?;
            }
            AuditMsg::FlushBatch => state.commit()?,
            AuditMsg::Flush(port) => {
                state.commit()?;
                reply(port, ());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.commit()
    }
}
