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
