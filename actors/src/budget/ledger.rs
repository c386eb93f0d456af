//! The token ledger, as pure code: [`BudgetLedger`].
//!
//! Before every model call an agent *reserves* its worst case (estimated prompt tokens plus
//! the output cap). The ledger grants what fits under both the agent's limit and the run's
//! global limit, possibly less than asked, in which case the caller clamps its output cap to
//! the grant. After the call the agent *commits* the usage the provider reported; the unused
//! part of the grant returns to the pool. When an agent crashes or is cancelled, its open
//! reservations are *released*.
//!
//! Invariants (property-tested below over random interleavings of these operations):
//! - for every agent and for the run, `reserved + committed <= limit`;
//! - the agents' counters sum to the run's counters;
//! - a commit releases exactly `granted - min(used, granted)`;
//! - no counter underflows.
//!
//! A provider that reports more usage than was granted breaks no invariant: the excess is
//! recorded apart, as `overrun`, and reported with the agent's usage. It is never hidden, and
//! the agent that caused it is stopped by its actor.
//!
//! Reservation ids are chosen by the caller (agent, attempt, turn), which makes `reserve` and
//! `commit` idempotent: an agent that lost a reply because the BudgetActor crashed simply
//! asks again and gets the same answer. Releases are bounded by attempt, so releasing a
//! crashed attempt never touches the reservations of the attempt that replaced it.
//!
//! Every change is a [`LedgerOp`], and applying the same ops in the same order to a copy
//! yields the same ledger ([`BudgetLedger::apply`]). The BudgetActor sends each op to the
//! run supervisor, which keeps such a copy to restart the actor from.

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
    /// Registering an agent twice.
    #[error("agent `{0}` already has a budget account")]
    DuplicateAgent(String),
}

/// One change to a ledger, as the BudgetActor journals it to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerOp {
    /// [`BudgetLedger::reserve`].
    Reserve(ReserveRequest),
    /// [`BudgetLedger::commit`].
    Commit(ReservationId, u64),
    /// [`BudgetLedger::release_attempts`].
    Release(String, u32),
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
    /// What may still be reserved.
    pub fn available(&self) -> u64 {
        self.limit.saturating_sub(self.reserved + self.committed)
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

/// Per-agent and global token accounts, with open reservations. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLedger {
    global: Account,
    agents: BTreeMap<String, Account>,
    open: BTreeMap<ReservationId, Open>,
    settled: BTreeMap<ReservationId, Settlement>,
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

    /// Every agent's account, by name.
    pub fn accounts(&self) -> impl Iterator<Item = (&str, Account)> {
        self.agents.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// What `agent` could reserve now: the smaller of its own and the run's headroom.
    pub fn available(&self, agent: &str) -> Result<u64, LedgerError> {
        let account = self.agent(agent)?;
        Ok(account.available().min(self.global.available()))
    }

    /// Reserves tokens for one call. Asking again with the same id returns the same grant.
    pub fn reserve(&mut self, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError> {
        let own = self.agent(&req.id.agent)?.available();
        if let Some(open) = self.open.get(&req.id) {
            return Ok(ReserveOutcome::Granted(Grant {
                granted: open.granted,
                max_output_tokens: open.granted.saturating_sub(req.prompt_tokens),
                available: own.min(self.global.available()),
            }));
        }
        let global = self.global.available();
        let available = own.min(global);
        let needed = req.prompt_tokens + req.min_output_tokens;
        if available < needed {
            let others_reserved = self.global.reserved - self.agent(&req.id.agent)?.reserved;
            return Ok(ReserveOutcome::Denied(Denial {
                available,
                needed,
                global: global < own,
                wait: own >= needed && global + others_reserved >= needed,
            }));
        }
        let granted = (req.prompt_tokens + req.max_output_tokens).min(available);
        self.agent_mut(&req.id.agent)?.reserved += granted;
        self.global.reserved += granted;
        self.open.insert(req.id.clone(), Open { granted });
        Ok(ReserveOutcome::Granted(Grant {
            granted,
            max_output_tokens: granted - req.prompt_tokens,
            available: available - granted,
        }))
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
        for account in [
            &mut self.global,
            self.agents.get_mut(&id.agent).expect("open"),
        ] {
            account.reserved -= open.granted;
            account.committed += charged;
            account.overrun += overrun;
        }
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

    /// Releases the open reservations of `agent`'s attempts up to `through_attempt` (they
    /// crashed, were cancelled, or ended) and forgets their settlements, which no one can
    /// retry any more; returns the tokens given back. Releasing twice gives back nothing the
    /// second time.
    pub fn release_attempts(
        &mut self,
        agent: &str,
        through_attempt: u32,
    ) -> Result<u64, LedgerError> {
        self.agent(agent)?;
        // Ids order by agent, then attempt, then turn, so these reservations are one range
        // of each map: a release costs the agent's own entries, not the whole run's.
        let done = ReservationId {
            agent: agent.to_owned(),
            attempt: 0,
            turn: 0,
        }..=ReservationId {
            agent: agent.to_owned(),
            attempt: through_attempt,
            turn: u32::MAX,
        };
        let settled: Vec<ReservationId> = self
            .settled
            .range(done.clone())
            .map(|(id, _)| id.clone())
            .collect();
        for id in settled {
            self.settled.remove(&id);
        }
        let ids: Vec<ReservationId> = self.open.range(done).map(|(id, _)| id.clone()).collect();
        let mut released = 0;
        for id in ids {
            let open = self.open.remove(&id).expect("listed");
            released += open.granted;
        }
        self.agent_mut(agent)?.reserved -= released;
        self.global.reserved -= released;
        Ok(released)
    }

    /// Applies `op` as the BudgetActor did, discarding its answer. An op that failed there
    /// fails here too and, like there, changes nothing.
    pub fn apply(&mut self, op: &LedgerOp) {
        let _ = match op {
            LedgerOp::Reserve(req) => self.reserve(req).map(drop),
            LedgerOp::Commit(id, used) => self.commit(id, *used).map(drop),
            LedgerOp::Release(agent, attempt) => self.release_attempts(agent, *attempt).map(drop),
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
