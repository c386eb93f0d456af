//! The BudgetActor's mailbox, and its named replies.

use ractor::RpcReplyPort;
use serde::{Deserialize, Serialize};

use crate::budget::{
    CarveOutcome, CarveRequest, LedgerError, ReservationId, ReserveOutcome, ReserveRequest,
    Settlement,
};

/// Messages of the BudgetActor.
#[derive(Debug)]
pub enum BudgetMsg {
    /// Reserve tokens before a model call.
    Reserve(
        ReserveRequest,
        RpcReplyPort<Result<ReserveOutcome, LedgerError>>,
    ),
    /// Commit the usage of a call.
    Commit(
        ReservationId,
        u64,
        RpcReplyPort<Result<Settlement, LedgerError>>,
    ),
    /// End an agent's attempts up to the given one, charging their calls still in flight in
    /// full ([`crate::budget::BudgetLedger::end_attempts`]).
    EndAttempts(
        String,
        u32,
        RpcReplyPort<Result<EndedAttempts, LedgerError>>,
    ),
    /// Carve a delegated agent's budget out of its parent's.
    Carve(CarveRequest, RpcReplyPort<Result<Carved, LedgerError>>),
    /// Close a delegated agent's account.
    Close(String, RpcReplyPort<Result<Closed, LedgerError>>),
}

/// The reply to [`BudgetMsg::EndAttempts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedAttempts {
    /// Tokens charged for calls the attempts left in flight.
    pub charged: u64,
    /// What the agent could reserve afterwards.
    pub available: u64,
}

/// The reply to [`BudgetMsg::Carve`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carved {
    /// The envelope carved, or why none was.
    pub outcome: CarveOutcome,
    /// What the parent could reserve afterwards.
    pub available: u64,
}

/// The reply to [`BudgetMsg::Close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// Tokens given back to the parent.
    pub returned: u64,
    /// What the parent could reserve then.
    pub available: u64,
}
