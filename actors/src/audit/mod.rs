//! The audit log: record types, the hash chain, redaction, the file, and the actor that
//! appends to it.
//!
//! - [`event`]: what a line records ([`AuditRecord`], [`AuditEvent`]);
//! - [`chain`]: what is hashed, sealing a line, verifying a log (pure);
//! - [`anchor`]: the head of a finished log, kept outside it (pure checks, one append);
//! - [`redact`]: masking secrets before anything is written (pure);
//! - [`log`]: the file, appended in batches with one fsync each;
//! - [`actor`]: the AuditActor, the log's only writer (group commit).

pub mod actor;
pub mod anchor;
pub mod chain;
pub mod event;
pub mod log;
pub mod redact;

pub use chain::{verify, Broken, Verification};
pub use event::{AgentExecutionEvent, AuditEvent, AuditRecord, BudgetOp, WorktreeAction, KINDS};
pub use log::{is_being_written, parse_records, read_log, AuditLog};
pub use redact::Redactor;
