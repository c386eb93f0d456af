//! Embedding the engine from Rust: two agents, a scripted model, one tool, budgets, and
//! the audit log, without the `codex` command line.
//!
//! ```sh
//! cargo run --example embed
//! ```
//!
//! The model here is a few lines of Rust that answer by turn number: a stand-in for a real
//! provider, which would implement the same [`Model`] trait over HTTP.

use std::sync::Arc;

use codex_actors::model::{Model, ModelError, ModelEvent, ModelRequest, ToolCall, Usage};
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use codex_actors::{AgentPlan, AgentSpec, RunConfig, ToolSpec};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{json, Value};

/// Turn 0 asks for a word count of the goal; turn 1 answers with the tool's result.
struct ScriptedModel;

impl Model for ScriptedModel {
    fn name(&self) -> String {
        "scripted".into()
    }

    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        let events = match request.turn {
            0 => vec![ModelEvent::ToolCall(ToolCall {
                id: "call-1".into(),
                name: "word_count".into(),
                arguments: json!({ "text": request.messages.last().map(|m| m.content.clone()) }),
            })],
            _ => {
                let result = request.messages.last().map_or("", |m| m.content.as_str());
                vec![ModelEvent::TextDelta(format!(
                    "The task has {result} words."
                ))]
            }
        };
        let usage = ModelEvent::Usage(Usage {
            input_tokens: 40,
            output_tokens: 12,
        });
        stream::iter(events.into_iter().chain([usage]).map(Ok)).boxed()
    }
}

/// A tool that touches nothing: its plan needs no access, so the policy has nothing to deny.
struct WordCount;

#[async_trait::async_trait]
impl Tool for WordCount {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "word_count".into(),
            description: "Count the words of a text.".into(),
            parameters: json!({
                "type": "object",
                "properties": { "text": { "type": "string" } },
                "required": ["text"],
            }),
        }
    }

    fn plan(&self, arguments: &Value, _: &ToolContext) -> Result<Vec<Access>, ToolError> {
        match arguments["text"].is_string() {
            true => Ok(Vec::new()),
            false => Err(ToolError::new("`text` must be a string")),
        }
    }

    async fn invoke(
        &self,
        arguments: Value,
        _: &[Access],
        _: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let words = arguments["text"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .count();
        Ok(ToolOutput::text(words.to_string()))
    }
}

fn agent(name: &str, goal: &str) -> AgentPlan {
    let mut spec = AgentSpec::new(name, goal, 2_000);
    spec.tools = vec!["word_count".into()];
    spec.max_output_tokens = 256;
    AgentPlan {
        spec,
        model: Arc::new(ScriptedModel),
        tools: vec![Arc::new(WordCount)],
        unavailable: None,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workspace = tempfile::tempdir()?;
    let agents = vec![
        agent("counter-a", "count the words of this goal"),
        agent("counter-b", "and of this somewhat longer goal, too"),
    ];
    let config = RunConfig::new(codex_actors::new_run_id(), workspace.path(), agents);
    let audit_log = config.audit_path.clone();
    let report = codex_actors::start(config).await?.wait().await?;
    for a in &report.agents {
        println!(
            "{}: {} with {}/{} tokens: {}",
            a.agent,
            a.status.label(),
            a.tokens_used,
            a.budget,
            a.final_message.as_deref().unwrap_or("-")
        );
    }
    let records = codex_actors::audit::read_log(&audit_log)?;
    println!(
        "{} audit records, the last one: {:?}",
        records.len(),
        records.last().map(|r| &r.event)
    );
    assert!(report.all_completed());
    Ok(())
}
