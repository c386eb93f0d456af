//! Isolation of writing agents: a git worktree per agent, and its change as a patch.
//!
//! Under `isolation: worktree` each agent of a run works in its own git worktree at
//! `.codex/runs/<run>/worktrees/<agent>/`, whose base commit is the workspace's HEAD plus
//! the user's uncommitted changes (tracked and untracked, not ignored; `.codex/runs` left
//! out). Its tools, scope, policy and the OS sandbox of its programs are rooted there
//! ([`codex_actors::AgentSpec::root`]), so parallel writers cannot trample each other nor
//! the user's tree. When the run ends, each agent's change (its worktree against its base,
//! new files included) is committed in its worktree and stored as
//! `.codex/runs/<run>/changes/<agent>.patch`, with a summary beside it (`<agent>.json`).
//! `codex changes`, `codex apply` and `codex discard` review, merge and drop them.
//!
//! The decisions (which isolation, what a numstat says) are the pure functions here; the
//! `git` program does the work ([`git`]): creating a worktree of a 10,000-file repository
//! takes well under a second with it (see BENCHMARKS.md), and it is what users have.

pub mod apply;
pub mod children;
pub mod git;
pub mod ledger;

use serde::{Deserialize, Serialize};

/// `[worktrees]` of the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorktreesConfig {
    /// Where the worktrees go: `<dir>/<run>/<agent>` (absolute, or relative to the
    /// workspace; default: `.codex/runs/<run>/worktrees/<agent>`).
    pub dir: Option<std::path::PathBuf>,
    /// How long `codex gc` keeps the worktrees of ended runs: `7d`, `12h`, `30m`
    /// (default [`DEFAULT_RETENTION`]).
    pub retention: Option<String>,
}

/// `codex gc`'s retention when neither `--older-than` nor `[worktrees] retention` says.
pub const DEFAULT_RETENTION: &str = "7d";

/// Reads a retention period: numbers with units `d`, `h`, `m`, `s`, in any order and
/// combination (`7d`, `1d12h`, `90m`, `0s`).
pub fn parse_retention(text: &str) -> Result<std::time::Duration, String> {
    let bad = || {
        format!("`{text}` is not a duration: write a number and a unit (d, h, m, s), like 7d, 12h or 30m")
    };
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.trim().chars() {
        match c {
            '0'..='9' => number.push(c),
            'd' | 'h' | 'm' | 's' if !number.is_empty() => {
                let unit = match c {
                    'd' => 86_400,
                    'h' => 3_600,
                    'm' => 60,
                    _ => 1,
                };
                let n: u64 = number.parse().map_err(|_| bad())?;
                total = n
                    .checked_mul(unit)
                    .and_then(|s| total.checked_add(s))
                    .ok_or_else(bad)?;
                number.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !number.is_empty() || text.trim().is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// Where an agent writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Its own git worktree; its change is reviewed and applied afterwards.
    Worktree,
    /// The workspace itself, shared with the other agents and the user.
    Shared,
}

/// The isolation of one agent: `--isolation` over the definition's `isolation:`; by
/// default a worktree when the workspace is (the top of) a git repository and the agent
/// may write, else shared. Asking for a worktree outside a git repository is an error.
pub fn choose(
    flag: Option<Isolation>,
    defined: Option<Isolation>,
    git_repository: bool,
    may_write: bool,
) -> Result<Isolation, String> {
    match flag.or(defined) {
        Some(Isolation::Worktree) if !git_repository => Err(
            "isolation `worktree` needs the workspace to be the top directory of a git \
             repository (`git init` it, or use --isolation shared)"
                .to_owned(),
        ),
        Some(chosen) => Ok(chosen),
        None if git_repository && may_write => Ok(Isolation::Worktree),
        None => Ok(Isolation::Shared),
    }
}

/// What one file of a change did, from `git diff --numstat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    /// Workspace-relative path.
    pub path: String,
    /// Lines added (`None` for a binary file).
    pub added: Option<u64>,
    /// Lines removed (`None` for a binary file).
    pub removed: Option<u64>,
}

/// An agent's change, as stored beside its patch and listed in `-o`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSummary {
    /// The agent.
    pub agent: String,
    /// The commit its worktree started from (HEAD plus the user's uncommitted changes).
    pub base: String,
    /// The commit of its worktree when it ended.
    pub result: String,
    /// Lowercase hex SHA-256 of the patch file.
    pub sha256: String,
    /// The patch, relative to the workspace.
    pub patch: String,
    /// The files it changed.
    pub files: Vec<FileStat>,
    /// Lines added over all files.
    pub added: u64,
    /// Lines removed over all files.
    pub removed: u64,
    /// For a delegated child: what became of its change in its parent's worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into_parent: Option<children::IntoParent>,
}

/// Parses `git diff --numstat` output (`added\tremoved\tpath` lines; `-` for binary).
pub fn parse_numstat(text: &str) -> Vec<FileStat> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let added = parts.next()?;
            let removed = parts.next()?;
            let path = parts.next()?;
            Some(FileStat {
                path: path.to_owned(),
                added: added.parse().ok(),
                removed: removed.parse().ok(),
            })
        })
        .collect()
}

/// `--stat`-like lines: ` path | +a -r` per file and a total.
pub fn render_stat(summary: &ChangeSummary) -> String {
    let mut out = String::new();
    for f in &summary.files {
        match (f.added, f.removed) {
            (Some(a), Some(r)) => out.push_str(&format!(" {} | +{a} -{r}\n", f.path)),
            _ => out.push_str(&format!(" {} | binary\n", f.path)),
        }
    }
    out.push_str(&format!(
        " {} file(s) changed, +{} -{}\n",
        summary.files.len(),
        summary.added,
        summary.removed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_in_a_git_repository_defaults_to_a_worktree() {
        assert_eq!(choose(None, None, true, true), Ok(Isolation::Worktree));
    }

    #[test]
    fn a_reader_or_a_plain_directory_defaults_to_shared() {
        assert_eq!(choose(None, None, true, false), Ok(Isolation::Shared));
        assert_eq!(choose(None, None, false, true), Ok(Isolation::Shared));
    }

    #[test]
    fn the_flag_wins_over_the_definition() {
        let chosen = choose(
            Some(Isolation::Shared),
            Some(Isolation::Worktree),
            true,
            true,
        );
        assert_eq!(chosen, Ok(Isolation::Shared));
        let chosen = choose(None, Some(Isolation::Shared), true, true);
        assert_eq!(chosen, Ok(Isolation::Shared));
    }

    #[test]
    fn a_worktree_outside_a_git_repository_is_refused_with_the_fix() {
        let err = choose(Some(Isolation::Worktree), None, false, true).unwrap_err();
        assert!(err.contains("git init"), "{err}");
    }

    #[test]
    fn retention_periods_read_days_hours_minutes_and_seconds() {
        let secs = |t: &str| parse_retention(t).map(|d| d.as_secs());
        assert_eq!(secs("7d"), Ok(7 * 86_400));
        assert_eq!(secs("1d12h"), Ok(86_400 + 12 * 3_600));
        assert_eq!(secs("90m"), Ok(5_400));
        assert_eq!(secs("0s"), Ok(0));
        for bad in ["", "7", "d", "7w", "-1d", "1.5h"] {
            let err = parse_retention(bad).unwrap_err();
            assert!(err.contains("like 7d"), "{bad}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_retention_written_with_units_reads_back_as_its_seconds(
            d in 0u64..400, h in 0u64..48, m in 0u64..120, s in 0u64..120,
        ) {
            let text = format!("{d}d{h}h{m}m{s}s");
            let secs = parse_retention(&text).unwrap().as_secs();
            proptest::prop_assert_eq!(secs, d * 86_400 + h * 3_600 + m * 60 + s);
        }

        #[test]
        fn a_retention_never_panics_and_an_error_says_how_to_write_one(text in "\\PC{0,12}") {
            if let Err(e) = parse_retention(&text) {
                proptest::prop_assert!(e.contains("like 7d"));
            }
        }
    }

    #[test]
    fn numstat_lines_become_file_stats_and_binary_files_have_no_counts() {
        let stats = parse_numstat("3\t1\tsrc/a.rs\n-\t-\timg.png\n0\t2\tdir/with\ttab\n");
        assert_eq!(
            stats,
            vec![
                FileStat {
                    path: "src/a.rs".into(),
                    added: Some(3),
                    removed: Some(1)
                },
                FileStat {
                    path: "img.png".into(),
                    added: None,
                    removed: None
                },
                FileStat {
                    path: "dir/with\ttab".into(),
                    added: Some(0),
                    removed: Some(2)
                },
            ]
        );
    }
}
