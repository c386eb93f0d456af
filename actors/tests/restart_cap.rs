//! The restart cap on failures of one kind in a row, on a paused clock: a model server
//! that fails each attempt only after 20 s never reaches "3 restarts within 60 s", and
//! must still end the agent `failed`, with the server's last message, after
//! `max_consecutive_failures` attempts.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use codex_actors::model::ModelError;
use codex_actors::{start, AgentStatus, RunConfig};
use common::*;

#[tokio::test(start_paused = true)]
async fn slow_failures_of_the_model_end_the_agent_after_the_streak_cap() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    // Each attempt waits 20 s for the server, which then fails.
    let model = FnModel::arc(20_000, move |_| {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        Err(ModelError::Transient(format!(
            "litellm answered HTTP 500 (call {n}): Connection error"
        )))
    });
    let agent = plan("slow", 10_000, model);
    let cap = agent.spec.restart.max_consecutive_failures;
    assert_eq!(cap, 5);
    let mut config = RunConfig::new("streak", dir.path(), vec![agent]);
    config.service_wait = Duration::from_secs(30);
    let started = tokio::time::Instant::now();
    let run = start(config).await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(3600), run.wait())
        .await
        .expect("the agent gives up within an hour of failing attempts")
        .unwrap();
    let elapsed = started.elapsed();

    let a = &report.agents[0];
    assert_eq!(a.status, AgentStatus::Failed, "{a:#?}");
    assert_eq!(calls.load(Ordering::SeqCst), cap, "{a:#?}");
    assert_eq!(a.restarts, cap - 1);
    let error = a.error.as_deref().unwrap();
    assert!(
        error.contains("5 times in a row") && error.contains("(call 5): Connection error"),
        "{error}"
    );
    // Five attempts of 20 s each (and short backoffs): the restart window never filled.
    assert!(elapsed >= Duration::from_secs(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(130), "{elapsed:?}");
}
