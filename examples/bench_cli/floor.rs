//! The floor: a minimal Rust client making the same HTTP exchanges as the agents (N
//! conversations of T streamed calls each, a request body of the size codex sends), with no
//! engine at all. codex's wall time is compared with it.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

/// Runs `agents` conversations of `turns` calls against `url`; returns the wall time.
pub async fn run(url: &str, agents: usize, turns: u64) -> Duration {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..agents)
        .map(|_| {
            let client = client.clone();
            let url = format!("{url}/chat/completions");
            tokio::spawn(async move {
                let mut messages = vec![json!({"role": "user", "content": "x".repeat(3_000)})];
                for turn in 0..turns {
                    let body = json!({"model": "bench", "stream": true, "messages": messages});
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .send()
                        .await
                        .expect("post");
                    let mut stream = response.bytes_stream();
                    while let Some(piece) = stream.next().await {
                        piece.expect("body");
                    }
                    messages.push(json!({"role": "assistant", "content": format!("turn {turn}")}));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a floor task");
    }
    started.elapsed()
}
