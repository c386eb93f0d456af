//! What running agents on workers over NATS costs, measured through the binaries: the same
//! run of replayed agents (each turn a `read_file` call, no model latency) on one machine
//! and with `--cluster` over W `codex worker` processes and a local `nats-server -js`.
//!
//! - *latency*: one agent with T/10 turns and with T turns, both ways: the time a turn
//!   takes is the slope between the two (so the attempt's own start, its claim and working
//!   copy, is left out), and the time added per remote turn is the cluster's slope minus
//!   the one here.
//! - *throughput*: N agents of T turns: turns per second both ways, and the coordinator's
//!   own CPU per remote turn (from `wait4`), which says where it saturates.
//!
//! ```sh
//! cargo build --release --bin codex --example bench_cluster
//! target/release/examples/bench_cluster [--codex target/release/codex] [--turns 100]
//!     [--agents 200] [--agent-turns 5] [--workers 4] [--slots 64] [--repeat 3]
//!     [--only latency|throughput]
//! ```
//!
//! Needs `nats-server` and `git` on PATH.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Options {
    codex: PathBuf,
    turns: usize,
    agents: usize,
    agent_turns: usize,
    workers: usize,
    slots: usize,
    repeat: usize,
    /// `latency`, `throughput`, or both (empty).
    only: String,
}

fn options() -> Options {
    let mut o = Options {
        codex: PathBuf::from("target/release/codex"),
        turns: 100,
        agents: 200,
        agent_turns: 5,
        workers: 4,
        slots: 64,
        repeat: 3,
        only: String::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().expect("a value").clone();
        match a.as_str() {
            "--codex" => o.codex = PathBuf::from(value()),
            "--turns" => o.turns = value().parse().expect("T"),
            "--agents" => o.agents = value().parse().expect("N"),
            "--agent-turns" => o.agent_turns = value().parse().expect("T"),
            "--workers" => o.workers = value().parse().expect("W"),
            "--slots" => o.slots = value().parse().expect("K"),
            "--repeat" => o.repeat = value().parse().expect("R"),
            "--only" => o.only = value(),
            other => panic!("unknown argument {other}"),
        }
    }
    o.codex = o
        .codex
        .canonicalize()
        .expect("the codex binary (build it first)");
    o
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().next().unwrap_or("?").to_owned())
        .unwrap_or_else(|_| "?".into())
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@b")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@b")
        .stdout(Stdio::null())
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// A git workspace with read-only agents `b0`..`bN` of `turns` `read_file` turns then an
/// answer, plus `short` and `long` of `short_turns` and `long_turns`.
fn workspace(
    root: &Path,
    agents: usize,
    turns: usize,
    short_turns: usize,
    long_turns: usize,
) -> PathBuf {
    let ws = root.join(format!("ws-{agents}-{turns}"));
    let defs = ws.join(".codex/agents");
    std::fs::create_dir_all(&defs).unwrap();
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("src/lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n",
    )
    .unwrap();
    let names = (0..agents).map(|k| (format!("b{k}"), turns));
    let all: Vec<(String, usize)> = names
        .chain([
            ("short".to_owned(), short_turns),
            ("long".to_owned(), long_turns),
        ])
        .collect();
    for (name, turns) in &all {
        let yaml = format!(
            "name: {name}\ngoal: Read src/lib.rs\ninstructions: Read the file, then answer.\n\
             tools:\n  fs: {{ read: true }}\nbudget: 10000000\nmax_turns: {}\nmax_output_tokens: 256\n",
            turns + 1
        );
        std::fs::write(defs.join(format!("{name}.yaml")), yaml).unwrap();
    }
    let mut replay = String::from("agents:\n");
    for (name, turns) in [
        ("default", turns),
        ("short", short_turns),
        ("long", long_turns),
    ] {
        replay.push_str(&format!("  {name}:\n    turns:\n"));
        for _ in 0..turns {
            replay.push_str(
                "      - text: Reading.\n        tool_calls:\n          - name: read_file\n            arguments: { path: src/lib.rs }\n        usage: { input_tokens: 100, output_tokens: 10 }\n",
            );
        }
        replay.push_str("      - text: The answer is 42.\n        usage: { input_tokens: 100, output_tokens: 10 }\n");
    }
    std::fs::write(ws.join("replay.yaml"), replay).unwrap();
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-qm", "base"]);
    ws
}

struct Nats(Child, u16);

impl Nats {
    fn start(store: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH");
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        Nats(child, port)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.1)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workers(o: &Options, ws: &Path, root: &Path, nats: &Nats) -> Vec<Worker> {
    (0..o.workers)
        .map(|i| {
            let dir = root.join(format!("worker-{i}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let clone = dir.join("checkout");
            git(
                root,
                &[
                    "clone",
                    "-q",
                    &ws.to_string_lossy(),
                    &clone.to_string_lossy(),
                ],
            );
            let log = dir.join("worker.log");
            let child = Command::new(&o.codex)
                .arg("-C")
                .arg(&clone)
                .args(["worker", "--nats", &nats.url(), "--name", &format!("w{i}")])
                .args(["--slots", &o.slots.to_string()])
                .env("CODEX_HOME", &dir)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("codex worker");
            while !std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("taking attempts")
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Worker(child)
        })
        .collect()
}

/// Wall time and the coordinator's own CPU of one run.
fn run(o: &Options, ws: &Path, names: &[String], cluster: Option<&Nats>) -> (Duration, Duration) {
    let agents = names.len();
    let mut cmd = Command::new(&o.codex);
    cmd.arg("-C")
        .arg(ws)
        .args([
            "delegate-parallel",
            &names.join(","),
            "--goal",
            "Read src/lib.rs",
            "--quiet",
        ])
        .arg("--replay")
        .arg(ws.join("replay.yaml"))
        .env("CODEX_HOME", ws.join(".codex-home"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(nats) = cluster {
        cmd.args(["--cluster", &nats.url()]);
    }
    let started = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped by wait4
    let child = cmd.spawn().expect("codex");
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 writes both out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, child.id() as i32);
    assert_eq!(
        status,
        0,
        "codex failed ({agents} agents, cluster: {})",
        cluster.is_some()
    );
    let cpu = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (started.elapsed(), cpu(usage.ru_utime) + cpu(usage.ru_stime))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let o = options();
    let root = tempfile::tempdir().unwrap();
    let nats = Nats::start(&root.path().join("nats"));
    println!("bench_cluster: {} (load {})", o.codex.display(), load());
    let short_turns = (o.turns / 10).max(1);
    let ws = workspace(root.path(), o.agents, o.agent_turns, short_turns, o.turns);
    if o.only != "throughput" {
        latency(&o, &ws, root.path(), &nats, short_turns);
    }
    if o.only != "latency" {
        throughput(&o, &ws, root.path(), &nats);
    }
}

/// One agent, few turns and many turns, on one worker (see the module docs).
fn latency(o: &Options, ws: &Path, root: &Path, nats: &Nats, short_turns: usize) {
    let one = Options {
        workers: 1,
        ..o_clone(o)
    };
    let _w = workers(&one, ws, root, nats);
    let (short, long) = (["short".to_owned()], ["long".to_owned()]);
    let slope = |cluster: Option<&Nats>| {
        let mut per_turn = Vec::new();
        for _ in 0..o.repeat {
            let (a, b) = (run(o, ws, &short, cluster).0, run(o, ws, &long, cluster).0);
            per_turn.push(b.saturating_sub(a) / (o.turns - short_turns) as u32);
        }
        median(per_turn)
    };
    let (here, there) = (slope(None), slope(Some(nats)));
    println!(
        "latency: 1 agent, {short_turns} vs {} turns: a turn takes {:.3} ms here, {:.3} ms on a worker: {:.3} ms added per remote turn (load {})",
        o.turns,
        here.as_secs_f64() * 1e3,
        there.as_secs_f64() * 1e3,
        (there.as_secs_f64() - here.as_secs_f64()) * 1e3,
        load()
    );
}

/// N agents over W workers (see the module docs).
fn throughput(o: &Options, ws: &Path, root: &Path, nats: &Nats) {
    let _w = workers(o, ws, root, nats);
    let all_turns = (o.agents * (o.agent_turns + 1)) as f64;
    let names: Vec<String> = (0..o.agents).map(|k| format!("b{k}")).collect();
    let (wall_h, cpu_h) = run(o, ws, &names, None);
    let (wall_c, cpu_c) = run(o, ws, &names, Some(nats));
    println!(
        "throughput: {} agents x {} turns, {} workers x {} slots: here {:.0} turns/s in {:.1} s ({:.0} us CPU per turn), cluster {:.0} turns/s in {:.1} s (coordinator {:.0} us CPU per remote turn) (load {})",
        o.agents,
        o.agent_turns + 1,
        o.workers,
        o.slots,
        all_turns / wall_h.as_secs_f64(),
        wall_h.as_secs_f64(),
        cpu_h.as_secs_f64() / all_turns * 1e6,
        all_turns / wall_c.as_secs_f64(),
        wall_c.as_secs_f64(),
        cpu_c.as_secs_f64() / all_turns * 1e6,
        load()
    );
}

fn o_clone(o: &Options) -> Options {
    Options {
        codex: o.codex.clone(),
        only: o.only.clone(),
        ..*o
    }
}
