//! The coordinator's transport: the engine's [`RemoteHost`] over NATS (see the module docs
//! of [`super`]).
//!
//! One router task per run owns the table of open attempts (agent and attempt → the
//! channel of its RemoteAttemptActor); no lock. It reads the run's request subject, the
//! workers' heartbeats and the connection's events:
//! - a message for an open attempt goes to its actor, whose answer is published to the
//!   message's reply subject by a small task (the router never waits on an actor);
//! - a message for an attempt that is not open (it ended, was lost and restarted, or was
//!   never placed) is refused at once and recorded as `remote_refused`;
//! - a heartbeat counts as a sign of life of every attempt it lists;
//! - a reconnection counts as one of every open attempt (the silence was ours).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::Client;
use codex_actors::audit::AuditEvent;
use codex_actors::protocol::{AttemptAnswer, AttemptOrder, Inbound, Placed, RemoteHost, Services};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::{checkout, Base, Cancel, Heartbeat, ModelChoice, Order, Said, Subjects};

/// How long placing an order may wait for NATS (a server restarting).
const PLACE_WAIT: Duration = Duration::from_secs(60);

type Key = (String, u32);

enum Command {
    Open(Key, mpsc::Sender<Inbound>),
    Close(Key),
}

/// The run's side of its remote attempts.
pub struct NatsHost {
    client: Client,
    js: jetstream::Context,
    subjects: Subjects,
    run_id: String,
    run_dir: PathBuf,
    models: ModelChoice,
    base: Base,
    silence_limit: Duration,
    router: mpsc::UnboundedSender<Command>,
}

/// What the coordinator of one run needs.
pub struct HostConfig {
    /// The NATS server.
    pub url: String,
    /// The cluster's subjects.
    pub subjects: Subjects,
    /// The run.
    pub run_id: String,
    /// Its directory (kept patches).
    pub run_dir: PathBuf,
    /// Where its models come from.
    pub models: ModelChoice,
    /// What its workspace starts from.
    pub base: Base,
    /// How long a claimed attempt may be silent.
    pub silence_limit: Duration,
}

impl NatsHost {
    /// Connects and starts the router; unreachable NATS or JetStream is an error here,
    /// before anything runs.
    pub async fn start(config: HostConfig) -> Result<Arc<Self>> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let name = format!("codex coordinator {}", config.run_id);
        let client = super::connect(&config.url, &name, false, Some(events_tx)).await?;
        // Every order carries the run's uncommitted changes: they must fit in a message.
        let room = client.server_info().max_payload.saturating_sub(256 * 1024);
        if config.base.patch.len() + config.models.replay.as_ref().map_or(0, String::len) > room {
            anyhow::bail!(
                "the workspace's uncommitted changes ({} KiB) do not fit in one message of the \
                 NATS server at {} (max_payload {} KiB, 256 KiB kept for the rest): commit \
                 them, or raise max_payload in the server's configuration",
                config.base.patch.len() / 1024,
                super::shown(&config.url),
                client.server_info().max_payload / 1024
            );
        }
        let js = jetstream::new(client.clone());
        super::work_queue(&js, &config.subjects).await?;
        let requests = client
            .subscribe(config.subjects.run(&config.run_id))
            .await?;
        let heartbeats = client.subscribe(config.subjects.heartbeat()).await?;
        client.flush().await?;
        let (router, commands) = mpsc::unbounded_channel();
        let routing = Router {
            client: client.clone(),
            run_id: config.run_id.clone(),
            services: Services::new(
                &config.run_id,
                Duration::from_secs(5),
                Duration::from_secs(10),
            ),
            open: HashMap::new(),
        };
        tokio::spawn(routing.run(commands, requests, heartbeats, events));
        Ok(Arc::new(Self {
            client,
            js,
            subjects: config.subjects,
            run_id: config.run_id,
            run_dir: config.run_dir,
            models: config.models,
            base: config.base,
            silence_limit: config.silence_limit,
            router,
        }))
    }

    /// Publishes `order` on the work queue, retrying while NATS is away; its message id
    /// makes a retry after a lost acknowledgement a duplicate JetStream drops.
    async fn publish(&self, order: &Order) -> Result<(), String> {
        let payload = serde_json::to_vec(order).map_err(|e| e.to_string())?;
        let id = format!(
            "{}/{}/{}",
            self.run_id, order.attempt.spec.name, order.attempt.attempt
        );
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let publish = PublishMessage::build()
                .message_id(&id)
                .payload(payload.clone().into());
            let sent = match self
                .js
                .send_publish(self.subjects.attempts(), publish)
                .await
            {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() >= PLACE_WAIT => {
                    return Err(format!(
                        "could not place the attempt on the work queue for {PLACE_WAIT:?}: {e}"
                    ))
                }
                Err(e) => {
                    tracing::debug!("placing {id} (retrying): {e}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl RemoteHost for NatsHost {
    async fn place(&self, order: AttemptOrder) -> Result<Placed, String> {
        let key = (order.spec.name.clone(), order.attempt);
        let (tx, inbound) = mpsc::channel(256);
        let _ = self.router.send(Command::Open(key.clone(), tx));
        let guard = Guard {
            key: key.clone(),
            run_id: self.run_id.clone(),
            router: self.router.clone(),
            client: self.client.clone(),
            cancel: self.subjects.cancel(),
        };
        let order = Order {
            attempt: order,
            models: self.models.clone(),
            base: self.base.clone(),
        };
        self.publish(&order).await?;
        Ok(Placed {
            inbound,
            guard: Box::new(guard),
        })
    }

    async fn deliver(&self, agent: &str, root: &Path, change: &str) -> Result<(), String> {
        let keep = self.run_dir.join("changes").join(format!(
            "{}.remote.patch",
            crate::worktree::git::file_name(agent)
        ));
        let (root, change) = (root.to_owned(), change.to_owned());
        tokio::task::spawn_blocking(move || checkout::apply(&root, &change, &keep))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{e:#}"))
    }

    fn silence_limit(&self) -> Duration {
        self.silence_limit
    }
}

/// Ends an attempt on the transport when its actor stops: closes its route and tells its
/// worker to stop.
struct Guard {
    key: Key,
    run_id: String,
    router: mpsc::UnboundedSender<Command>,
    client: Client,
    cancel: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.router.send(Command::Close(self.key.clone()));
        let cancel = Cancel {
            run_id: self.run_id.clone(),
            agent: self.key.0.clone(),
            attempt: self.key.1,
        };
        let (client, subject) = (self.client.clone(), self.cancel.clone());
        if let (Ok(payload), Ok(rt)) = (
            serde_json::to_vec(&cancel),
            tokio::runtime::Handle::try_current(),
        ) {
            rt.spawn(async move {
                let _ = client.publish(subject, payload.into()).await;
            });
        }
    }
}

/// The router task's state (see the module docs).
struct Router {
    client: Client,
    run_id: String,
    services: Services,
    open: HashMap<Key, mpsc::Sender<Inbound>>,
}

impl Router {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut requests: async_nats::Subscriber,
        mut heartbeats: async_nats::Subscriber,
        mut events: mpsc::UnboundedReceiver<async_nats::Event>,
    ) {
        loop {
            tokio::select! {
                // Commands first: an attempt is opened before its order is published, so
                // the claim that follows must never be read before the opening.
                biased;
                command = commands.recv() => match command {
                    Some(Command::Open(key, tx)) => { self.open.insert(key, tx); }
                    Some(Command::Close(key)) => { self.open.remove(&key); }
                    None => break,
                },
                Some(message) = requests.next() => self.route(message),
                Some(message) = heartbeats.next() => self.alive(&message.payload),
                Some(event) = events.recv() => {
                    if matches!(event, async_nats::Event::Connected) {
                        for tx in self.open.values() {
                            let _ = tx.try_send(Inbound::Alive);
                        }
                    }
                }
            }
        }
    }

    fn alive(&self, payload: &[u8]) {
        let Ok(beat) = serde_json::from_slice::<Heartbeat>(payload) else {
            return;
        };
        for (run, agent, attempt) in beat.attempts {
            if run != self.run_id {
                continue;
            }
            if let Some(tx) = self.open.get(&(agent, attempt)) {
                let _ = tx.try_send(Inbound::Alive);
            }
        }
    }

    fn route(&mut self, message: async_nats::Message) {
        let Some(reply_to) = message.reply.clone() else {
            return;
        };
        let said: Said = match serde_json::from_slice(&message.payload) {
            Ok(said) => said,
            Err(e) => {
                let answer = AttemptAnswer::Refused(format!("a message that is not one: {e}"));
                self.answer(reply_to, answer);
                return;
            }
        };
        let key = (said.agent.clone(), said.attempt);
        let Some(tx) = self.open.get(&key) else {
            self.refuse_closed(reply_to, said);
            return;
        };
        let (answer_tx, answer_rx) = oneshot::channel();
        let inbound = Inbound::Said {
            worker: said.worker.clone(),
            seq: said.seq,
            says: said.says,
            reply: answer_tx,
        };
        match tx.try_send(inbound) {
            Ok(()) => {
                let client = self.client.clone();
                tokio::spawn(async move {
                    let answer = answer_rx.await.unwrap_or_else(|_| {
                        AttemptAnswer::Refused("the attempt ended on the run's side".into())
                    });
                    publish_answer(&client, reply_to, &answer).await;
                });
            }
            // Full: no answer, the worker sends it again. Closed: the attempt ended.
            Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(inbound)) => {
                self.open.remove(&key);
                if let Inbound::Said {
                    worker, seq, says, ..
                } = inbound
                {
                    let (agent, attempt) = key;
                    let said = Said {
                        agent,
                        attempt,
                        worker,
                        seq,
                        says,
                    };
                    self.refuse_closed(reply_to, said);
                }
            }
        }
    }

    /// Refuses what a worker said for an attempt that is not open, and records it.
    fn refuse_closed(&self, reply_to: async_nats::Subject, said: Said) {
        let why = format!(
            "attempt {} of {} is not running in run {} (it ended, or was lost and restarted)",
            said.attempt, said.agent, self.run_id
        );
        let event = AuditEvent::RemoteRefused {
            agent: said.agent.clone(),
            attempt: said.attempt,
            worker: said.worker.clone(),
            request: said.says.label().to_owned(),
            why: why.clone(),
        };
        let services = self.services.clone();
        let client = self.client.clone();
        tokio::spawn(async move {
            // On disk before the worker hears of it: the refusal is the record.
            let _ = services.record(event).await;
            publish_answer(&client, reply_to, &AttemptAnswer::Refused(why)).await;
        });
    }

    fn answer(&self, reply_to: async_nats::Subject, answer: AttemptAnswer) {
        let client = self.client.clone();
        tokio::spawn(async move { publish_answer(&client, reply_to, &answer).await });
    }
}

async fn publish_answer(client: &Client, reply_to: async_nats::Subject, answer: &AttemptAnswer) {
    if let Ok(payload) = serde_json::to_vec(answer) {
        let _ = client.publish(reply_to, payload.into()).await;
    }
}
