//! Checkpoints: an agent's conversation after each turn, so that a restarted attempt (or a
//! resumed run) continues from there instead of from its goal.
//!
//! After every turn the AgentActor saves a [`Checkpoint`] to
//! `.codex/runs/<run>/agents/<name>.json` with its [`CheckpointWriter`]: written to a
//! temporary file and renamed over the old one at once (so a restart right after finds
//! it, and a reader never sees half a file), then made durable (fsync of the file and of
//! the directory) by a background task. The turn never waits for an fsync: a checkpoint
//! saves turns, it is not a record (the audit log is the record, durable before a turn goes
//! on). After a power loss the checkpoint may be older than the log; a resumed agent then
//! replays the turns after it.
//!
//! Delegated agents' names (`lead/test-gen#1`) hold characters that are not file names;
//! [`file_name`] maps them one to one (`lead~test-gen+1.json`: run agents' names never
//! hold `~` or `+`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of
/// the directory. On failure `path` keeps its old content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir, path)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp.0);
    })?;
    std::fs::File::open(dir)?.sync_all()
}

fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let file = std::fs::File::create(&tmp)?;
    Ok((tmp, file))
}

/// Writes an agent's checkpoints; see the module docs.
pub struct CheckpointWriter {
    path: PathBuf,
}

impl CheckpointWriter {
    /// A writer of the checkpoints at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Replaces the checkpoint: written to a temporary file and renamed over the old one
    /// now, so that a restart that follows finds it; made durable (fsync of the file and the
    /// directory) by a background task the turn does not wait for. A failure only loses
    /// this checkpoint, and is logged.
    pub fn save(&self, checkpoint: &Checkpoint) {
        if let Err(e) = self.replace(checkpoint) {
            tracing::warn!("checkpoint {} not written: {e}", self.path.display());
            return;
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let synced = std::fs::File::open(&path).and_then(|f| f.sync_all());
            let dir = path.parent().unwrap_or(Path::new("."));
            if let Err(e) = synced.and_then(|()| std::fs::File::open(dir)?.sync_all()) {
                tracing::warn!("checkpoint {} not synced: {e}", path.display());
            }
        });
    }

    fn replace(&self, checkpoint: &Checkpoint) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(checkpoint).map_err(std::io::Error::other)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let (tmp, mut file) = tempfile_in(dir, &self.path)?;
        file.write_all(&bytes)?;
        std::fs::rename(&tmp, &self.path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
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
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "a");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_missing_or_broken_checkpoint_loads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "a");
        assert_eq!(load(&p), None);
        write_atomic(&p, b"{not json").unwrap();
        assert_eq!(load(&p), None);
    }

    #[tokio::test]
    async fn a_saved_checkpoint_is_there_to_load_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "lead/test-gen#1");
        let writer = CheckpointWriter::new(p.clone());
        for turn in 1..=20 {
            writer.save(&checkpoint(turn));
            assert_eq!(load(&p), Some(checkpoint(turn)));
        }
    }
}
