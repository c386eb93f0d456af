//! Remote attempts in the engine, without a network: a test [`RemoteHost`] hands each
//! placed attempt to the test, which plays the worker by sending the messages a worker
//! sends ([`Inbound::Said`]) and reading the answers. What is checked here is the run's
//! side: a repeated message is answered once and applied once, a remote attempt can act
//! only for itself, only its claiming worker is heard, a silent claimed attempt is lost and
//! restarted, and what a worker reports ends the agent as it would in-process.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use codex_actors::audit::{AgentExecutionEvent, AuditEvent};
use codex_actors::budget::{ReservationId, ReserveOutcome, ReserveRequest};
use codex_actors::protocol::{
    AgentOutcome, AttemptAnswer, AttemptOrder, AttemptSays, Inbound, Placed, RemoteHost,
    ServiceReply, ServiceRequest,
};
use codex_actors::{AgentStatus, RunConfig, Usage};
use common::{audit, of_type, plan, FnModel};
use tokio::sync::{mpsc, oneshot};

/// Hands every placed attempt to the test.
struct TestHost {
    placed: mpsc::UnboundedSender<(AttemptOrder, mpsc::Sender<Inbound>)>,
    silence: Duration,
}

#[async_trait::async_trait]
impl RemoteHost for TestHost {
    async fn place(&self, order: AttemptOrder) -> Result<Placed, String> {
        let (tx, inbound) = mpsc::channel(16);
        let _ = self.placed.send((order, tx));
        Ok(Placed {
            inbound,
            guard: Box::new(()),
        })
    }

    async fn deliver(&self, _: &str, _: &Path, _: &str) -> Result<(), String> {
        Ok(())
    }

    fn silence_limit(&self) -> Duration {
        self.silence
    }
}

type Placements = mpsc::UnboundedReceiver<(AttemptOrder, mpsc::Sender<Inbound>)>;

/// A run of one agent `a` (budget 1000) whose attempts are remote.
fn remote_run(dir: &tempfile::TempDir, run: &str, silence: Duration) -> (RunConfig, Placements) {
    let model = FnModel::arc(0, |_| panic!("a remote agent's model is never called here"));
    let mut config = RunConfig::new(run, dir.path(), vec![plan("a", 1000, model)]);
    config.service_wait = Duration::from_secs(5);
    let (placed, placements) = mpsc::unbounded_channel();
    config.remote = Some(Arc::new(TestHost { placed, silence }));
    (config, placements)
}

/// Says `says` as `worker` with number `seq`; the run's answer.
async fn say(
    to: &mpsc::Sender<Inbound>,
    worker: &str,
    seq: u64,
    says: AttemptSays,
) -> AttemptAnswer {
    let (reply, answer) = oneshot::channel();
    let inbound = Inbound::Said {
        worker: worker.into(),
        seq,
        says,
        reply,
    };
    to.send(inbound).await.expect("the attempt is open");
    answer.await.expect("an answer")
}

/// Claims the attempt as `worker`.
async fn claim(to: &mpsc::Sender<Inbound>, worker: &str) -> AttemptAnswer {
    let says = AttemptSays::Claim {
        worker: worker.into(),
    };
    say(to, worker, 1, says).await
}

fn reserve(agent: &str, attempt: u32, turn: u32) -> AttemptSays {
    AttemptSays::Service(ServiceRequest::Reserve(ReserveRequest {
        id: ReservationId {
            agent: agent.into(),
            attempt,
            turn,
        },
        prompt_tokens: 50,
        max_output_tokens: 100,
        min_output_tokens: 1,
    }))
}

/// The commit a worker's agent sends after a call: the usage and the call's record.
fn commit(attempt: u32, turn: u32, used: u64) -> AttemptSays {
    let id = ReservationId {
        agent: "a".into(),
        attempt,
        turn,
    };
    let call = AuditEvent::ModelCall {
        agent: "a".into(),
        attempt,
        turn: turn + 1,
        model: "remote".into(),
        granted: 150,
        max_output_tokens: 100,
        usage: Usage {
            input_tokens: 100,
            output_tokens: used - 100,
        },
        usage_estimated: false,
        tool_calls: 0,
        error: None,
        truncated: false,
    };
    AttemptSays::Service(ServiceRequest::CommitRecorded {
        id,
        used,
        call: Box::new(call),
    })
}

fn done(text: &str) -> AttemptSays {
    AttemptSays::Done {
        outcome: AgentOutcome::new(AgentStatus::Completed, Some(text.into()), None),
        change: None,
    }
}

#[tokio::test]
async fn a_repeated_commit_is_answered_once_and_charged_once() {
    let dir = tempfile::tempdir().unwrap();
    let (config, mut placements) = remote_run(&dir, "repeat", Duration::from_secs(60));
    let run = codex_actors::start(config).await.unwrap();
    let (order, to) = placements.recv().await.unwrap();
    assert_eq!((order.spec.name.as_str(), order.attempt), ("a", 1));
    assert_eq!(claim(&to, "w1").await, AttemptAnswer::Claimed);
    let granted = say(&to, "w1", 1, reserve("a", 1, 0)).await;
    assert!(
        matches!(
            granted,
            AttemptAnswer::Service(ServiceReply::Reserved(Ok(ReserveOutcome::Granted(_))))
        ),
        "{granted:?}"
    );
    let first = say(&to, "w1", 2, commit(1, 0, 120)).await;
    let again = say(&to, "w1", 2, commit(1, 0, 120)).await;
    assert!(
        matches!(
            first,
            AttemptAnswer::Service(ServiceReply::Committed(Ok(_)))
        ),
        "{first:?}"
    );
    assert_eq!(again, first, "a repeat gets the first answer");
    assert_eq!(
        say(&to, "w1", 3, done("finished")).await,
        AttemptAnswer::Noted
    );

    let report = run.wait().await.unwrap();
    let a = &report.agents[0];
    assert_eq!(a.status, AgentStatus::Completed);
    assert_eq!(a.final_message.as_deref(), Some("finished"));
    assert_eq!(a.tokens_used, 120, "charged once");
    let records = audit(dir.path(), "repeat");
    assert_eq!(of_type(&records, "attempt_placed").len(), 1);
    assert_eq!(
        of_type(&records, "model_call").len(),
        1,
        "the call recorded once"
    );
}

#[tokio::test]
async fn a_remote_attempt_may_act_only_for_itself_and_only_its_claimer_is_heard() {
    let dir = tempfile::tempdir().unwrap();
    let (config, mut placements) = remote_run(&dir, "fence", Duration::from_secs(60));
    let run = codex_actors::start(config).await.unwrap();
    let (_, to) = placements.recv().await.unwrap();
    let before_claim = say(&to, "w1", 1, reserve("a", 1, 0)).await;
    assert!(
        matches!(before_claim, AttemptAnswer::Refused(_)),
        "{before_claim:?}"
    );
    assert_eq!(claim(&to, "w1").await, AttemptAnswer::Claimed);
    let second_claim = claim(&to, "w2").await;
    assert!(
        matches!(second_claim, AttemptAnswer::Refused(ref why) if why.contains("claimed by worker w1")),
        "{second_claim:?}"
    );
    let from_w2 = say(&to, "w2", 2, reserve("a", 1, 0)).await;
    assert!(matches!(from_w2, AttemptAnswer::Refused(_)), "{from_w2:?}");
    let other_agent = say(&to, "w1", 2, reserve("b", 1, 0)).await;
    assert!(
        matches!(other_agent, AttemptAnswer::Refused(ref why) if why.contains("asked for b")),
        "{other_agent:?}"
    );
    let other_attempt = say(&to, "w1", 3, reserve("a", 7, 0)).await;
    assert!(
        matches!(other_attempt, AttemptAnswer::Refused(_)),
        "{other_attempt:?}"
    );
    let forged = AuditEvent::AgentStarted(AgentExecutionEvent::started("b", "x", 1, Utc::now(), 0));
    let record = say(
        &to,
        "w1",
        4,
        AttemptSays::Service(ServiceRequest::Record(forged)),
    )
    .await;
    assert!(
        matches!(record, AttemptAnswer::Refused(ref why) if why.contains("not about itself")),
        "{record:?}"
    );
    assert_eq!(say(&to, "w1", 5, done("ok")).await, AttemptAnswer::Noted);

    let report = run.wait().await.unwrap();
    assert_eq!(report.agents[0].tokens_used, 0);
    let records = audit(dir.path(), "fence");
    assert_eq!(of_type(&records, "remote_refused").len(), 6);
    assert!(
        records.iter().all(|r| r.event.agent() != Some("b")),
        "nothing about b was written"
    );
}

#[tokio::test]
async fn a_silent_claimed_attempt_is_lost_and_placed_again_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (config, mut placements) = remote_run(&dir, "lost", Duration::from_secs(2));
    let run = codex_actors::start(config).await.unwrap();
    let (_, first) = placements.recv().await.unwrap();
    assert_eq!(claim(&first, "w1").await, AttemptAnswer::Claimed);
    say(&first, "w1", 2, reserve("a", 1, 0)).await;
    // Then nothing from w1: the attempt is lost, its reservation charged, and placed again.
    let (order, second) = placements.recv().await.unwrap();
    assert_eq!(order.attempt, 2);
    assert_eq!(
        order.tokens_before, 150,
        "the lost call's whole reservation stays charged"
    );
    let late = first.send(Inbound::Alive).await;
    assert!(
        late.is_err(),
        "the lost attempt's channel is closed: its worker is not heard"
    );
    assert_eq!(claim(&second, "w2").await, AttemptAnswer::Claimed);
    assert_eq!(
        say(&second, "w2", 2, done("second time")).await,
        AttemptAnswer::Noted
    );

    let report = run.wait().await.unwrap();
    let a = &report.agents[0];
    assert_eq!(a.status, AgentStatus::Completed);
    assert_eq!(a.restarts, 1);
    assert_eq!(a.tokens_used, 150);
    let records = audit(dir.path(), "lost");
    let restarted = of_type(&records, "agent_restarted");
    let why = serde_json::to_value(&restarted[0].event).unwrap()["reason"].to_string();
    assert!(why.contains("lost: worker w1"), "{why}");
}

#[tokio::test]
async fn an_attempt_that_failed_on_its_worker_is_restarted_by_the_agents_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (config, mut placements) = remote_run(&dir, "failed", Duration::from_secs(60));
    let run = codex_actors::start(config).await.unwrap();
    let (_, first) = placements.recv().await.unwrap();
    claim(&first, "w1").await;
    let failed = AttemptSays::Failed {
        why: "its workspace could not be prepared".into(),
    };
    assert_eq!(say(&first, "w1", 2, failed).await, AttemptAnswer::Noted);
    let (order, second) = placements.recv().await.unwrap();
    assert_eq!(order.attempt, 2);
    claim(&second, "w1").await;
    say(&second, "w1", 2, done("fine")).await;
    let report = run.wait().await.unwrap();
    assert_eq!(report.agents[0].status, AgentStatus::Completed);
    assert_eq!(report.agents[0].restarts, 1);
}

#[tokio::test]
async fn a_batch_is_served_in_order_and_answered_item_by_item() {
    let dir = tempfile::tempdir().unwrap();
    let (config, mut placements) = remote_run(&dir, "batch", Duration::from_secs(60));
    let run = codex_actors::start(config).await.unwrap();
    let (_, to) = placements.recv().await.unwrap();
    claim(&to, "w1").await;
    let started =
        AuditEvent::AgentStarted(AgentExecutionEvent::started("a", "g", 1, Utc::now(), 0));
    let batch = AttemptSays::Batch(vec![
        AttemptSays::Service(ServiceRequest::Append(vec![started])),
        AttemptSays::Claim {
            worker: "w1".into(),
        },
        reserve("a", 1, 0),
    ]);
    let AttemptAnswer::Batch(answers) = say(&to, "w1", 2, batch).await else {
        panic!("a batch is answered with a batch");
    };
    assert_eq!(answers[0], AttemptAnswer::Service(ServiceReply::Done));
    assert!(
        matches!(answers[1], AttemptAnswer::Refused(_)),
        "no claim inside a batch"
    );
    assert!(
        matches!(
            answers[2],
            AttemptAnswer::Service(ServiceReply::Reserved(Ok(_)))
        ),
        "{:?}",
        answers[2]
    );
    say(&to, "w1", 3, commit(1, 0, 120)).await;
    say(&to, "w1", 4, done("ok")).await;
    assert_eq!(run.wait().await.unwrap().agents[0].tokens_used, 120);
    let records = audit(dir.path(), "batch");
    let kinds: Vec<&str> = records.iter().map(|r| r.event.kind()).collect();
    let started_at = kinds.iter().position(|k| *k == "agent_started").unwrap();
    let refused_at = kinds.iter().position(|k| *k == "remote_refused").unwrap();
    let reserved_at = kinds.iter().position(|k| *k == "model_call").unwrap();
    assert!(
        started_at < refused_at && refused_at < reserved_at,
        "in order: {kinds:?}"
    );
}
