//! Token budgets: the pure [`ledger`] and the [`actor`] that owns it during a run.

pub mod ledger;

pub use ledger::{
    Account, BudgetLedger, CarveOutcome, CarveRequest, Denial, Grant, LedgerError, LedgerOp,
    ReservationId, ReserveOutcome, ReserveRequest, Settlement,
};

pub mod actor;
