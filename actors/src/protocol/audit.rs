//! The AuditActor's mailbox.

use ractor::RpcReplyPort;

use crate::audit::AuditEvent;

/// Messages of the AuditActor.
#[derive(Debug)]
pub enum AuditMsg {
    /// Append an event; the reply is its sequence number, sent once the line is on disk.
    Record(AuditEvent, RpcReplyPort<u64>),
    /// Append events, in order, as consecutive lines, without a reply: they are on disk
    /// with the batch they join (see `audit/actor.rs`).
    Append(Vec<AuditEvent>),
    /// Append several events, in order, as consecutive lines; the reply is the last one's
    /// sequence number, sent once all are on disk. One wait for records made together.
    RecordAll(Vec<AuditEvent>, RpcReplyPort<u64>),
    /// Commit the current batch and reply (a barrier: everything recorded before is on
    /// disk when the reply arrives).
    Flush(RpcReplyPort<()>),
    /// Commit the current batch (sent by the actor to itself; see `audit/actor.rs`).
    FlushBatch,
}
