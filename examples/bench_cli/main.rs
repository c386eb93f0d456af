//! The benchmark of the real path: the release binary, over HTTP, at up to 2,000 agents.
//!
//! A fast scripted model server (`server.rs`: Chat Completions, SSE, a fixed latency L)
//! answers N agents x T turns (one `read_file` call per turn); ideal wall time = T x L,
//! efficiency = ideal / wall. In the same run, side by side: the floor (`floor.rs`: the
//! same HTTP exchanges with no engine), codex with its audit log on disk and on tmpfs
//! (`codex.rs`), and the peers (`peers.rs`). The machine's load is printed beside each row.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench_cli -- [--agents 1,64,512,1000,2000] [--turns 5] [--latency-ms 200] [--no-peers]
//! ```

mod codex;
mod floor;
mod peers;
mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

struct Options {
    agents: Vec<usize>,
    turns: u64,
    latency: Duration,
    peers: bool,
}

fn options() -> Options {
    let mut o = Options {
        agents: vec![1, 64, 512, 1000, 2000],
        turns: 5,
        latency: Duration::from_millis(200),
        peers: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().expect("a value").clone();
        match a.as_str() {
            "--agents" => o.agents = value().split(',').map(|n| n.parse().expect("N")).collect(),
            "--turns" => o.turns = value().parse().expect("T"),
            "--latency-ms" => o.latency = Duration::from_millis(value().parse().expect("L")),
            "--no-peers" => o.peers = false,
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().next().unwrap_or("?").to_owned())
        .unwrap_or_else(|_| "?".into())
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn main() {
    let o = options();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    // CODEX_BIN: another binary (a debug build, to try the driver itself).
    let codex = std::env::var_os("CODEX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("release/codex"));
    assert!(
        codex.exists(),
        "build the release binary first: cargo build --release"
    );
    let disk = tempfile::tempdir_in(&target).expect("a temp dir on disk");
    let tmpfs = tempfile::tempdir_in("/dev/shm").expect("a temp dir on tmpfs");
    let server = server::ModelServer::start(o.latency, o.turns);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ideal = o.latency * o.turns as u32;
    println!(
        "# CLI benchmark: N agents x {} turns, {} ms per model call (ideal {} s)\n",
        o.turns,
        o.latency.as_millis(),
        secs(ideal)
    );
    println!("codex {}, {}\n", env!("CARGO_PKG_VERSION"), machine());
    let check = rt.block_on(floor::run(&server.url, 2_000, 1));
    println!(
        "Server check: 2,000 concurrent calls answered in {} s (efficiency {:.3}).\n",
        secs(check),
        o.latency.as_secs_f64() / check.as_secs_f64()
    );
    let python = if o.peers {
        match peers::python(&repo, &target) {
            Ok(p) => Some(p),
            Err(e) => {
                println!("The peers could not be installed ({e}); going on without them.\n");
                None
            }
        }
    } else {
        None
    };
    println!("| N | system | load | wall s | efficiency | first request s | exit after last answer s | CPU s | µs CPU per agent-turn | peak RSS MiB |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let eff = |wall: Duration| ideal.as_secs_f64() / wall.as_secs_f64();
    for &n in &o.agents {
        let floor = rt.block_on(floor::run(&server.url, n, o.turns));
        println!(
            "| {n} | floor (HTTP only) | {} | {} | {:.3} | | | | | |",
            load(),
            secs(floor),
            eff(floor)
        );
        for (name, root) in [
            ("codex, log on disk", disk.path()),
            ("codex, log on tmpfs", tmpfs.path()),
        ] {
            let ws = codex::workspace(root, n, o.turns);
            let m = codex::run(&codex, &ws, n, &server);
            assert_eq!(
                m.requests,
                n as u64 * o.turns,
                "every agent made every call"
            );
            println!(
                "| {n} | {name} | {} | {} | {:.3} | {} | {} | {} | {:.0} | {:.1} |",
                load(),
                secs(m.wall),
                eff(m.wall),
                secs(m.first_request),
                secs(m.exit_after_last_answer),
                secs(m.cpu),
                m.cpu.as_secs_f64() * 1e6 / (n as f64 * o.turns as f64),
                m.max_rss_kib as f64 / 1024.0
            );
            let _ = std::fs::remove_dir_all(&ws);
        }
        if let Some(python) = &python {
            peer_rows(python, &repo, &server, disk.path(), n, o.turns, ideal);
        }
    }
}

fn peer_rows(
    python: &Path,
    repo: &Path,
    server: &server::ModelServer,
    root: &Path,
    n: usize,
    turns: u64,
    ideal: Duration,
) {
    let ws = codex::workspace(root, 0, turns);
    for (name, script) in peers::PEERS {
        let limit = ideal * 20 + Duration::from_secs(30);
        let script = repo.join("benches/peers").join(script);
        match peers::measure(python, &script, &server.url, &ws, n, turns, limit) {
            Ok(wall) => println!(
                "| {n} | {name} (pool tuned) | {} | {} | {:.3} | | | | | |",
                load(),
                secs(wall),
                ideal.as_secs_f64() / wall.as_secs_f64()
            ),
            Err(e) => println!(
                "| {n} | {name} (pool tuned) | {} | — | — | | | | | | ({e})",
                load()
            ),
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    format!(
        "{} cores ({cpu}), commit {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        commit()
    )
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
