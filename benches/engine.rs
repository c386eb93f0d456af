//! Criterion benchmarks of the engine: the BudgetActor beside a Mutex-guarded ledger, and
//! the orchestration cost of an agent turn with a zero-latency model.
//!
//! ```sh
//! cargo bench --bench engine
//! ```
//!
//! The whole-run figures (parallel scaling, memory, start-up, binary size) are in
//! `examples/bench_run.rs`; BENCHMARKS.md has the results.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;

mod support;

use support::{contended, run, run_config, Ledgers};

/// A runtime like the `codex` binary's: multi-threaded, one worker per core.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One reserve + commit pair (and, every 20 pairs, a release) per iteration, from 1 and from
/// 8 tasks at once, through each kind of ledger.
fn budget(c: &mut Criterion) {
    let rt = runtime();
    for tasks in [1usize, 8] {
        let mut group = c.benchmark_group(format!("budget_reserve_commit_{tasks}_tasks"));
        group.throughput(Throughput::Elements(1));
        for kind in ["std_mutex", "tokio_mutex", "actor", "services"] {
            group.bench_function(BenchmarkId::from_parameter(kind), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let ledgers = match kind {
                            "std_mutex" => Ledgers::std_mutex(tasks),
                            "tokio_mutex" => Ledgers::tokio_mutex(tasks),
                            "actor" => Ledgers::actor(tasks).await,
                            _ => Ledgers::services(tasks, &support::unique_run_id()).await,
                        };
                        let per_task = iters.div_ceil(tasks as u64).max(1);
                        let r = contended(&ledgers, tasks, per_task, false).await;
                        ledgers.stop().await;
                        // Scaled to `iters` pairs, in case rounding up added a few.
                        r.wall.mul_f64(iters as f64 / r.pairs as f64)
                    })
                })
            });
        }
        group.finish();
    }
}

/// Whole runs with a zero-latency model: one agent of 20 turns, and 8 agents of 20 turns at
/// once. Every turn but the last reserves, commits, asks the policy about one read, runs a
/// tool and writes five audit lines; throughput is in turns.
fn turns(c: &mut Criterion) {
    let rt = runtime();
    let workspace = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("turn_zero_latency");
    for agents in [1usize, 8] {
        let turns = 20u32;
        group.throughput(Throughput::Elements(agents as u64 * turns as u64));
        group.bench_function(
            BenchmarkId::from_parameter(format!("{agents}_agents_x_{turns}_turns")),
            |b| {
                b.iter(|| {
                    rt.block_on(run(run_config(
                        workspace.path(),
                        agents,
                        turns,
                        Duration::ZERO,
                    )))
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = budget, turns
}
criterion_main!(benches);
