//! The HTTP providers against the fake server, every scenario for all three protocols:
//! streamed text, tool calls split across chunks, parallel calls, usage, 429 with
//! Retry-After, 500 then success, a stall past the idle timeout, malformed JSON, a stream
//! cut off, and the statuses that are fatal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use codex_actors::model::{
    collect_response, ChatMessage, Model, ModelError, ModelRequest, ModelResponse, Role, ToolCall,
    ToolSpec, Usage,
};
use serde_json::json;

use super::fake_server::{script, FakeServer, Piece, Reply};
use super::http::{HttpSettings, Target};
use super::http_model::{HttpModel, HttpProvider};
use super::protocol::WireApi;
use super::select::headers;

const KEY: &str = "sk-test-very-secret-key-123";
const WIRES: [WireApi; 3] = [WireApi::Chat, WireApi::Responses, WireApi::Anthropic];

fn model(server: &FakeServer, wire: WireApi) -> HttpModel {
    let base = match wire {
        WireApi::Anthropic => server.url.clone(),
        _ => format!("{}/v1", server.url),
    };
    let target = Target {
        provider: "fake".into(),
        url: wire.url(&base),
        headers: headers("fake", wire, Some(KEY), &Default::default()).unwrap(),
        key: Some(KEY.into()),
        key_env: Some("FAKE_API_KEY".into()),
    };
    let settings = HttpSettings {
        max_retries: 2,
        request_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_millis(400),
        first_byte_timeout: Duration::from_secs(10),
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    };
    let provider = HttpProvider::new(wire, target, settings, None).unwrap();
    HttpModel::new(Arc::new(provider), "test-model")
}

fn request() -> ModelRequest {
    let call = ToolCall {
        id: "call_0".into(),
        name: "read_file".into(),
        arguments: json!({"path": "src/lib.rs"}),
    };
    ModelRequest {
        agent: "a".into(),
        attempt: 1,
        turn: 1,
        model: None,
        messages: vec![
            ChatMessage::text(Role::System, "Be brief."),
            ChatMessage::text(Role::User, "Read src/lib.rs"),
            ChatMessage {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![call],
                tool_call_id: None,
            },
            ChatMessage::tool_result("call_0", "pub fn answer() {}"),
        ],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Reads a file.".into(),
            parameters: json!({"type":"object","properties":{"path":{"type":"string"}}}),
        }]
        .into(),
        max_output_tokens: 321,
        purpose: Default::default(),
    }
}

fn events(
    wire: WireApi,
    text: &[&str],
    calls: &[script::Call],
    usage: Option<(u64, u64)>,
) -> Vec<String> {
    match wire {
        WireApi::Chat => script::chat(text, calls, usage),
        WireApi::Responses => script::responses(text, calls, usage),
        WireApi::Anthropic => script::anthropic(text, calls, usage),
    }
}

/// Calls the model; a hang fails the test instead of blocking it.
async fn call(model: &HttpModel) -> Result<ModelResponse, ModelError> {
    let stream = model.stream(request());
    tokio::time::timeout(Duration::from_secs(30), collect_response(stream))
        .await
        .expect("the call ends (no hang)")
}

fn hello(wire: WireApi) -> Reply {
    Reply::sse(events(wire, &["Hel", "lo"], &[], Some((10, 5))))
}

#[tokio::test]
async fn text_streams_and_usage_is_reported() {
    for wire in WIRES {
        let server = FakeServer::scripted(vec![hello(wire)]);
        let r = call(&model(&server, wire)).await.unwrap();
        assert_eq!(r.text, "Hello", "{wire:?}");
        assert!(r.tool_calls.is_empty(), "{wire:?}");
        let usage = Usage {
            input_tokens: 10,
            output_tokens: 5,
        };
        assert_eq!(r.usage, Some(usage), "{wire:?}");
    }
}

#[tokio::test]
async fn parallel_tool_calls_split_across_chunks_are_assembled() {
    let calls: [script::Call; 2] = [
        ("call_a", "read_file", &["{\"pa", "th\": \"a", ".rs\"}"]),
        ("call_b", "list_dir", &["{\"path\"", ": \"src\"}"]),
    ];
    for wire in WIRES {
        let server = FakeServer::scripted(vec![Reply::sse(events(
            wire,
            &["Looking."],
            &calls,
            Some((7, 3)),
        ))]);
        let r = call(&model(&server, wire)).await.unwrap();
        let got: Vec<(&str, &str, serde_json::Value)> = r
            .tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("call_a", "read_file", json!({"path": "a.rs"})),
                ("call_b", "list_dir", json!({"path": "src"})),
            ],
            "{wire:?}"
        );
        assert_eq!(r.text, "Looking.", "{wire:?}");
    }
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    for wire in WIRES {
        let limited =
            Reply::status(429, r#"{"error":{"message":"slow down"}}"#).header("retry-after", "0.3");
        let server = FakeServer::scripted(vec![limited, hello(wire)]);
        let started = Instant::now();
        let r = call(&model(&server, wire)).await.unwrap();
        assert_eq!(r.text, "Hello", "{wire:?}");
        assert_eq!(server.received().len(), 2, "{wire:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{wire:?}: Retry-After honoured"
        );
    }
}

#[tokio::test]
async fn a_500_is_retried_and_exhausted_retries_are_transient() {
    for wire in WIRES {
        let server = FakeServer::scripted(vec![Reply::status(500, "oops"), hello(wire)]);
        assert_eq!(
            call(&model(&server, wire)).await.unwrap().text,
            "Hello",
            "{wire:?}"
        );
        let always = FakeServer::scripted(vec![Reply::status(503, "down"); 5]);
        let e = call(&model(&always, wire)).await.unwrap_err();
        assert!(
            matches!(&e, ModelError::Transient(m) if m.contains("gave up after 2 retries")),
            "{wire:?}: {e}"
        );
        assert_eq!(
            always.received().len(),
            3,
            "{wire:?}: one try and two retries"
        );
    }
}

#[tokio::test]
async fn a_stall_past_the_idle_timeout_fails_the_call() {
    for wire in WIRES {
        let mut first = events(wire, &["Hel"], &[], None);
        first.truncate(2);
        let stalled = Reply::sse(first).then(Piece::Wait(Duration::from_secs(60)));
        let server = FakeServer::scripted(vec![stalled]);
        let e = call(&model(&server, wire)).await.unwrap_err();
        assert!(
            matches!(&e, ModelError::Transient(m) if m.contains("idle timeout")),
            "{wire:?}: {e}"
        );
        assert_eq!(
            server.received().len(),
            1,
            "{wire:?}: no retry once the stream started"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_an_error() {
    for wire in WIRES {
        let mut evs = events(wire, &["Hel", "lo"], &[], Some((1, 1)));
        evs.insert(2, "data: {\"type\": oops\n\n".to_owned());
        let server = FakeServer::scripted(vec![Reply::sse(evs)]);
        let e = call(&model(&server, wire)).await.unwrap_err();
        assert!(
            matches!(&e, ModelError::Transient(m) if m.contains("malformed")),
            "{wire:?}: {e}"
        );
    }
}

#[tokio::test]
async fn a_stream_cut_off_is_an_error() {
    for wire in WIRES {
        let calls: [script::Call; 1] = [("call_a", "read_file", &["{\"path\"", ": \"a\"}"])];
        let mut evs = events(wire, &["Hel"], &calls, Some((1, 1)));
        evs.truncate(evs.len() - 3);
        let clean_end = FakeServer::scripted(vec![Reply::sse(evs.clone())]);
        let e = call(&model(&clean_end, wire)).await.unwrap_err();
        assert!(
            matches!(&e, ModelError::Transient(m) if m.contains("cut off")),
            "{wire:?}: {e}"
        );
        let aborted = FakeServer::scripted(vec![Reply::sse(evs).then(Piece::Abort)]);
        let e = call(&model(&aborted, wire)).await.unwrap_err();
        assert!(matches!(e, ModelError::Transient(_)), "{wire:?}: {e}");
    }
}

#[tokio::test]
async fn auth_and_invalid_requests_are_fatal_at_once_without_the_key() {
    for wire in WIRES {
        let body = format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#);
        let server = FakeServer::scripted(vec![Reply::status(401, &body)]);
        let e = call(&model(&server, wire)).await.unwrap_err();
        let ModelError::Fatal(m) = &e else {
            panic!("{wire:?}: {e}")
        };
        assert!(
            m.contains("FAKE_API_KEY") && !m.contains(KEY),
            "{wire:?}: {m}"
        );
        assert_eq!(server.received().len(), 1, "{wire:?}: not retried");

        let overflow = r#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#;
        let server = FakeServer::scripted(vec![Reply::status(400, overflow)]);
        let e = call(&model(&server, wire)).await.unwrap_err();
        assert!(
            matches!(&e, ModelError::Fatal(m) if m.contains("context window")),
            "{wire:?}: {e}"
        );

        let server = FakeServer::scripted(vec![Reply::status(
            404,
            r#"{"error":{"message":"model not found"}}"#,
        )]);
        let e = call(&model(&server, wire)).await.unwrap_err();
        assert!(
            matches!(&e, ModelError::Fatal(m) if m.contains("`test-model`")),
            "{wire:?}: {e}"
        );
    }
}

#[tokio::test]
async fn requests_carry_the_conversation_tools_cap_and_auth() {
    for wire in WIRES {
        let server = FakeServer::scripted(vec![hello(wire)]);
        call(&model(&server, wire)).await.unwrap();
        let got = &server.received()[0];
        let b = &got.body;
        assert_eq!(b["model"], "test-model");
        assert_eq!(b["stream"], true);
        match wire {
            WireApi::Chat => {
                assert_eq!(got.path, "/v1/chat/completions");
                assert_eq!(got.header("authorization"), Some(&*format!("Bearer {KEY}")));
                assert_eq!(b["max_tokens"], 321);
                assert_eq!(b["stream_options"]["include_usage"], true);
                assert_eq!(b["messages"][0]["role"], "system");
                assert_eq!(
                    b["messages"][2]["tool_calls"][0]["function"]["arguments"],
                    "{\"path\":\"src/lib.rs\"}"
                );
                assert_eq!(
                    b["messages"][3],
                    json!({"role":"tool","content":"pub fn answer() {}","tool_call_id":"call_0"})
                );
                assert_eq!(b["tools"][0]["function"]["name"], "read_file");
            }
            WireApi::Responses => {
                assert_eq!(got.path, "/v1/responses");
                assert_eq!(b["max_output_tokens"], 321);
                assert_eq!(b["input"][2]["type"], "function_call");
                assert_eq!(b["input"][2]["call_id"], "call_0");
                assert_eq!(
                    b["input"][3],
                    json!({"type":"function_call_output","call_id":"call_0","output":"pub fn answer() {}"})
                );
                assert_eq!(b["tools"][0]["type"], "function");
            }
            WireApi::Anthropic => {
                assert_eq!(got.path, "/v1/messages");
                assert_eq!(got.header("x-api-key"), Some(KEY));
                assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(b["max_tokens"], 321);
                assert_eq!(b["system"], "Be brief.");
                assert_eq!(b["messages"][1]["content"][0]["type"], "tool_use");
                assert_eq!(b["messages"][2]["content"][0]["tool_use_id"], "call_0");
                assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
            }
        }
    }
}

#[tokio::test]
async fn servers_that_omit_done_usage_and_finish_reason_details_still_work() {
    // Chat servers vary: no [DONE] after a finish_reason, no usage, empty finish_reason.
    let evs = vec![
        script::data(
            json!({"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":""}],"extra":1}),
        ),
        script::data(json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})),
    ];
    let server = FakeServer::scripted(vec![Reply::sse(evs)]);
    let r = call(&model(&server, WireApi::Chat)).await.unwrap();
    assert_eq!((r.text.as_str(), r.usage), ("hi", None));
}
