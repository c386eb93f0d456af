//! Output and input caps, in one place so they are easy to find and to tune.
//!
//! A tool result goes into the model's context, which is small and expensive; every tool
//! caps what it returns and says so in a note the model can act on (narrow the search, use
//! `offset`/`limit`). Caps are generous enough for ordinary source files.

/// The most lines `read_file` shows at once.
pub const READ_MAX_LINES: usize = 2000;
/// The most bytes `read_file` shows at once.
pub const READ_MAX_BYTES: usize = 64 * 1024;
/// Longer lines are cut in `read_file` output.
pub const READ_MAX_LINE_CHARS: usize = 2000;
/// A NUL byte in this many leading bytes marks a file as binary.
pub const BINARY_SNIFF_BYTES: usize = 8 * 1024;
/// The most entries `list_dir` shows.
pub const LIST_MAX_ENTRIES: usize = 1000;
/// The most matching lines `grep` shows.
pub const GREP_MAX_MATCHES: usize = 200;
/// The most bytes `grep` shows.
pub const GREP_MAX_BYTES: usize = 64 * 1024;
/// Longer matching lines are cut in `grep` output.
pub const GREP_MAX_LINE_CHARS: usize = 300;
/// The largest content `write_file` accepts.
pub const WRITE_MAX_BYTES: usize = 1024 * 1024;

/// The most paths `find_files` shows.
pub const FIND_MAX_FILES: usize = 1000;
/// The most results `codebase_search` returns (and its default).
pub const SEARCH_MAX_RESULTS: usize = 30;
/// The default number of `codebase_search` results.
pub const SEARCH_DEFAULT_RESULTS: usize = 10;
/// Files larger than this are left out of the `codebase_search` index.
pub const SEARCH_MAX_FILE_BYTES: u64 = 1024 * 1024;
/// The largest patch `apply_patch` accepts.
pub const PATCH_MAX_BYTES: usize = 1024 * 1024;
/// The most bytes of stdout (and, separately, of stderr) `shell` shows.
pub const SHELL_MAX_OUTPUT_BYTES: usize = 32 * 1024;
/// `shell`'s timeout when the model gives none, in seconds.
pub const SHELL_DEFAULT_TIMEOUT_SECS: u64 = 120;
/// The longest timeout `shell` accepts, in seconds.
pub const SHELL_MAX_TIMEOUT_SECS: u64 = 900;
/// The most bytes of a response body `web_fetch` downloads.
pub const FETCH_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// The most characters of text `web_fetch` shows.
pub const FETCH_MAX_TEXT_CHARS: usize = 48 * 1024;
/// `web_fetch`'s time limit for one request, in seconds.
pub const FETCH_TIMEOUT_SECS: u64 = 30;

/// `line` cut to at most `max` characters, with `…` marking the cut.
pub fn cut_line(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_line_respects_char_boundaries() {
        assert_eq!(cut_line("héllo", 2), "hé…");
        assert_eq!(cut_line("ab", 2), "ab");
    }
}
