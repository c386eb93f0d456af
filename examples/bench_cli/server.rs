//! A fast scripted model server: Chat Completions over SSE, a fixed latency per call, as
//! many concurrent calls as the machine takes. Turn `t` of a conversation (the number of
//! assistant messages it already has) asks for `read_file` while `t < turns - 1`, then
//! answers. It notes when the first request came and when the last answer ended.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

/// What the server saw, in microseconds since it started (0: not yet).
#[derive(Default)]
pub struct Seen {
    pub requests: AtomicU64,
    pub first_request_us: AtomicU64,
    pub last_answer_us: AtomicU64,
}

struct Shared {
    latency: Duration,
    turns: u64,
    started: Instant,
    seen: Arc<Seen>,
}

/// A running server.
pub struct ModelServer {
    pub url: String,
    pub started: Instant,
    pub seen: Arc<Seen>,
}

impl ModelServer {
    /// Starts a server on 127.0.0.1 with its own 2-thread runtime.
    pub fn start(latency: Duration, turns: u64) -> Self {
        let seen = Arc::new(Seen::default());
        let started = Instant::now();
        let shared = Arc::new(Shared {
            latency,
            turns,
            started,
            seen: Arc::clone(&seen),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                    .await
                    .unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new()
                    .route("/v1/chat/completions", axum::routing::post(answer))
                    .with_state(shared);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().expect("the server starts");
        Self {
            url: format!("http://{addr}/v1"),
            started,
            seen,
        }
    }

    /// Forgets what it saw (before the next measured run).
    pub fn reset(&self) {
        self.seen.requests.store(0, Ordering::SeqCst);
        self.seen.first_request_us.store(0, Ordering::SeqCst);
        self.seen.last_answer_us.store(0, Ordering::SeqCst);
    }

    /// When the first request of the run came.
    pub fn first_request(&self) -> Option<Instant> {
        self.at(&self.seen.first_request_us)
    }

    /// When the last answer of the run ended.
    pub fn last_answer(&self) -> Option<Instant> {
        self.at(&self.seen.last_answer_us)
    }

    fn at(&self, us: &AtomicU64) -> Option<Instant> {
        match us.load(Ordering::SeqCst) {
            0 => None,
            n => Some(self.started + Duration::from_micros(n)),
        }
    }
}

fn since(started: Instant) -> u64 {
    started.elapsed().as_micros().max(1) as u64
}

async fn answer(State(s): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let _ = s.seen.first_request_us.compare_exchange(
        0,
        since(s.started),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    s.seen.requests.fetch_add(1, Ordering::SeqCst);
    let turn = body["messages"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count()) as u64;
    tokio::time::sleep(s.latency).await;
    let events = if turn + 1 < s.turns {
        let call = json!({"index": 0, "id": format!("call_{turn}"), "type": "function",
            "function": {"name": "read_file", "arguments": "{\"path\":\"src/lib.rs\"}"}});
        vec![
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"tool_calls": [call]}), None),
            chunk(json!({}), Some("tool_calls")),
        ]
    } else {
        vec![
            chunk(json!({"role": "assistant", "content": "done"}), None),
            chunk(json!({}), Some("stop")),
        ]
    };
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    let usage = json!({"choices": [], "usage": {"prompt_tokens": 900, "completion_tokens": 20, "total_tokens": 920}});
    text.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    s.seen
        .last_answer_us
        .fetch_max(since(s.started), Ordering::SeqCst);
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(text))
        .unwrap()
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "b", "object": "chat.completion.chunk", "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}
