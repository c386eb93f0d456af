//! Agents on other machines: a run's attempts placed on workers over NATS JetStream.
//!
//! The run's process (the coordinator) keeps everything that decides: the supervisor, the
//! BudgetActor, the AuditActor and the PolicyActor. Only agent attempts move. The engine
//! sees a remote attempt as a RemoteAttemptActor fed by a [`codex_actors::protocol::RemoteHost`];
//! this module is that host's transport, and the worker at the other end:
//!
//! - [`coordinator`]: places each attempt as an [`Order`] on the cluster's JetStream work
//!   queue (`codex.<cluster>.attempts`, file storage, so orders survive a NATS restart),
//!   and routes what workers say (`codex.<cluster>.run.<run>`, request/reply) to the
//!   attempt's actor; what is said for an attempt that is not running is refused and
//!   recorded (`remote_refused`).
//! - [`worker`]: `codex worker` takes orders from the queue (one durable consumer shared by
//!   all workers), claims each, prepares a git worktree of its own checkout at the run's
//!   commit plus its uncommitted changes ([`checkout`]), runs the agent with a model and
//!   tools built here (keys stay on the worker), and sends the change back as a patch.
//! - [`link`]: the worker's side of an attempt's conversation with the run: one message
//!   in flight at a time, numbered, resent with the same number until answered (the run
//!   answers a repeat with its first answer, so nothing is applied twice).
//!
//! Liveness: workers publish a heartbeat (`codex.<cluster>.heartbeat`) naming the attempts
//! they run; a claimed attempt that is silent for the silence limit is failed by the
//! engine and restarted under the agent's restart rules, on whichever worker takes the new
//! order, from its last checkpoint. When the coordinator's own connection drops and comes
//! back, every attempt counts as heard from, so a NATS restart does not fail them.

pub mod checkout;
pub mod coordinator;
pub mod copies;
pub mod link;
pub mod worker;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use async_nats::jetstream;
use codex_actors::protocol::{AttemptOrder, AttemptSays};
use serde::{Deserialize, Serialize};

pub use crate::providers::config::ClusterConfig;

/// The silence limit when `[cluster] silence_limit` does not say.
pub const DEFAULT_SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// The subjects and stream of one cluster.
#[derive(Debug, Clone)]
pub struct Subjects {
    cluster: String,
}

impl Subjects {
    /// The subjects of cluster `name`; a name NATS cannot carry is refused.
    pub fn new(name: &str) -> Result<Self> {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            bail!("cluster name `{name}`: use letters, digits, `-` and `_` only");
        }
        Ok(Self {
            cluster: name.to_owned(),
        })
    }

    /// The work queue's subject.
    pub fn attempts(&self) -> String {
        format!("codex.{}.attempts", self.cluster)
    }

    /// The work queue's stream.
    pub fn stream(&self) -> String {
        format!("codex-{}-attempts", self.cluster)
    }

    /// Where the attempts of run `run_id` talk to it.
    pub fn run(&self, run_id: &str) -> String {
        let safe: String = run_id
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    true => c,
                    false => '_',
                },
            )
            .collect();
        format!("codex.{}.run.{safe}", self.cluster)
    }

    /// Workers' heartbeats.
    pub fn heartbeat(&self) -> String {
        format!("codex.{}.heartbeat", self.cluster)
    }

    /// Cancellations of attempts.
    pub fn cancel(&self) -> String {
        format!("codex.{}.cancel", self.cluster)
    }
}

/// One attempt, as the queue carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// What the engine asks for.
    pub attempt: AttemptOrder,
    /// Where its model comes from.
    pub models: ModelChoice,
    /// What its workspace starts from.
    pub base: Base,
}

/// How a worker chooses an attempt's model: the run's `--replay` script, or its
/// `--provider` / `--model` and the agent's definition over the worker's own config file
/// (keys are the worker's: none crosses the bus).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelChoice {
    /// The replay script's text, when the run plays one.
    pub replay: Option<String>,
    /// `--provider`.
    pub provider: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// Each agent definition's own provider and model, by definition name.
    pub definitions: BTreeMap<String, (Option<String>, Option<String>)>,
}

/// The workspace an attempt starts from: a commit, and the uncommitted changes on top.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Base {
    /// The commit (the run's HEAD).
    pub commit: String,
    /// `git diff --binary` from it to the workspace as it was (untracked files included).
    pub patch: String,
}

/// What a worker says about one attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Said {
    /// The agent.
    pub agent: String,
    /// Its attempt.
    pub attempt: u32,
    /// The worker.
    pub worker: String,
    /// The message's number (from 1, per attempt and worker).
    pub seq: u64,
    /// What it says.
    pub says: AttemptSays,
}

/// A worker's heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The worker.
    pub worker: String,
    /// The attempts it runs: (run, agent, attempt).
    pub attempts: Vec<(String, String, u32)>,
}

/// An attempt the run no longer wants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Cancel {
    /// The run.
    pub run_id: String,
    /// The agent.
    pub agent: String,
    /// The attempt.
    pub attempt: u32,
}

/// Connects to the NATS server at `url` as `name`; reconnects forever after a drop. When
/// `wait` is set the first connection is retried too (a worker may start before NATS).
pub async fn connect(
    url: &str,
    name: &str,
    wait: bool,
    events: Option<tokio::sync::mpsc::UnboundedSender<async_nats::Event>>,
) -> Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(5)));
    if wait {
        options = options.retry_on_initial_connect();
    }
    if let Some(events) = events {
        options = options.event_callback(move |event| {
            let events = events.clone();
            async move {
                let _ = events.send(event);
            }
        });
    }
    options.connect(url).await.with_context(|| {
        format!(
            "cannot reach the NATS server at {}: start one with `nats-server -js -sd DIR` \
             (JetStream on, with a store directory), or give another address",
            shown(url)
        )
    })
}

/// The cluster's work queue, made if missing.
pub async fn work_queue(
    js: &jetstream::Context,
    subjects: &Subjects,
) -> Result<jetstream::stream::Stream> {
    let config = jetstream::stream::Config {
        name: subjects.stream(),
        subjects: vec![subjects.attempts()],
        retention: jetstream::stream::RetentionPolicy::WorkQueue,
        storage: jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    js.get_or_create_stream(config).await.with_context(|| {
        format!(
            "cannot use the JetStream stream {}: is JetStream on (`nats-server -js`)?",
            subjects.stream()
        )
    })
}

/// `url` as it may be shown: a password or token in it masked (`nats://user:***@host`).
pub fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    let masked = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}://{masked}@{host}")
}

/// A short key naming an attempt in file names.
pub fn attempt_key(run_id: &str, agent: &str, attempt: u32) -> String {
    let name = crate::worktree::git::file_name(agent);
    format!("{run_id}-{name}-{attempt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_name_nats_cannot_carry_is_refused() {
        assert!(Subjects::new("team-a_1").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>"] {
            let e = Subjects::new(bad).unwrap_err().to_string();
            assert!(e.contains("letters, digits"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_password_or_token_in_the_url_is_never_shown() {
        assert_eq!(shown("nats://ann:s3cret@h:4222"), "nats://ann:***@h:4222");
        assert_eq!(shown("nats://tok3n@h:4222"), "nats://***@h:4222");
        assert_eq!(shown("nats://h:4222"), "nats://h:4222");
    }

    #[test]
    fn a_run_id_becomes_one_subject_token() {
        let s = Subjects::new("c").unwrap();
        assert_eq!(s.run("2026.11 x"), "codex.c.run.2026_11_x");
    }
}
