//! The audit log file: hash-chained JSON Lines, one [`AuditRecord`] per line, appended in
//! batches.
//!
//! [`AuditLog::append`] redacts an event, seals it into the chain (see [`super::chain`])
//! and queues the line in memory; [`AuditLog::commit`] writes every queued line with one
//! `write` and makes them durable with one `fsync` (group commit: the AuditActor commits
//! once per batch of records, and acknowledges them only afterwards). A line is therefore
//! acknowledged only once it is on disk.
//!
//! Reopening a log (after an AuditActor restart) continues its sequence and chain from the
//! last complete line. A torn tail after it (a write cut short) was never acknowledged: it
//! is cut off before appending, so new lines never join a fragment.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use super::chain::{self, canonical_json};
use super::event::{AuditEvent, AuditRecord};
use super::redact::Redactor;
use crate::identity::AgentName;

/// Top-level members that are never redacted: they are the chain's structure, not content.
const STRUCTURAL: [&str; 5] = ["seq", "ts", "run_id", "prev_hash", "type"];

/// An open audit log. Owned by the AuditActor; nothing else writes to it.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    run_id: String,
    redactor: Arc<Redactor>,
    next_seq: u64,
    head: String,
    queued: Vec<u8>,
}

/// A record before it is sealed: what the hash covers.
#[derive(Serialize)]
struct Unsealed<'a> {
    seq: u64,
    ts: chrono::DateTime<Utc>,
    run_id: &'a str,
    prev_hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'a str>,
    #[serde(skip_serializing_if = "crate::report::is_zero")]
    depth: u32,
    #[serde(flatten)]
    event: &'a AuditEvent,
}

impl AuditLog {
    /// Opens (creating it and its directory if needed) the log at `path` for `run_id`;
    /// records are redacted with `redactor` before they are sealed.
    pub fn open(path: &Path, run_id: &str, redactor: Arc<Redactor>) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let resume = chain::resume(&bytes);
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        // Held while the file is open: `is_being_written` tells a running run from a killed
        // one. Advisory only; a failure to lock never stops a run.
        let _ = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        if bytes.is_empty() {
            // A new file's name is durable only once its directory is.
            sync_parent(path)?;
        }
        if resume.keep_len < bytes.len() as u64 {
            tracing::warn!(
                "audit log {}: cutting {} bytes of an incomplete last line before appending",
                path.display(),
                bytes.len() as u64 - resume.keep_len
            );
            file.set_len(resume.keep_len)?;
        }
        file.sync_all()?;
        Ok(Self {
            path: path.to_owned(),
            file,
            run_id: run_id.to_owned(),
            redactor,
            next_seq: resume.last_seq + 1,
            head: resume.head,
            queued: Vec::new(),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Redacts and seals one event and queues its line; returns its sequence number. The
    /// line is on disk only after the next [`AuditLog::commit`].
    pub fn append(&mut self, event: &AuditEvent) -> io::Result<u64> {
        let seq = self.next_seq;
        let name = event.agent().map(AgentName::parse);
        let (parent, depth) = name.map_or((None, 0), |n| (n.parent(), n.depth()));
        let unsealed = Unsealed {
            seq,
            ts: Utc::now(),
            run_id: &self.run_id,
            prev_hash: &self.head,
            parent,
            depth,
            event,
        };
        let mut value = serde_json::to_value(&unsealed).map_err(io::Error::other)?;
        if let Value::Object(map) = &mut value {
            for (key, v) in map.iter_mut() {
                if !STRUCTURAL.contains(&key.as_str()) {
                    self.redactor.redact_json(v);
                }
            }
        }
        let body = serde_json::to_vec(&canonical_json(value)).map_err(io::Error::other)?;
        let (line, hash) = chain::seal(&body);
        self.queued.extend_from_slice(&line);
        self.queued.push(b'\n');
        self.head = hash;
        self.next_seq += 1;
        Ok(seq)
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Opens the log again (after a failed [`AuditLog::commit`]): the chain continues from
    /// its last complete line on disk, a torn tail is cut, queued lines are dropped.
    pub fn reopen(&mut self) -> io::Result<()> {
        // flock locks of two descriptors conflict even within one process.
        let _ = rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock);
        let (path, run_id) = (self.path.clone(), self.run_id.clone());
        *self = Self::open(&path, &run_id, Arc::clone(&self.redactor))?;
        Ok(())
    }

    /// Whether lines are queued and not yet committed.
    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Writes every queued line and makes the file durable (`fsync`). On error the queued
    /// lines are dropped (their callers were not told they are recorded, and retry) and the
    /// log must be reopened: the file may end in a torn line, which [`AuditLog::open`]
    /// cuts off.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.queued);
        self.file.write_all(&bytes)?;
        self.file.sync_data()
    }
}

/// Fsyncs the directory holding `path` (and that directory's own entry in its parent: the
/// run's directory is usually new too).
fn sync_parent(path: &Path) -> io::Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    File::open(dir)?.sync_all()?;
    if let Some(up) = dir.parent() {
        let _ = File::open(up).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Whether a run is writing the log at `path` now (its writer holds a lock on it, which the
/// kernel drops when the process ends, however it ends). `false` for a log whose run
/// finished or was killed.
pub fn is_being_written(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => false,
        Err(e) => e == rustix::io::Errno::WOULDBLOCK,
    }
}

/// Reads every complete record of the log at `path`, in order (a torn last line and lines
/// that are not records are skipped; [`super::chain::verify`] says whether to trust them).
pub fn read_log(path: &Path) -> io::Result<Vec<AuditRecord>> {
    let bytes = std::fs::read(path)?;
    Ok(parse_records(&bytes))
}

/// The complete records among a log's bytes (see [`read_log`]).
pub fn parse_records(bytes: &[u8]) -> Vec<AuditRecord> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter_map(|l| l.strip_suffix(b"\n"))
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::verify;

    fn event(n: u32) -> AuditEvent {
        AuditEvent::AgentRestarted {
            agent: "a".into(),
            attempt: n,
            delay_ms: 10,
            reason: "boom".into(),
        }
    }

    fn open(path: &Path) -> AuditLog {
        AuditLog::open(path, "run", Arc::new(Redactor::default())).unwrap()
    }

    #[test]
    fn committed_lines_form_a_verifying_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = open(&path);
        for n in 1..=3 {
            assert_eq!(log.append(&event(n)).unwrap(), n as u64);
        }
        log.commit().unwrap();
        let v = verify(&std::fs::read(&path).unwrap());
        assert!(v.intact(), "{v:?}");
        assert_eq!(v.verified, 3);
        let records = read_log(&path).unwrap();
        assert_eq!(records[2].hash, v.head);
        assert_eq!(records[1].prev_hash, records[0].hash);
        assert_eq!(records[0].prev_hash, chain::GENESIS);
    }

    #[test]
    fn nothing_is_written_before_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = open(&path);
        log.append(&event(1)).unwrap();
        assert!(log.has_queued());
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn a_reopened_log_continues_the_sequence_and_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut first = open(&path);
        first.append(&event(1)).unwrap();
        first.commit().unwrap();
        drop(first);
        let mut second = open(&path);
        assert_eq!(second.append(&event(2)).unwrap(), 2);
        second.commit().unwrap();
        let v = verify(&std::fs::read(&path).unwrap());
        assert!(v.intact(), "{v:?}");
        assert_eq!(v.verified, 2);
    }

    #[test]
    fn an_open_log_is_being_written_and_a_closed_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = open(&path);
        assert!(is_being_written(&path));
        drop(log);
        assert!(!is_being_written(&path));
    }

    #[test]
    fn a_torn_tail_is_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut first = open(&path);
        first.append(&event(1)).unwrap();
        first.commit().unwrap();
        drop(first);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":2,\"half").unwrap();
        let mut second = open(&path);
        second.append(&event(2)).unwrap();
        second.commit().unwrap();
        let v = verify(&std::fs::read(&path).unwrap());
        assert!(v.intact(), "{v:?}");
        assert_eq!((v.verified, v.torn_line), (2, None));
    }

    #[test]
    fn secrets_are_redacted_before_the_line_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let redactor = Arc::new(Redactor::new(["hunter2-secret".to_owned()]));
        let mut log = AuditLog::open(&path, "run", redactor).unwrap();
        log.append(&AuditEvent::AgentRestarted {
            agent: "a".into(),
            attempt: 2,
            delay_ms: 1,
            reason: "leaked hunter2-secret and sk-abcdefghijklmnop".into(),
        })
        .unwrap();
        log.commit().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(!text.contains("sk-abcdefghijklmnop"), "{text}");
        assert!(verify(text.as_bytes()).intact());
    }

    #[test]
    fn lines_have_sorted_keys_and_end_with_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = open(&path);
        log.append(&event(1)).unwrap();
        log.commit().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\"agent\":\"a\",\"attempt\":1,"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("\"}"));
        let hash_at = text.find(",\"hash\":").unwrap();
        assert!(text[..hash_at].contains("\"type\":\"agent_restarted\""));
    }
}
