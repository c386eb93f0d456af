//! Checkpoints: an agent's conversation after each turn, so that a restarted attempt (or a
//! resumed run) continues from there instead of from its goal.
//!
//! After every turn the AgentActor sends its [`Checkpoint`] to the run supervisor (a
//! message, like an artifact). The supervisor keeps each agent's newest in memory, and a
//! restarted attempt starts from that, whatever the disk says; it also hands it to the
//! run's [`CheckpointStore`], a task that writes `.codex/runs/<run>/agents/<name>.json` in
//! the background (each agent's newest of an interval, to a temporary file renamed over
//! the old one, so a reader finds a whole file), for `codex resume` after the process was
//! killed. The interval is 100 ms, and longer when many agents checkpoint at once (1 ms
//! per agent whose file the last batch wrote, up to 2 s): replacing a file costs about
//! 0.2 ms of CPU (a new inode, a rename, the old inode freed), so with a thousand agents a
//! file per agent per 100 ms would be a fifth of the run's CPU. A killed run resumes
//! from the turn its agent's file holds, at most one interval old. An agent that is final
//! has what it had pending dropped (the supervisor tells the store): `codex resume` never
//! continues an agent the log says finished, and a run of a thousand agents would
//! otherwise end by writing a thousand useless files. Once every agent is final, the store
//! is abandoned: a batch being written stops at its next file. The turn never waits for the disk, and checkpoints are not fsynced: they save
//! turns, they are not a record (the audit log is, durable before a turn goes on), and an
//! fsync per turn would compete with the audit log's on the same disk. After a power loss
//! a checkpoint may be older than the log; a resumed agent then replays the turns after it.
//!
//! Delegated agents' names (`lead/test-gen#1`) hold characters that are not file names;
//! [`file_name`] maps them one to one (`lead~test-gen+1.json`: run agents' names never
//! hold `~` or `+`).

use std::io::Write;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::ChatMessage;

/// An agent's conversation after a complete turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The agent's run name.
    pub agent: String,
    /// The attempt that wrote it.
    pub attempt: u32,
    /// Turns taken so far (the next turn's number).
    pub turn: u32,
    /// Whether the next turn is the wrap-up turn.
    pub wrapup: bool,
    /// The conversation (after any compaction).
    pub messages: Vec<ChatMessage>,
}

/// The file of `agent`'s checkpoint in a run directory.
pub fn path(run_dir: &Path, agent: &str) -> PathBuf {
    run_dir.join("agents").join(file_name(agent))
}

/// `agent`'s run name as a file name; see the module docs.
pub fn file_name(agent: &str) -> String {
    format!("{}.json", agent.replace('/', "~").replace('#', "+"))
}

/// Reads the checkpoint at `path`; `None` when there is none or it cannot be read (a
/// checkpoint only saves work: without one the agent starts from its goal).
pub fn load(path: &Path) -> Option<Checkpoint> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("ignoring the unreadable checkpoint {}: {e}", path.display());
            None
        }
    }
}

fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let file = std::fs::File::create(&tmp)?;
    Ok((tmp, file))
}

/// How long the store gathers checkpoints before it writes each agent's newest, when the
/// last batch wrote `written` files (see the module docs).
fn write_interval(written: usize) -> std::time::Duration {
    let ms = (written as u64).clamp(100, 2_000);
    std::time::Duration::from_millis(ms)
}

/// What the store is told.
enum StoreMsg {
    /// An agent's newest checkpoint.
    Save(Checkpoint),
    /// The agent is final: its pending checkpoint is dropped (`codex resume` never
    /// continues an agent the log says finished), so a run's end writes nothing for it.
    Finished(String),
}

/// Writes a run's checkpoints in the background; see the module docs.
#[derive(Clone)]
pub struct CheckpointStore {
    tx: mpsc::UnboundedSender<StoreMsg>,
    /// Set once every agent of the run is final: a batch being written stops at its next
    /// file (they are all of final agents then), so the run's end does not wait for it.
    abandoned: Arc<AtomicBool>,
}

/// The checkpoints of one interval: each agent's newest.
#[derive(Default)]
struct Batch(BTreeMap<String, Checkpoint>);

impl Batch {
    fn take(&mut self, msg: StoreMsg) {
        match msg {
            StoreMsg::Save(c) => {
                self.0.insert(c.agent.clone(), c);
            }
            StoreMsg::Finished(agent) => {
                self.0.remove(&agent);
            }
        }
    }
}

impl CheckpointStore {
    /// Starts the writer of `run_dir`'s checkpoints. The task ends once every store is
    /// dropped, after writing the newest checkpoint of each agent it was given (and that
    /// has not finished since).
    pub fn spawn(run_dir: PathBuf) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<StoreMsg>();
        let abandoned = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&abandoned);
        let task = tokio::spawn(async move {
            // Each agent's newest checkpoint of what came in one interval: with many agents,
            // a file per turn would compete with the audit log's fsyncs for the disk.
            let mut last_batch = 0;
            while let Some(first) = rx.recv().await {
                let mut batch = Batch::default();
                batch.take(first);
                let deadline = tokio::time::Instant::now() + write_interval(last_batch);
                let mut closed = false;
                loop {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(next)) => batch.take(next),
                        // The run is draining: write what came and end.
                        Ok(None) => {
                            closed = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                last_batch = batch.0.len();
                write_all(&run_dir, batch, Arc::clone(&stop)).await;
                if closed {
                    break;
                }
            }
        });
        (Self { tx, abandoned }, task)
    }

    /// Queues `checkpoint`; never waits.
    pub fn save(&self, checkpoint: Checkpoint) {
        let _ = self.tx.send(StoreMsg::Save(checkpoint));
    }

    /// `agent` is final: what it has pending is not written.
    pub fn finished(&self, agent: &str) {
        let _ = self.tx.send(StoreMsg::Finished(agent.to_owned()));
    }

    /// Every agent of the run is final: nothing the store still holds is worth writing,
    /// and a batch being written stops at its next file. The writer ends once every
    /// clone of the store is dropped.
    pub fn abandon(self) {
        self.abandoned.store(true, Ordering::SeqCst);
    }
}

/// Writes a batch on the blocking pool, unless (and until) the store is abandoned.
async fn write_all(run_dir: &Path, batch: Batch, abandoned: Arc<AtomicBool>) {
    if batch.0.is_empty() || abandoned.load(Ordering::SeqCst) {
        return;
    }
    let dir = run_dir.to_owned();
    let written = tokio::task::spawn_blocking(move || {
        if let Err(e) = std::fs::create_dir_all(dir.join("agents")) {
            tracing::warn!("checkpoints not written: {e}");
            return;
        }
        for c in batch.0.into_values() {
            if abandoned.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = replace(&path(&dir, &c.agent), &c) {
                tracing::warn!("checkpoint of {} not written: {e}", c.agent);
            }
        }
    })
    .await;
    if let Err(e) = written {
        tracing::warn!("checkpoint writer failed: {e}");
    }
}

/// Replaces the checkpoint at `path` (its directory exists): written to a temporary file
/// and renamed over the old one, so a reader finds the old or the new one whole. Not
/// fsynced: see the module docs.
fn replace(path: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(checkpoint).map_err(std::io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let (tmp, mut file) = tempfile_in(dir, path)?;
    file.write_all(&bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn checkpoint(turn: u32) -> Checkpoint {
        Checkpoint {
            agent: "lead/test-gen#1".into(),
            attempt: 1,
            turn,
            wrapup: false,
            messages: vec![ChatMessage::text(Role::User, "Goal: x")],
        }
    }

    #[test]
    fn delegated_names_map_to_distinct_file_names() {
        assert_eq!(file_name("lead/test-gen#1"), "lead~test-gen+1.json");
        assert_ne!(file_name("a/b#1"), file_name("a/b#11"));
        assert_eq!(file_name("plain"), "plain.json");
    }

    #[test]
    fn a_checkpoint_replaces_the_last_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "lead/test-gen#1");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        replace(&p, &checkpoint(1)).unwrap();
        replace(&p, &checkpoint(2)).unwrap();
        assert_eq!(load(&p), Some(checkpoint(2)));
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_missing_or_broken_checkpoint_loads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "a");
        assert_eq!(load(&p), None);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"{not json").unwrap();
        assert_eq!(load(&p), None);
    }

    #[test]
    fn the_interval_grows_with_the_files_a_batch_wrote_and_is_capped() {
        use std::time::Duration;
        assert_eq!(write_interval(0), Duration::from_millis(100));
        assert_eq!(write_interval(64), Duration::from_millis(100));
        assert_eq!(write_interval(1_000), Duration::from_millis(1_000));
        assert_eq!(write_interval(50_000), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_finished_agents_pending_checkpoint_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let (store, task) = CheckpointStore::spawn(dir.path().to_owned());
        store.save(checkpoint(1));
        store.finished("lead/test-gen#1");
        drop(store);
        task.await.unwrap();
        assert_eq!(load(&path(dir.path(), "lead/test-gen#1")), None);
    }

    #[tokio::test]
    async fn an_abandoned_store_writes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let (store, task) = CheckpointStore::spawn(dir.path().to_owned());
        store.save(checkpoint(1));
        store.abandon();
        task.await.unwrap();
        assert_eq!(load(&path(dir.path(), "lead/test-gen#1")), None);
    }

    #[tokio::test]
    async fn the_store_leaves_each_agents_newest_checkpoint_once_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (store, task) = CheckpointStore::spawn(dir.path().to_owned());
        for turn in 1..=20 {
            store.save(checkpoint(turn));
        }
        drop(store);
        task.await.unwrap();
        let p = path(dir.path(), "lead/test-gen#1");
        assert_eq!(load(&p), Some(checkpoint(20)));
    }
}
