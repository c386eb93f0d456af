//! The `codebase_search` index: BM25 over chunks of text files, with identifiers split into
//! their words.
//!
//! Every text file of the workspace (the search tools' walk: `.gitignore` respected, hidden
//! entries and symlinks skipped; at most 1 MiB; no NUL byte in the first 8 KiB; hard-linked
//! files refused like everywhere else) is cut into chunks of [`CHUNK_LINES`] lines. A
//! chunk's terms are its identifiers and words, lowercased, plus the parts of compound
//! identifiers (`parseConfigFile` and `parse_config_file` both give `parse`, `config`,
//! `file` and the whole name), so a query may name an identifier or describe it in words.
//! The file's path terms count for its first chunk. Scoring is Okapi BM25 (k1 = 1.2,
//! b = 0.75), at most [`MAX_PER_FILE`] chunks per file.
//!
//! The index is immutable once built and keeps no text: the tool re-reads the few files it
//! shows to find the best line and a snippet, so snippets are fresh even when the index is
//! not (files changed after the build are still ranked by their old content).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::beneath;
use super::limits::{BINARY_SNIFF_BYTES, SEARCH_MAX_FILE_BYTES};
use super::walk;

/// Lines per chunk.
pub const CHUNK_LINES: usize = 40;
/// The most chunks of one file among the results.
const MAX_PER_FILE: usize = 2;
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Words too common to rank by.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "in",
    "is", "it", "of", "on", "or", "the", "this", "that", "to", "what", "where", "which", "with",
];

/// An immutable BM25 index of one workspace.
#[derive(Debug)]
pub struct Index {
    root: PathBuf,
    files: Vec<String>,
    chunks: Vec<Chunk>,
    postings: HashMap<String, Vec<(u32, u32)>>,
    avg_len: f64,
}

#[derive(Debug, Clone, Copy)]
struct Chunk {
    file: u32,
    /// 1-based first line.
    first_line: u32,
    /// Number of terms.
    len: u32,
}

/// One ranked chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Workspace-relative file path.
    pub path: String,
    /// First line of the chunk (1-based).
    pub first_line: usize,
    /// BM25 score.
    pub score: f64,
}

impl Index {
    /// Indexes every text file below the canonical workspace `root`.
    pub fn build(root: &Path) -> Self {
        let mut index = Index {
            root: root.to_owned(),
            files: Vec::new(),
            chunks: Vec::new(),
            postings: HashMap::new(),
            avg_len: 0.0,
        };
        for rel in walk::files(root, "") {
            let (Some(text), Some(name)) = (read_text(root, &rel), rel.to_str()) else {
                continue;
            };
            index.add_file(name, &text);
        }
        let total: u64 = index.chunks.iter().map(|c| u64::from(c.len)).sum();
        index.avg_len = total as f64 / index.chunks.len().max(1) as f64;
        index
    }

    /// The root this index was built from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many files are indexed.
    #[cfg(test)]
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The best chunks for `query` among files `keep` accepts, best first.
    pub fn search(&self, query: &str, limit: usize, keep: impl Fn(&str) -> bool) -> Vec<Hit> {
        let mut scores: HashMap<u32, f64> = HashMap::new();
        let mut terms = terms(query);
        terms.sort();
        terms.dedup();
        for term in &terms {
            self.score_term(term, &mut scores);
        }
        let mut ranked: Vec<(u32, f64)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        self.pick(ranked, limit, keep)
    }

    fn score_term(&self, term: &str, scores: &mut HashMap<u32, f64>) {
        let Some(postings) = self.postings.get(term) else {
            return;
        };
        let n = self.chunks.len() as f64;
        let df = postings.len() as f64;
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        for &(chunk, tf) in postings {
            let len = f64::from(self.chunks[chunk as usize].len);
            let tf = f64::from(tf);
            let norm = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / self.avg_len.max(1.0)));
            *scores.entry(chunk).or_default() += idf * norm;
        }
    }

    fn pick(&self, ranked: Vec<(u32, f64)>, limit: usize, keep: impl Fn(&str) -> bool) -> Vec<Hit> {
        let mut per_file: HashMap<u32, usize> = HashMap::new();
        let mut hits = Vec::new();
        for (id, score) in ranked {
            let chunk = self.chunks[id as usize];
            let path = &self.files[chunk.file as usize];
            let seen = per_file.entry(chunk.file).or_default();
            if *seen == MAX_PER_FILE || !keep(path) {
                continue;
            }
            *seen += 1;
            hits.push(Hit {
                path: path.clone(),
                first_line: chunk.first_line as usize,
                score,
            });
            if hits.len() == limit {
                break;
            }
        }
        hits
    }

    fn add_file(&mut self, rel: &str, text: &str) {
        let file = self.files.len() as u32;
        self.files.push(rel.to_owned());
        let lines: Vec<&str> = text.lines().collect();
        for (i, block) in lines.chunks(CHUNK_LINES).enumerate() {
            let mut counts: HashMap<String, u32> = HashMap::new();
            let path_terms = if i == 0 { terms(rel) } else { Vec::new() };
            for term in block.iter().flat_map(|l| terms(l)).chain(path_terms) {
                *counts.entry(term).or_default() += 1;
            }
            self.add_chunk(file, (i * CHUNK_LINES + 1) as u32, counts);
        }
    }

    fn add_chunk(&mut self, file: u32, first_line: u32, counts: HashMap<String, u32>) {
        let id = self.chunks.len() as u32;
        let len = counts.values().sum();
        self.chunks.push(Chunk {
            file,
            first_line,
            len,
        });
        for (term, tf) in counts {
            self.postings.entry(term).or_default().push((id, tf));
        }
    }
}

/// The text of a file worth indexing, or `None` (unreadable, too big, binary, hard-linked,
/// swapped for a symlink).
pub fn read_text(root: &Path, rel: &Path) -> Option<String> {
    let file = beneath::open_file(root, rel).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > SEARCH_MAX_FILE_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(SEARCH_MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0) {
        return None;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The terms of `text`: each identifier or word lowercased, plus the parts of compound
/// identifiers; stop words, single characters and bare numbers left out.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let parts = split_identifier(word);
        if parts.len() > 1 {
            push_term(&mut out, &word.to_lowercase());
        }
        for part in parts {
            push_term(&mut out, &part.to_lowercase());
        }
    }
    out
}

fn push_term(out: &mut Vec<String>, term: &str) {
    let term = term.trim_matches('_');
    if term.chars().count() < 2
        || term.chars().all(|c| c.is_ascii_digit())
        || STOP_WORDS.contains(&term)
    {
        return;
    }
    out.push(term.to_owned());
}

/// `parseHTTPRequest_v2` → `parse`, `HTTP`, `Request`, `v2`.
fn split_identifier(word: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for piece in word.split('_').filter(|p| !p.is_empty()) {
        let chars: Vec<(usize, char)> = piece.char_indices().collect();
        let mut start = 0;
        for w in 1..chars.len() {
            let (prev, cur) = (chars[w - 1].1, chars[w].1);
            let next_lower = chars.get(w + 1).is_some_and(|(_, c)| c.is_lowercase());
            let boundary = (prev.is_lowercase() && cur.is_uppercase())
                || (prev.is_uppercase() && cur.is_uppercase() && next_lower);
            if boundary {
                parts.push(&piece[start..chars[w].0]);
                start = chars[w].0;
            }
        }
        parts.push(&piece[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    #[test]
    fn identifiers_are_split_into_words() {
        assert_eq!(
            split_identifier("parseHTTPRequest"),
            ["parse", "HTTP", "Request"]
        );
        assert_eq!(
            split_identifier("parse_config_file"),
            ["parse", "config", "file"]
        );
        let t = terms("fn parseConfig(x: u32) -> the 42");
        assert_eq!(t, ["fn", "parseconfig", "parse", "config", "u32"]);
    }

    #[test]
    fn ranks_the_chunk_naming_the_query_first() {
        let f = Fixture::new();
        f.write("src/config.rs", "pub fn parse_config_file(path: &str) {}\n");
        f.write(
            "src/net.rs",
            "pub fn open_socket() {}\n// config mentioned once\n",
        );
        f.write("README.md", "Nothing relevant here.\n");
        let index = Index::build(f.root());
        assert_eq!(index.file_count(), 3);
        let hits = index.search("parse config file", 5, |_| true);
        assert_eq!(hits[0].path, "src/config.rs");
        assert!(hits.iter().all(|h| h.path != "README.md"));
    }

    #[test]
    fn chunks_carry_their_first_line_and_the_filter_applies() {
        let f = Fixture::new();
        let mut text = "filler\n".repeat(CHUNK_LINES);
        text.push_str("fn needle_here() {}\n");
        f.write("a/x.rs", &text);
        f.write("b/y.rs", "fn needle_here() {}\n");
        let index = Index::build(f.root());
        let hits = index.search("needle_here", 5, |p| p.starts_with("a/"));
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].path.as_str(), hits[0].first_line), ("a/x.rs", 41));
    }

    #[test]
    fn binary_hidden_and_symlinked_files_are_not_indexed() {
        let f = Fixture::new();
        f.write("bin.dat", b"needle\0");
        f.write(".hidden/a.txt", "needle");
        f.outside_file("secret.txt", "needle");
        f.symlink(&f.outside().join("secret.txt"), "link.txt");
        let index = Index::build(f.root());
        assert!(index.search("needle", 5, |_| true).is_empty());
    }
}
