//! The `codex` binary under faults: real signals sent with `kill`, a full disk (a small
//! tmpfs, mounted by the test: these tests need root, as CI has), a closed stdout, and
//! damaged audit logs. Tests wait for events (a line on stdout, a file appearing), never for
//! a fixed time; the loops that poll have a generous limit that only stops a hang.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};

use common::{agent_report, agent_yaml, of_type, read_json, send_signal, wait_until, Workspace};
use serde_json::Value;

/// Waits for `child` to exit (killing it after [`HANG`]).
fn wait_exit(child: &mut Child) -> ExitStatus {
    let mut status = None;
    wait_until("codex to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

fn read_all(r: Option<impl Read>) -> String {
    let mut s = String::new();
    if let Some(mut r) = r {
        r.read_to_string(&mut s).unwrap();
    }
    s
}

/// Whether process `pid` is gone (or a zombie, which runs nothing).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

// ---------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------

/// Two agents whose only turn never ends in time (an hour): only a signal ends the run.
fn two_stuck_agents(ws: &Workspace) -> PathBuf {
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    ws.agent("beta", &agent_yaml("beta", "false", 20_000));
    ws.replay("agents:\n  default:\n    turns:\n      - text: late\n        delay_ms: 3600000\n")
}

/// Starts `delegate-parallel alpha,beta` with `-o`, returns once both agents started.
fn start_stuck_run(ws: &Workspace, replay: &Path) -> (Child, String) {
    let mut child = ws
        .codex_std()
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "a,b",
            "--replay",
        ])
        .arg(replay)
        .arg("-o")
        .arg(ws.results_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn codex");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while seen.matches("[start]").count() < 2 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!("codex ended before both agents started; stdout:\n{seen}");
        }
        seen.push_str(&line);
    }
    child.stdout = Some(stdout.into_inner());
    (child, seen)
}

/// A signal is handled exactly like Ctrl-C: every agent cancelled, the summary printed,
/// `-o` written, the audit log completed, exit status 1.
fn a_signal_cancels_like_ctrl_c(signal: &str, name: &str) {
    let ws = Workspace::new();
    let replay = two_stuck_agents(&ws);
    let (mut child, mut stdout) = start_stuck_run(&ws, &replay);
    send_signal(signal, child.id());
    let status = wait_exit(&mut child);
    stdout.push_str(&read_all(child.stdout.take()));
    let stderr = read_all(child.stderr.take());
    assert_eq!(
        status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{name}: cancelling every agent")),
        "{stderr}"
    );
    assert!(stdout.contains("0/2 agents completed"), "{stdout}");
    assert!(
        !stdout.contains("speed-up"),
        "a cancelled run claims a speed-up:\n{stdout}"
    );
    let results = ws.results();
    for agent in ["alpha", "beta"] {
        assert_eq!(agent_report(&results, agent)["status"], "cancelled");
    }
    let audit = ws.audit();
    let last = audit.last().unwrap();
    assert_eq!(last["type"], "run_finished", "{last:#}");
    assert_eq!(last["cancelled"], true);
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .code(0);
}

#[test]
fn sigterm_cancels_the_run_like_ctrl_c() {
    a_signal_cancels_like_ctrl_c("TERM", "SIGTERM");
}

#[test]
fn sighup_cancels_the_run_like_ctrl_c() {
    a_signal_cancels_like_ctrl_c("HUP", "SIGHUP");
}

/// An agent whose first turn runs `sh`, which becomes `sleep` for an hour (so the run is
/// stuck in a shell tool call); [`sleeper_pid`] finds it.
fn agent_with_a_sleeping_shell(ws: &Workspace) -> PathBuf {
    ws.agent(
        "sleeper",
        "name: sleeper\ngoal: g\ninstructions: i\ntools:\n  fs:\n    read: true\n  shell:\n    exec: [sh]\nbudget: 20000\nmax_output_tokens: 200\n",
    );
    ws.replay(&format!(
        r#"
agents:
  sleeper:
    turns:
      - text: "Running it."
        tool_calls:
          - name: shell
            arguments: {{argv: ["sh", "-c", "exec sleep {}"], timeout_secs: 900}}
      - text: "Done."
"#,
        sleep_marker()
    ))
}

/// The duration the sleeper's program sleeps: an hour, with this test process's pid as a
/// fraction, so that the program can be found among the machine's processes.
fn sleep_marker() -> String {
    format!("3600.{}", std::process::id())
}

/// The pid (as this process sees it: the program runs in a PID namespace of its own when
/// the OS sandbox is on) of the process running `sleep <marker>`.
fn sleeper_pid(marker: &str) -> Option<u32> {
    let wanted = format!("sleep\0{marker}\0");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (cmdline == wanted.as_bytes() && !is_dead(pid)).then_some(pid)
        })
}

/// Starts the sleeper; returns once its shell program runs, with its pid.
fn start_sleeper(ws: &Workspace) -> (Child, u32) {
    let replay = agent_with_a_sleeping_shell(ws);
    let mut child = ws
        .codex_std()
        .args(["delegate", "sleeper", "--goal", "g", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn codex");
    let marker = sleep_marker();
    let mut pid = None;
    wait_until("the shell tool's program to start", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "codex exited ({status}) before its shell program started:\n{}",
                read_all(child.stderr.take())
            );
        }
        pid = sleeper_pid(&marker);
        pid.is_some()
    });
    (child, pid.unwrap())
}

#[test]
fn sigterm_kills_the_shell_tools_programs_and_still_reports() {
    let ws = Workspace::new();
    let (mut child, shell_pid) = start_sleeper(&ws);
    send_signal("TERM", child.id());
    let status = wait_exit(&mut child);
    let stderr = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(1), "{stderr}");
    wait_until("the shell program to be killed", || is_dead(shell_pid));
    assert_eq!(
        agent_report(&ws.results(), "sleeper")["status"],
        "cancelled"
    );
}

/// The direct children of process `pid`.
/// `pid`'s children, their children, and so on.
fn descendants_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for c in children_of(p) {
            out.push(c);
            queue.push(c);
        }
    }
    out
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// A pipe for codex's stdout that nobody reads and that is already full: codex's first
/// line blocks, as on a paused terminal. The reader is returned to keep it open.
fn full_pipe() -> (std::os::fd::OwnedFd, Stdio) {
    let (reader, writer) = rustix::pipe::pipe().expect("pipe");
    let size = rustix::pipe::fcntl_setpipe_size(&writer, 4096).expect("pipe size");
    let mut filled = 0;
    while filled < size {
        filled += rustix::io::write(&writer, &vec![b'x'; size - filled]).expect("fill the pipe");
    }
    (reader, Stdio::from(writer))
}

#[test]
fn a_second_signal_exits_at_once_when_the_first_cannot_finish_and_kills_the_children() {
    let ws = Workspace::new();
    // An MCP server child that lives as long as the run's command.
    let echo = Path::new(env!("CARGO_BIN_EXE_codex"))
        .parent()
        .unwrap()
        .join("examples/echo_mcp_server");
    assert!(
        echo.exists(),
        "{} is missing: cargo build --examples",
        echo.display()
    );
    std::fs::write(
        ws.home().join("codex-actors.toml"),
        format!(
            "[mcp_servers.echo]\ncommand = {:?}\n",
            echo.display().to_string()
        ),
    )
    .unwrap();
    let def =
        agent_yaml("caller", "false", 20_000).replace("tools:\n", "tools:\n  mcp: [\"echo.*\"]\n");
    ws.agent("caller", &def);
    let replay = ws
        .replay("agents:\n  default:\n    turns:\n      - text: late\n        delay_ms: 3600000\n");
    // Its stdout blocks, so after the first signal its orderly end cannot complete.
    let (_reader, stdout) = full_pipe();
    let mut child = ws
        .codex_std()
        .args(["delegate", "caller", "--goal", "g", "--replay"])
        .arg(&replay)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let audit_has = |kind: &str| {
        ws.has_runs()
            && std::fs::read_dir(ws.path(".codex/runs"))
                .unwrap()
                .flatten()
                .any(|d| {
                    std::fs::read_to_string(d.path().join("audit.jsonl"))
                        .is_ok_and(|log| log.contains(&format!("\"type\":\"{kind}\"")))
                })
    };
    wait_until("the agent to start", || audit_has("agent_started"));
    // The server runs in its OS sandbox: below codex's sandbox helper and its init.
    let servers: Vec<u32> = descendants_of(child.id())
        .into_iter()
        .filter(|c| {
            std::fs::read_link(format!("/proc/{c}/exe"))
                .is_ok_and(|exe| exe.ends_with("echo_mcp_server"))
        })
        .collect();
    assert_eq!(servers.len(), 1, "the echo MCP server runs under codex");

    send_signal("TERM", child.id());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("SIGTERM: cancelling") {
        assert_ne!(stderr.read_line(&mut seen).unwrap(), 0, "{seen}");
    }
    // The cancellation completed the log; printing the summary is what blocks.
    wait_until("run_finished in the log", || audit_has("run_finished"));
    assert!(child.try_wait().unwrap().is_none(), "codex ended: {seen}");

    send_signal("HUP", child.id());
    let status = wait_exit(&mut child);
    stderr.read_to_string(&mut seen).unwrap();
    assert_eq!(status.code(), Some(129), "{seen}");
    assert!(seen.contains("SIGHUP again: exiting at once"), "{seen}");
    wait_until("the MCP server to be killed", || is_dead(servers[0]));
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .code(0);
}

// ---------------------------------------------------------------------------------------
// Full disk: a small tmpfs
// ---------------------------------------------------------------------------------------

/// A tmpfs of a few hundred KiB mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one; `None` (the test is skipped, and says so) when not root.
    fn mount() -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed (as root)");
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills it: a file of zeros until the disk says it is full.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = f.write_all(&chunk) {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                break;
            }
        }
        let _ = f.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_run_on_a_full_disk_does_not_start() {
    let Some(disk) = Tmpfs::mount() else { return };
    let ws = Workspace::new_in(disk.path());
    ws.agent("worker", &agent_yaml("worker", "false", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    disk.fill();
    let out = ws
        .codex()
        .args(["delegate", "worker", "--goal", "g", "--replay"])
        .arg(&replay)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("the disk is full"), "{stderr}");
    assert!(stderr.contains("No agent was started"), "{stderr}");
    assert!(!stdout.contains("[start]"), "{stdout}");
}

#[test]
fn a_disk_that_fills_up_mid_run_stops_it_at_once_with_one_message() {
    let Some(disk) = Tmpfs::mount() else { return };
    let ws = Workspace::new_in(disk.path());
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    ws.agent("beta", &agent_yaml("beta", "false", 20_000));
    // Each agent's first turn takes 3 s; the disk fills during it. The turn's records (four
    // tool calls with 2 KiB arguments each) cannot fit in what is left of the log's last
    // page, so writing them fails. Two more turns would take 6 s more.
    let delay_secs = 3.0;
    let long = "x".repeat(3000);
    let calls: Vec<String> = (0..4)
        .map(|i| format!("{{name: list_dir, arguments: {{path: \"{long}{i}\"}}}}"))
        .collect();
    let replay = ws.replay(&format!(
        "agents:\n  default:\n    turns:\n      - text: a\n        tool_calls: [{calls}]\n        delay_ms: 3000\n      - text: b\n        delay_ms: 3000\n        tool_calls: [{{name: list_dir, arguments: {{}}}}]\n      - text: done\n        delay_ms: 3000\n",
        calls = calls.join(", ")
    ));
    // The results go elsewhere: they are written after the disk is full.
    let elsewhere = tempfile::tempdir().unwrap();
    let results = elsewhere.path().join("results.json");
    let mut child = ws
        .codex_std()
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "a,b",
            "--replay",
        ])
        .arg(&replay)
        .arg("-o")
        .arg(&results)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while seen.matches("[start]").count() < 2 {
        let mut line = String::new();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "{seen}");
        seen.push_str(&line);
    }
    disk.fill();
    let status = wait_exit(&mut child);
    stdout.read_to_string(&mut seen).unwrap();
    let stderr = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(1), "{seen}\n{stderr}");
    assert_eq!(
        stderr.matches("the disk is full").count(),
        1,
        "one message on stderr:\n{stderr}"
    );
    assert!(!stderr.contains("audit record lost"), "{stderr}");
    let report = read_json(&results);
    for agent in ["alpha", "beta"] {
        let a = agent_report(&report, agent);
        assert_eq!(a["status"], "failed", "{a:#}");
        assert!(
            a["error"].as_str().unwrap().contains("the disk is full"),
            "{a:#}"
        );
    }
    // Stopped right after the first failed write: well before a second turn could end.
    let wall = report["wall_secs"].as_f64().unwrap();
    assert!(
        wall < 1.6 * delay_secs,
        "the run went on for {wall:.1}s after a {delay_secs}s turn"
    );
}

#[test]
fn results_that_cannot_be_written_keep_the_old_file_and_the_summary_is_printed() {
    let Some(disk) = Tmpfs::mount() else { return };
    let ws = Workspace::new();
    ws.agent("worker", &agent_yaml("worker", "false", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    let out_file = disk.path().join("out.json");
    std::fs::write(&out_file, "OLD RESULTS").unwrap();
    disk.fill();
    let out = ws
        .codex()
        .args(["delegate", "worker", "--goal", "g", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(&out_file)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(stdout.contains("1/1 agents completed"), "{stdout}");
    assert!(!stdout.contains("Results:"), "{stdout}");
    assert!(stderr.contains("its old content is unchanged"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "OLD RESULTS");
    let left: Vec<_> = std::fs::read_dir(disk.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "a temporary file was left behind: {left:?}");
}

// ---------------------------------------------------------------------------------------
// A closed stdout
// ---------------------------------------------------------------------------------------

/// A stdout whose reader is already gone: the child's first write fails (`| head -0`),
/// however fast the child is.
fn closed_pipe() -> Stdio {
    let (reader, writer) = rustix::pipe::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

#[test]
fn a_run_whose_stdout_is_closed_ends_quietly_with_status_141_and_writes_its_results() {
    let ws = Workspace::new();
    ws.agent("worker", &agent_yaml("worker", "false", 20_000));
    let replay =
        ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n        delay_ms: 300\n");
    let mut child = ws
        .codex_std()
        .args(["delegate", "worker", "--goal", "g", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child);
    let stderr = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(agent_report(&ws.results(), "worker")["status"], "completed");
}

#[test]
fn audit_show_into_a_closed_pipe_ends_quietly_with_status_141() {
    let ws = Workspace::new();
    ws.agent("worker", &agent_yaml("worker", "false", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    ws.codex()
        .args(["delegate", "worker", "--goal", "g", "--replay"])
        .arg(&replay)
        .assert()
        .success();
    let mut child = ws
        .codex_std()
        .args(["audit", "show", "last"])
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child);
    let stderr = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// Damaged logs, documented exit codes
// ---------------------------------------------------------------------------------------

#[test]
fn a_log_ending_in_zero_bytes_is_incomplete_not_tampered() {
    let ws = Workspace::new();
    ws.agent("worker", &agent_yaml("worker", "false", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    ws.codex()
        .args(["delegate", "worker", "--goal", "g", "--replay"])
        .arg(&replay)
        .assert()
        .success();
    let log = ws.run_dir().join("audit.jsonl");
    // What a power loss during the run leaves: the file grew, but its last block never
    // reached the disk, so the last line reads as zeros (here its newline survived) and
    // zeros follow; the run never ended, so it left no anchor either (an anchored log that
    // lost lines would be "rewritten after the run ended").
    std::fs::remove_file(ws.home().join("anchors.jsonl")).unwrap();
    let mut bytes = std::fs::read(&log).unwrap();
    let end = bytes.len() - 1;
    let start = bytes[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    bytes[start..end].fill(0);
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&log, bytes).unwrap();
    let out = ws
        .codex()
        .args(["audit", "verify", "last"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(!text.contains("TAMPERED"), "{text}");
    assert!(text.contains("torn"), "{text}");
}

#[test]
fn every_exit_status_is_in_the_readme_table() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for row in [
        "| 0 |",
        "| 1 |",
        "| 2 |",
        "| 3 |",
        "| 4 |",
        "| 130, 143, 129 |",
        "| 141 |",
    ] {
        assert!(
            readme.contains(row),
            "README's exit status table lacks `{row}`"
        );
    }
}

#[test]
fn an_agent_that_did_not_complete_and_its_reason_are_printed_with_quiet() {
    let ws = Workspace::new();
    ws.agent("good", &agent_yaml("good", "false", 20_000));
    ws.agent("bad", &agent_yaml("bad", "false", 20_000));
    let replay = ws.replay(
        "agents:\n  good:\n    turns:\n      - text: \"The answer is 42.\"\n  bad:\n    turns:\n      - fault: fatal\n        fault_message: \"invalid api key\"\n",
    );
    let out = ws
        .codex()
        .args([
            "delegate-parallel",
            "good,bad",
            "--goals",
            "a,b",
            "--quiet",
            "--replay",
        ])
        .arg(&replay)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("The answer is 42."), "{stdout}");
    assert!(stdout.contains("bad failed:"), "{stdout}");
    assert!(stdout.contains("invalid api key"), "{stdout}");
    assert!(!stdout.contains("[start]"), "{stdout}");
}

#[test]
fn max_concurrency_zero_is_an_error_before_anything_runs() {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    let out = ws
        .codex()
        .args([
            "delegate-parallel",
            "alpha",
            "--goals",
            "a",
            "--max-concurrency",
            "0",
        ])
        .arg("--replay")
        .arg(&replay)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("at least 1"), "{stderr}");
    assert!(!ws.has_runs());
}

#[test]
fn turns_count_from_one_in_the_log_as_in_the_events() {
    let ws = Workspace::new();
    ws.agent("worker", &agent_yaml("worker", "false", 20_000));
    let replay = ws.replay(
        "agents:\n  default:\n    turns:\n      - text: a\n        tool_calls: [{name: list_dir, arguments: {}}]\n      - text: done\n",
    );
    let out = ws
        .codex()
        .args(["delegate", "worker", "--goal", "g", "--json", "--replay"])
        .arg(&replay)
        .output()
        .unwrap();
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let event_turns: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "turn_completed")
        .map(|e| e["turn"].as_u64().unwrap())
        .collect();
    let audit = ws.audit();
    let log_turns: Vec<u64> = of_type(&audit, "model_call")
        .iter()
        .map(|r| r["turn"].as_u64().unwrap())
        .collect();
    assert_eq!(event_turns, [1, 2]);
    assert_eq!(log_turns, [1, 2]);
}

// ---------------------------------------------------------------------------------------
// MCP servers' stderr
// ---------------------------------------------------------------------------------------

#[test]
fn an_mcp_servers_stderr_goes_to_the_run_directory_not_the_terminal() {
    let ws = Workspace::new();
    std::fs::write(
        ws.home().join("codex-actors.toml"),
        "[mcp_servers.noisy]\ncommand = \"sh\"\nargs = [\"-c\", \"echo boom-on-stderr >&2; exit 1\"]\n",
    )
    .unwrap();
    let def =
        agent_yaml("user", "false", 20_000).replace("tools:\n", "tools:\n  mcp: [\"noisy.*\"]\n");
    ws.agent("user", &def);
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: hi\n");
    let out = ws
        .codex()
        .args(["delegate", "user", "--goal", "g", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains("boom-on-stderr"), "{stdout}");
    assert!(!stderr.contains("boom-on-stderr"), "{stderr}");
    let error = agent_report(&ws.results(), "user")["error"].clone();
    assert!(error.as_str().unwrap().contains("did not start"), "{error}");
    let saved = std::fs::read_to_string(ws.run_dir().join("mcp-noisy.stderr")).unwrap();
    assert_eq!(saved.trim(), "boom-on-stderr");
}

#[test]
fn sigterm_cancels_the_run_of_agent_create_like_ctrl_c() {
    let ws = Workspace::new();
    let answer = "          name: doc-writer\n          goal: Describe the crate\n          instructions: Read the sources.\n          tools:\n            fs: { read: true }\n          budget: 9000\n          max_output_tokens: 200\n";
    let replay = ws.replay(&format!(
        "agents:\n  agent-create:\n    turns:\n      - text: |\n{answer}  default:\n    turns:\n      - text: late\n        delay_ms: 3600000\n"
    ));
    let mut child = ws
        .codex_std()
        .args([
            "agent-create",
            "an agent that documents the crate",
            "--replay",
        ])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("[start]") {
        let mut line = String::new();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "{seen}");
        seen.push_str(&line);
    }
    send_signal("TERM", child.id());
    let status = wait_exit(&mut child);
    stdout.read_to_string(&mut seen).unwrap();
    let stderr = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(1), "{seen}\n{stderr}");
    assert!(seen.contains("0/1 agents completed"), "{seen}");
    assert_eq!(
        agent_report(&ws.results(), "doc-writer")["status"],
        "cancelled"
    );
}

#[test]
fn help_examples_that_write_name_the_demo_workspace() {
    let ws = Workspace::empty();
    for command in ["delegate", "delegate-parallel", "agent-create"] {
        let out = ws.codex().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout).replace("\\\n", " ");
        let examples: Vec<&str> = help
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("codex "))
            .collect();
        assert!(
            !examples.is_empty(),
            "{command} --help has no example:\n{help}"
        );
        for e in examples {
            let writes = e.contains("--replay") || e.contains("--save") || e.contains(" -o ");
            assert!(
                !writes || e.contains("-C "),
                "`{e}` would write into the current directory; give it `-C demo`"
            );
        }
    }
}
