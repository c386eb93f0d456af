//! Test support for the integration tests that drive the real `codex` binary: a throwaway
//! workspace with its own agent definitions and replay script, an empty `CODEX_HOME`, and
//! readers for what a run leaves behind (the `-o` JSON and the audit log).

#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// A temporary workspace plus an empty `CODEX_HOME`, both removed on drop.
pub struct Workspace {
    root: TempDir,
    home: TempDir,
}

impl Workspace {
    /// An empty workspace (with a `src/lib.rs`, so `list_dir` and `read_file` have
    /// something to find).
    pub fn new() -> Self {
        let ws = Self::empty();
        ws.file("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n");
        ws
    }

    /// A workspace (with a `src/lib.rs`) inside `dir`, e.g. on a small file system.
    pub fn new_in(dir: &Path) -> Self {
        let ws = Workspace {
            root: tempfile::tempdir_in(dir).expect("temp workspace"),
            home: tempfile::tempdir().expect("temp CODEX_HOME"),
        };
        ws.file("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n");
        ws
    }

    /// A workspace without any file.
    pub fn empty() -> Self {
        Workspace {
            root: tempfile::tempdir().expect("temp workspace"),
            home: tempfile::tempdir().expect("temp CODEX_HOME"),
        }
    }

    /// The workspace root (canonical, as `codex` sees it).
    pub fn root(&self) -> PathBuf {
        self.root
            .path()
            .canonicalize()
            .expect("canonical workspace")
    }

    /// The empty `CODEX_HOME` the commands get.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The path of `rel` inside the workspace.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Writes a file of the workspace, creating its directories.
    pub fn file(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.root.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    /// Creates a directory of the workspace.
    pub fn dir(&self, rel: &str) {
        fs::create_dir_all(self.root.path().join(rel)).unwrap();
    }

    /// Writes `<ws>/.codex/agents/<file>.yaml`.
    pub fn agent(&self, file: &str, yaml: &str) -> PathBuf {
        self.file(&format!(".codex/agents/{file}.yaml"), yaml)
    }

    /// Writes the replay script to `<ws>/replay.yaml` and returns its path.
    pub fn replay(&self, yaml: &str) -> PathBuf {
        self.file("replay.yaml", yaml)
    }

    /// `<ws>/results.json`, for `-o`.
    pub fn results_path(&self) -> PathBuf {
        self.path("results.json")
    }

    /// `codex -C <ws>` with `CODEX_HOME` pointing at an empty directory.
    pub fn codex(&self) -> Command {
        let mut cmd = Command::cargo_bin("codex").expect("the codex binary");
        self.configure(&mut cmd);
        cmd
    }

    /// The same environment, for a `std::process::Command` (to send it signals).
    pub fn codex_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_codex"));
        cmd.env("CODEX_HOME", self.home.path())
            .env("RUST_BACKTRACE", "0")
            .env_remove("CODEX_LOG")
            .current_dir(self.root.path())
            .arg("-C")
            .arg(self.root());
        cmd
    }

    fn configure(&self, cmd: &mut Command) {
        cmd.env("CODEX_HOME", self.home.path())
            .env("RUST_BACKTRACE", "0")
            .env_remove("CODEX_LOG")
            .current_dir(self.root.path())
            .arg("-C")
            .arg(self.root());
    }

    /// Whether any run left a `.codex/runs` directory.
    pub fn has_runs(&self) -> bool {
        self.path(".codex/runs").exists()
    }

    /// The directory of the only run in this workspace.
    pub fn run_dir(&self) -> PathBuf {
        let runs: Vec<PathBuf> = fs::read_dir(self.path(".codex/runs"))
            .expect(".codex/runs exists")
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(runs.len(), 1, "expected exactly one run, found {runs:?}");
        runs.into_iter().next().unwrap()
    }

    /// The only run's audit log, one JSON value per line.
    pub fn audit(&self) -> Vec<Value> {
        read_audit(&self.run_dir().join("audit.jsonl"))
    }

    /// The `-o` JSON at [`Workspace::results_path`].
    pub fn results(&self) -> Value {
        read_json(&self.results_path())
    }
}

/// Reads an audit log; every line must be a JSON object.
pub fn read_audit(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read audit log {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The audit records of type `ty`, in file order.
pub fn of_type<'a>(audit: &'a [Value], ty: &str) -> Vec<&'a Value> {
    audit.iter().filter(|r| r["type"] == ty).collect()
}

/// The audit records sorted by `seq`.
pub fn by_seq(audit: &[Value]) -> Vec<&Value> {
    let mut sorted: Vec<&Value> = audit.iter().collect();
    sorted.sort_by_key(|r| r["seq"].as_u64().expect("seq is a number"));
    sorted
}

/// Asserts that the records' `seq` values are exactly 1..=n, in file order.
pub fn assert_seq_gapless(audit: &[Value]) {
    let seqs: Vec<u64> = audit.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (1..=audit.len() as u64).collect();
    assert_eq!(seqs, expected, "audit seq values are not 1..=n in order");
}

/// The report of `agent` in a `-o` JSON.
pub fn agent_report<'a>(results: &'a Value, agent: &str) -> &'a Value {
    results["agents"]
        .as_array()
        .expect("agents is an array")
        .iter()
        .find(|a| a["agent"] == agent)
        .unwrap_or_else(|| panic!("no report for agent `{agent}` in {results:#}"))
}

/// A minimal agent definition: reads everything, writes `write` (YAML value, e.g. `true`,
/// `["artifacts/"]`, or `false`), with a small per-turn output cap.
pub fn agent_yaml(name: &str, write: &str, budget: u64) -> String {
    format!(
        "name: {name}\n\
         goal: Do the work\n\
         instructions: Follow the script.\n\
         tools:\n  fs:\n    read: true\n    write: {write}\n\
         budget: {budget}\n\
         max_output_tokens: 200\n"
    )
}

/// Copies `from` into `to` recursively, skipping the relative paths in `skip`.
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    fn walk(base: &Path, dir: &Path, to: &Path, skip: &[&str]) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(base).unwrap();
            if skip.iter().any(|s| rel == Path::new(s)) {
                continue;
            }
            let target = to.join(rel);
            if entry.file_type().unwrap().is_dir() {
                fs::create_dir_all(&target).unwrap();
                walk(base, &path, to, skip);
            } else {
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::copy(&path, &target).unwrap();
            }
        }
    }
    fs::create_dir_all(to).unwrap();
    walk(from, from, to, skip);
}

/// How long a poll may wait for something that should happen soon (a hang guard only,
/// never a measure: on a busy machine things take longer, not shorter).
pub const HANG: std::time::Duration = std::time::Duration::from_secs(90);

/// Polls `done` every 20 ms until it holds; panics with `what` after [`HANG`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + HANG;
    while !done() {
        assert!(
            std::time::Instant::now() < give_up,
            "gave up waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`, ...) to process `pid` with `kill`.
pub fn send_signal(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Runs `git -C dir args…` with a fixed identity; panics with git's stderr on failure.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
