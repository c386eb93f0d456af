//! Anchoring a finished log outside its file: [`append`] writes the run's head
//! (`run`, `seq`, `hash`) as one line of an anchor file kept outside the workspace
//! (`$CODEX_HOME/anchors.jsonl`), and [`check`] compares a log with its anchor.
//!
//! The hash chain makes an edited line evident, but whoever can rewrite the whole file
//! can recompute every hash. An anchor written when the run ended, somewhere the run's
//! agents cannot write, tells such a rewrite apart from a log cut short by a crash: a log
//! whose line `seq` no longer has the anchored hash, or that has lines past it, or that
//! ends before it, was rewritten after the run ended.
//!
//! Lines are appended with `O_APPEND` in one `write` each (short enough to land whole,
//! also when several runs end at once) and fsynced.

use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One anchored run: the head of its log when it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The run's id.
    pub run: String,
    /// The `seq` of the log's last line.
    pub seq: u64,
    /// That line's hash.
    pub hash: String,
}

/// What a log says against its anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorCheck {
    /// No anchor for this run (it did not end, or ended before anchors existed).
    Unanchored,
    /// The log's line `seq` has the anchored hash and nothing follows it.
    Matches,
    /// The log differs from what it was when the run ended; why, for people.
    Rewritten(String),
}

/// Appends `anchor` to the anchor file at `path` (created with its directory if needed).
pub fn append(path: &Path, anchor: &Anchor) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_string(anchor).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

/// The head of a log's bytes: the `seq` and `hash` of its last complete line, if any.
pub fn head_of(run: &str, bytes: &[u8]) -> Option<Anchor> {
    let complete = &bytes[..bytes.iter().rposition(|&b| b == b'\n')?];
    let last = complete.rsplit(|&b| b == b'\n').next()?;
    let value: serde_json::Value = serde_json::from_slice(last).ok()?;
    Some(Anchor {
        run: run.to_owned(),
        seq: value["seq"].as_u64()?,
        hash: value["hash"].as_str()?.to_owned(),
    })
}

/// The last anchor of `run` in the anchor file's `text` (a later line wins; lines that
/// do not parse are skipped).
pub fn find(text: &str, run: &str) -> Option<Anchor> {
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Anchor>(l).ok())
        .find(|a| a.run == run)
}

/// Compares a log's bytes with its anchor (see the module docs).
pub fn check(bytes: &[u8], anchor: Option<&Anchor>) -> AnchorCheck {
    let Some(anchor) = anchor else {
        return AnchorCheck::Unanchored;
    };
    let mut at_seq = None;
    let mut last_seq = 0;
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let seq = value["seq"].as_u64().unwrap_or(0);
        last_seq = last_seq.max(seq);
        if seq == anchor.seq {
            at_seq = value["hash"].as_str().map(str::to_owned);
        }
    }
    match at_seq {
        None => AnchorCheck::Rewritten(format!(
            "the run ended at line {} (anchored), but the log now ends at line {last_seq}",
            anchor.seq
        )),
        Some(h) if h != anchor.hash => AnchorCheck::Rewritten(format!(
            "line {} has hash {h}, but the run ended with hash {} (anchored)",
            anchor.seq, anchor.hash
        )),
        Some(_) if last_seq > anchor.seq => AnchorCheck::Rewritten(format!(
            "the run ended at line {} (anchored), but the log goes on to line {last_seq}",
            anchor.seq
        )),
        Some(_) => AnchorCheck::Matches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(hashes: &[&str]) -> Vec<u8> {
        hashes
            .iter()
            .enumerate()
            .map(|(i, h)| format!("{{\"seq\":{},\"hash\":\"{h}\"}}\n", i + 1))
            .collect::<String>()
            .into_bytes()
    }

    fn anchor(seq: u64, hash: &str) -> Anchor {
        Anchor {
            run: "r".into(),
            seq,
            hash: hash.into(),
        }
    }

    #[test]
    fn the_head_is_the_last_complete_line() {
        let mut bytes = log(&["a", "b"]);
        bytes.extend_from_slice(b"{\"seq\":3,\"ha");
        assert_eq!(head_of("r", &bytes), Some(anchor(2, "b")));
        assert_eq!(head_of("r", b""), None);
    }

    #[test]
    fn a_log_as_it_ended_matches_its_anchor() {
        assert_eq!(
            check(&log(&["a", "b"]), Some(&anchor(2, "b"))),
            AnchorCheck::Matches
        );
        assert_eq!(check(&log(&["a"]), None), AnchorCheck::Unanchored);
    }

    #[test]
    fn a_resealed_shorter_longer_or_different_log_is_rewritten() {
        for (bytes, why) in [
            (log(&["a", "x"]), "hash x"),
            (log(&["a"]), "now ends at line 1"),
            (log(&["a", "b", "c"]), "goes on to line 3"),
        ] {
            match check(&bytes, Some(&anchor(2, "b"))) {
                AnchorCheck::Rewritten(w) => assert!(w.contains(why), "{w}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn the_last_anchor_of_a_run_wins() {
        let text = "{\"run\":\"r\",\"seq\":1,\"hash\":\"a\"}\nnot json\n{\"run\":\"s\",\"seq\":9,\"hash\":\"z\"}\n{\"run\":\"r\",\"seq\":2,\"hash\":\"b\"}\n";
        assert_eq!(find(text, "r"), Some(anchor(2, "b")));
        assert_eq!(find(text, "q"), None);
    }

    #[test]
    fn append_adds_one_line_per_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/anchors.jsonl");
        append(&path, &anchor(1, "a")).unwrap();
        append(&path, &anchor(2, "b")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert_eq!(find(&text, "r"), Some(anchor(2, "b")));
    }
}
