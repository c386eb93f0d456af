//! The changes log of a run: what happened to its changes after it ended (`codex apply`,
//! `codex discard`, `codex gc`), hash-chained and anchored like the audit log.
//!
//! A run's audit log is closed and anchored when the run ends (see
//! `codex_actors::audit::anchor`): an apply or a discard appended to it later would make
//! `codex audit verify` report it as rewritten. So they go to a second log beside it,
//! `.codex/runs/<run>/changes.jsonl`, built the same way: each line is sealed with the
//! audit log's hash chain ([`chain::seal`]: `seq` gapless from 1, `prev_hash`, the line's
//! SHA-256), and carries the head hash of the run's audit log it follows (`audit_head`),
//! so it cannot be moved to another run. After each line, the log's new head is appended
//! to the anchor file as run `<run>/changes`: a line edited, removed or cut from the end
//! afterwards is reported by `codex audit verify` ([`verify`]).
//!
//! Appends take an exclusive `flock` on the log, so two commands at once each add a whole
//! line to the chain; each line is written with one `write` and fsynced.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use codex_actors::audit::anchor::{self, Anchor, AnchorCheck};
use codex_actors::audit::chain::{self, canonical_json};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What happened to a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// Merged into the user's tree by `codex apply` (or `--apply`).
    Applied,
    /// `codex apply` found conflicts: nothing was written.
    Conflicted,
    /// Its worktree was removed by `codex discard` (its patch is kept).
    Discarded,
    /// Its worktree was removed by `codex gc` (its patch is kept).
    Collected,
}

/// One line's content, before it is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEntry {
    /// The agent whose change it is.
    pub agent: String,
    /// What happened.
    pub action: ChangeAction,
    /// SHA-256 of its patch, when recorded.
    pub sha256: Option<String>,
    /// The files concerned (written, or in conflict).
    pub files: Vec<String>,
}

/// The changes log of the run directory `run_dir`.
pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join("changes.jsonl")
}

/// The anchor file's name for a run's changes log.
fn anchor_name(run_id: &str) -> String {
    format!("{run_id}/changes")
}

/// Appends `entry` to the changes log of the run `run_id` in `run_dir`, then anchors the
/// log's new head in `anchors` (when there is an anchor file).
pub fn append(
    run_dir: &Path,
    run_id: &str,
    entry: &ChangeEntry,
    anchors: Option<&Path>,
) -> Result<()> {
    let log = path(run_dir);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot open the changes log {}", log.display()))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("cannot lock {}", log.display()))?;
    let bytes = std::fs::read(&log)?;
    let resume = chain::resume(&bytes);
    if resume.keep_len < bytes.len() as u64 {
        // A torn last line (a crash mid-write): new lines never join it.
        file.set_len(resume.keep_len)?;
    }
    let audit = std::fs::read(run_dir.join("audit.jsonl")).unwrap_or_default();
    let body = json!({
        "seq": resume.last_seq + 1,
        "prev_hash": resume.head,
        "run_id": run_id,
        "ts": chrono::Utc::now().to_rfc3339(),
        "type": entry.action,
        "agent": entry.agent,
        "sha256": entry.sha256,
        "files": entry.files,
        "audit_head": chain::verify(&audit).head,
    });
    let body = serde_json::to_vec(&canonical_json(body))?;
    let (mut line, hash) = chain::seal(&body);
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_all()?;
    if let Some(anchors) = anchors {
        let head = Anchor {
            run: anchor_name(run_id),
            seq: resume.last_seq + 1,
            hash,
        };
        anchor::append(anchors, &head)
            .with_context(|| format!("cannot anchor the changes log in {}", anchors.display()))?;
    }
    Ok(())
}

/// `codex audit verify`'s part about the changes log of the run `run_id` in `run_dir`:
/// its verdict in words and whether it is intact (`None` when the run has no changes
/// log and no anchor says it had one).
pub fn verify(run_dir: &Path, run_id: &str, anchors: Option<&Path>) -> Option<(String, bool)> {
    let anchor = anchors
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| anchor::find(&t, &anchor_name(run_id)));
    let bytes = match std::fs::read(path(run_dir)) {
        Ok(bytes) => bytes,
        Err(_) if anchor.is_none() => return None,
        Err(_) => Vec::new(),
    };
    let v = chain::verify(&bytes);
    if let Some(b) = &v.broken {
        let text = format!("Changes log TAMPERED: line {}: {}\n", b.line, b.reason);
        return Some((text, false));
    }
    if let AnchorCheck::Rewritten(why) = anchor::check(&bytes, anchor.as_ref()) {
        return Some((format!("Changes log REWRITTEN: {why}.\n"), false));
    }
    let mut text = format!(
        "Changes log: {} line(s) verified (hash chain intact{}):\n",
        v.verified,
        match anchor {
            Some(_) => ", anchored",
            None => ", no anchor",
        }
    );
    let records = bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok());
    for record in records {
        text.push_str(&format!(
            "  {} {} {}\n",
            record["ts"].as_str().unwrap_or_default(),
            record["type"].as_str().unwrap_or_default(),
            record["agent"].as_str().unwrap_or_default()
        ));
    }
    Some((text, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(agent: &str, action: ChangeAction) -> ChangeEntry {
        ChangeEntry {
            agent: agent.into(),
            action,
            sha256: Some("ab".repeat(32)),
            files: vec!["a.txt".into()],
        }
    }

    #[test]
    fn appended_lines_form_an_anchored_chain_that_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let anchors = dir.path().join("anchors.jsonl");
        append(
            dir.path(),
            "r1",
            &entry("a", ChangeAction::Applied),
            Some(&anchors),
        )
        .unwrap();
        append(
            dir.path(),
            "r1",
            &entry("b", ChangeAction::Discarded),
            Some(&anchors),
        )
        .unwrap();
        let (text, ok) = verify(dir.path(), "r1", Some(&anchors)).unwrap();
        assert!(ok, "{text}");
        assert!(
            text.contains("2 line(s) verified") && text.contains("applied a"),
            "{text}"
        );
    }

    #[test]
    fn an_edited_line_or_a_cut_last_line_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let anchors = dir.path().join("anchors.jsonl");
        append(
            dir.path(),
            "r1",
            &entry("a", ChangeAction::Applied),
            Some(&anchors),
        )
        .unwrap();
        append(
            dir.path(),
            "r1",
            &entry("b", ChangeAction::Applied),
            Some(&anchors),
        )
        .unwrap();
        let log = path(dir.path());
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::write(&log, text.replace("\"agent\":\"b\"", "\"agent\":\"c\"")).unwrap();
        let (why, ok) = verify(dir.path(), "r1", Some(&anchors)).unwrap();
        assert!(!ok && why.contains("TAMPERED"), "{why}");
        let first = text.lines().next().unwrap().to_owned() + "\n";
        std::fs::write(&log, first).unwrap();
        let (why, ok) = verify(dir.path(), "r1", Some(&anchors)).unwrap();
        assert!(!ok && why.contains("REWRITTEN"), "{why}");
    }

    #[test]
    fn a_run_without_changes_log_or_anchor_has_nothing_to_say() {
        let dir = tempfile::tempdir().unwrap();
        assert!(verify(dir.path(), "r1", None).is_none());
    }
}
