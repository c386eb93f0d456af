//! What the OS sandbox adds to starting a program: `/bin/true` started and waited for N
//! times in each of these ways, interleaved (one of each per round), from a tokio runtime
//! as `shell` starts programs:
//!
//! - `direct`: spawned directly;
//! - `helper exec only`: the sandbox helper (the real `codex` binary) started with
//!   arguments it refuses at once: the cost of executing the helper itself;
//! - `sandboxed, net namespace`: through the whole sandbox (namespaces, mounts, rlimits,
//!   Landlock, seccomp), network denied by a network namespace (kernels with Landlock ABI
//!   below 6);
//! - `sandboxed`: the same as `shell` runs it on this machine (network denied by seccomp
//!   where Landlock scopes abstract sockets).
//!
//! ```sh
//! cargo build --release --bin codex --example bench_sandbox
//! target/release/examples/bench_sandbox [N [CODEX]]
//! ```
//! CODEX defaults to `target/release/codex`. Prints the median and the 90th percentile of
//! each, the median extra over `direct`, and the 1-minute load average before and after.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use codex::sandbox::launch::{self, CallTemp};
use codex::sandbox::{NetworkDenial, Sandbox, SandboxConfig, SandboxPolicy};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let helper = PathBuf::from(args.next().unwrap_or_else(|| "target/release/codex".into()));
    assert!(
        helper.exists(),
        "build the codex binary first: {}",
        helper.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sandbox = Sandbox::new(SandboxConfig::default(), None);
    sandbox.helper = helper.clone();
    if let Some(why) = sandbox.refusal() {
        panic!("{why}");
    }
    let workspace = std::env::current_dir().unwrap().canonicalize().unwrap();
    let policy = sandbox.policy_for(&[], &workspace);
    let mut with_netns = policy.clone();
    with_netns.network_denial = NetworkDenial::Namespace;
    let load_before = load();
    let program = Path::new("/bin/true");
    let mut times: [Vec<Duration>; 4] = Default::default();
    rt.block_on(async {
        for _ in 0..n {
            times[0].push(timed(tokio::process::Command::new(program)).await);
            // Exits 125 at once: the policy argument is not a policy.
            let mut exec_only = tokio::process::Command::new(&helper);
            exec_only.args(["__sandbox-exec", "{}", "--", "/bin/true"]);
            let start = Instant::now();
            let status = exec_only.output().await.unwrap().status;
            assert_eq!(status.code(), Some(125));
            times[1].push(start.elapsed());
            times[2].push(sandboxed(&sandbox, &with_netns, program).await);
            times[3].push(sandboxed(&sandbox, &policy, program).await);
        }
    });
    println!(
        "{n} starts of /bin/true each, interleaved; 1-min load {load_before} before, {} after",
        load()
    );
    let names = [
        "direct",
        "helper exec only",
        "sandboxed, net namespace",
        &format!(
            "sandboxed ({})",
            sandbox.describe(&policy).split(';').next().unwrap()
        ),
    ];
    let direct = stats(&mut times[0]).0;
    for (name, t) in names.iter().zip(times.iter_mut()) {
        let (p50, p90) = stats(t);
        println!(
            "{name:<64} median {:>7.3} ms  p90 {:>7.3} ms  extra {:>6.3} ms",
            ms(p50),
            ms(p90),
            ms(p50) - ms(direct)
        );
    }
}

async fn timed(mut command: tokio::process::Command) -> Duration {
    let start = Instant::now();
    assert!(command.status().await.unwrap().success());
    start.elapsed()
}

/// One call as `shell` makes it: a private temp dir, the helper with `policy`, waited for.
async fn sandboxed(sandbox: &Sandbox, policy: &SandboxPolicy, program: &Path) -> Duration {
    let start = Instant::now();
    let temp = CallTemp::new().unwrap();
    let mut cmd = launch::command(sandbox, policy, program, &[], &temp).unwrap();
    let status = cmd.status().await.unwrap();
    drop(temp);
    assert!(status.success(), "sandboxed true failed: {status}");
    start.elapsed()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn stats(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 9 / 10])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
