//! What the OS sandbox adds to starting a program: `/bin/true` started and waited for
//! N times directly and N times through the sandbox helper (the real `codex` binary, as
//! `shell` starts it: namespaces, mounts, rlimits, Landlock, seccomp), interleaved.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench_sandbox [-- N [CODEX]]
//! ```
//! CODEX defaults to `target/release/codex`. Prints the median and the 90th percentile of
//! each, and the median difference.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use codex::sandbox::launch::{self, CallTemp};
use codex::sandbox::{Sandbox, SandboxConfig};

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
    sandbox.helper = helper;
    if let Some(why) = sandbox.refusal() {
        panic!("{why}");
    }
    let workspace = std::env::current_dir().unwrap().canonicalize().unwrap();
    let policy = sandbox.policy_for(&[], &workspace);
    let program = std::path::Path::new("/bin/true");
    let (mut plain, mut boxed) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..n {
            let start = Instant::now();
            let status = tokio::process::Command::new(program)
                .status()
                .await
                .unwrap();
            assert!(status.success());
            plain.push(start.elapsed());

            let start = Instant::now();
            let temp = CallTemp::new().unwrap();
            let mut cmd = launch::command(&sandbox, &policy, program, &[], &temp).unwrap();
            let status = cmd.status().await.unwrap();
            drop(temp);
            assert!(status.success(), "sandboxed true failed: {status}");
            boxed.push(start.elapsed());
        }
    });
    let (p50, p90) = stats(&mut plain);
    let (b50, b90) = stats(&mut boxed);
    println!("{n} starts of /bin/true, interleaved");
    println!(
        "unsandboxed  median {:>8.3} ms  p90 {:>8.3} ms",
        ms(p50),
        ms(p90)
    );
    println!(
        "sandboxed    median {:>8.3} ms  p90 {:>8.3} ms",
        ms(b50),
        ms(b90)
    );
    println!(
        "extra per sandboxed call (median): {:.3} ms",
        ms(b50) - ms(p50)
    );
}

fn stats(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 9 / 10])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
