//! The token ledger, as pure code: [`BudgetLedger`].
//!
//! Before every model call an agent *reserves* its worst case (estimated prompt tokens plus
//! the output cap). The ledger grants what fits under both the agent's limit and the run's
//! global limit, possibly less than asked, in which case the caller clamps its output cap to
//! the grant. After the call the agent *commits* the usage the provider reported; the unused
//! part of the grant returns to the pool. When an attempt ends (it crashed, was cancelled or
//! hit its deadline) with a call still in flight, that call's reservation is *charged in
//! full* ([`BudgetLedger::end_attempts`]): the provider may already have served it, and it
//! bills what it served, whether or not anyone reads the answer. A failed call is committed
//! by its agent like any other (see the AgentActor for what it charges).
//!
//! Invariants (property-tested below over random interleavings of these operations):
//! - for every agent and for the run, `reserved + committed <= limit`;
//! - the agents' counters sum to the run's counters;
//! - a commit releases exactly `granted - min(used, granted)`;
//! - no counter underflows;
//! - what is charged (committed plus overrun) is never less than what the providers served,
//!   whether calls succeed, fail or are abandoned in flight.
//!
//! A provider that reports more usage than was granted breaks no invariant: the excess is
//! recorded apart, as `overrun`, and reported with the agent's usage. It is never hidden, and
//! the agent that caused it is stopped by its actor.
//!
//! Reservation ids are chosen by the caller (agent, attempt, turn), which makes `reserve` and
//! `commit` idempotent: an agent that lost a reply because the BudgetActor crashed simply
//! asks again and gets the same answer. Ending attempts is bounded by attempt, so ending a
//! crashed attempt never touches the reservations of the attempt that replaced it.
//!
//! Every change is a [`LedgerOp`], and applying the same ops in the same order to a copy
//! yields the same ledger ([`BudgetLedger::apply`]). The BudgetActor sends each op to the
//! run supervisor, which keeps such a copy to restart the actor from.
//!
//! **Delegation.** An agent that delegates *carves* its child's budget out of what it can
//! still reserve ([`BudgetLedger::carve`]): the child gets an account whose limit is the
//! envelope, and the parent holds the envelope as if it were one long reservation, so the
//! parent (and its other children) cannot spend it meanwhile, and the run's total never
//! grows. The child's reservations stay inside its envelope and touch no other account;
//! what it *commits* is moved, at once, from the parent's hold into the parent's committed
//! usage, and so on up to the run. An agent's usage therefore includes that of everyone it
//! delegated to. When the child ends, [`BudgetLedger::close`] charges its calls still in
//! flight and gives what is left of the envelope back to the parent. Invariants, for
//! every account at any depth:
//! - `reserved + committed <= limit`;
//! - a child's remaining hold is `limit - committed`, which covers its open reservations;
//! - the run's counters are the sums of the top-level agents' counters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Identifies one reservation: one model call of one attempt of one agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReservationId {
    /// The agent.
    pub agent: String,
    /// The agent's attempt, from 1.
    pub attempt: u32,
    /// The turn within the attempt.
    pub turn: u32,
}

/// A request for tokens before a model call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveRequest {
    /// Who asks, and for which call.
    pub id: ReservationId,
    /// Estimated prompt tokens (conservative).
    pub prompt_tokens: u64,
    /// The output cap the agent would like.
    pub max_output_tokens: u64,
    /// The smallest output cap worth making the call with; less is a denial.
    pub min_output_tokens: u64,
}

/// A granted reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Tokens set aside: prompt estimate plus `max_output_tokens`.
    pub granted: u64,
    /// The output cap to send with the call (at most what was asked).
    pub max_output_tokens: u64,
    /// What the agent could still reserve after this grant.
    pub available: u64,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// What the agent could reserve.
    pub available: u64,
    /// The least the call needed (prompt estimate + minimum output).
    pub needed: u64,
    /// Whether the run's global budget, rather than the agent's own, was the limit.
    pub global: bool,
    /// Whether the call would fit once other agents' calls in flight settle: their
    /// reservations hold what is missing. The caller should wait and ask again rather than
    /// give up.
    pub wait: bool,
}

/// The answer to [`BudgetLedger::reserve`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReserveOutcome {
    /// Go ahead, within the grant.
    Granted(Grant),
    /// Make no call.
    Denied(Denial),
}

/// The answer to [`BudgetLedger::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// What the reservation had set aside.
    pub granted: u64,
    /// Tokens charged against the limit: `min(used, granted)`.
    pub charged: u64,
    /// Usage beyond the grant, recorded apart; non-zero means the agent must stop.
    pub overrun: u64,
    /// Tokens returned to the pool: `granted - charged`.
    pub released: u64,
    /// What the agent could still reserve afterwards.
    pub available: u64,
    /// The agent's usage over all its attempts (charged plus overruns) right after this
    /// commit: what live progress shows against its budget.
    pub agent_used: u64,
}

/// Misuse of the ledger (a bug in the caller, not a budget decision).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerError {
    /// The agent was never registered.
    #[error("no budget account for agent `{0}`")]
    UnknownAgent(String),
    /// Committing a reservation that does not exist (never made, or released).
    #[error("no open reservation {0:?}")]
    UnknownReservation(ReservationId),
    /// Registering an agent twice, or carving a child account under a name in use.
    #[error("agent `{0}` already has a budget account")]
    DuplicateAgent(String),
    /// Using the account of a delegated agent that has ended.
    #[error("the budget account of `{0}` is closed: the delegated agent has ended")]
    Closed(String),
    /// Closing an account that was not carved out of another.
    #[error("`{0}` is not a delegated agent; only carved accounts are closed")]
    NotDelegated(String),
}

/// One change to a ledger, as the BudgetActor journals it to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerOp {
    /// [`BudgetLedger::reserve`].
    Reserve(ReserveRequest),
    /// [`BudgetLedger::commit`].
    Commit(ReservationId, u64),
    /// [`BudgetLedger::end_attempts`].
    EndAttempts(String, u32),
    /// [`BudgetLedger::carve`].
    Carve(CarveRequest),
    /// [`BudgetLedger::close`].
    Close(String),
}

/// A request to carve a child's budget out of its parent's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarveRequest {
    /// The delegating agent.
    pub parent: String,
    /// The new account's name (unique in the run).
    pub child: String,
    /// The envelope wanted: the child's budget.
    pub wanted: u64,
    /// The smallest envelope worth starting the child with; less is a denial.
    pub min: u64,
}

/// The answer to [`BudgetLedger::carve`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CarveOutcome {
    /// The child's account exists with this limit (at most what was wanted).
    Carved(u64),
    /// Nothing was carved.
    Denied(Denial),
}

/// Counters of one account (an agent's, or the run's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The most `reserved + committed` may reach.
    pub limit: u64,
    /// Set aside for calls in flight.
    pub reserved: u64,
    /// Charged for finished calls.
    pub committed: u64,
    /// Reported usage beyond grants.
    pub overrun: u64,
}

impl Account {
    /// What may still be reserved: an overrun (usage beyond a grant) counts against the
    /// limit too, so an agent that goes on after one cannot spend it twice.
    pub fn available(&self) -> u64 {
        self.limit
            .saturating_sub(self.reserved + self.committed + self.overrun)
    }

    /// All tokens spent: committed plus overrun.
    pub fn used(&self) -> u64 {
        self.committed + self.overrun
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Open {
    granted: u64,
}

/// A delegated account's link to its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Envelope {
    parent: String,
    /// What the parent still holds for the child: its limit minus its committed usage;
    /// zero once closed.
    hold: u64,
    closed: bool,
}

/// Per-agent and global token accounts, with open reservations. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLedger {
    global: Account,
    agents: BTreeMap<String, Account>,
    open: BTreeMap<ReservationId, Open>,
    settled: BTreeMap<ReservationId, Settlement>,
    delegated: BTreeMap<String, Envelope>,
}

impl BudgetLedger {
    /// An empty ledger with a global limit.
    pub fn new(global_limit: u64) -> Self {
        Self {
            global: Account {
                limit: global_limit,
                ..Account::default()
            },
            agents: BTreeMap::new(),
            open: BTreeMap::new(),
            settled: BTreeMap::new(),
            delegated: BTreeMap::new(),
        }
    }

    /// Opens an account for `agent` with its own `limit`.
    pub fn register(&mut self, agent: &str, limit: u64) -> Result<(), LedgerError> {
        if self.agents.contains_key(agent) {
            return Err(LedgerError::DuplicateAgent(agent.to_owned()));
        }
        self.agents.insert(
            agent.to_owned(),
            Account {
                limit,
                ..Account::default()
            },
        );
        Ok(())
    }

    /// The run's account.
    pub fn global(&self) -> Account {
        self.global
    }

    /// An agent's account.
    pub fn account(&self, agent: &str) -> Option<Account> {
        self.agents.get(agent).copied()
    }

    /// Every agent's account, by name, delegated ones included.
    pub fn accounts(&self) -> impl Iterator<Item = (&str, Account)> {
        self.agents.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// The agent `agent`'s budget was carved from, if it is a delegated agent.
    pub fn parent(&self, agent: &str) -> Option<&str> {
        self.delegated.get(agent).map(|e| e.parent.as_str())
    }

    /// What `agent` could reserve now: its own headroom and, for a top-level agent, the
    /// run's (a delegated agent's envelope is already held in the run's counters).
    pub fn available(&self, agent: &str) -> Result<u64, LedgerError> {
        let own = self.agent(agent)?.available();
        Ok(if self.delegated.contains_key(agent) {
            own
        } else {
            own.min(self.global.available())
        })
    }

    /// Reserves tokens for one call. Asking again with the same id returns the same grant.
    pub fn reserve(&mut self, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError> {
        let agent = req.id.agent.as_str();
        self.check_open(agent)?;
        let available = self.available(agent)?;
        if let Some(open) = self.open.get(&req.id) {
            return Ok(ReserveOutcome::Granted(Grant {
                granted: open.granted,
                max_output_tokens: open.granted.saturating_sub(req.prompt_tokens),
                available,
            }));
        }
        let needed = req.prompt_tokens + req.min_output_tokens;
        if available < needed {
            return Ok(ReserveOutcome::Denied(self.denial(agent, needed)?));
        }
        let granted = (req.prompt_tokens + req.max_output_tokens).min(available);
        self.hold(agent, granted)?;
        self.open.insert(req.id.clone(), Open { granted });
        Ok(ReserveOutcome::Granted(Grant {
            granted,
            max_output_tokens: granted - req.prompt_tokens,
            available: available - granted,
        }))
    }

    /// Why `agent` cannot have `needed` tokens, and whether waiting could help.
    fn denial(&self, agent: &str, needed: u64) -> Result<Denial, LedgerError> {
        let account = self.agent(agent)?;
        let own = account.available();
        if self.delegated.contains_key(agent) {
            // Inside an envelope nothing else moves while the agent asks: its children's
            // envelopes return only when the tool call that delegated them returns.
            return Ok(Denial {
                available: own,
                needed,
                global: false,
                wait: false,
            });
        }
        let global = self.global.available();
        let others_reserved = self.global.reserved - account.reserved;
        Ok(Denial {
            available: own.min(global),
            needed,
            global: global < own,
            wait: own >= needed && global + others_reserved >= needed,
        })
    }

    /// Sets `amount` aside in `agent`'s account and, for a top-level agent, the run's.
    fn hold(&mut self, agent: &str, amount: u64) -> Result<(), LedgerError> {
        self.agent_mut(agent)?.reserved += amount;
        if !self.delegated.contains_key(agent) {
            self.global.reserved += amount;
        }
        Ok(())
    }

    /// Gives back `amount` set aside by [`Self::hold`].
    fn unhold(&mut self, agent: &str, amount: u64) -> Result<(), LedgerError> {
        self.agent_mut(agent)?.reserved -= amount;
        if !self.delegated.contains_key(agent) {
            self.global.reserved -= amount;
        }
        Ok(())
    }

    /// Settles a reservation with the usage the provider reported. Committing again with the
    /// same id returns the same settlement and changes nothing.
    pub fn commit(&mut self, id: &ReservationId, used: u64) -> Result<Settlement, LedgerError> {
        if let Some(done) = self.settled.get(id) {
            return Ok(*done);
        }
        let open = self
            .open
            .remove(id)
            .ok_or_else(|| LedgerError::UnknownReservation(id.clone()))?;
        let charged = used.min(open.granted);
        let overrun = used - charged;
        let released = open.granted - charged;
        self.unhold(&id.agent, open.granted)?;
        self.charge(&id.agent, charged, overrun)?;
        let settlement = Settlement {
            granted: open.granted,
            charged,
            overrun,
            released,
            available: self.available(&id.agent)?,
            agent_used: self.agents.get(&id.agent).map_or(0, Account::used),
        };
        self.settled.insert(id.clone(), settlement);
        Ok(settlement)
    }

    /// Ends `agent`'s attempts up to `through_attempt` (they finished, crashed, or were
    /// cancelled or killed) and forgets their settlements, which no one can retry any more.
    /// A reservation still open is a call whose end was never reported: the provider may
    /// have served up to its grant and bills what it served, so it is charged in full.
    /// Returns the tokens so charged; ending twice charges nothing the second time.
    pub fn end_attempts(&mut self, agent: &str, through_attempt: u32) -> Result<u64, LedgerError> {
        self.agent(agent)?;
        // Ids order by agent, then attempt, then turn, so these reservations are one range
        // of each map: ending costs the agent's own entries, not the whole run's.
        let done = ReservationId {
            agent: agent.to_owned(),
            attempt: 0,
            turn: 0,
        }..=ReservationId {
            agent: agent.to_owned(),
            attempt: through_attempt,
            turn: u32::MAX,
        };
        let unsettled: Vec<(ReservationId, u64)> = self
            .open
            .range(done.clone())
            .map(|(id, open)| (id.clone(), open.granted))
            .collect();
        let mut charged = 0;
        for (id, granted) in unsettled {
            charged += self.commit(&id, granted)?.charged;
        }
        let settled: Vec<ReservationId> =
            self.settled.range(done).map(|(id, _)| id.clone()).collect();
        for id in settled {
            self.settled.remove(&id);
        }
        Ok(charged)
    }

    /// Charges `charged` (plus `overrun`, kept apart) to `agent` and to every account its
    /// budget was carved from: each parent's hold turns into committed usage, and the
    /// top-level agent's usage is the run's.
    fn charge(&mut self, agent: &str, charged: u64, overrun: u64) -> Result<(), LedgerError> {
        let delegated = self.delegated.contains_key(agent);
        let mut name = agent.to_owned();
        loop {
            let account = self.agent_mut(&name)?;
            account.committed += charged;
            account.overrun += overrun;
            let Some(envelope) = self.delegated.get_mut(&name) else {
                break;
            };
            envelope.hold -= charged;
            let parent = envelope.parent.clone();
            self.agent_mut(&parent)?.reserved -= charged;
            name = parent;
        }
        if delegated {
            // The top-level ancestor's hold turned into usage above: so does the run's.
            self.global.reserved -= charged;
        }
        self.global.committed += charged;
        self.global.overrun += overrun;
        Ok(())
    }

    /// Opens a child's account with a budget carved out of what `parent` could reserve
    /// now: the envelope is the smaller of what was wanted and that, and the parent holds
    /// it until [`Self::close`]. Carving the same child again returns the same envelope.
    pub fn carve(&mut self, req: &CarveRequest) -> Result<CarveOutcome, LedgerError> {
        if let Some(envelope) = self.delegated.get(&req.child) {
            if envelope.parent != req.parent || envelope.closed {
                return Err(LedgerError::DuplicateAgent(req.child.clone()));
            }
            return Ok(CarveOutcome::Carved(self.agent(&req.child)?.limit));
        }
        self.check_open(&req.parent)?;
        if self.agents.contains_key(&req.child) {
            return Err(LedgerError::DuplicateAgent(req.child.clone()));
        }
        let available = self.available(&req.parent)?;
        if available < req.min.max(1) {
            return Ok(CarveOutcome::Denied(
                self.denial(&req.parent, req.min.max(1))?,
            ));
        }
        let envelope = req.wanted.min(available);
        self.hold(&req.parent, envelope)?;
        self.register(&req.child, envelope)?;
        self.delegated.insert(
            req.child.clone(),
            Envelope {
                parent: req.parent.clone(),
                hold: envelope,
                closed: false,
            },
        );
        Ok(CarveOutcome::Carved(envelope))
    }

    /// Ends a delegated agent's account: closes its own children's first, charges its
    /// calls still in flight ([`Self::end_attempts`]), and gives what is left of its envelope back to its parent.
    /// Returns the tokens given back to the parent; closing again gives back nothing.
    pub fn close(&mut self, child: &str) -> Result<u64, LedgerError> {
        let envelope = self
            .delegated
            .get(child)
            .ok_or_else(|| LedgerError::NotDelegated(child.to_owned()))?;
        if envelope.closed {
            return Ok(0);
        }
        let grandchildren: Vec<String> = self
            .delegated
            .iter()
            .filter(|(_, e)| e.parent == child && !e.closed)
            .map(|(name, _)| name.clone())
            .collect();
        for name in grandchildren {
            self.close(&name)?;
        }
        self.end_attempts(child, u32::MAX)?;
        let envelope = self.delegated.get_mut(child).expect("checked above");
        let returned = std::mem::take(&mut envelope.hold);
        envelope.closed = true;
        let parent = envelope.parent.clone();
        self.unhold(&parent, returned)?;
        Ok(returned)
    }

    fn check_open(&self, agent: &str) -> Result<(), LedgerError> {
        match self.delegated.get(agent) {
            Some(e) if e.closed => Err(LedgerError::Closed(agent.to_owned())),
            _ => Ok(()),
        }
    }

    /// Applies `op` as the BudgetActor did, discarding its answer. An op that failed there
    /// fails here too and, like there, changes nothing.
    pub fn apply(&mut self, op: &LedgerOp) {
        let _ = match op {
            LedgerOp::Reserve(req) => self.reserve(req).map(drop),
            LedgerOp::Commit(id, used) => self.commit(id, *used).map(drop),
            LedgerOp::EndAttempts(agent, attempt) => self.end_attempts(agent, *attempt).map(drop),
            LedgerOp::Carve(req) => self.carve(req).map(drop),
            LedgerOp::Close(child) => self.close(child).map(drop),
        };
    }

    fn agent(&self, agent: &str) -> Result<&Account, LedgerError> {
        self.agents
            .get(agent)
            .ok_or_else(|| LedgerError::UnknownAgent(agent.to_owned()))
    }

    fn agent_mut(&mut self, agent: &str) -> Result<&mut Account, LedgerError> {
        self.agents
            .get_mut(agent)
            .ok_or_else(|| LedgerError::UnknownAgent(agent.to_owned()))
    }
}

#[cfg(test)]
mod tests;
