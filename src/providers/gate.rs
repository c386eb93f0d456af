//! The rate gate: one actor per provider that every agent on it goes through before each
//! request, so they share its limits instead of each meeting them on its own.
//!
//! - **Concurrency**: at most `max_concurrency` requests in flight (a request holds its
//!   [`Permit`] until its stream ends or is dropped).
//! - **Rate**: at most `requests_per_minute` starts, spaced evenly.
//! - **Backoff**: a 429 (or a `Retry-After`) seen by any agent pauses every start on the
//!   provider until it has passed: the whole provider slows down at once.
//!
//! The gate is an actor (ractor) owning its counters and its queue; agents reach it only by
//! messages (`Acquire`, `Release`, `Backoff`), and it schedules its own wake-ups with
//! timer messages, never sleeping in a handler. It knows nothing of HTTP. If the actor is
//! gone, requests go ahead ungated: the gate shapes load, it never blocks a run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::time::Instant;

/// The limits of one provider's gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateLimits {
    /// Requests in flight at once; `None`: no limit.
    pub max_concurrency: Option<usize>,
    /// Request starts per minute; `None`: no limit.
    pub requests_per_minute: Option<u32>,
}

/// Messages of the gate actor.
#[derive(Debug)]
pub enum GateMsg {
    /// Admit one request; replied when it may start.
    Acquire(RpcReplyPort<()>),
    /// A request admitted earlier has ended.
    Release,
    /// Start nothing for this long (a 429 or `Retry-After`).
    Backoff(Duration),
    /// Timer: look at the queue again.
    Wake,
}

/// The gate actor.
struct GateActor;

/// Its state.
struct GateState {
    limits: GateLimits,
    in_flight: usize,
    waiting: VecDeque<RpcReplyPort<()>>,
    paused_until: Instant,
    next_start: Instant,
    wake_scheduled: bool,
}

impl Actor for GateActor {
    type Msg = GateMsg;
    type State = GateState;
    type Arguments = GateLimits;

    async fn pre_start(
        &self,
        _myself: ActorRef<GateMsg>,
        limits: GateLimits,
    ) -> Result<GateState, ActorProcessingErr> {
        let now = Instant::now();
        Ok(GateState {
            limits,
            in_flight: 0,
            waiting: VecDeque::new(),
            paused_until: now,
            next_start: now,
            wake_scheduled: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<GateMsg>,
        msg: GateMsg,
        state: &mut GateState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            GateMsg::Acquire(reply) => state.waiting.push_back(reply),
            GateMsg::Release => state.in_flight = state.in_flight.saturating_sub(1),
            GateMsg::Backoff(d) => {
                state.paused_until = state.paused_until.max(Instant::now() + d);
            }
            GateMsg::Wake => state.wake_scheduled = false,
        }
        state.admit(&myself);
        Ok(())
    }
}

impl GateState {
    /// Admits waiting requests while the limits allow; otherwise schedules a wake-up.
    fn admit(&mut self, myself: &ActorRef<GateMsg>) {
        while !self.waiting.is_empty() {
            if self
                .limits
                .max_concurrency
                .is_some_and(|max| self.in_flight >= max.max(1))
            {
                return; // a Release will come
            }
            let now = Instant::now();
            let ready = self.paused_until.max(self.next_start);
            if ready > now {
                self.wake_at(myself, ready - now);
                return;
            }
            let Some(reply) = self.waiting.pop_front() else {
                return;
            };
            if reply.send(()).is_ok() {
                self.in_flight += 1;
                if let Some(rpm) = self.limits.requests_per_minute {
                    self.next_start = now + Duration::from_secs(60) / rpm.max(1);
                }
            }
        }
    }

    fn wake_at(&mut self, myself: &ActorRef<GateMsg>, after: Duration) {
        if !self.wake_scheduled {
            self.wake_scheduled = true;
            myself.send_after(after, || GateMsg::Wake);
        }
    }
}

/// A handle to one provider's gate; cheap to clone. The actor stops when the last handle
/// is dropped.
#[derive(Debug, Clone)]
pub struct RateGate {
    inner: Arc<GateHandle>,
}

#[derive(Debug)]
struct GateHandle {
    actor: ActorRef<GateMsg>,
}

impl Drop for GateHandle {
    fn drop(&mut self) {
        self.actor.stop(None);
    }
}

/// Leave to start one request; dropping it tells the gate the request ended.
#[derive(Debug)]
pub struct Permit {
    gate: Option<ActorRef<GateMsg>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(gate) = &self.gate {
            let _ = gate.cast(GateMsg::Release);
        }
    }
}

impl RateGate {
    /// Starts a gate with `limits`.
    pub async fn spawn(limits: GateLimits) -> anyhow::Result<Self> {
        let (actor, _) = Actor::spawn(None, GateActor, limits)
            .await
            .map_err(|e| anyhow::anyhow!("could not start the rate gate: {e}"))?;
        Ok(Self {
            inner: Arc::new(GateHandle { actor }),
        })
    }

    /// Waits until a request may start.
    pub async fn acquire(&self) -> Permit {
        let actor = &self.inner.actor;
        match actor.call(GateMsg::Acquire, None).await {
            Ok(ractor::rpc::CallResult::Success(())) => Permit {
                gate: Some(actor.clone()),
            },
            _ => Permit { gate: None },
        }
    }

    /// Pauses every start on this provider for `pause`.
    pub fn backoff(&self, pause: Duration) {
        let _ = self.inner.actor.cast(GateMsg::Backoff(pause));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrency_is_shared_and_released_on_drop() {
        let gate = RateGate::spawn(GateLimits {
            max_concurrency: Some(1),
            requests_per_minute: None,
        })
        .await
        .unwrap();
        let first = gate.acquire().await;
        let g2 = gate.clone();
        let second = tokio::spawn(async move { g2.acquire().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !second.is_finished(),
            "the second request waits for the first"
        );
        drop(first);
        second.await.unwrap();
    }

    #[tokio::test]
    async fn a_backoff_pauses_every_acquirer() {
        let gate = RateGate::spawn(GateLimits::default()).await.unwrap();
        gate.backoff(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let (a, b) = tokio::join!(gate.acquire(), gate.acquire());
        drop((a, b));
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}
