//! A scripted model and a recording tool for driving the engine in tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use codex_actors::audit::{read_log, AuditRecord};
use codex_actors::model::{Model, ModelError, ModelEvent, ModelRequest, ToolCall, Usage};
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use codex_actors::{AgentPlan, AgentSpec, ToolSpec};
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use futures::FutureExt;
use tokio::sync::{mpsc, Semaphore};

type Script = dyn Fn(&ModelRequest) -> Result<Vec<ModelEvent>, ModelError> + Send + Sync;

/// A model whose every turn is computed by a closure, after an optional delay.
pub struct FnModel {
    pub script: Arc<Script>,
    pub delay: Duration,
}

impl FnModel {
    pub fn arc(
        delay_ms: u64,
        f: impl Fn(&ModelRequest) -> Result<Vec<ModelEvent>, ModelError> + Send + Sync + 'static,
    ) -> Arc<dyn Model> {
        Arc::new(Self {
            script: Arc::new(f),
            delay: Duration::from_millis(delay_ms),
        })
    }
}

impl Model for FnModel {
    fn name(&self) -> String {
        "fn-model".into()
    }

    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        let script = Arc::clone(&self.script);
        let delay = self.delay;
        stream::once(async move {
            tokio::time::sleep(delay).await;
            script(&request)
        })
        .flat_map(|r| match r {
            Ok(events) => stream::iter(events.into_iter().map(Ok)).boxed(),
            Err(e) => stream::iter([Err(e)]).boxed(),
        })
        .boxed()
    }
}

type Hook = dyn Fn(&ModelRequest) -> BoxFuture<'static, ()> + Send + Sync;

/// A model whose every turn first awaits `hook` (a gate the test opens, a barrier), then
/// answers with `script`: tests wait for events instead of sleeping.
pub struct HookedModel {
    pub hook: Arc<Hook>,
    pub script: Arc<Script>,
}

impl HookedModel {
    pub fn arc(
        hook: impl Fn(&ModelRequest) -> BoxFuture<'static, ()> + Send + Sync + 'static,
        f: impl Fn(&ModelRequest) -> Result<Vec<ModelEvent>, ModelError> + Send + Sync + 'static,
    ) -> Arc<dyn Model> {
        Arc::new(Self {
            hook: Arc::new(hook),
            script: Arc::new(f),
        })
    }

    /// A model whose turn `turn` (an index, from 0) waits for a permit of `gate` first.
    pub fn gated(
        gates: Vec<(u32, Arc<Semaphore>)>,
        f: impl Fn(&ModelRequest) -> Result<Vec<ModelEvent>, ModelError> + Send + Sync + 'static,
    ) -> Arc<dyn Model> {
        Self::arc(
            move |r| {
                let gate = gates
                    .iter()
                    .find(|(t, _)| *t == r.turn)
                    .map(|(_, g)| Arc::clone(g));
                async move {
                    if let Some(g) = gate {
                        g.acquire().await.expect("gate open").forget();
                    }
                }
                .boxed()
            },
            f,
        )
    }
}

impl Model for HookedModel {
    fn name(&self) -> String {
        "hooked-model".into()
    }

    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        let script = Arc::clone(&self.script);
        let wait = (self.hook)(&request);
        stream::once(async move {
            wait.await;
            script(&request)
        })
        .flat_map(|r| match r {
            Ok(events) => stream::iter(events.into_iter().map(Ok)).boxed(),
            Err(e) => stream::iter([Err(e)]).boxed(),
        })
        .boxed()
    }
}

/// Reads run events until `agents` distinct agents have started their model call of `turn`
/// (counted from 1, as events count turns).
pub async fn wait_for_turn(
    rx: &mut mpsc::UnboundedReceiver<codex_actors::RunEvent>,
    turn: u32,
    agents: usize,
) {
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < agents {
        match rx.recv().await.expect("the run ended before the turn") {
            codex_actors::RunEvent::ModelCallStarted { agent, turn: t, .. } if t == turn => {
                seen.insert(agent);
            }
            _ => {}
        }
    }
}

pub fn text(t: &str, input: u64, output: u64) -> Vec<ModelEvent> {
    vec![
        ModelEvent::TextDelta(t.into()),
        ModelEvent::Usage(Usage {
            input_tokens: input,
            output_tokens: output,
        }),
    ]
}

pub fn call(tool: &str, args: serde_json::Value, input: u64, output: u64) -> Vec<ModelEvent> {
    vec![
        ModelEvent::ToolCall(ToolCall {
            id: "c1".into(),
            name: tool.into(),
            arguments: args,
        }),
        ModelEvent::Usage(Usage {
            input_tokens: input,
            output_tokens: output,
        }),
    ]
}

/// `touch {path}`: plans a write of `path` and creates it (an empty file).
pub struct Touch;

#[async_trait::async_trait]
impl Tool for Touch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "touch".into(),
            description: "create an empty file".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }
    }

    fn plan(&self, args: &serde_json::Value, _: &ToolContext) -> Result<Vec<Access>, ToolError> {
        let path = args["path"]
            .as_str()
            .ok_or_else(|| ToolError::new("path missing"))?;
        Ok(vec![Access::Write(path.to_owned())])
    }

    async fn invoke(
        &self,
        args: serde_json::Value,
        _approved: &[Access],
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let path = args["path"].as_str().unwrap_or_default().to_owned();
        let full = ctx.workspace.join(&path);
        std::fs::create_dir_all(full.parent().unwrap())
            .map_err(|e| ToolError::new(e.to_string()))?;
        std::fs::write(&full, b"").map_err(|e| ToolError::new(e.to_string()))?;
        Ok(ToolOutput {
            content: format!("created {path}"),
            written: vec![path],
            sandbox: None,
        })
    }
}

pub fn plan(name: &str, budget: u64, model: Arc<dyn Model>) -> AgentPlan {
    let mut spec = AgentSpec::new(name, format!("goal of {name}"), budget);
    spec.max_output_tokens = 200;
    spec.restart.initial_backoff = Duration::from_millis(10);
    AgentPlan {
        spec,
        model,
        tools: Vec::new(),
        unavailable: None,
    }
}

pub fn audit(workspace: &Path, run_id: &str) -> Vec<AuditRecord> {
    read_log(
        &workspace
            .join(".codex/runs")
            .join(run_id)
            .join("audit.jsonl"),
    )
    .unwrap()
}

pub fn of_type<'a>(records: &'a [AuditRecord], ty: &str) -> Vec<&'a AuditRecord> {
    records
        .iter()
        .filter(|r| serde_json::to_value(&r.event).unwrap()["type"] == ty)
        .collect()
}
