//! Unified diffs: parsing ([`parse`]) and applying one file's hunks ([`apply`]), as pure code.
//!
//! Written here rather than taken from a crate because `apply_patch` needs three things
//! together: patches touching several files (with creation and deletion through
//! `/dev/null`), all-or-nothing application, and errors that name the hunk that failed so a
//! model can fix it. The format accepted:
//!
//! - optional `diff --git`, `index`, mode lines (ignored); then `--- old` and `+++ new`
//!   headers (git's `a/` and `b/` prefixes are dropped when both sides use them; a tab and
//!   timestamp after the name are dropped);
//! - hunks `@@ -l,s +l,s @@`, lines starting with ` `, `-`, `+`, and
//!   `\ No newline at end of file`. An empty line counts as an empty context line.
//!
//! Models often get the line counts in `@@` headers wrong, so a hunk extends to the next
//! header instead of trusting the counts, and the old line number is only a hint: the hunk's
//! context and removed lines must match exactly, at the hinted line or the nearest place
//! after the previous hunk (like `patch` with an offset, without fuzz).

use std::fmt;

/// One file's part of a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatch {
    /// The old path (`None` for `/dev/null`: the file is created).
    pub old: Option<String>,
    /// The new path (`None` for `/dev/null`: the file is deleted).
    pub new: Option<String>,
    /// The hunks, in order.
    pub hunks: Vec<Hunk>,
}

impl FilePatch {
    /// The path this part changes.
    pub fn path(&self) -> &str {
        self.new
            .as_deref()
            .or(self.old.as_deref())
            .unwrap_or_default()
    }
}

/// One hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The `@@ ... @@` line, for messages.
    pub header: String,
    /// The old start line (1-based; 0 for an empty old file).
    pub old_start: usize,
    /// Whether the header says the old side is empty (`-l,0`): lines are inserted after
    /// line `old_start`.
    pub insert_only: bool,
    /// The lines, in order.
    pub lines: Vec<Line>,
    /// `\ No newline at end of file` after the old side's last line.
    pub old_no_newline: bool,
    /// `\ No newline at end of file` after the new side's last line.
    pub new_no_newline: bool,
}

/// A line of a hunk, without its prefix or newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Unchanged.
    Context(String),
    /// Removed.
    Remove(String),
    /// Added.
    Add(String),
}

/// A file's text as lines, and whether it ends with a newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// The lines, without newlines.
    pub lines: Vec<String>,
    /// Whether the last line ends with `\n`.
    pub final_newline: bool,
}

impl Text {
    /// Splits `s` into lines.
    pub fn from(s: &str) -> Self {
        let final_newline = s.is_empty() || s.ends_with('\n');
        let body = s.strip_suffix('\n').unwrap_or(s);
        let lines = if s.is_empty() {
            Vec::new()
        } else {
            body.split('\n').map(str::to_owned).collect()
        };
        Self {
            lines,
            final_newline,
        }
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))?;
        if self.final_newline && !self.lines.is_empty() {
            f.write_str("\n")?;
        }
        Ok(())
    }
}

/// Parses a unified diff into its files' parts. The error says what is wrong and where.
pub fn parse(patch: &str) -> Result<Vec<FilePatch>, String> {
    let lines: Vec<&str> = patch.lines().collect();
    let mut files = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if is_file_header(&lines, i) {
            let (file, next) = parse_file(&lines, i)?;
            files.push(file);
            i = next;
        } else if lines[i].starts_with("@@") {
            return Err(format!(
                "line {}: a hunk before any `--- old` / `+++ new` header",
                i + 1
            ));
        } else {
            i += 1; // `diff --git`, `index`, mode lines, prose
        }
    }
    if files.is_empty() {
        return Err(
            "no file headers found: a unified diff needs `--- a/path` and `+++ b/path` \
                    lines before its `@@` hunks"
                .into(),
        );
    }
    Ok(files)
}

fn is_file_header(lines: &[&str], i: usize) -> bool {
    lines[i].starts_with("--- ") && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ "))
}

fn parse_file(lines: &[&str], start: usize) -> Result<(FilePatch, usize), String> {
    let (old, new) = header_paths(&lines[start][4..], &lines[start + 1][4..]);
    if old.is_none() && new.is_none() {
        return Err(format!("line {}: both sides are /dev/null", start + 1));
    }
    let mut hunks = Vec::new();
    let mut i = start + 2;
    while i < lines.len() && lines[i].starts_with("@@") {
        let (hunk, next) = parse_hunk(lines, i)?;
        hunks.push(hunk);
        i = next;
    }
    if hunks.is_empty() {
        return Err(format!(
            "line {}: `{}` has no hunks (expected a line starting with `@@`)",
            start + 1,
            new.as_deref().or(old.as_deref()).unwrap_or_default()
        ));
    }
    Ok((FilePatch { old, new, hunks }, i))
}

/// The two header paths, `None` for `/dev/null`, with git's `a/`, `b/` prefixes dropped.
fn header_paths(old: &str, new: &str) -> (Option<String>, Option<String>) {
    let clean = |s: &str| s.split('\t').next().unwrap_or_default().trim().to_owned();
    let (old, new) = (clean(old), clean(new));
    let git = (old.starts_with("a/") || old == "/dev/null")
        && (new.starts_with("b/") || new == "/dev/null");
    let side = |p: String, prefix: &str| match p.as_str() {
        "/dev/null" => None,
        _ if git => Some(p.strip_prefix(prefix).unwrap_or(&p).to_owned()),
        _ => Some(p),
    };
    (side(old, "a/"), side(new, "b/"))
}

fn parse_hunk(lines: &[&str], start: usize) -> Result<(Hunk, usize), String> {
    let header = lines[start];
    let (old_start, old_len) = old_range(header)
        .ok_or_else(|| format!("line {}: malformed hunk header `{header}`", start + 1))?;
    let mut hunk = Hunk {
        header: header.to_owned(),
        old_start,
        insert_only: old_len == 0,
        lines: Vec::new(),
        old_no_newline: false,
        new_no_newline: false,
    };
    let mut i = start + 1;
    while i < lines.len() && !lines[i].starts_with("@@") && !is_file_header(lines, i) {
        let line = lines[i];
        match line.chars().next() {
            None => hunk.lines.push(Line::Context(String::new())),
            Some(' ') => hunk.lines.push(Line::Context(line[1..].to_owned())),
            Some('-') => hunk.lines.push(Line::Remove(line[1..].to_owned())),
            Some('+') => hunk.lines.push(Line::Add(line[1..].to_owned())),
            Some('\\') => mark_no_newline(&mut hunk),
            Some(_) if line.starts_with("diff ") => break,
            Some(_) => {
                return Err(format!(
                    "line {}: unexpected line in hunk `{header}`: `{line}` (hunk lines start \
                     with ' ', '-' or '+')",
                    i + 1
                ))
            }
        }
        i += 1;
    }
    Ok((hunk, i))
}

fn mark_no_newline(hunk: &mut Hunk) {
    match hunk.lines.last() {
        Some(Line::Remove(_)) => hunk.old_no_newline = true,
        Some(Line::Add(_)) => hunk.new_no_newline = true,
        Some(Line::Context(_)) => {
            hunk.old_no_newline = true;
            hunk.new_no_newline = true;
        }
        None => {}
    }
}

/// `@@ -12,3 +12,4 @@ fn x` → (12, 3); a missing count is 1.
fn old_range(header: &str) -> Option<(usize, usize)> {
    let rest = header.strip_prefix("@@ -")?;
    let range = rest.split_whitespace().next()?;
    let (start, len) = range.split_once(',').unwrap_or((range, "1"));
    Some((start.parse().ok()?, len.parse().ok()?))
}

/// Applies `hunks` to `old`; the error names the hunk (1-based) that does not apply.
pub fn apply(old: &Text, hunks: &[Hunk]) -> Result<Text, String> {
    let mut out: Vec<String> = Vec::new();
    let mut cursor = 0;
    let mut final_newline = old.final_newline;
    for (n, hunk) in hunks.iter().enumerate() {
        let wanted: Vec<&str> = old_side(hunk).collect();
        let first = match hunk.insert_only {
            true => hunk.old_start,
            false => hunk.old_start.saturating_sub(1),
        };
        let hint = first.max(cursor);
        let at = find(&old.lines, &wanted, hint, cursor).ok_or_else(|| {
            format!(
                "hunk {} ({}) does not apply: its context and removed lines were not found \
                 at or near line {} (after the previous hunk); re-read the file and make the \
                 hunk's ' ' and '-' lines match it exactly",
                n + 1,
                hunk.header,
                hunk.old_start
            )
        })?;
        out.extend(old.lines[cursor..at].iter().cloned());
        out.extend(new_side(hunk).map(str::to_owned));
        cursor = at + wanted.len();
        if cursor == old.lines.len() {
            final_newline = !hunk.new_no_newline;
        }
    }
    out.extend(old.lines[cursor..].iter().cloned());
    Ok(Text {
        lines: out,
        final_newline,
    })
}

fn old_side(hunk: &Hunk) -> impl Iterator<Item = &str> {
    hunk.lines.iter().filter_map(|l| match l {
        Line::Context(s) | Line::Remove(s) => Some(s.as_str()),
        Line::Add(_) => None,
    })
}

fn new_side(hunk: &Hunk) -> impl Iterator<Item = &str> {
    hunk.lines.iter().filter_map(|l| match l {
        Line::Context(s) | Line::Add(s) => Some(s.as_str()),
        Line::Remove(_) => None,
    })
}

/// The position at or after `min` where `wanted` matches `lines`, nearest to `hint`.
fn find(lines: &[String], wanted: &[&str], hint: usize, min: usize) -> Option<usize> {
    let fits = |at: usize| {
        at + wanted.len() <= lines.len() && wanted.iter().zip(&lines[at..]).all(|(w, l)| w == l)
    };
    let last = lines.len().checked_sub(wanted.len())?;
    let hint = hint.min(last);
    (0..=last).find_map(|d| {
        let after = hint + d;
        let before = hint.checked_sub(d).filter(|b| *b >= min);
        [Some(after).filter(|a| *a <= last), before]
            .into_iter()
            .flatten()
            .find(|&at| fits(at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_FILES: &str = "\
diff --git a/src/a.rs b/src/a.rs
--- a/src/a.rs
+++ b/src/a.rs
@@ -1,3 +1,3 @@
 one
-two
+TWO
 three
--- /dev/null
+++ b/new.txt
@@ -0,0 +1,2 @@
+hello
+world
";

    fn apply_str(old: &str, patch: &str) -> Result<String, String> {
        let files = parse(patch)?;
        apply(&Text::from(old), &files[0].hunks).map(|t| t.to_string())
    }

    #[test]
    fn parses_files_with_git_prefixes_and_dev_null() {
        let files = parse(TWO_FILES).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].old.as_deref(), Some("src/a.rs"));
        assert_eq!(files[1].old, None);
        assert_eq!(files[1].path(), "new.txt");
        assert_eq!(
            apply(&Text::from(""), &files[1].hunks).unwrap().to_string(),
            "hello\nworld\n"
        );
    }

    #[test]
    fn applies_with_an_offset_and_wrong_counts() {
        let patch = "--- x\n+++ x\n@@ -1,9 +1,9 @@\n c\n-d\n+D\n";
        assert_eq!(
            apply_str("a\nb\nc\nd\ne\n", patch).unwrap(),
            "a\nb\nc\nD\ne\n"
        );
    }

    #[test]
    fn a_failing_hunk_is_named() {
        let patch = "--- x\n+++ x\n@@ -1 +1 @@\n-a\n+A\n@@ -3 +3 @@\n-zzz\n+Z\n";
        let err = apply_str("a\nb\nc\n", patch).unwrap_err();
        assert!(
            err.starts_with("hunk 2 (@@ -3 +3 @@) does not apply"),
            "{err}"
        );
    }

    #[test]
    fn insertion_goes_after_the_named_line() {
        let patch = "--- x\n+++ x\n@@ -2,0 +3 @@\n+new\n";
        assert_eq!(apply_str("a\nb\nc\n", patch).unwrap(), "a\nb\nnew\nc\n");
    }

    #[test]
    fn hunks_apply_in_order_only() {
        let patch = "--- x\n+++ x\n@@ -3 +3 @@\n-c\n+C\n@@ -1 +1 @@\n-a\n+A\n";
        assert!(apply_str("a\nb\nc\n", patch).is_err());
    }

    #[test]
    fn no_newline_markers_are_honoured() {
        let patch = "--- x\n+++ x\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n";
        assert_eq!(apply_str("a", patch).unwrap(), "b\n");
        let patch = "--- x\n+++ x\n@@ -1 +1 @@\n-a\n+b\n\\ No newline at end of file\n";
        assert_eq!(apply_str("a\n", patch).unwrap(), "b");
    }

    #[test]
    fn malformed_patches_are_explained() {
        assert!(parse("just text").unwrap_err().contains("no file headers"));
        assert!(parse("@@ -1 +1 @@\n-a\n")
            .unwrap_err()
            .contains("before any"));
        assert!(parse("--- x\n+++ x\n@@ nonsense\n")
            .unwrap_err()
            .contains("malformed"));
        assert!(parse("--- x\n+++ x\n@@ -1 +1 @@\n*a\n")
            .unwrap_err()
            .contains("unexpected"));
        assert!(parse("--- x\n+++ x\n").unwrap_err().contains("no hunks"));
    }

    #[test]
    fn text_round_trips() {
        for s in ["", "a", "a\n", "a\nb", "a\n\nb\n"] {
            assert_eq!(Text::from(s).to_string(), s);
        }
    }
}
