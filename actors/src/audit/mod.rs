//! The audit log: event types, and the actor that appends them.

pub mod actor;
pub mod event;
pub mod log;

pub use event::{AgentExecutionEvent, AuditEvent, AuditRecord, BudgetOp};
pub use log::{read_log, AuditLog};
