//! One measured run of the real binary: `codex delegate-parallel` of N agents against the
//! model server, its wall time, CPU and peak memory (from `wait4`), when its first request
//! came and how long it took to exit after the last answer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::server::ModelServer;

/// What one run measured.
pub struct Measured {
    pub wall: Duration,
    pub first_request: Duration,
    pub exit_after_last_answer: Duration,
    pub cpu: Duration,
    pub max_rss_kib: u64,
    pub requests: u64,
}

/// A workspace with `agents` read-only agent definitions `b0`..`bN`, under `root`.
pub fn workspace(root: &Path, agents: usize, turns: u64) -> PathBuf {
    let ws = root.join(format!("ws-{agents}"));
    let defs = ws.join(".codex/agents");
    std::fs::create_dir_all(&defs).expect("workspace");
    std::fs::create_dir_all(ws.join("src")).expect("src");
    std::fs::write(
        ws.join("src/lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n",
    )
    .unwrap();
    for k in 0..agents {
        let yaml = format!(
            "name: b{k}\ngoal: Read src/lib.rs\ninstructions: Read the file, then answer.\n\
             tools:\n  fs: {{ read: true }}\nbudget: 10000000\nmax_turns: {}\nmax_output_tokens: 256\n",
            turns + 1
        );
        std::fs::write(defs.join(format!("b{k}.yaml")), yaml).unwrap();
    }
    ws
}

/// Runs `codex` on `workspace`'s `agents` against `server`.
pub fn run(codex: &Path, workspace: &Path, agents: usize, server: &ModelServer) -> Measured {
    server.reset();
    let names: Vec<String> = (0..agents).map(|k| format!("b{k}")).collect();
    let mut cmd = wrapped(codex);
    cmd.arg("-C")
        .arg(workspace)
        .args(["delegate-parallel", &names.join(",")])
        .args(["--goal", "Read src/lib.rs", "--quiet"])
        .args(["--provider", "openai-chat", "--model", "bench-model"])
        .args([
            "-c",
            &format!("providers.openai-chat.base_url={}", server.url),
        ])
        .env("OPENAI_API_KEY", "bench-key")
        .env_remove("OPENAI_BASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    // Reaped by wait4 below, which also reports the child's own CPU and peak memory.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("codex starts");
    let peak = peak_rss_sampler(child.id());
    let (status, usage) = wait4(child.id());
    let max_rss_kib = peak.join().unwrap_or(0);
    let ended = Instant::now();
    assert!(
        status == 0,
        "codex exited with status {status:#x} for {agents} agents"
    );
    let first = server.first_request().expect("a request");
    let last = server.last_answer().expect("an answer");
    Measured {
        wall: ended - started,
        first_request: first.saturating_duration_since(started),
        exit_after_last_answer: ended.saturating_duration_since(last),
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        max_rss_kib,
        requests: server
            .seen
            .requests
            .load(std::sync::atomic::Ordering::SeqCst),
    }
}

/// `codex`, or `codex` under the command in `CODEX_BENCH_WRAP` (a profiler, e.g.
/// `perf record -g -o perf.data --`; the CPU and memory figures are then the wrapper's).
fn wrapped(codex: &Path) -> Command {
    match std::env::var("CODEX_BENCH_WRAP") {
        Ok(wrap) if !wrap.trim().is_empty() => {
            let mut words = wrap.split_whitespace();
            let mut cmd = Command::new(words.next().expect("a word"));
            cmd.args(words).arg(codex);
            cmd
        }
        _ => Command::new(codex),
    }
}

/// The peak resident memory of `pid` (`VmHWM`), read every 5 ms until it exits. Not
/// `wait4`'s `ru_maxrss`: that counts the pages the child shared with this driver between
/// fork and exec.
fn peak_rss_sampler(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            match hwm {
                Some(kib) => peak = peak.max(kib),
                None => break, // a zombie: it has exited
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    })
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Waits for `pid` and returns its status and its own resource usage.
fn wait4(pid: u32) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 writes into both out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as i32, "wait4: {}", std::io::Error::last_os_error());
    (status, usage)
}
