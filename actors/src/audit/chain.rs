//! The hash chain of the audit log: how a line is sealed, and how a log is verified.
//!
//! # What is hashed
//!
//! A line of the log is a JSON object whose last member is `"hash"`:
//!
//! ```text
//! {"agent":"a",...,"prev_hash":"<64 hex>","run_id":"r","seq":7,"ts":"...","type":"tool_call","hash":"<64 hex>"}\n
//! ```
//!
//! - The *body* is the record without its `hash` member: compact JSON as `serde_json`
//!   writes it, object keys in lexicographic order at every level (see
//!   [`canonical_json`]). It carries `prev_hash`, the `hash` of the line before it
//!   ([`GENESIS`], 64 zeros, for the first line), and `seq`, gapless from 1.
//! - `hash` is the lowercase hex SHA-256 of the body's exact bytes.
//! - The line is the body with its closing `}` replaced by `,"hash":"<hex>"}`, then `\n`.
//!
//! So a verifier needs no JSON re-serialization (which could differ in a float's last
//! digit): it strips the trailing `,"hash":"<hex>"}` from the line's bytes, puts back the
//! `}`, and hashes those bytes ([`unseal`]).
//!
//! # What verification detects
//!
//! Reading line by line ([`verify`]): an edited line no longer matches its own hash; a
//! removed, inserted or reordered line breaks the `seq` sequence or the `prev_hash` link, at
//! the first line after the change. A last line without its newline is a *torn* write (a
//! crash mid-write): it is reported and ignored, and every complete line before it still
//! verifies. Lines removed from the end of a log leave a valid but shorter chain; that is
//! told apart from a complete log only by the `run_finished` record a finished run ends
//! with ([`Verification::finished`]). Whoever can rewrite the whole file can also recompute
//! every hash: the chain makes tampering evident, it does not prevent a full rewrite. Keep
//! the final hash ([`Verification::head`]) elsewhere to anchor a log.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev_hash` of a log's first line: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_PREFIX: &[u8] = b",\"hash\":\"";
const HASH_HEX_LEN: usize = 64;

/// `value` with the keys of every object in lexicographic order (what the log writes,
/// whichever way `serde_json` keeps maps).
pub fn canonical_json(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, canonical_json(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical_json).collect()),
        other => other,
    }
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Seals a body (a compact JSON object, ending in `}`): returns the line to write (without
/// its newline) and the body's hash.
///
/// # Panics
///
/// If `body` does not end with `}` (a bug in the caller: bodies are serialized objects).
pub fn seal(body: &[u8]) -> (Vec<u8>, String) {
    assert_eq!(body.last(), Some(&b'}'), "an audit body is a JSON object");
    let hash = digest(body);
    let mut line = Vec::with_capacity(body.len() + HASH_PREFIX.len() + HASH_HEX_LEN + 2);
    line.extend_from_slice(&body[..body.len() - 1]);
    line.extend_from_slice(HASH_PREFIX);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}");
    (line, hash)
}

/// Splits a sealed line (without its newline) into its body and the hash it claims.
/// `None` if the line does not end with a `"hash"` member of 64 lowercase hex digits.
pub fn unseal(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    let tail = HASH_PREFIX.len() + HASH_HEX_LEN + 2;
    if line.len() < tail + 2 || !line.ends_with(b"\"}") {
        return None;
    }
    let start = line.len() - tail;
    if &line[start..start + HASH_PREFIX.len()] != HASH_PREFIX {
        return None;
    }
    let hex = &line[start + HASH_PREFIX.len()..line.len() - 2];
    if !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut body = line[..start].to_vec();
    body.push(b'}');
    Some((body, std::str::from_utf8(hex).ok()?))
}

/// The first line of a log that fails verification, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong with it, in words.
    pub reason: String,
}

/// The verdict on a whole log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Complete lines that verified, from the first; all of them when `broken` is `None`.
    pub verified: usize,
    /// The first line that does not verify; nothing after it is trusted.
    pub broken: Option<Broken>,
    /// The 1-based number of a torn last line (no newline: a crash mid-write), ignored.
    pub torn_line: Option<usize>,
    /// The hash of the last verified line ([`GENESIS`] for an empty log).
    pub head: String,
    /// The `seq` of the last verified line (0 for an empty log).
    pub last_seq: u64,
    /// Whether the last verified line is a `run_finished` record: the run ended and the log
    /// was not cut short.
    pub finished: bool,
}

impl Verification {
    /// Whether every complete line verified (a torn last line is allowed).
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies the bytes of a log. See the module docs for what is detected.
pub fn verify(bytes: &[u8]) -> Verification {
    let mut v = Verification {
        verified: 0,
        broken: None,
        torn_line: None,
        head: GENESIS.to_owned(),
        last_seq: 0,
        finished: false,
    };
    let mut run_id: Option<String> = None;
    let content = without_zero_tail(bytes);
    let zeroed = content.len() < bytes.len();
    let mut rest = content;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            v.torn_line = Some(number);
            break;
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        match check_line(line, &v, &mut run_id) {
            Ok((hash, finished)) => {
                v.verified += 1;
                v.last_seq += 1;
                v.head = hash;
                v.finished = finished;
            }
            Err(reason) => {
                v.broken = Some(Broken {
                    line: number,
                    reason,
                });
                break;
            }
        }
    }
    if zeroed && v.torn_line.is_none() && v.broken.is_none() {
        v.torn_line = Some(number + 1);
    }
    v
}

/// `bytes` without a tail of NUL bytes (and the newlines among them): what a power loss
/// leaves where the file had grown but its data had not reached the disk. It is an
/// incomplete write, like a torn line, not an edit. The newline that ends the last real
/// line is kept.
fn without_zero_tail(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .rposition(|&b| b != 0 && b != b'\n')
        .map_or(0, |i| i + 1);
    if !bytes[start..].contains(&0) {
        return bytes;
    }
    match bytes.get(start) {
        Some(b'\n') => &bytes[..start + 1],
        _ => &bytes[..start],
    }
}

/// Checks one complete line against the chain so far; returns its hash and whether it is
/// a `run_finished` record.
fn check_line(
    line: &[u8],
    so_far: &Verification,
    run_id: &mut Option<String>,
) -> Result<(String, bool), String> {
    let record: Value = serde_json::from_slice(line)
        .map_err(|e| format!("not a JSON record ({e}): edited or cut"))?;
    let (body, claimed) = unseal(line)
        .ok_or("does not end with a \"hash\" member of 64 hex digits: edited or not sealed")?;
    let actual = digest(&body);
    if actual != claimed {
        return Err(format!(
            "its content does not match its hash (claimed {}, computed {}): the line was edited",
            short(claimed),
            short(&actual)
        ));
    }
    let expected_seq = so_far.last_seq + 1;
    match record.get("seq").and_then(Value::as_u64) {
        Some(seq) if seq == expected_seq => {}
        Some(seq) => {
            return Err(format!(
                "sequence number {seq} where {expected_seq} was expected: a line was removed, inserted or reordered before it"
            ))
        }
        None => return Err("has no sequence number".into()),
    }
    let prev = record.get("prev_hash").and_then(Value::as_str);
    if prev != Some(so_far.head.as_str()) {
        return Err(format!(
            "its prev_hash {} is not the hash of the line before ({}): a line was removed, inserted or reordered",
            prev.map_or("(missing)".into(), short),
            short(&so_far.head)
        ));
    }
    let this_run = record.get("run_id").and_then(Value::as_str).unwrap_or("");
    match run_id {
        Some(id) if id != this_run => {
            return Err(format!(
                "belongs to run `{this_run}`, the log to run `{id}`"
            ))
        }
        Some(_) => {}
        None => *run_id = Some(this_run.to_owned()),
    }
    let finished = record.get("type").and_then(Value::as_str) == Some("run_finished");
    Ok((claimed.to_owned(), finished))
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// Where a log that is reopened for appending continues: the `seq` and hash of its last
/// complete, sealed line, and the length of the file up to that line's newline (a torn or
/// unparsable tail after it is cut off before appending, so new lines never join it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// `seq` of the last complete line (0 if none).
    pub last_seq: u64,
    /// Its hash ([`GENESIS`] if none).
    pub head: String,
    /// Bytes of the file to keep.
    pub keep_len: u64,
}

/// Finds where to continue a log from its bytes (see [`Resume`]). The chain is not
/// verified here: a writer continues its own log; `verify` judges it.
pub fn resume(bytes: &[u8]) -> Resume {
    let mut resume = Resume {
        last_seq: 0,
        head: GENESIS.to_owned(),
        keep_len: 0,
    };
    let mut offset = 0;
    for segment in bytes.split_inclusive(|&b| b == b'\n') {
        offset += segment.len();
        let Some(line) = segment.strip_suffix(b"\n") else {
            break;
        };
        let seq = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| v.get("seq").and_then(Value::as_u64));
        if let (Some(seq), Some((_, hash))) = (seq, unseal(line)) {
            resume = Resume {
                last_seq: seq,
                head: hash.to_owned(),
                keep_len: offset as u64,
            };
        }
    }
    resume
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_zero_filled_tail_is_incomplete_not_tampered() {
        let good = log(3, false);
        for tail in [&b"\0\0\0\0"[..], b"\0\0\n\0", b"{\"seq\":4,\"pre\0\0\0"] {
            let mut bytes = good.clone();
            bytes.extend_from_slice(tail);
            let v = verify(&bytes);
            assert!(v.intact(), "{tail:?}: {v:?}");
            assert_eq!((v.verified, v.torn_line), (3, Some(4)), "{tail:?}");
        }
    }

    #[test]
    fn a_nul_inside_a_complete_line_is_still_tampering() {
        let mut bytes = log(3, false);
        let at = bytes.iter().position(|&b| b == b'x').unwrap();
        bytes[at] = 0;
        assert!(!verify(&bytes).intact());
    }

    /// A valid log of `n` lines (the last one `run_finished` when `finished`).
    fn log(n: u64, finished: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=n {
            let kind = if finished && seq == n {
                "run_finished"
            } else {
                "tool_call"
            };
            let body =
                json!({"seq": seq, "prev_hash": prev, "run_id": "r", "type": kind, "x": 1.5});
            let body = serde_json::to_vec(&canonical_json(body)).unwrap();
            let (line, hash) = seal(&body);
            out.extend_from_slice(&line);
            out.push(b'\n');
            prev = hash;
        }
        out
    }

    fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn broken_line(bytes: &[u8]) -> usize {
        verify(bytes).broken.expect("tampering detected").line
    }

    #[test]
    fn a_sealed_line_unseals_to_its_body_and_hash() {
        let body = br#"{"a":1,"seq":1}"#;
        let (line, hash) = seal(body);
        assert!(line.ends_with(format!(",\"hash\":\"{hash}\"}}").as_bytes()));
        let (back, claimed) = unseal(&line).unwrap();
        assert_eq!(back, body);
        assert_eq!(claimed, hash);
        assert_eq!(digest(body), hash);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = canonical_json(json!({"b": {"z": 1, "a": 2}, "a": [{"y": 1, "x": 2}]}));
        assert_eq!(v.to_string(), r#"{"a":[{"x":2,"y":1}],"b":{"a":2,"z":1}}"#);
    }

    #[test]
    fn an_untouched_log_verifies_completely() {
        let v = verify(&log(5, true));
        assert_eq!(v.broken, None);
        assert_eq!(v.verified, 5);
        assert_eq!(v.last_seq, 5);
        assert!(v.finished);
        assert_eq!(v.torn_line, None);
    }

    #[test]
    fn an_empty_log_verifies_with_the_genesis_head() {
        let v = verify(b"");
        assert!(v.intact());
        assert_eq!((v.verified, v.head.as_str()), (0, GENESIS));
    }

    #[test]
    fn an_edited_line_is_named() {
        let mut l = lines(&log(5, true));
        l[2] = String::from_utf8(l[2].clone())
            .unwrap()
            .replace("tool_call", "tool_cal1")
            .into_bytes();
        let bytes = l.concat();
        assert_eq!(broken_line(&bytes), 3);
        assert!(verify(&bytes).broken.unwrap().reason.contains("edited"));
        assert_eq!(verify(&bytes).verified, 2);
    }

    #[test]
    fn a_deleted_line_is_detected_at_the_line_that_took_its_place() {
        let mut l = lines(&log(5, true));
        l.remove(1);
        assert_eq!(broken_line(&l.concat()), 2);
    }

    #[test]
    fn a_deleted_first_line_is_detected_at_line_one() {
        let mut l = lines(&log(3, true));
        l.remove(0);
        assert_eq!(broken_line(&l.concat()), 1);
    }

    #[test]
    fn reordered_lines_are_detected_at_the_first_moved_line() {
        let mut l = lines(&log(5, true));
        l.swap(2, 3);
        assert_eq!(broken_line(&l.concat()), 3);
    }

    #[test]
    fn a_line_cut_short_in_the_middle_is_named() {
        let mut l = lines(&log(5, true));
        let cut = l[1].len() / 2;
        l[1].truncate(cut);
        l[1].push(b'\n');
        assert_eq!(broken_line(&l.concat()), 2);
    }

    #[test]
    fn a_torn_last_line_is_reported_and_the_lines_before_it_verify() {
        let mut bytes = log(4, false);
        let full = bytes.len();
        bytes.truncate(full - 10);
        let v = verify(&bytes);
        assert!(v.intact());
        assert_eq!(v.verified, 3);
        assert_eq!(v.torn_line, Some(4));
    }

    #[test]
    fn lines_cut_from_the_end_leave_an_unfinished_log() {
        let mut l = lines(&log(5, true));
        l.pop();
        let v = verify(&l.concat());
        assert!(v.intact());
        assert!(!v.finished);
    }

    #[test]
    fn a_recomputed_hash_still_breaks_the_next_link() {
        // Editing a line and resealing it: the line verifies, the next one does not.
        let mut l = lines(&log(4, true));
        let text = String::from_utf8(l[1].clone()).unwrap();
        let (body, _) = unseal(text.trim_end().as_bytes()).unwrap();
        let edited = String::from_utf8(body).unwrap().replace("1.5", "2.5");
        let (mut line, _) = seal(edited.as_bytes());
        line.push(b'\n');
        l[1] = line;
        assert_eq!(broken_line(&l.concat()), 3);
    }

    #[test]
    fn a_log_resumes_after_its_last_complete_line() {
        let full = log(3, false);
        let mut bytes = full.clone();
        bytes.extend_from_slice(b"{\"seq\":4,\"tor");
        let r = resume(&bytes);
        assert_eq!(r.last_seq, 3);
        assert_eq!(r.keep_len, full.len() as u64);
        assert_eq!(r.head, verify(&full).head);
    }

    #[test]
    fn an_empty_log_resumes_from_genesis() {
        assert_eq!(
            resume(b""),
            Resume {
                last_seq: 0,
                head: GENESIS.into(),
                keep_len: 0
            }
        );
    }
}
