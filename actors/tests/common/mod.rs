//! A scripted model and a recording tool for driving the engine in tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use codex_actors::audit::{read_log, AuditRecord};
use codex_actors::model::{Model, ModelError, ModelEvent, ModelRequest, ToolCall, Usage};
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use codex_actors::{AgentPlan, AgentSpec, ToolSpec};
use futures::stream::{self, BoxStream, StreamExt};

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
