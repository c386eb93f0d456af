//! The server-wide budget of `codex mcp-server` (`--budget N`), as an actor.
//!
//! Every tool call of the session asks for the sum of its agents' budgets; the call's run
//! gets at most what is left of the cap, held while it runs and settled with what its
//! agents really used when it ends. The accounting is the pure [`Pool`]; the
//! [`ServerBudget`] actor owns it, so concurrent calls are serialized by messages rather
//! than a lock, like every other budget of this project.
//!
//! The model calls that write a definition (`create_agent`, and `codex agent-create` with
//! `--budget`, which starts an actor of its own) hold and settle through it too, one call at
//! a time, before any run exists.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

/// What the session's calls spent and what running calls hold.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pool {
    cap: Option<u64>,
    spent: u64,
    held: u64,
}

impl Pool {
    /// A pool with an optional cap (none: every call gets what it asks).
    pub fn new(cap: Option<u64>) -> Self {
        Self {
            cap,
            ..Self::default()
        }
    }

    /// Holds up to `asked` tokens for a call (all of it when there is no cap); `None`
    /// means nothing is left.
    pub fn hold(&mut self, asked: u64) -> Option<u64> {
        let granted = match self.cap {
            None => asked,
            Some(cap) => asked.min(cap.saturating_sub(self.spent + self.held)),
        };
        if granted == 0 {
            return None;
        }
        self.held += granted;
        Some(granted)
    }

    /// A call that held `held` tokens ended having used `used`.
    pub fn settle(&mut self, held: u64, used: u64) {
        self.held = self.held.saturating_sub(held);
        self.spent += used;
    }
}

/// Messages of the [`ServerBudget`] actor.
#[derive(Debug)]
pub enum ServerBudgetMsg {
    /// [`Pool::hold`].
    Hold(u64, RpcReplyPort<Option<u64>>),
    /// [`Pool::settle`].
    Settle {
        /// What the call held.
        held: u64,
        /// What its agents used.
        used: u64,
    },
}

/// Asks `budget` to hold up to `asked` tokens ([`Pool::hold`]): `Ok(None)` when nothing is
/// left, an error when the actor does not answer.
pub async fn hold(budget: &ActorRef<ServerBudgetMsg>, asked: u64) -> anyhow::Result<Option<u64>> {
    ractor::call_t!(budget, ServerBudgetMsg::Hold, 5_000, asked)
        .map_err(|e| anyhow::anyhow!("the budget actor did not answer: {e}"))
}

/// Tells `budget` that a call which held `held` tokens used `used` ([`Pool::settle`]).
pub fn settle(budget: &ActorRef<ServerBudgetMsg>, held: u64, used: u64) {
    let _ = budget.cast(ServerBudgetMsg::Settle { held, used });
}

/// The one owner of the server's [`Pool`]; started with the cap.
pub struct ServerBudget;

impl Actor for ServerBudget {
    type Msg = ServerBudgetMsg;
    type State = Pool;
    type Arguments = Option<u64>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        cap: Option<u64>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(Pool::new(cap))
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        pool: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ServerBudgetMsg::Hold(asked, port) => {
                let _ = port.send(pool.hold(asked));
            }
            ServerBudgetMsg::Settle { held, used } => pool.settle(held, used),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_cap_a_call_holds_what_it_asks() {
        let mut p = Pool::default();
        assert_eq!(p.hold(5000), Some(5000));
    }

    #[test]
    fn a_cap_clamps_calls_and_refuses_when_spent() {
        let mut p = Pool::new(Some(1000));
        assert_eq!(p.hold(600), Some(600));
        assert_eq!(p.hold(600), Some(400));
        assert_eq!(p.hold(1), None);
        p.settle(600, 100);
        p.settle(400, 400);
        assert_eq!(p.hold(1000), Some(500));
    }

    #[tokio::test]
    async fn the_actor_serves_holds_and_settles_in_order() {
        let (actor, _) = Actor::spawn(None, ServerBudget, Some(1000)).await.unwrap();
        let held = ractor::call_t!(actor, ServerBudgetMsg::Hold, 1_000, 800).unwrap();
        assert_eq!(held, Some(800));
        actor
            .cast(ServerBudgetMsg::Settle {
                held: 800,
                used: 300,
            })
            .unwrap();
        let next = ractor::call_t!(actor, ServerBudgetMsg::Hold, 1_000, 1000).unwrap();
        assert_eq!(next, Some(700));
        actor.stop(None);
    }
}
