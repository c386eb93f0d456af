//! The BudgetActor: the one owner of a run's [`BudgetLedger`].
//!
//! Every reserve, commit and release is a message, handled one at a time, so the ledger
//! needs no lock. After each change the actor sends the change itself (a [`LedgerOp`]) to
//! the run supervisor *before* it replies; the supervisor applies it to its own copy of the
//! ledger. A reply therefore means the change is known to the supervisor; if the actor
//! crashes, the supervisor restarts it from that copy, and no committed usage is lost. A
//! change whose reply never left is either in the copy or was never acknowledged, and the
//! caller's retry (with the same reservation id) settles it. Sending the op rather than the
//! ledger keeps the cost of a change independent of the run's size.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::budget::{BudgetLedger, CarveOutcome, LedgerOp, ReserveOutcome};
pub use crate::protocol::budget::BudgetMsg;
use crate::protocol::budget::{Carved, Closed, EndedAttempts};
use crate::protocol::{reply, JournalPort};

/// Start arguments: the ledger to continue from, and who keeps its copy.
pub struct BudgetArgs {
    /// The ledger (fresh at run start; the supervisor's copy after a crash).
    pub ledger: BudgetLedger,
    /// The run supervisor, which receives every change before its caller does.
    pub journal: Option<JournalPort>,
}

/// See the module docs.
pub struct BudgetActor;

/// The actor's state.
pub struct BudgetState {
    ledger: BudgetLedger,
    journal: Option<JournalPort>,
}

impl BudgetState {
    fn journal(&self, op: LedgerOp) {
        if let Some(journal) = &self.journal {
            journal.send(op);
        }
    }
}

impl Actor for BudgetActor {
    type Msg = BudgetMsg;
    type State = BudgetState;
    type Arguments = BudgetArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: BudgetArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(BudgetState {
            ledger: args.ledger,
            journal: args.journal,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BudgetMsg::Reserve(req, port) => {
                let r = state.ledger.reserve(&req);
                if matches!(r, Ok(ReserveOutcome::Granted(_))) {
                    state.journal(LedgerOp::Reserve(req));
                }
                reply(port, r);
            }
            BudgetMsg::Commit(id, used, port) => {
                let r = state.ledger.commit(&id, used);
                if r.is_ok() {
                    state.journal(LedgerOp::Commit(id, used));
                }
                reply(port, r);
            }
            BudgetMsg::EndAttempts(agent, attempt, port) => {
                let r = state.ledger.end_attempts(&agent, attempt);
                let r = r.and_then(|charged| {
                    let available = state.ledger.available(&agent)?;
                    Ok(EndedAttempts { charged, available })
                });
                if r.is_ok() {
                    state.journal(LedgerOp::EndAttempts(agent, attempt));
                }
                reply(port, r);
            }
            BudgetMsg::Carve(req, port) => {
                let r = state.ledger.carve(&req);
                let r = r.and_then(|outcome| {
                    let available = state.ledger.available(&req.parent)?;
                    Ok(Carved { outcome, available })
                });
                if matches!(&r, Ok(c) if matches!(c.outcome, CarveOutcome::Carved(_))) {
                    state.journal(LedgerOp::Carve(req));
                }
                reply(port, r);
            }
            BudgetMsg::Close(child, port) => {
                let r = state.ledger.close(&child).and_then(|returned| {
                    let parent = state.ledger.parent(&child).unwrap_or_default();
                    let available = state.ledger.available(parent)?;
                    Ok(Closed {
                        returned,
                        available,
                    })
                });
                if r.is_ok() {
                    state.journal(LedgerOp::Close(child));
                }
                reply(port, r);
            }
        }
        Ok(())
    }
}
