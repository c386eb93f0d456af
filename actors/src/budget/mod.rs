//! Token budgets: the pure [`ledger`] and the [`actor`] that owns it during a run.

pub mod charge;
pub mod ledger;

pub use charge::{failed_call_charge, FailedCallBasis, PromptCalibration};

pub use ledger::{
    Account, BudgetLedger, CarveOutcome, CarveRequest, Denial, Grant, LedgerError, LedgerOp,
    ReservationId, ReserveOutcome, ReserveRequest, Settlement,
};

pub mod actor;
