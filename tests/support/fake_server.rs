//! A fake model server for tests: a real HTTP server (axum) on 127.0.0.1 that answers
//! each request with a scripted [`Reply`], streaming its body piece by piece with pauses,
//! and records what it was sent. It speaks whatever the script says, so one server serves
//! all three protocols; [`script`] builds their event sequences.
//!
//! It runs on its own thread and runtime, so synchronous tests (driving the binary) and
//! async ones use it alike, and it stops by itself: when dropped, or after
//! [`MAX_LIFETIME`] in any case. Shared by the unit tests (`providers::tests`,
//! `providers::conformance`) and the integration tests that include it by path
//! (`tests/providers.rs`, `tests/context.rs`, `tests/accounting.rs`). It lives under
//! `tests/support/`, out of the production tree, and is never part of the binary.

#![allow(dead_code)] // each user takes a subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures::stream::{self, StreamExt};

/// The longest a fake server lives.
pub const MAX_LIFETIME: Duration = Duration::from_secs(120);

/// One piece of a reply body.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Send this text.
    Send(String),
    /// Send these bytes (a piece may end inside a UTF-8 sequence).
    Bytes(Vec<u8>),
    /// Pause.
    Wait(Duration),
    /// Break the connection (no clean end of the body).
    Abort,
    /// Wait until the gate is opened (by the test, at the moment it chooses).
    Until(Gate),
}

/// A gate a reply waits at ([`Piece::Until`]) until the test opens it.
#[derive(Debug, Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Gate {
    /// Lets every reply waiting at it (and every later one) go on.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn passed(&self) {
        let _ = self.0.subscribe().wait_for(|open| *open).await;
    }
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body, piece by piece.
    pub body: Vec<Piece>,
}

impl Reply {
    /// A 200 event stream: each event sent on its own, 5 ms apart.
    pub fn sse(events: Vec<String>) -> Self {
        let mut body = Vec::new();
        for e in events {
            body.push(Piece::Send(e));
            body.push(Piece::Wait(Duration::from_millis(5)));
        }
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body,
        }
    }

    /// A plain reply with a status and a body.
    pub fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: vec![Piece::Send(body.to_owned())],
        }
    }

    /// The same reply with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same reply, then a pause of `d` before the body ends.
    pub fn then(mut self, piece: Piece) -> Self {
        self.body.push(piece);
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path posted to.
    pub path: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`null` if it was not JSON).
    pub body: serde_json::Value,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Responder = dyn Fn(&Received, usize) -> Reply + Send + Sync;

struct Shared {
    responder: Box<Responder>,
    received: Mutex<Vec<Received>>,
}

/// A running fake server; see the module docs.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl FakeServer {
    /// A server answering the `n`-th request (from 0) with `replies[n]`, and 500 past the end.
    pub fn scripted(replies: Vec<Reply>) -> Self {
        Self::with(move |_, n| {
            replies.get(n).cloned().unwrap_or_else(|| {
                Reply::status(500, r#"{"error":{"message":"script exhausted"}}"#)
            })
        })
    }

    /// A server answering with `responder(request, index)`.
    pub fn with(responder: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            responder: Box::new(responder),
            received: Mutex::new(Vec::new()),
        });
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || serve(state, url_tx, stop_rx));
        let url = url_rx.recv().expect("the fake server starts");
        Self {
            url,
            shared,
            stop: Some(stop_tx),
        }
    }

    /// What the server received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.take();
    }
}

fn serve(
    shared: Arc<Shared>,
    url_tx: std::sync::mpsc::Sender<String>,
    stop: std::sync::mpsc::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the fake server");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _ = url_tx.send(format!("http://{addr}"));
        let app = axum::Router::new().fallback(answer).with_state(shared);
        let stopped = tokio::task::spawn_blocking(move || {
            let _ = stop.recv_timeout(MAX_LIFETIME);
        });
        tokio::select! {
            _ = axum::serve(listener, app) => {}
            _ = stopped => {}
        }
    });
    // Dropping the runtime cancels every connection still open (stalled streams too).
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let bytes = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let received = Received {
        path,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    };
    let index = {
        let mut all = shared.received.lock().unwrap();
        all.push(received.clone());
        all.len() - 1
    };
    let reply = (shared.responder)(&received, index);
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k, v);
    }
    builder.body(body(reply.body)).unwrap()
}

fn body(pieces: Vec<Piece>) -> Body {
    let stream = stream::unfold(pieces.into_iter(), |mut rest| async move {
        loop {
            match rest.next()? {
                Piece::Wait(d) => tokio::time::sleep(d).await,
                Piece::Until(gate) => gate.passed().await,
                Piece::Send(text) => return Some((Ok(bytes::Bytes::from(text)), rest)),
                Piece::Bytes(b) => return Some((Ok(bytes::Bytes::from(b)), rest)),
                Piece::Abort => {
                    let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "abort");
                    return Some((Err(e), rest));
                }
            }
        }
    });
    Body::from_stream(stream.boxed())
}

/// Event sequences of the three protocols.
pub mod script {
    use serde_json::json;

    /// `data: <json>` as one event.
    pub fn data(value: serde_json::Value) -> String {
        format!("data: {value}\n\n")
    }

    /// `event: <name>` with `data: <json>`.
    pub fn named(name: &str, value: serde_json::Value) -> String {
        format!("event: {name}\ndata: {value}\n\n")
    }

    /// A tool call to script: id, name, and its argument text in pieces.
    pub type Call<'a> = (&'a str, &'a str, &'a [&'a str]);

    /// The pieces of every call, interleaved: (call index, piece).
    fn interleaved<'a>(calls: &[Call<'a>]) -> Vec<(usize, &'a str)> {
        let longest = calls.iter().map(|c| c.2.len()).max().unwrap_or(0);
        let mut out = Vec::new();
        for round in 0..longest {
            for (i, c) in calls.iter().enumerate() {
                if let Some(p) = c.2.get(round) {
                    out.push((i, *p));
                }
            }
        }
        out
    }

    /// A Chat Completions stream.
    pub fn chat(text: &[&str], calls: &[Call], usage: Option<(u64, u64)>) -> Vec<String> {
        let mut out = vec![data(
            json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}),
        )];
        for t in text {
            out.push(data(json!({"choices":[{"index":0,"delta":{"content":t},"finish_reason":null}],"usage":null})));
        }
        for (i, (id, name, _)) in calls.iter().enumerate() {
            out.push(data(json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":i,"id":id,"type":"function","function":{"name":name,"arguments":""}}]}}]})));
        }
        for (i, piece) in interleaved(calls) {
            out.push(data(json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":i,"function":{"arguments":piece}}]}}]})));
        }
        let reason = if calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        };
        out.push(data(
            json!({"choices":[{"index":0,"delta":{},"finish_reason":reason}]}),
        ));
        if let Some((i, o)) = usage {
            out.push(data(json!({"choices":[],"usage":{"prompt_tokens":i,"completion_tokens":o,"total_tokens":i+o}})));
        }
        out.push("data: [DONE]\n\n".to_owned());
        out
    }

    /// An OpenAI Responses stream.
    pub fn responses(text: &[&str], calls: &[Call], usage: Option<(u64, u64)>) -> Vec<String> {
        let ev = |v: serde_json::Value| named(v["type"].as_str().unwrap(), v.clone());
        let mut out = vec![ev(
            json!({"type":"response.created","response":{"id":"r1","status":"in_progress"}}),
        )];
        for t in text {
            out.push(ev(json!({"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":t})));
        }
        for (i, (id, name, _)) in calls.iter().enumerate() {
            out.push(ev(json!({"type":"response.output_item.added","output_index":i+1,"item":{"type":"function_call","id":format!("fc_{i}"),"call_id":id,"name":name,"arguments":""}})));
        }
        for (i, piece) in interleaved(calls) {
            out.push(ev(json!({"type":"response.function_call_arguments.delta","output_index":i+1,"item_id":format!("fc_{i}"),"delta":piece})));
        }
        for (i, (id, name, pieces)) in calls.iter().enumerate() {
            out.push(ev(json!({"type":"response.output_item.done","output_index":i+1,"item":{"type":"function_call","call_id":id,"name":name,"arguments":pieces.concat()}})));
        }
        let usage =
            usage.map(|(i, o)| json!({"input_tokens":i,"output_tokens":o,"total_tokens":i+o}));
        out.push(ev(json!({"type":"response.completed","response":{"id":"r1","status":"completed","usage":usage}})));
        out
    }

    /// An Anthropic Messages stream.
    pub fn anthropic(text: &[&str], calls: &[Call], usage: Option<(u64, u64)>) -> Vec<String> {
        let ev = |v: serde_json::Value| named(v["type"].as_str().unwrap(), v.clone());
        let (input, output) = usage.unwrap_or((0, 0));
        let mut out = vec![ev(
            json!({"type":"message_start","message":{"id":"m1","role":"assistant","content":[],"usage":{"input_tokens":input,"output_tokens":1}}}),
        )];
        out.push(ev(json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})));
        for t in text {
            out.push(ev(json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":t}})));
        }
        out.push(ev(json!({"type":"content_block_stop","index":0})));
        out.push("event: ping\ndata: {\"type\":\"ping\"}\n\n".to_owned());
        for (i, (id, name, _)) in calls.iter().enumerate() {
            out.push(ev(json!({"type":"content_block_start","index":i+1,"content_block":{"type":"tool_use","id":id,"name":name,"input":{}}})));
        }
        for (i, piece) in interleaved(calls) {
            out.push(ev(json!({"type":"content_block_delta","index":i+1,"delta":{"type":"input_json_delta","partial_json":piece}})));
        }
        for i in 0..calls.len() {
            out.push(ev(json!({"type":"content_block_stop","index":i+1})));
        }
        out.push(ev(json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":output}})));
        out.push(ev(json!({"type":"message_stop"})));
        out
    }
}
