//! Workloads shared by the criterion benches (`benches/engine.rs`) and the whole-run driver
//! (`examples/bench_run.rs`), so both measure the same thing.
//!
//! - [`Ledgers`]: one budget ledger behind four doors (a `std::sync::Mutex`, a tokio
//!   `Mutex`, the BudgetActor called directly with `call_t!`, and the BudgetActor through
//!   the engine's own [`Services`] client), driven by [`contended`] from `tasks` tasks.
//! - [`LatencyModel`] and [`Probe`]: a scripted model with a fixed latency (zero for the
//!   overhead figure) and a tool that plans one read and touches nothing, so a turn goes
//!   through budget, policy, audit and tool dispatch without any I/O but the audit log.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codex_actors::budget::actor::{BudgetActor, BudgetArgs, BudgetMsg};
use codex_actors::budget::{BudgetLedger, ReservationId, ReserveRequest};
use codex_actors::model::{Model, ModelError, ModelEvent, ModelRequest, ToolCall, Usage};
use codex_actors::services::{service_name, ServiceKind, Services};
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use codex_actors::{AgentPlan, AgentSpec, RunConfig, RunReport, ToolSpec};
use futures::stream::{self, BoxStream, StreamExt};
use ractor::{call_t, Actor, ActorRef};
use serde_json::{json, Value};

/// Turns per attempt in the ledger workload: after this many reserve + commit pairs a task
/// releases its attempt, as an agent's attempt ends (this keeps the ledger's settled map at
/// a realistic size however long the benchmark runs).
pub const TURNS_PER_ATTEMPT: u64 = 20;

/// Each agent's limit in the ledger workload: never reached.
const AGENT_LIMIT: u64 = 1 << 50;

/// A ledger with one account per task: `agent-0`, `agent-1`, ...
pub fn ledger(tasks: usize) -> BudgetLedger {
    let mut ledger = BudgetLedger::new(AGENT_LIMIT * tasks as u64);
    for k in 0..tasks {
        ledger.register(&agent_name(k), AGENT_LIMIT).expect("fresh");
    }
    ledger
}

/// The account name of task `k`.
pub fn agent_name(k: usize) -> String {
    format!("agent-{k}")
}

/// The `i`-th reservation of `agent`: attempt and turn as an agent would number them.
fn request(agent: &str, i: u64) -> ReserveRequest {
    ReserveRequest {
        id: ReservationId {
            agent: agent.to_owned(),
            attempt: (i / TURNS_PER_ATTEMPT) as u32 + 1,
            turn: (i % TURNS_PER_ATTEMPT) as u32,
        },
        prompt_tokens: 500,
        max_output_tokens: 1_000,
        min_output_tokens: 64,
    }
}

/// One budget ledger, and the way callers reach it.
#[derive(Clone)]
pub enum Ledgers {
    /// `Arc<std::sync::Mutex<BudgetLedger>>`.
    StdMutex(Arc<std::sync::Mutex<BudgetLedger>>),
    /// `Arc<tokio::sync::Mutex<BudgetLedger>>`.
    TokioMutex(Arc<tokio::sync::Mutex<BudgetLedger>>),
    /// The BudgetActor, by reference, with `call_t!`.
    Actor(ActorRef<BudgetMsg>),
    /// The BudgetActor through [`Services`]: a registry lookup and a retry wrapper per call,
    /// as agents reach it. The string is the run id it is registered under.
    Services(Services, String),
}

impl Ledgers {
    /// A `std::sync::Mutex`-guarded ledger for `tasks` tasks.
    pub fn std_mutex(tasks: usize) -> Self {
        Self::StdMutex(Arc::new(std::sync::Mutex::new(ledger(tasks))))
    }

    /// A tokio-`Mutex`-guarded ledger for `tasks` tasks.
    pub fn tokio_mutex(tasks: usize) -> Self {
        Self::TokioMutex(Arc::new(tokio::sync::Mutex::new(ledger(tasks))))
    }

    /// A BudgetActor (no journal) for `tasks` tasks, called directly; stop it with
    /// [`Ledgers::stop`].
    pub async fn actor(tasks: usize) -> Self {
        let (actor, _) = Actor::spawn(
            None,
            BudgetActor,
            BudgetArgs {
                ledger: ledger(tasks),
                journal: None,
            },
        )
        .await
        .expect("spawn BudgetActor");
        Self::Actor(actor)
    }

    /// A BudgetActor registered as run `run_id`'s budget service, reached through
    /// [`Services`]; stop it with [`Ledgers::stop`].
    pub async fn services(tasks: usize, run_id: &str) -> Self {
        let name = service_name(run_id, ServiceKind::Budget);
        Actor::spawn(
            Some(name),
            BudgetActor,
            BudgetArgs {
                ledger: ledger(tasks),
                journal: None,
            },
        )
        .await
        .expect("spawn BudgetActor");
        let services = Services::new(run_id, Duration::from_secs(5), Duration::from_secs(10));
        Self::Services(services, run_id.to_owned())
    }

    /// Stops the actor behind this ledger, if there is one, and waits until its registry
    /// name is free again.
    pub async fn stop(self) {
        let actor = match self {
            Self::Actor(a) => a,
            Self::Services(_, run_id) => {
                let name = service_name(&run_id, ServiceKind::Budget);
                match ActorRef::<BudgetMsg>::where_is(name) {
                    Some(a) => a,
                    None => return,
                }
            }
            _ => return,
        };
        let _ = actor.stop_and_wait(None, None).await;
    }

    /// The `i`-th reserve + commit of `agent`, and the release of its attempt after the
    /// attempt's last turn.
    pub async fn reserve_commit(&self, agent: &str, i: u64) {
        let req = request(agent, i);
        let id = req.id.clone();
        let last_of_attempt = i % TURNS_PER_ATTEMPT == TURNS_PER_ATTEMPT - 1;
        match self {
            Self::StdMutex(m) => {
                let mut ledger = m.lock().expect("not poisoned");
                ledger.reserve(&req).expect("registered");
                ledger.commit(&id, 800).expect("reserved");
                if last_of_attempt {
                    ledger.end_attempts(agent, id.attempt).expect("known");
                }
            }
            Self::TokioMutex(m) => {
                let mut ledger = m.lock().await;
                ledger.reserve(&req).expect("registered");
                ledger.commit(&id, 800).expect("reserved");
                if last_of_attempt {
                    ledger.end_attempts(agent, id.attempt).expect("known");
                }
            }
            Self::Actor(a) => {
                call_t!(a, BudgetMsg::Reserve, 5_000, req)
                    .expect("reply")
                    .expect("registered");
                let attempt = id.attempt;
                call_t!(a, BudgetMsg::Commit, 5_000, id, 800)
                    .expect("reply")
                    .expect("reserved");
                if last_of_attempt {
                    call_t!(a, BudgetMsg::EndAttempts, 5_000, agent.to_owned(), attempt)
                        .expect("reply")
                        .expect("known");
                }
            }
            Self::Services(s, _) => {
                s.reserve(req).await.expect("reserve");
                let attempt = id.attempt;
                s.commit(id, 800).await.expect("commit");
                if last_of_attempt {
                    s.end_attempts(agent, attempt)
                        .await
                        .expect("end the attempt");
                }
            }
        }
    }
}

/// What one [`contended`] run measured.
#[derive(Debug, Clone)]
pub struct Contended {
    /// Wall time of the whole run.
    pub wall: Duration,
    /// Reserve + commit pairs done (over all tasks).
    pub pairs: u64,
    /// Each pair's latency, if asked for (sorted).
    pub latencies: Vec<Duration>,
}

impl Contended {
    /// Reserve + commit pairs per second.
    pub fn pairs_per_sec(&self) -> f64 {
        self.pairs as f64 / self.wall.as_secs_f64()
    }

    /// The `q`-quantile of the latencies (0.5 = median).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i]
    }
}

/// `tasks` tokio tasks, each with its own account, each doing `pairs_per_task` reserve +
/// commit pairs on `ledgers` at once. Times each pair if `timed`.
pub async fn contended(
    ledgers: &Ledgers,
    tasks: usize,
    pairs_per_task: u64,
    timed: bool,
) -> Contended {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|k| {
            let ledgers = ledgers.clone();
            tokio::spawn(async move {
                let agent = agent_name(k);
                let mut latencies = Vec::new();
                for i in 0..pairs_per_task {
                    let t = timed.then(Instant::now);
                    ledgers.reserve_commit(&agent, i).await;
                    if let Some(t) = t {
                        latencies.push(t.elapsed());
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.expect("task"));
    }
    let wall = start.elapsed();
    latencies.sort_unstable();
    Contended {
        wall,
        pairs: tasks as u64 * pairs_per_task,
        latencies,
    }
}

/// A model with a fixed latency per turn: turns before the last ask for the `probe` tool,
/// the last one answers. Each turn reports 100 input and 20 output tokens.
pub struct LatencyModel {
    /// Slept inside the stream before the first event (zero: no sleep at all).
    pub latency: Duration,
    /// Turns per agent, the answer included.
    pub turns: u32,
}

impl Model for LatencyModel {
    fn name(&self) -> String {
        "bench".into()
    }

    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        let first = if request.turn + 1 < self.turns {
            ModelEvent::ToolCall(ToolCall {
                id: format!("call-{}", request.turn),
                name: "probe".into(),
                arguments: json!({ "path": "src/lib.rs" }),
            })
        } else {
            ModelEvent::TextDelta("done".into())
        };
        let usage = ModelEvent::Usage(Usage {
            input_tokens: 100,
            output_tokens: 20,
        });
        let events = stream::iter([Ok(first), Ok(usage)]);
        if self.latency.is_zero() {
            return events.boxed();
        }
        let latency = self.latency;
        stream::once(tokio::time::sleep(latency))
            .flat_map(move |()| events.clone())
            .boxed()
    }
}

/// A tool that plans one read of `path` (so the PolicyActor decides it) and touches
/// nothing.
pub struct Probe;

#[async_trait::async_trait]
impl Tool for Probe {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "probe".into(),
            description: "Plans a read of a path; reads nothing.".into(),
            parameters: json!({
                "type": "object",
                "properties": { "path": { "type": "string" } },
                "required": ["path"],
            }),
        }
    }

    fn plan(&self, arguments: &Value, _: &ToolContext) -> Result<Vec<Access>, ToolError> {
        let path = arguments["path"]
            .as_str()
            .ok_or_else(|| ToolError::new("`path` must be a string"))?;
        Ok(vec![Access::Read(path.to_owned())])
    }

    async fn invoke(
        &self,
        _: Value,
        _: &[Access],
        _: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text("ok"))
    }
}

/// A run of `agents` agents of `turns` turns each (each turn but the last calls `probe`),
/// with the model's `latency`, audited under `workspace`.
pub fn run_config(workspace: &Path, agents: usize, turns: u32, latency: Duration) -> RunConfig {
    let model: Arc<dyn Model> = Arc::new(LatencyModel { latency, turns });
    let tool: Arc<dyn Tool> = Arc::new(Probe);
    let plans = (0..agents)
        .map(|k| {
            let mut spec = AgentSpec::new(format!("agent-{k}"), "benchmark", 100_000_000);
            spec.max_turns = turns;
            spec.max_output_tokens = 256;
            spec.tools = vec!["probe".into()];
            spec.permissions.read = vec!["**".into()];
            AgentPlan {
                spec,
                model: Arc::clone(&model),
                tools: vec![Arc::clone(&tool)],
                unavailable: None,
            }
        })
        .collect();
    RunConfig::new(unique_run_id(), workspace, plans)
}

/// A run id no other run of this process has: many runs start within one second.
pub fn unique_run_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("bench-{}-{n}", std::process::id())
}

/// Runs `config` to its end; returns the report and the wall time from `start` to the
/// report. Panics unless every agent completed.
pub async fn run(config: RunConfig) -> (RunReport, Duration) {
    let started = Instant::now();
    let report = codex_actors::start(config)
        .await
        .expect("start")
        .wait()
        .await
        .expect("report");
    let wall = started.elapsed();
    assert!(report.all_completed(), "{report:?}");
    (report, wall)
}
