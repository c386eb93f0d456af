//! A worker's side of one attempt's conversation with its run: the engine's
//! [`ServiceLink`] and [`AttemptLink`] over NATS request/reply.
//!
//! Everything the attempt says goes through one queue served by one task: messages are
//! numbered and sent one at a time, in order (an audit `append` the agent does not wait
//! for still arrives before its next reservation). What the attempt does not wait for (an
//! `append`, an artifact, a checkpoint) is sent together with the next message it waits
//! for, as one batch under one number, if that follows within [`LINGER`]: a turn then
//! costs three round trips (reserve, commit, the policy decision), not five. A message that gets no answer (a
//! timeout, no responder while the coordinator reconnects, NATS restarting) is sent again
//! with the same number, with backoff, for up to [`GIVE_UP`]; the run answers a repeat
//! with its first answer. Once the run refuses anything, the link is closed: every later
//! message fails at once with the refusal, and [`Link::refused`] tells the worker to stop
//! the attempt (the run has moved on without it).

use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use codex_actors::checkpoint::Checkpoint;
use codex_actors::protocol::{
    AgentOutcome, AttemptAnswer, AttemptLink, AttemptSays, ServiceError, ServiceLink, ServiceReply,
    ServiceRequest,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::Said;

/// How long a message is resent before the attempt gives up on its run.
pub const GIVE_UP: Duration = Duration::from_secs(120);

type Answer = Result<AttemptAnswer, String>;

struct Outgoing {
    says: AttemptSays,
    answer: Option<oneshot::Sender<Answer>>,
}

/// One attempt's link (cheap to clone).
#[derive(Clone)]
pub struct Link {
    queue: mpsc::UnboundedSender<Outgoing>,
    refused: watch::Receiver<Option<String>>,
    outcome: mpsc::UnboundedSender<AgentOutcome>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

/// Who speaks, and where to.
pub struct Speaker {
    /// The run's subject.
    pub subject: String,
    /// The agent.
    pub agent: String,
    /// The attempt.
    pub attempt: u32,
    /// The worker.
    pub worker: String,
}

impl Link {
    /// Starts the link's sender; the receiver gets the outcome the agent reports.
    pub fn start(
        client: Client,
        speaker: Speaker,
    ) -> (Self, mpsc::UnboundedReceiver<AgentOutcome>) {
        let (queue, rx) = mpsc::unbounded_channel();
        let (refused_tx, refused) = watch::channel(None);
        let (outcome, outcome_rx) = mpsc::unbounded_channel();
        tokio::spawn(send_in_order(client, speaker, rx, refused_tx));
        (
            Self {
                queue,
                refused,
                outcome,
            },
            outcome_rx,
        )
    }

    /// Says `says` and waits for the answer.
    pub async fn say(&self, says: AttemptSays) -> Answer {
        let (tx, rx) = oneshot::channel();
        let outgoing = Outgoing {
            says,
            answer: Some(tx),
        };
        if self.queue.send(outgoing).is_err() {
            return Err("the link to the run is closed".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the link to the run is closed".into()))
    }

    /// Resolves once the run refused something: why.
    pub async fn refused(&self) -> String {
        let mut refused = self.refused.clone();
        loop {
            if let Some(why) = refused.borrow_and_update().clone() {
                return why;
            }
            if refused.changed().await.is_err() {
                return "the link to the run is closed".into();
            }
        }
    }

    fn tell(&self, says: AttemptSays) {
        let _ = self.queue.send(Outgoing { says, answer: None });
    }
}

#[async_trait::async_trait]
impl ServiceLink for Link {
    async fn call(&self, request: ServiceRequest) -> Result<ServiceReply, ServiceError> {
        match self.say(AttemptSays::Service(request)).await {
            Ok(AttemptAnswer::Service(reply)) => Ok(reply),
            Ok(AttemptAnswer::Refused(why)) => Err(ServiceError::Refused(why)),
            Ok(other) => Err(ServiceError::Refused(format!(
                "unexpected answer {other:?}"
            ))),
            Err(_) => Err(ServiceError::Unavailable("run", GIVE_UP)),
        }
    }

    fn send(&self, request: ServiceRequest) {
        self.tell(AttemptSays::Service(request));
    }
}

impl AttemptLink for Link {
    fn done(&self, outcome: AgentOutcome) {
        // Sent with the change once the agent has stopped (see `worker`).
        let _ = self.outcome.send(outcome);
    }

    fn artifact(&self, path: String) {
        self.tell(AttemptSays::Artifact(path));
    }

    fn checkpoint(&self, checkpoint: Checkpoint) {
        self.tell(AttemptSays::Checkpoint(Box::new(checkpoint)));
    }
}

/// How long the sender waits, after a message the attempt does not wait for, for the next
/// one to send it with (the attempt's next request usually follows within microseconds).
const LINGER: Duration = Duration::from_millis(1);

/// The most messages sent as one.
const MAX_BATCH: usize = 64;

/// The link's sender task (see the module docs).
async fn send_in_order(
    client: Client,
    speaker: Speaker,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    refused: watch::Sender<Option<String>>,
) {
    let speaker = Arc::new(speaker);
    let mut seq = 0u64;
    while let Some(first) = queue.recv().await {
        let batch = gather(first, &mut queue).await;
        if let Some(why) = refused.borrow().clone() {
            answer_all(batch, &Ok(AttemptAnswer::Refused(why)));
            continue;
        }
        seq += 1;
        let (mut says, waiters): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|o| (o.says, o.answer)).unzip();
        let says = match says.len() {
            1 => says.pop().expect("one"),
            _ => AttemptSays::Batch(says),
        };
        let said = Said {
            agent: speaker.agent.clone(),
            attempt: speaker.attempt,
            worker: speaker.worker.clone(),
            seq,
            says,
        };
        let result = deliver(&client, &speaker.subject, &said).await;
        if let Some(why) = refusal(&result) {
            tracing::warn!(
                "run refused {} of {} attempt {}: {why}",
                said.says.label(),
                said.agent,
                said.attempt
            );
            let _ = refused.send(Some(why));
        }
        distribute(waiters, result);
    }
}

/// `first`, then what follows it at once, up to and including the next message the attempt
/// waits for (see [`LINGER`]).
async fn gather(first: Outgoing, queue: &mut mpsc::UnboundedReceiver<Outgoing>) -> Vec<Outgoing> {
    let mut batch = vec![first];
    while batch.last().is_some_and(|o| o.answer.is_none()) && batch.len() < MAX_BATCH {
        match tokio::time::timeout(LINGER, queue.recv()).await {
            Ok(Some(next)) => batch.push(next),
            _ => break,
        }
    }
    batch
}

/// The first refusal in an answer.
fn refusal(result: &Answer) -> Option<String> {
    match result {
        Ok(AttemptAnswer::Refused(why)) => Some(why.clone()),
        Ok(AttemptAnswer::Batch(answers)) => answers.iter().find_map(|a| match a {
            AttemptAnswer::Refused(why) => Some(why.clone()),
            _ => None,
        }),
        _ => None,
    }
}

/// Hands each waiting message its answer (a batch's answers in order).
fn distribute(waiters: Vec<Option<oneshot::Sender<Answer>>>, result: Answer) {
    match result {
        Ok(AttemptAnswer::Batch(answers)) if answers.len() == waiters.len() => {
            for (waiter, answer) in waiters.into_iter().zip(answers) {
                if let Some(tx) = waiter {
                    let _ = tx.send(Ok(answer));
                }
            }
        }
        other => {
            for tx in waiters.into_iter().flatten() {
                let _ = tx.send(other.clone());
            }
        }
    }
}

fn answer_all(batch: Vec<Outgoing>, answer: &Answer) {
    for tx in batch.into_iter().filter_map(|o| o.answer) {
        let _ = tx.send(answer.clone());
    }
}

/// Sends `said` until it is answered or [`GIVE_UP`] has passed.
async fn deliver(client: &Client, subject: &str, said: &Said) -> Answer {
    let payload = serde_json::to_vec(said).map_err(|e| e.to_string())?;
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match client
            .request(subject.to_owned(), payload.clone().into())
            .await
        {
            Ok(message) => {
                return serde_json::from_slice(&message.payload)
                    .map_err(|e| format!("an answer that is not JSON: {e}"));
            }
            Err(e) if started.elapsed() >= GIVE_UP => {
                return Err(format!("the run did not answer for {GIVE_UP:?}: {e}"));
            }
            Err(e) => {
                tracing::debug!("no answer to {} (retrying): {e}", said.says.label());
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}
