//! What a run is charged when model calls fail or are cut short, through the binary,
//! against a scripted HTTP model server that plays a provider billing what it served.
//!
//! The server keeps its own bill: for every request it accepts it counts the prompt (its
//! own count: a token per four bytes of the messages, as real tokenizers roughly do on
//! English) and the whole output cap it was given, as if it had generated every token it
//! was allowed before the stream broke. The property checked for every fault: the tokens
//! codex charged are at least what the server billed, and never more than the budget.

mod common;
#[path = "support/fake_server.rs"]
mod fake_server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{agent_report, agent_yaml, Workspace};
use fake_server::{script, FakeServer, Piece, Received, Reply};

const KEY: &str = "sk-accounting-test-key-0123456789";
const BUDGET: u64 = 20_000;

/// What the server bills for one request: its count of the prompt plus the output cap.
fn billed(req: &Received) -> u64 {
    let prompt = req.body["messages"].to_string().len() as u64 / 4;
    let cap = req.body["max_completion_tokens"]
        .as_u64()
        .or_else(|| req.body["max_tokens"].as_u64())
        .expect("every request carries an output cap");
    prompt + cap
}

/// How a served stream goes wrong after a few deltas.
#[derive(Clone, Copy)]
enum Fault {
    /// No more bytes: the idle timeout ends the call.
    Stall,
    /// Bytes that are not an event stream.
    Garbage,
    /// The connection is cut.
    Cut,
}

fn faulty_reply(fault: Fault) -> Reply {
    let mut events = script::chat(&["Working", " on", " it"], &[], None);
    events.truncate(4); // the role chunk and the three deltas; no finish, no usage
    let reply = Reply::sse(events);
    match fault {
        Fault::Stall => reply.then(Piece::Wait(Duration::from_secs(600))),
        Fault::Garbage => reply.then(Piece::Send("data: {not json at all\n\n".into())),
        Fault::Cut => reply.then(Piece::Abort),
    }
}

/// A server failing every call with `fault`, billing each request it accepted.
fn billing_server(fault: Fault) -> (FakeServer, Arc<AtomicU64>) {
    let bill = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&bill);
    let server = FakeServer::with(move |req, _| {
        counter.fetch_add(billed(req), Ordering::SeqCst);
        faulty_reply(fault)
    });
    (server, bill)
}

/// `codex delegate worker` against `server`, retrying nothing, with a 1 s stream idle timeout.
fn delegate(ws: &Workspace, server: &FakeServer) -> assert_cmd::Command {
    let mut cmd = ws.codex();
    cmd.args(["delegate", "worker", "--goal", "work", "-o"])
        .arg(ws.results_path())
        .env_remove("OPENAI_BASE_URL")
        .env("OPENAI_API_KEY", KEY)
        .args(["--provider", "openai-chat", "--model", "gpt-test"])
        .args(["-c", "providers.openai-chat.stream_idle_timeout_secs=1"])
        .args(["-c", "providers.openai-chat.max_retries=0"])
        .args([
            "-c",
            &format!("providers.openai-chat.base_url={}/v1", server.url),
        ]);
    cmd
}

fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.agent("worker", &agent_yaml("worker", "false", BUDGET));
    ws
}

/// Runs `worker` against a server failing with `fault`; returns what codex charged and
/// what the server billed.
fn charged_and_billed(fault: Fault) -> (u64, u64) {
    let ws = workspace();
    let (server, bill) = billing_server(fault);
    delegate(&ws, &server).assert().code(1);
    let report = agent_report(&ws.results(), "worker").clone();
    assert_ne!(report["status"], "completed", "{report:#}");
    let charged = report["tokens_used"].as_u64().unwrap();
    (charged, bill.load(Ordering::SeqCst))
}

fn assert_covers_the_bill(fault: &str, (charged, billed): (u64, u64)) {
    assert!(billed > 0, "{fault}: the server billed nothing");
    assert!(
        charged >= billed,
        "{fault}: codex charged {charged} tokens but the server billed {billed}"
    );
    assert!(
        charged <= BUDGET,
        "{fault}: charged {charged} over the budget"
    );
}

#[test]
fn a_stalled_stream_is_charged_at_least_what_the_provider_billed() {
    assert_covers_the_bill("stall", charged_and_billed(Fault::Stall));
}

#[test]
fn a_malformed_stream_is_charged_at_least_what_the_provider_billed() {
    assert_covers_the_bill("garbage", charged_and_billed(Fault::Garbage));
}

#[test]
fn a_cut_stream_is_charged_at_least_what_the_provider_billed() {
    assert_covers_the_bill("cut", charged_and_billed(Fault::Cut));
}

#[test]
fn a_refused_call_is_charged_nothing() {
    let ws = workspace();
    let server =
        FakeServer::with(|_, _| Reply::status(500, r#"{"error":{"message":"backend is down"}}"#));
    delegate(&ws, &server).assert().code(1);
    let report = agent_report(&ws.results(), "worker").clone();
    assert_eq!(report["tokens_used"], 0, "{report:#}");
}

#[test]
fn calls_cut_short_by_ctrl_c_are_charged_at_least_what_the_provider_billed() {
    let ws = workspace();
    ws.agent("helper", &agent_yaml("helper", "false", BUDGET));
    let (server, bill) = billing_server(Fault::Stall);
    let mut cmd = ws.codex_std();
    cmd.args(["delegate-parallel", "worker,helper", "--goal", "work", "-o"])
        .arg(ws.results_path())
        .env_remove("OPENAI_BASE_URL")
        .env("OPENAI_API_KEY", KEY)
        .args(["--provider", "openai-chat", "--model", "gpt-test"])
        // Long enough that only Ctrl-C ends these calls.
        .args(["-c", "providers.openai-chat.stream_idle_timeout_secs=300"])
        .args([
            "-c",
            &format!("providers.openai-chat.base_url={}/v1", server.url),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("codex starts");
    // Wait for the event: both agents' calls are in flight at the server.
    let waited = Instant::now();
    while server.received().len() < 2 {
        if waited.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the agents never called the server");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    common::send_signal("INT", child.id());
    let status = child.wait().expect("codex ends");
    assert_eq!(status.code(), Some(1));
    let results = ws.results();
    let charged: u64 = ["worker", "helper"]
        .iter()
        .map(|a| agent_report(&results, a)["tokens_used"].as_u64().unwrap())
        .sum();
    let billed = bill.load(Ordering::SeqCst);
    assert!(billed > 0);
    assert!(
        charged >= billed,
        "Ctrl-C: codex charged {charged} tokens but the server billed {billed}"
    );
    assert!(charged <= 2 * BUDGET);
    let log = ws.audit();
    let in_flight = common::of_type(&log, "budget_decision")
        .into_iter()
        .filter(|r| r["op"] == "charge_in_flight")
        .count();
    assert_eq!(
        in_flight, 2,
        "each abandoned call is charged in the audit log"
    );
}
