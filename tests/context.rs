//! Context management through the binary, against a scripted HTTP model server: an agent
//! whose definition sets no context cap keeps its requests under its provider's
//! `context_window`, compacting with one more model call when it must.

mod common;
#[path = "support/fake_server.rs"]
mod fake_server;

use common::{agent_report, of_type, Workspace};
use fake_server::{script, FakeServer, Received, Reply};
use serde_json::json;

const KEY: &str = "sk-context-test-key-0123456789";
const WINDOW: usize = 4_096;
const TURNS: usize = 12;

/// The bytes of the messages a request carries.
fn message_bytes(req: &Received) -> usize {
    req.body["messages"].to_string().len()
}

fn is_compaction(req: &Received) -> bool {
    req.body["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.starts_with("You are compacting"))
}

/// Each turn reads `big.txt` (about 2,000 tokens) again, then answers after `TURNS`.
fn turns(req: &Received, _: usize) -> Reply {
    if is_compaction(req) {
        return Reply::sse(script::chat(
            &["Note: read big.txt several times."],
            &[],
            Some((300, 20)),
        ));
    }
    let done = req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .count();
    // Tool results kept after a compaction undercount the turns: count what was asked.
    let asked = req.body["messages"].to_string().matches("\"turn ").count();
    let events = if done.max(asked) >= TURNS {
        script::chat(&["All read."], &[], Some((500, 5)))
    } else {
        let args = json!({"path": "big.txt"}).to_string();
        let text = format!("turn {}", done.max(asked));
        script::chat(&[&text], &[("c", "read_file", &[&args])], Some((500, 10)))
    };
    Reply::sse(events)
}

#[test]
fn requests_stay_under_the_providers_context_window_with_compactions_audited() {
    let ws = Workspace::new();
    ws.file("big.txt", &"lorem ipsum dolor sit amet ".repeat(300));
    ws.agent(
        "reader",
        "name: reader\ngoal: Read big.txt\ninstructions: Read it.\ntools:\n  fs: { read: true }\n\
         budget: 500000\nmax_turns: 40\nmax_output_tokens: 200\n",
    );
    let server = FakeServer::with(turns);
    ws.codex()
        .args(["delegate", "reader", "--goal", "Read big.txt", "-o"])
        .arg(ws.results_path())
        .env_remove("OPENAI_BASE_URL")
        .env("OPENAI_API_KEY", KEY)
        .args(["--provider", "openai-chat", "--model", "local-model"])
        .args([
            "-c",
            &format!("providers.openai-chat.base_url={}/v1", server.url),
        ])
        .args([
            "-c",
            &format!("providers.openai-chat.context_window={WINDOW}"),
        ])
        .assert()
        .success();
    let report = agent_report(&ws.results(), "reader").clone();
    assert_eq!(report["final_message"], "All read.", "{report:#}");
    let received = server.received();
    // Without a cap, the 12th request would carry 12 copies of the file (~100 KB).
    let largest = received.iter().map(message_bytes).max().unwrap();
    assert!(
        largest < WINDOW * 4,
        "a request carried {largest} bytes of messages, over a {WINDOW}-token window"
    );
    let compactions = received.iter().filter(|r| is_compaction(r)).count();
    let log = ws.audit();
    let records = of_type(&log, "context_compacted");
    assert!(!records.is_empty(), "the conversation outgrew the window");
    assert!(records.len() >= compactions);
    assert!(records
        .iter()
        .all(|r| r["prompt_tokens"].as_u64() <= r["cap"].as_u64()));
    // Each compaction call is a model call, budgeted and audited like any other.
    assert_eq!(of_type(&log, "model_call").len(), received.len());
}
