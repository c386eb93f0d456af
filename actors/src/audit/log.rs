//! The audit log file: JSON Lines, one [`AuditRecord`] per line, appended.
//!
//! The sequence number continues from the file's last complete line when the log is
//! reopened (after an AuditActor restart), so a run's log has one gapless sequence. A torn
//! last line (a crash mid-write) is ignored when counting and left in place for
//! inspection. `append` hands each line to the OS before it returns (so a crash of this
//! process loses nothing acknowledged); `sync` makes the file durable against power loss.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::event::{AuditEvent, AuditRecord};

/// An open audit log. Owned by the AuditActor; nothing else writes to it.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    run_id: String,
    next_seq: u64,
}

impl AuditLog {
    /// Opens (creating it and its directory if needed) the log at `path` for `run_id`.
    pub fn open(path: &Path, run_id: &str) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let last = last_seq(path)?;
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            run_id: run_id.to_owned(),
            next_seq: last + 1,
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event; returns its sequence number once the line is written.
    pub fn append(&mut self, event: AuditEvent) -> io::Result<u64> {
        let record = AuditRecord {
            seq: self.next_seq,
            ts: Utc::now(),
            run_id: self.run_id.clone(),
            event,
        };
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.next_seq += 1;
        Ok(record.seq)
    }

    /// Makes every appended line durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// The sequence number of the last complete line of the log at `path` (0 if none).
fn last_seq(path: &Path) -> io::Result<u64> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut last = 0;
    for line in BufReader::new(file).lines() {
        if let Ok(record) = serde_json::from_str::<AuditRecord>(&line?) {
            last = record.seq;
        }
    }
    Ok(last)
}

/// Reads every complete record of the log at `path`, in order.
pub fn read_log(path: &Path) -> io::Result<Vec<AuditRecord>> {
    let file = File::open(path)?;
    let mut records = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if let Ok(record) = serde_json::from_str(&line) {
            records.push(record);
        }
    }
    Ok(records)
}
