//! The BudgetActor: the one owner of a run's [`BudgetLedger`].
//!
//! Every reserve, commit and release is a message, handled one at a time, so the ledger
//! needs no lock. After each change the actor sends a copy of the ledger to the run
//! supervisor *before* it replies. A reply therefore means the change is known to the
//! supervisor; if the actor crashes, the supervisor restarts it from that copy, and no
//! committed usage is lost. A change whose reply never left is either in the copy or was
//! never acknowledged, and the caller's retry (with the same reservation id) settles it.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::ledger::{
    BudgetLedger, LedgerError, ReservationId, ReserveOutcome, ReserveRequest, Settlement,
};
use crate::services::reply;
use crate::supervisor::RunMsg;

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
    /// Release every open reservation of an agent; the reply is the tokens released and
    /// what the agent could reserve afterwards.
    ReleaseAgent(String, RpcReplyPort<Result<(u64, u64), LedgerError>>),
    /// A copy of the ledger.
    Snapshot(RpcReplyPort<BudgetLedger>),
}

/// Start arguments: the ledger to continue from, and who keeps its checkpoints.
pub struct BudgetArgs {
    /// The ledger (fresh at run start; the last checkpoint after a crash).
    pub ledger: BudgetLedger,
    /// The run supervisor, which receives a checkpoint after every change.
    pub checkpoints: Option<ActorRef<RunMsg>>,
}

/// See the module docs.
pub struct BudgetActor;

/// The actor's state.
pub struct BudgetState {
    ledger: BudgetLedger,
    checkpoints: Option<ActorRef<RunMsg>>,
}

impl BudgetState {
    fn checkpoint(&self) {
        if let Some(sup) = &self.checkpoints {
            let _ = sup.cast(RunMsg::BudgetCheckpoint(Box::new(self.ledger.clone())));
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
            checkpoints: args.checkpoints,
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
                state.checkpoint();
                reply(port, r);
            }
            BudgetMsg::Commit(id, used, port) => {
                let r = state.ledger.commit(&id, used);
                state.checkpoint();
                reply(port, r);
            }
            BudgetMsg::ReleaseAgent(agent, port) => {
                let r = state
                    .ledger
                    .release_agent(&agent)
                    .and_then(|released| Ok((released, state.ledger.available(&agent)?)));
                state.checkpoint();
                reply(port, r);
            }
            BudgetMsg::Snapshot(port) => reply(port, state.ledger.clone()),
        }
        Ok(())
    }
}
