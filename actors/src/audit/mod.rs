//! The audit log: event types, and the actor that appends them.

pub mod event;

pub use event::{AgentExecutionEvent, AuditEvent, AuditRecord, BudgetOp};
