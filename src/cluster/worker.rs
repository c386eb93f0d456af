//! `codex worker`: a long-running process that runs agent attempts for the coordinators of
//! a cluster (see the module docs of [`super`]).
//!
//! Three tasks and the attempts:
//! - the *taker* waits for a free slot, then takes one order from the work queue (the
//!   durable consumer `workers`, shared by every worker of the cluster, so each order goes
//!   to one of them; an order taken but not acknowledged, because its worker died before
//!   its claim was accepted, is delivered again to another after the ack wait, 10 s);
//! - the *main loop* owns the table of running attempts: it starts each order's attempt,
//!   publishes the heartbeat naming them, and stops those the run cancels;
//! - each *attempt* claims its order (acknowledging it only once the run accepted the
//!   claim), prepares its worktree, builds its model and tools, runs the agent, and sends
//!   its outcome with its change, or `failed` when it crashed or could not start.
//!
//! SIGINT / SIGTERM stop the worker: it takes no more orders, stops its attempts and tells
//! their runs they failed here, so they are restarted elsewhere at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer::pull, AckKind};
use async_nats::Client;
use codex_actors::audit::Redactor;
use codex_actors::hosted::{self, HostedAttempt};
use codex_actors::identity::AgentName;
use codex_actors::protocol::{AgentOutcome, AttemptAnswer, AttemptSays, Services, SupervisorPort};
use codex_actors::tool::Toolbox;
use codex_actors::Model;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::copies::{may_change, Copy, SharedCell, SharedCopies, KEEP_IDLE};
use super::link::{Link, Speaker};
use super::{attempt_key, Cancel, Heartbeat, ModelChoice, Order, Subjects};
use crate::interrupt::Interrupts;
use crate::providers;

/// How `codex worker` was started.
pub struct WorkerOptions {
    /// The NATS server.
    pub url: String,
    /// The worker's name (in the audit log of every attempt it runs).
    pub name: String,
    /// Attempts at once.
    pub slots: usize,
    /// Its clone of the repository.
    pub checkout: PathBuf,
    /// The cluster.
    pub subjects: Subjects,
    /// How often it says it is alive.
    pub heartbeat: Duration,
    /// Its config file's overrides (`-c`).
    pub config: Vec<String>,
}

/// What every attempt of this worker shares.
struct Shared {
    client: Client,
    /// This worker's config file (its providers and keys, its sandbox).
    config: providers::config::Config,
    options: WorkerOptions,
    toolbox: Toolbox,
    redactor: Arc<Redactor>,
}

type Key = (String, String, u32);

/// An attempt the main loop knows of.
struct Running {
    /// Sends the run's cancellation (dropped: the worker is stopping).
    stop: Option<oneshot::Sender<()>>,
    /// It uses its run's shared copy.
    shares: bool,
}

/// Runs the worker until a signal stops it.
pub async fn run(options: WorkerOptions, mut interrupts: Interrupts) -> Result<ExitCode> {
    let client = super::connect(
        &options.url,
        &format!("codex worker {}", options.name),
        true,
        None,
    )
    .await?;
    let js = jetstream::new(client.clone());
    let stream = super::work_queue(&js, &options.subjects).await?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(
            "workers",
            pull::Config {
                durable_name: Some("workers".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(10),
                ..Default::default()
            },
        )
        .await
        .context("cannot make the work queue's consumer")?;
    let home = crate::definition::default_codex_home();
    let config = providers::config::Config::load(home.as_deref(), &options.config)?;
    let home = home.map(|h| h.canonicalize().unwrap_or(h));
    let sandbox = Arc::new(codex::sandbox::Sandbox::new(config.sandbox, home));
    let shared = Arc::new(Shared {
        config,
        client: client.clone(),
        toolbox: crate::tools::toolbox_with(sandbox),
        redactor: Arc::new(Redactor::from_env()),
        options,
    });
    let slots = Arc::new(Semaphore::new(shared.options.slots.max(1)));
    let (orders_tx, mut orders) = mpsc::channel(1);
    tokio::spawn(take(consumer, Arc::clone(&slots), orders_tx));
    let mut cancels = client.subscribe(shared.options.subjects.cancel()).await?;
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<Key>();
    let mut running: HashMap<Key, Running> = HashMap::new();
    let mut copies = SharedCopies::new(work_dir(&shared.options.checkout));
    let mut beat = tokio::time::interval(shared.options.heartbeat);
    eprintln!(
        "codex worker {}: {} slots, checkout {}, taking attempts from {}",
        shared.options.name,
        shared.options.slots,
        shared.options.checkout.display(),
        shared.options.subjects.attempts()
    );
    loop {
        tokio::select! {
            _ = beat.tick() => {
                heartbeat(&shared, running.keys()).await;
                remove_dirs(copies.sweep(Instant::now(), KEEP_IDLE));
            }
            Some((message, permit)) = orders.recv() => {
                start(&shared, message, permit, &ended_tx, &mut running, &mut copies);
            }
            Some(key) = ended.recv() => {
                if let Some(Running { shares: true, .. }) = running.remove(&key) {
                    copies.give_back(&key.0, Instant::now());
                }
            }
            Some(message) = cancels.next() => {
                if let Ok(c) = serde_json::from_slice::<Cancel>(&message.payload) {
                    let key = (c.run_id, c.agent, c.attempt);
                    if let Some(stop) = running.get_mut(&key).and_then(|r| r.stop.take()) {
                        let _ = stop.send(());
                    }
                }
            }
            signal = interrupts.received() => {
                eprintln!("codex worker {}: {}: stopping its {} attempts", shared.options.name, signal.name(), running.len());
                break;
            }
        }
    }
    slots.close();
    let stopping = running.len();
    drop(running); // each attempt sees its stop channel close and fails here
    for _ in 0..stopping {
        if tokio::time::timeout(Duration::from_secs(10), ended.recv())
            .await
            .is_err()
        {
            break;
        }
    }
    // Nothing runs any more: every shared copy goes.
    let all = copies.all();
    let _ = tokio::task::spawn_blocking(move || all.into_iter().for_each(remove_dir)).await;
    Ok(ExitCode::SUCCESS)
}

fn remove_dirs(dirs: Vec<PathBuf>) {
    if !dirs.is_empty() {
        tokio::task::spawn_blocking(move || dirs.into_iter().for_each(remove_dir));
    }
}

fn remove_dir(dir: PathBuf) {
    let _ = std::fs::remove_dir_all(dir);
}

async fn heartbeat<'a>(shared: &Shared, running: impl Iterator<Item = &'a Key>) {
    let beat = Heartbeat {
        worker: shared.options.name.clone(),
        attempts: running.cloned().collect(),
    };
    if let Ok(payload) = serde_json::to_vec(&beat) {
        let subject = shared.options.subjects.heartbeat();
        let _ = shared.client.publish(subject, payload.into()).await;
    }
}

/// The taker task (see the module docs).
async fn take(
    consumer: jetstream::consumer::Consumer<pull::Config>,
    slots: Arc<Semaphore>,
    orders: mpsc::Sender<(jetstream::Message, OwnedSemaphorePermit)>,
) {
    while let Ok(permit) = Arc::clone(&slots).acquire_owned().await {
        let batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let Ok(mut batch) = batch else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if let Some(Ok(message)) = batch.next().await {
            if orders.send((message, permit)).await.is_err() {
                return;
            }
        }
    }
}

fn start(
    shared: &Arc<Shared>,
    message: jetstream::Message,
    permit: OwnedSemaphorePermit,
    ended: &mpsc::UnboundedSender<Key>,
    running: &mut HashMap<Key, Running>,
    copies: &mut SharedCopies,
) {
    let order: Order = match serde_json::from_slice(&message.payload) {
        Ok(order) => order,
        Err(e) => {
            tracing::warn!("dropping an order that is not one: {e}");
            tokio::spawn(async move { message.ack_with(AckKind::Term).await });
            return;
        }
    };
    let key = (
        order.attempt.run_id.clone(),
        order.attempt.spec.name.clone(),
        order.attempt.attempt,
    );
    let (stop_tx, stop) = oneshot::channel();
    let copy = (!may_change(&order.attempt.spec)).then(|| copies.take(&key.0));
    let entry = Running {
        stop: Some(stop_tx),
        shares: copy.is_some(),
    };
    running.insert(key.clone(), entry);
    let (shared, ended) = (Arc::clone(shared), ended.clone());
    tokio::spawn(async move {
        run_attempt(&shared, message, order, copy, stop).await;
        drop(permit);
        let _ = ended.send(key);
    });
}

/// One attempt, from claim to outcome (see the module docs).
async fn run_attempt(
    shared: &Shared,
    message: jetstream::Message,
    order: Order,
    copy: Option<SharedCell>,
    mut stop: oneshot::Receiver<()>,
) {
    let attempt = &order.attempt;
    let (agent, number) = (attempt.spec.name.clone(), attempt.attempt);
    let speaker = Speaker {
        subject: shared.options.subjects.run(&attempt.run_id),
        agent: agent.clone(),
        attempt: number,
        worker: shared.options.name.clone(),
    };
    let (link, mut outcome) = Link::start(shared.client.clone(), speaker);
    let claim = AttemptSays::Claim {
        worker: shared.options.name.clone(),
    };
    match link.say(claim).await {
        Ok(AttemptAnswer::Claimed) => {
            let _ = message.double_ack().await;
        }
        Ok(other) => {
            eprintln!("attempt {number} of {agent}: not claimed ({other:?})");
            let _ = message.ack().await;
            return;
        }
        // The run is unreachable: leave the order to be delivered again.
        Err(e) => {
            eprintln!("attempt {number} of {agent}: the run did not answer the claim: {e}");
            return;
        }
    }
    let dir = work_dir(&shared.options.checkout).join(attempt_key(&attempt.run_id, &agent, number));
    let prepared = prepare(shared, &order, &dir, copy.as_ref(), &link).await;
    let (tree, hosted) = match prepared {
        Ok(ready) => ready,
        Err(e) => {
            let why = format!("{e:#}");
            eprintln!("attempt {number} of {agent}: {why}");
            let _ = link.say(AttemptSays::Failed { why }).await;
            return;
        }
    };
    let ended = tokio::select! {
        _ = hosted.stopped => Ended::Stopped,
        // The run cancelled it (a message), or this worker is stopping (the sender dropped).
        told = &mut stop => match told {
            Ok(()) => Ended::Cancelled,
            Err(_) => Ended::WorkerStopping,
        },
        why = link.refused() => Ended::Refused(why),
    };
    if !matches!(ended, Ended::Stopped) {
        hosted.actor.kill();
    }
    finish(&link, ended, outcome.try_recv().ok(), &tree, &agent, number).await;
    let _ = std::fs::remove_file(dir.with_extension("replay.yaml"));
    let _ = tokio::task::spawn_blocking(move || tree.remove()).await;
}

enum Ended {
    Stopped,
    Cancelled,
    WorkerStopping,
    Refused(String),
}

/// Tells the run how the attempt ended.
async fn finish(
    link: &Link,
    ended: Ended,
    outcome: Option<AgentOutcome>,
    tree: &Copy,
    agent: &str,
    number: u32,
) {
    let says = match (ended, outcome) {
        (Ended::Stopped, Some(outcome)) => match tree.change() {
            Ok(change) => AttemptSays::Done {
                outcome,
                change: Some(change).filter(|c| !c.is_empty()),
            },
            Err(e) => AttemptSays::Failed {
                why: format!("its change could not be read: {e:#}"),
            },
        },
        (Ended::Stopped, None) => AttemptSays::Failed {
            why: "the agent stopped without an outcome (it crashed: see this worker's log)".into(),
        },
        (Ended::Cancelled, _) => return,
        (Ended::WorkerStopping, _) => AttemptSays::Failed {
            why: "its worker was stopped (SIGINT/SIGTERM)".into(),
        },
        (Ended::Refused(why), _) => {
            eprintln!("attempt {number} of {agent}: stopped, the run refused it: {why}");
            return;
        }
    };
    if let Err(e) = link.say(says).await {
        eprintln!("attempt {number} of {agent}: its end did not reach the run: {e}");
    }
}

/// Where this worker's attempts' worktrees go.
fn work_dir(checkout: &Path) -> PathBuf {
    checkout.join(".codex").join("worker")
}

/// The attempt's worktree, model and tools, and the agent started.
async fn prepare(
    shared: &Shared,
    order: &Order,
    dir: &Path,
    copy: Option<&SharedCell>,
    link: &Link,
) -> Result<(Copy, hosted::Hosted)> {
    let checkout = &shared.options.checkout;
    let tree = match copy {
        Some(cell) => Copy::shared(cell, checkout, &order.base).await?,
        None => Copy::own(checkout, dir, &order.base).await?,
    };
    let spec = &order.attempt.spec;
    let model = model_for(&shared.config, &order.models, &spec.name, dir).await?;
    if !spec.permissions.mcp.is_empty() {
        anyhow::bail!(
            "agent {} uses MCP servers, which workers do not start",
            spec.name
        );
    }
    let tools = crate::tools::select(&shared.toolbox, &spec.tools)?;
    let hosted = hosted::host(HostedAttempt {
        order: order.attempt.clone(),
        root: tree.dir().to_owned(),
        model,
        tools,
        services: Services::linked(Arc::new(link.clone())),
        supervisor: SupervisorPort::linked(Arc::new(link.clone())),
        redactor: Arc::clone(&shared.redactor),
    })
    .await
    .map_err(anyhow::Error::msg)?;
    Ok((tree, hosted))
}

/// The attempt's model, built here: the run's replay script, or a provider from this
/// worker's config file and environment.
async fn model_for(
    config: &providers::config::Config,
    choice: &ModelChoice,
    agent: &str,
    dir: &Path,
) -> Result<Arc<dyn Model>> {
    if let Some(script) = &choice.replay {
        // Beside the worktree, not in it: the agent's tools do not see the script.
        let path = dir.with_extension("replay.yaml");
        std::fs::write(&path, script)?;
        return providers::replay_model(&path, &[agent]);
    }
    let mut selector = providers::select::Selector::new(
        config.clone(),
        choice.provider.clone(),
        choice.model.clone(),
    );
    let definition = AgentName::parse(agent).definition().to_owned();
    let (provider, model) = choice
        .definitions
        .get(&definition)
        .cloned()
        .unwrap_or_default();
    selector
        .model_for(agent, provider.as_deref(), model.as_deref())
        .await
}
