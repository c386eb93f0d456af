//! `read_file`: a text file with line numbers, a window at a time.
//!
//! The file is streamed line by line, so a huge file costs time but not memory: lines before
//! `offset` are skipped, lines after the window are only counted (the note says how many
//! there are). Text is decoded lossily; a NUL byte in the first 8 KiB marks the file as
//! binary and refuses it, as a model can do nothing useful with it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use async_trait::async_trait;
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use serde_json::{json, Value};

use super::approved;
use super::args::Args;
use super::limits::{
    cut_line, BINARY_SNIFF_BYTES, READ_MAX_BYTES, READ_MAX_LINES, READ_MAX_LINE_CHARS,
};
use super::{beneath, blocking, spec};

const NAME: &str = "read_file";
const KNOWN: &[&str] = &["path", "offset", "limit"];

/// The `read_file` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadFile;

/// Which lines to show: from `first` (1-based), at most `max` of them.
#[derive(Debug, Clone, Copy)]
struct Window {
    first: usize,
    max: usize,
    /// Whether the model's own `limit` set `max` (then stopping there is not a truncation).
    by_limit: bool,
}

#[async_trait]
impl Tool for ReadFile {
    fn spec(&self) -> ToolSpec {
        spec(
            NAME,
            "Read a text file of the workspace. Returns its lines prefixed with line numbers \
             (`  12| text`). Long files are cut at 2000 lines or 64 KiB with a note; read \
             further with `offset` (first line, 1-based) and `limit` (number of lines). \
             Binary files are refused.",
            json!({
                "path": {"type": "string", "description": "File path, relative to the workspace root."},
                "offset": {"type": "integer", "minimum": 1, "description": "First line to show (1-based). Default 1."},
                "limit": {"type": "integer", "minimum": 1, "description": "Most lines to show. Default (and maximum) 2000."},
            }),
            &["path"],
        )
    }

    fn plan(&self, arguments: &Value, ctx: &ToolContext) -> Result<Vec<Access>, ToolError> {
        let (path, _) = parse(arguments)?;
        Ok(vec![approved::plan(ctx, path)?.read_access()])
    }

    async fn invoke(
        &self,
        arguments: Value,
        approved: &[Access],
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let approved = approved.to_vec();
        let (path, window) = parse(&arguments)?;
        let (path, ctx) = (path.to_owned(), ctx.clone());
        blocking(move || {
            let checked = approved::recheck(&ctx, &path, &approved)?;
            read(&checked.root, &checked.rel, window).map(ToolOutput::text)
        })
        .await
    }
}

fn parse(arguments: &Value) -> Result<(&str, Window), ToolError> {
    let args = Args::parse(NAME, arguments, KNOWN)?;
    let limit = args.opt_positive("limit")?;
    let window = Window {
        first: args.opt_positive("offset")?.unwrap_or(1),
        max: limit.unwrap_or(READ_MAX_LINES).min(READ_MAX_LINES),
        by_limit: limit.is_some_and(|l| l <= READ_MAX_LINES),
    };
    Ok((args.string("path")?, window))
}

fn read(root: &Path, rel: &str, window: Window) -> Result<String, ToolError> {
    let file = open(root, rel)?;
    let mut reader = BufReader::with_capacity(BINARY_SNIFF_BYTES, file);
    refuse_binary(&mut reader, rel)?;
    render(reader, rel, window)
}

fn open(root: &Path, rel: &str) -> Result<File, ToolError> {
    let fail = |e: std::io::Error| {
        if beneath::is_symlink_refusal(&e) {
            ToolError::new(format!(
                "`{rel}` changed into a symbolic link after it was checked; refused"
            ))
        } else if beneath::is_hard_link_refusal(&e) {
            ToolError::new(format!(
                "`{rel}` has several hard links, so it may be a file outside the workspace; \
                 tools do not read hard-linked files"
            ))
        } else {
            ToolError::new(format!("cannot read `{rel}`: {e}"))
        }
    };
    let file = beneath::open_file(root, Path::new(rel)).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if meta.is_dir() {
        return Err(ToolError::new(format!(
            "`{}` is a directory; use list_dir to see what is in it",
            super::shown(rel)
        )));
    }
    if !meta.is_file() {
        return Err(ToolError::new(format!("`{rel}` is not a regular file")));
    }
    Ok(file)
}

fn refuse_binary(reader: &mut BufReader<File>, rel: &str) -> Result<(), ToolError> {
    let head = reader
        .fill_buf()
        .map_err(|e| ToolError::new(format!("cannot read `{rel}`: {e}")))?;
    if head.contains(&0) {
        return Err(ToolError::new(format!(
            "`{rel}` looks like a binary file (NUL byte in its first 8 KiB); read_file only shows text"
        )));
    }
    Ok(())
}

/// Formats the window of lines, counting the rest, and adds the truncation note.
fn render(mut reader: impl BufRead, rel: &str, w: Window) -> Result<String, ToolError> {
    let width = digits(w.first.saturating_add(w.max - 1)).max(4);
    let (mut out, mut buf) = (String::new(), Vec::new());
    let (mut total, mut shown, mut capped, mut stopped) = (0, 0, false, false);
    loop {
        buf.clear();
        let n = read_line_bounded(&mut reader, &mut buf, LINE_KEEP_BYTES)
            .map_err(|e| ToolError::new(format!("cannot read `{rel}`: {e}")))?;
        if n == 0 {
            break;
        }
        total += 1;
        if total < w.first || stopped {
            continue;
        }
        let line = format_line(total, &buf, width);
        if shown == w.max || out.len() + line.len() > READ_MAX_BYTES {
            capped = !(shown == w.max && w.by_limit);
            stopped = true;
            continue;
        }
        out.push_str(&line);
        shown += 1;
    }
    finish(out, rel, w.first, shown, total, capped)
}

/// The most bytes of one line kept in memory: enough for [`READ_MAX_LINE_CHARS`]
/// characters of any UTF-8 and the cut mark, so a line is cut exactly as if read whole.
const LINE_KEEP_BYTES: usize = READ_MAX_LINE_CHARS * 4 + 4;

/// Reads one line (through its `\n`) from `reader`, keeping at most `keep` bytes of it in
/// `buf` and skipping the rest, so a 2 GB file of one line costs `keep` bytes of memory,
/// not 2 GB. Returns the bytes consumed (0 at the end of the file).
fn read_line_bounded(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    keep: usize,
) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(consumed);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = keep.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        reader.consume(used);
        consumed += used;
        if done {
            return Ok(consumed);
        }
    }
}

fn finish(
    mut out: String,
    rel: &str,
    first: usize,
    shown: usize,
    total: usize,
    capped: bool,
) -> Result<String, ToolError> {
    if total == 0 {
        return Ok(format!("[`{rel}` is empty]"));
    }
    if first > total {
        return Err(ToolError::new(format!(
            "offset {first} is past the end of `{rel}`, which has {total} lines"
        )));
    }
    if capped {
        let last = first + shown - 1;
        out.push_str(&format!(
            "[output truncated: showing lines {first}-{last} of {total}; use offset/limit]\n"
        ));
    }
    Ok(out)
}

fn format_line(number: usize, raw: &[u8], width: usize) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\n', '\r']);
    format!(
        "{number:>width$}| {}\n",
        cut_line(text, READ_MAX_LINE_CHARS)
    )
}

fn digits(n: usize) -> usize {
    n.checked_ilog10().unwrap_or(0) as usize + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    async fn read_ok(f: &Fixture, args: Value) -> String {
        f.run(&ReadFile, args).await.unwrap().content
    }

    #[test]
    fn a_huge_single_line_costs_only_the_bytes_shown() {
        // 64 MiB without a newline, streamed: memory stays at the kept bytes.
        let size = 64u64 << 20;
        let mut reader = BufReader::new(std::io::Read::take(std::io::repeat(b'x'), size));
        let mut buf = Vec::new();
        let n = read_line_bounded(&mut reader, &mut buf, LINE_KEEP_BYTES).unwrap();
        assert_eq!(n as u64, size);
        assert!(buf.capacity() <= 2 * LINE_KEEP_BYTES, "{}", buf.capacity());
        let reader = BufReader::new(std::io::Read::take(std::io::repeat(b'y'), size));
        let w = Window {
            first: 1,
            max: 10,
            by_limit: false,
        };
        let out = render(reader, "big.txt", w).unwrap();
        assert!(out.len() < READ_MAX_LINE_CHARS * 4, "{}", out.len());
        assert!(out.contains('…'), "the line is shown cut");
    }

    #[tokio::test]
    async fn shows_lines_with_numbers() {
        let f = Fixture::new();
        f.write("a.txt", "one\ntwo\n");
        let out = read_ok(&f, json!({"path": "a.txt"})).await;
        assert_eq!(out, "   1| one\n   2| two\n");
    }

    #[tokio::test]
    async fn offset_and_limit_select_a_window() {
        let f = Fixture::new();
        f.write("a.txt", numbered(10));
        let out = read_ok(&f, json!({"path": "a.txt", "offset": 3, "limit": 2})).await;
        assert_eq!(out, "   3| line 3\n   4| line 4\n");
    }

    #[tokio::test]
    async fn long_file_is_truncated_with_a_note() {
        let f = Fixture::new();
        f.write("big.txt", numbered(2500));
        let out = read_ok(&f, json!({"path": "big.txt"})).await;
        assert!(out.contains("2000| line 2000\n"));
        assert!(!out.contains("line 2001"));
        assert!(
            out.ends_with("[output truncated: showing lines 1-2000 of 2500; use offset/limit]\n")
        );
    }

    #[tokio::test]
    async fn byte_cap_truncates_with_a_note() {
        let f = Fixture::new();
        let long = format!("{}\n", "x".repeat(1000));
        f.write("wide.txt", long.repeat(100));
        let out = read_ok(&f, json!({"path": "wide.txt", "offset": 2})).await;
        assert!(out.len() <= READ_MAX_BYTES + 200);
        assert!(out.contains("[output truncated: showing lines 2-"), "{out}");
        assert!(out.contains("of 100; use offset/limit]"));
    }

    #[tokio::test]
    async fn explicit_limit_is_not_a_truncation() {
        let f = Fixture::new();
        f.write("a.txt", numbered(10));
        let out = read_ok(&f, json!({"path": "a.txt", "limit": 3})).await;
        assert!(!out.contains("truncated"));
    }

    #[tokio::test]
    async fn binary_file_is_refused() {
        let f = Fixture::new();
        f.write("bin", b"abc\0def");
        let err = f.run(&ReadFile, json!({"path": "bin"})).await.unwrap_err();
        assert!(err.0.contains("binary"), "{err}");
    }

    #[tokio::test]
    async fn offset_past_the_end_is_an_error() {
        let f = Fixture::new();
        f.write("a.txt", numbered(3));
        let args = json!({"path": "a.txt", "offset": 9});
        let err = f.run(&ReadFile, args).await.unwrap_err();
        assert!(
            err.0.contains("past the end") && err.0.contains("3 lines"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn huge_offset_is_an_error_not_a_panic() {
        let f = Fixture::new();
        f.write("a.txt", numbered(3));
        let args = json!({"path": "a.txt", "offset": u64::MAX});
        assert!(f.run(&ReadFile, args).await.is_err());
    }

    #[tokio::test]
    async fn directory_is_refused_with_a_hint() {
        let f = Fixture::new();
        f.write("src/a.rs", "x");
        let err = f.run(&ReadFile, json!({"path": "src"})).await.unwrap_err();
        assert!(err.0.contains("list_dir"), "{err}");
    }

    #[tokio::test]
    async fn plan_declares_the_resolved_read() {
        let f = Fixture::new();
        f.write("real.txt", "x");
        f.symlink(&f.root().join("real.txt"), "alias.txt");
        let plan = f.plan(&ReadFile, json!({"path": "alias.txt"}));
        assert_eq!(plan.unwrap(), [Access::Read("real.txt".into())]);
    }

    #[tokio::test]
    async fn symlink_to_outside_is_planned_outside_and_not_read() {
        let f = Fixture::new();
        let secret = f.outside_file("secret", "s");
        f.symlink(&secret, "link");
        let tool = ReadFile;
        let plan = f.plan(&tool, json!({"path": "link"})).unwrap();
        assert!(matches!(&plan[..], [Access::Outside(_)]));
        assert!(tool
            .invoke(json!({"path": "link"}), &plan, &f.ctx)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn missing_path_argument_is_named() {
        let f = Fixture::new();
        let err = f.plan(&ReadFile, json!({"offset": 1})).unwrap_err();
        assert!(err.0.contains("`path`"), "{err}");
    }
}
