//! The session budget of `codex mcp-server` (`--budget N`), as an actor.
//!
//! Several tool calls run at once, from one client or (over HTTP) several. Each call holds
//! only what it can use: the sum of its agents' budgets, clamped to what is free (the cap
//! less what the session spent and what the calls in progress hold). Its run gets that
//! amount as its global budget, so the engine enforces the clamp. When the call ends it
//! gives the hold back and is charged what its agents used: unspent tokens return to the
//! pool for the next calls. A run is refused, with the figures, when not even a turn's
//! worth (what its first model turn needs, at least [`MIN_RUN_TOKENS`]) is free.
//!
//! The accounting is the pure [`Pool`], property-tested below (holds never exceed the cap;
//! settling returns every unspent token). The [`ServerBudget`] actor is its one owner, so
//! concurrent calls are serialized by messages rather than a lock, like every other budget
//! of this project.
//!
//! The model calls that write a definition (`create_agent`, and `codex agent-create` with
//! `--budget`, which starts an actor of its own) hold and settle through it too, one call at
//! a time, before any run exists.

use std::fmt;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

/// The least a run may start with, whatever its agents: the smallest `budget` a client may
/// ask for (the tools' schemas say so), as the smallest budget the engine gives a
/// delegated agent. A run's real minimum is its first turn (the server estimates it from
/// its agents' prompts and tools), usually more.
pub const MIN_RUN_TOKENS: u64 = 256;

/// What the session's calls spent and what running calls hold.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pool {
    cap: Option<u64>,
    spent: u64,
    held: u64,
}

/// Why a call got nothing: the pool's figures when it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the call's agents asked for.
    pub asked: u64,
    /// The least it could start with.
    pub least: u64,
    /// The session's cap (`--budget`).
    pub cap: u64,
    /// What the session's finished calls used.
    pub spent: u64,
    /// What the calls in progress hold.
    pub held: u64,
}

impl Refusal {
    /// What was free: the cap less what is spent and held.
    pub fn free(&self) -> u64 {
        self.cap
            .saturating_sub(self.spent.saturating_add(self.held))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's budget has {} of its {} tokens free ({} spent, {} held by calls in \
             progress); this run needs at least {} for a turn (its agents asked for {}). ",
            self.free(),
            self.cap,
            self.spent,
            self.held,
            self.least,
            self.asked
        )?;
        if self.held > 0 && self.cap.saturating_sub(self.spent) >= self.least {
            write!(
                f,
                "Try again when the calls in progress have ended (their unspent tokens come \
                 back), or restart `codex mcp-server` with a larger --budget"
            )
        } else {
            write!(
                f,
                "The session's budget is spent; restart `codex mcp-server` with a larger --budget"
            )
        }
    }
}

impl std::error::Error for Refusal {}

impl Pool {
    /// A pool with an optional cap (none: every call gets what it asks).
    pub fn new(cap: Option<u64>) -> Self {
        Self {
            cap,
            ..Self::default()
        }
    }

    /// What a new call could hold now (`None`: no cap).
    pub fn free(&self) -> Option<u64> {
        self.cap
            .map(|cap| cap.saturating_sub(self.spent.saturating_add(self.held)))
    }

    /// Holds up to `asked` tokens for a call (all of it when there is no cap); `None`
    /// means nothing is left.
    pub fn hold(&mut self, asked: u64) -> Option<u64> {
        self.hold_at_least(asked, 1).ok()
    }

    /// Holds `asked` tokens clamped to what is free, provided that is at least `least`
    /// (which is itself clamped to `asked`); otherwise holds nothing and says why.
    pub fn hold_at_least(&mut self, asked: u64, least: u64) -> Result<u64, Refusal> {
        let least = least.min(asked).max(1);
        let granted = match self.free() {
            None => asked,
            Some(free) => asked.min(free),
        };
        if granted < least {
            return Err(Refusal {
                asked,
                least,
                cap: self.cap.unwrap_or(u64::MAX),
                spent: self.spent,
                held: self.held,
            });
        }
        self.held += granted;
        Ok(granted)
    }

    /// A call that held `held` tokens ended having used `used`: the hold is given back
    /// and the use charged (all of it: an overrun the engine allowed is spent too).
    pub fn settle(&mut self, held: u64, used: u64) {
        self.held = self.held.saturating_sub(held);
        self.spent = self.spent.saturating_add(used);
    }

    /// What the session's finished calls used.
    #[cfg(test)]
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// What the calls in progress hold.
    #[cfg(test)]
    pub fn held(&self) -> u64 {
        self.held
    }
}

/// Messages of the [`ServerBudget`] actor.
#[derive(Debug)]
pub enum ServerBudgetMsg {
    /// [`Pool::hold`].
    Hold(u64, RpcReplyPort<Option<u64>>),
    /// [`Pool::hold_at_least`]: what was asked, the least the call can use.
    HoldAtLeast(u64, u64, RpcReplyPort<Result<u64, Refusal>>),
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

/// Asks `budget` to hold up to `asked` tokens for a run, at least `least` (what its first
/// turn needs; [`Pool::hold_at_least`]): the refusal, with the figures, when not even that
/// is free; an error when the actor does not answer.
pub async fn hold_run(
    budget: &ActorRef<ServerBudgetMsg>,
    asked: u64,
    least: u64,
) -> anyhow::Result<Result<u64, Refusal>> {
    ractor::call_t!(budget, ServerBudgetMsg::HoldAtLeast, 5_000, asked, least)
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
            ServerBudgetMsg::HoldAtLeast(asked, least, port) => {
                let _ = port.send(pool.hold_at_least(asked, least));
            }
            ServerBudgetMsg::Settle { held, used } => pool.settle(held, used),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn without_a_cap_a_call_holds_what_it_asks() {
        let mut p = Pool::default();
        assert_eq!(p.hold(5000), Some(5000));
        assert_eq!(p.hold_at_least(5000, MIN_RUN_TOKENS), Ok(5000));
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

    #[test]
    fn two_calls_that_fit_are_held_at_once_in_full() {
        let mut p = Pool::new(Some(20_000));
        assert_eq!(p.hold_at_least(10_000, MIN_RUN_TOKENS), Ok(10_000));
        assert_eq!(p.hold_at_least(10_000, MIN_RUN_TOKENS), Ok(10_000));
        assert_eq!(p.held(), 20_000);
    }

    #[test]
    fn only_spent_tokens_are_charged_and_the_rest_comes_back() {
        let mut p = Pool::new(Some(20_000));
        let a = p.hold_at_least(15_000, MIN_RUN_TOKENS).unwrap();
        p.settle(a, 730);
        assert_eq!(p.free(), Some(19_270));
        assert_eq!(p.hold_at_least(19_270, MIN_RUN_TOKENS), Ok(19_270));
    }

    #[test]
    fn a_run_is_refused_with_the_figures_when_less_than_a_turn_is_free() {
        let mut p = Pool::new(Some(10_000));
        let a = p.hold_at_least(9_900, MIN_RUN_TOKENS).unwrap();
        let refusal = p.hold_at_least(5_000, MIN_RUN_TOKENS).unwrap_err();
        assert_eq!(
            refusal,
            Refusal {
                asked: 5_000,
                least: MIN_RUN_TOKENS,
                cap: 10_000,
                spent: 0,
                held: 9_900
            }
        );
        assert_eq!(refusal.free(), 100);
        let text = refusal.to_string();
        assert!(text.contains("100 of its 10000 tokens free"), "{text}");
        assert!(
            text.contains("when the calls in progress have ended"),
            "{text}"
        );
        // Nothing was held by the refused call.
        assert_eq!(p.held(), 9_900);
        p.settle(a, 9_850);
        let text = p
            .hold_at_least(5_000, MIN_RUN_TOKENS)
            .unwrap_err()
            .to_string();
        assert!(text.contains("The session's budget is spent"), "{text}");
    }

    #[test]
    fn a_call_asking_less_than_a_turn_may_have_what_it_asks() {
        let mut p = Pool::new(Some(1_000));
        assert_eq!(p.hold_at_least(100, MIN_RUN_TOKENS), Ok(100));
    }

    /// One step of a session: a call asks for tokens, or the `n`th call in progress ends
    /// having used `used_per_mille` ‰ of its hold (over 1000: an overrun).
    #[derive(Debug, Clone)]
    enum Step {
        Hold { asked: u64, least: u64 },
        End { n: usize, used_per_mille: u64 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1..50_000u64, 1..2_000u64).prop_map(|(asked, least)| Step::Hold { asked, least }),
            (any::<usize>(), 0..1_000u64)
                .prop_map(|(n, used_per_mille)| Step::End { n, used_per_mille }),
        ]
    }

    proptest! {
        /// Whatever the order of holds and ends, the calls in progress never hold more than
        /// the cap leaves, a hold is never more than asked nor less than the least, and when
        /// every call has ended all that is not spent is free again.
        #[test]
        fn concurrent_holds_never_exceed_the_cap_and_settling_returns_every_unspent_token(
            cap in 0..100_000u64,
            steps in proptest::collection::vec(step(), 0..60),
        ) {
            let mut pool = Pool::new(Some(cap));
            let mut running: Vec<u64> = Vec::new();
            let mut used_total = 0u64;
            for s in steps {
                match s {
                    Step::Hold { asked, least } => match pool.hold_at_least(asked, least) {
                        Ok(held) => {
                            prop_assert!(held <= asked);
                            prop_assert!(held >= least.min(asked));
                            running.push(held);
                        }
                        Err(r) => prop_assert!(r.free() < least.min(asked).max(1)),
                    },
                    Step::End { n, used_per_mille } if !running.is_empty() => {
                        let held = running.swap_remove(n % running.len());
                        let used = held * used_per_mille / 1000;
                        used_total += used;
                        pool.settle(held, used);
                    }
                    Step::End { .. } => {}
                }
                prop_assert_eq!(pool.held(), running.iter().sum::<u64>());
                prop_assert!(pool.spent() + pool.held() <= cap);
            }
            for held in running.drain(..) {
                pool.settle(held, 0);
            }
            prop_assert_eq!(pool.held(), 0);
            prop_assert_eq!(pool.spent(), used_total);
            prop_assert_eq!(pool.free(), Some(cap - used_total));
        }
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
        let next = hold_run(&actor, 1000, MIN_RUN_TOKENS).await.unwrap();
        assert_eq!(next, Ok(700));
        let refused = hold_run(&actor, 1000, MIN_RUN_TOKENS)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.free(), 0);
        actor.stop(None);
    }
}
