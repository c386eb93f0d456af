//! `codex mcp-server` driven by an MCP client of its own (rmcp, child-process transport):
//! the server runs in a temporary workspace with a replay script; the tests list its tools,
//! check their schemas, call them, and check the results, the progress notifications, the
//! audit log and the server-wide budget.

mod common;

use std::sync::{Arc, Mutex};

use common::{agent_report, agent_yaml, of_type, Workspace};
use predicates::prelude::*;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
    ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};

/// A client that keeps the progress messages it is sent.
#[derive(Clone, Default)]
struct Client {
    progress: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Client {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let message = params.message.unwrap_or_default();
        self.progress.lock().unwrap().push(message);
    }
}

/// A workspace with agents `alpha` and `beta` and a script where each lists the workspace
/// and then answers.
fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    ws.agent("beta", &agent_yaml("beta", "false", 20_000));
    ws.replay(
        r#"
agents:
  default:
    turns:
      - text: "Looking around."
        tool_calls: [{name: list_dir, arguments: {}}]
        usage: {input_tokens: 300, output_tokens: 20}
      - text: "Done."
        usage: {input_tokens: 400, output_tokens: 10}
"#,
    );
    ws
}

/// `codex mcp-server --replay <ws>/replay.yaml` with `extra` flags, connected.
async fn connect(ws: &Workspace, extra: &[&str]) -> (RunningService<RoleClient, Client>, Client) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_codex"));
    cmd.env("CODEX_HOME", ws.home())
        .env_remove("CODEX_LOG")
        .current_dir(ws.root())
        .arg("-C")
        .arg(ws.root())
        .arg("mcp-server")
        .arg("--replay")
        .arg(ws.path("replay.yaml"))
        .args(extra);
    let transport = TokioChildProcess::new(cmd).expect("spawn codex mcp-server");
    let client = Client::default();
    let service = client
        .clone()
        .serve(transport)
        .await
        .expect("MCP handshake");
    (service, client)
}

fn call(name: &'static str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(args.as_object().unwrap().clone())
}

/// Calls a tool with a progress token and waits for its result.
async fn call_with_progress(
    service: &RunningService<RoleClient, Client>,
    params: CallToolRequestParams,
) -> CallToolResult {
    let handle = service
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("request sent");
    match handle.await_response().await.expect("a response") {
        ServerResult::CallToolResult(r) => r,
        other => panic!("not a tool result: {other:?}"),
    }
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The input schema of tool `name`, and its required fields.
fn schema_of(tools: &[rmcp::model::Tool], name: &str) -> (Value, Vec<String>) {
    let tool = tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool `{name}`"));
    let schema = Value::Object((*tool.input_schema).clone());
    let required = schema["required"]
        .as_array()
        .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    (schema, required)
}

#[tokio::test]
async fn tools_are_listed_with_schemas_from_the_request_types() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let tools = service.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    for n in ["delegate", "delegate_parallel", "list_agents"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let delegate = tools.iter().find(|t| t.name == "delegate").unwrap();
    let schema = Value::Object((*delegate.input_schema).clone());
    let props = &schema["properties"];
    for field in ["agent", "goal", "scope", "budget", "deadline"] {
        assert!(props.get(field).is_some(), "no `{field}` in {schema:#}");
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["agent", "goal"]);
    let parallel = tools
        .iter()
        .find(|t| t.name == "delegate_parallel")
        .unwrap();
    let schema = Value::Object((*parallel.input_schema).clone());
    assert_eq!(schema["properties"]["tasks"]["type"], "array", "{schema:#}");

    let listed = service
        .call_tool(CallToolRequestParams::new("list_agents"))
        .await
        .unwrap();
    let agents = &listed.structured_content.unwrap()["agents"];
    let names: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"alpha") && names.contains(&"code-reviewer"),
        "{names:?}"
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn delegate_runs_one_agent_and_reports_progress() {
    let ws = workspace();
    let (service, client) = connect(&ws, &[]).await;
    let args = json!({"agent": "alpha", "goal": "look around", "budget": 5000});
    let result = call_with_progress(&service, call("delegate", args)).await;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let report = result.structured_content.clone().unwrap();
    assert_eq!(report["agent"], "alpha");
    assert_eq!(report["status"], "completed");
    assert_eq!(report["goal"], "look around");
    assert_eq!(report["budget"], 5000);
    assert_eq!(report["tokens_used"], 730);
    assert_eq!(report["final_message"], "Done.");
    assert!(
        text(&result).contains("1/1 agents completed"),
        "{}",
        text(&result)
    );

    let progress = client.progress.lock().unwrap().clone();
    assert!(
        progress.iter().any(|m| m == "alpha: started (attempt 1)"),
        "{progress:?}"
    );
    assert!(
        progress.iter().any(|m| m == "alpha: 730 tokens used"),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|m| m == "alpha: finished, completed (730 tokens)"),
        "{progress:?}"
    );
    // The same audit log as a CLI run.
    let audit = ws.audit();
    assert_eq!(audit.first().unwrap()["type"], "run_started");
    assert_eq!(audit.last().unwrap()["type"], "run_finished");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn delegate_parallel_returns_the_run_report() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"tasks": [
        {"agent": "alpha", "goal": "one"},
        {"agent": "beta", "goal": "two", "budget": 4000, "deadline": "2m"}
    ]});
    let result = service
        .call_tool(call("delegate_parallel", args))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let report = result.structured_content.clone().unwrap();
    assert_eq!(report["success_count"], 2);
    assert_eq!(report["total_count"], 2);
    assert_eq!(report["total_tokens"], 1460);
    assert_eq!(report["agents"][1]["agent"], "beta");
    assert_eq!(report["agents"][1]["budget"], 4000);
    assert!(report["run_id"].as_str().is_some());
    assert!(
        text(&result).contains("2/2 agents completed"),
        "{}",
        text(&result)
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn the_server_budget_clamps_every_call_to_what_is_left() {
    let ws = workspace();
    let (service, _) = connect(&ws, &["--budget", "20500"]).await;
    let args = json!({"agent": "alpha", "goal": "look around"});
    let first = service
        .call_tool(call("delegate", args.clone()))
        .await
        .unwrap();
    let report = first.structured_content.clone().unwrap();
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(report["tokens_used"], 730);
    assert!(
        text(&first).contains("Tokens: 730 / 20,000"),
        "{}",
        text(&first)
    );
    // 19,770 tokens left: the second run gets them as its budget, though the agent asks
    // for 20,000.
    let second = service.call_tool(call("delegate", args)).await.unwrap();
    assert!(
        text(&second).contains("Tokens: 730 / 19,770"),
        "{}",
        text(&second)
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn an_unknown_agent_is_a_tool_error_that_says_so() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"agent": "nobody", "goal": "x"});
    let result = service.call_tool(call("delegate", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("nobody"), "{}", text(&result));
    assert!(!ws.has_runs());
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_call_cancels_its_agents() {
    let ws = Workspace::new();
    ws.agent("slow", &agent_yaml("slow", "false", 20_000));
    ws.replay("agents:\n  default:\n    turns:\n      - text: \"late\"\n        delay_ms: 60000\n");
    let (service, client) = connect(&ws, &[]).await;
    let args = json!({"agent": "slow", "goal": "wait"});
    let handle = service
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(call("delegate", args))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    // Cancel once the agent has started.
    for _ in 0..200 {
        if !client.progress.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    handle.cancel(Some("test".into())).await.unwrap();
    // The run ends (long before the model's 60 s) and its log says the agent was cancelled.
    let mut finished = None;
    for _ in 0..400 {
        if ws.has_runs() {
            let audit = ws.audit();
            if let Some(f) = audit.iter().find(|r| r["type"] == "agent_finished") {
                finished = Some(f.clone());
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let finished = finished.expect("the agent finished after the cancellation");
    assert_eq!(finished["status"], "cancelled", "{finished:#}");
    service.cancel().await.unwrap();
}

/// The MCP client side: an agent whose definition lists `inner.*` calls the tools of an MCP
/// server configured in `codex-actors.toml` (here `codex mcp-server` itself, with only
/// `list_agents` enabled); each call is decided by the policy and audited.
#[test]
fn an_agent_calls_the_tools_of_a_configured_mcp_server() {
    let ws = Workspace::new();
    ws.agent(
        "caller",
        "name: caller\ngoal: ask\ninstructions: i\ntools:\n  mcp: [\"inner.*\"]\nbudget: 20000\nmax_output_tokens: 200\n",
    );
    ws.agent("helper", &agent_yaml("helper", "false", 5_000));
    let config = format!(
        "[mcp_servers.inner]\ncommand = {:?}\nargs = [\"-C\", {:?}, \"mcp-server\"]\nenabled_tools = [\"list_agents\"]\n",
        env!("CARGO_BIN_EXE_codex"),
        ws.root().display().to_string(),
    );
    std::fs::write(ws.home().join("codex-actors.toml"), config).unwrap();
    let replay = ws.replay(
        r#"
agents:
  caller:
    turns:
      - text: "Which agents are there?"
        tool_calls: [{name: inner__list_agents, arguments: {}}]
      - text: "Delegate, then."
        tool_calls: [{name: inner__delegate, arguments: {agent: helper, goal: x}}]
      - text: "Done."
"#,
    );
    ws.codex()
        .args(["delegate", "caller", "--goal", "ask", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success()
        .stdout(predicate::str::contains("1/1 agents completed"));
    let results = ws.results();
    assert_eq!(agent_report(&results, "caller")["final_message"], "Done.");
    let audit = ws.audit();
    let decision = of_type(&audit, "policy_decision")
        .into_iter()
        .find(|r| r["access"]["kind"] == "mcp")
        .expect("a policy decision on the MCP call");
    assert_eq!(decision["access"]["target"], "inner.list_agents");
    assert_eq!(decision["allowed"], true, "{decision:#}");
    let calls = of_type(&audit, "tool_call");
    let listed = calls
        .iter()
        .find(|r| r["tool"] == "inner__list_agents")
        .expect("the MCP tool call is audited");
    assert_eq!(listed["outcome"], "ok", "{listed:#}");
    // Its answer (the inner server's agent list, as JSON text) went back to the model.
    assert!(listed["output_bytes"].as_u64().unwrap() > 50, "{listed:#}");
    // `delegate` is not enabled: the model was never offered it.
    let refused = calls
        .iter()
        .find(|r| r["tool"] == "inner__delegate")
        .unwrap();
    assert_eq!(refused["outcome"], "error", "{refused:#}");
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains("unknown tool `inner__delegate`") && why.contains("inner__list_agents"),
        "{why}"
    );
}

/// The test suite's external MCP server: `examples/echo_mcp_server.rs` (built with the
/// tests, like every example).
fn echo_server(ws: &Workspace) {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_codex"))
        .parent()
        .unwrap()
        .join("examples/echo_mcp_server");
    assert!(
        exe.exists(),
        "{} is missing: cargo build --examples",
        exe.display()
    );
    let config = format!(
        "[mcp_servers.echo]\ncommand = {:?}\n",
        exe.display().to_string()
    );
    std::fs::write(ws.home().join("codex-actors.toml"), config).unwrap();
}

/// `caller` may use every tool of the echo server; `replay` is its script.
fn echo_caller(ws: &Workspace, turns: &str) -> std::path::PathBuf {
    echo_server(ws);
    ws.agent(
        "caller",
        "name: caller\ngoal: ask\ninstructions: i\ntools:\n  mcp: [\"echo.*\"]\nbudget: 20000\nmax_output_tokens: 200\n",
    );
    ws.agent("other", "name: other\ngoal: work\ninstructions: i\n");
    ws.replay(&format!(
        "agents:\n  caller:\n    turns:\n{turns}  other:\n    turns:\n      - text: \"other done\"\n"
    ))
}

#[test]
fn an_agent_uses_a_tool_of_an_external_mcp_server() {
    let ws = Workspace::new();
    let replay = echo_caller(
        &ws,
        "      - tool_calls: [{name: echo__echo, arguments: {text: hello}}]\n      - text: Done.\n",
    );
    ws.codex()
        .args(["delegate", "caller", "--goal", "ask", "--replay"])
        .arg(&replay)
        .assert()
        .success();
    let audit = ws.audit();
    let decision = of_type(&audit, "policy_decision")
        .into_iter()
        .find(|r| r["access"]["kind"] == "mcp")
        .expect("the call was decided by the policy");
    assert_eq!(
        (&decision["access"]["target"], &decision["allowed"]),
        (&json!("echo.echo"), &json!(true))
    );
    let call = of_type(&audit, "tool_call")[0];
    assert_eq!(
        (&call["tool"], &call["outcome"]),
        (&json!("echo__echo"), &json!("ok"))
    );
    assert_eq!(call["output_bytes"], "echo: hello".len());
}

#[test]
fn an_mcp_server_that_dies_mid_run_is_an_error_for_the_calls_after_it() {
    let ws = Workspace::new();
    let replay = echo_caller(
        &ws,
        "      - tool_calls: [{name: echo__echo, arguments: {text: before}}]\n\
         \x20     - tool_calls: [{name: echo__exit, arguments: {}}]\n\
         \x20     - tool_calls: [{name: echo__echo, arguments: {text: after}}]\n\
         \x20     - text: Done without echo.\n",
    );
    ws.codex()
        .args([
            "delegate-parallel",
            "caller,other",
            "--goals",
            "ask,work",
            "--replay",
        ])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    let results = ws.results();
    assert_eq!(agent_report(&results, "caller")["status"], "completed");
    assert_eq!(agent_report(&results, "other")["status"], "completed");
    let outcomes: Vec<(String, String)> = of_type(&ws.audit(), "tool_call")
        .into_iter()
        .map(|r| {
            let error = r["error"].as_str().unwrap_or("").to_owned();
            (r["outcome"].as_str().unwrap().to_owned(), error)
        })
        .collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].0, "ok");
    for (outcome, error) in &outcomes[1..] {
        assert_eq!(outcome, "error");
        assert!(error.contains("echo."), "the error names the tool: {error}");
    }
}

#[test]
fn an_mcp_server_that_is_not_configured_stops_the_run_before_it_starts() {
    let ws = Workspace::new();
    ws.agent(
        "caller",
        "name: caller\ngoal: ask\ninstructions: i\ntools:\n  mcp: [\"gone.*\"]\n",
    );
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: \"x\"\n");
    ws.codex()
        .args(["delegate", "caller", "--goal", "ask", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no [mcp_servers.gone]"));
    assert!(!ws.has_runs());
}

#[test]
fn an_mcp_server_that_does_not_start_fails_only_the_agents_that_need_it() {
    let ws = Workspace::new();
    ws.agent(
        "caller",
        "name: caller\ngoal: ask\ninstructions: i\ntools:\n  mcp: [\"gone.*\"]\n",
    );
    ws.agent("other", "name: other\ngoal: work\ninstructions: i\n");
    std::fs::write(
        ws.home().join("codex-actors.toml"),
        "[mcp_servers.gone]\ncommand = \"/nonexistent/mcp-server\"\n",
    )
    .unwrap();
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: \"done\"\n");
    ws.codex()
        .args([
            "delegate-parallel",
            "caller,other",
            "--goals",
            "ask,work",
            "--replay",
        ])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .code(1);
    let results = ws.results();
    let caller = agent_report(&results, "caller");
    assert_eq!(caller["status"], "failed");
    let why = caller["error"].as_str().unwrap();
    assert!(
        why.contains("MCP server `gone`") && why.contains("did not start"),
        "{why}"
    );
    assert!(why.contains("/nonexistent/mcp-server"), "{why}");
    assert_eq!(agent_report(&results, "other")["status"], "completed");
    let audit = ws.audit();
    let finished = of_type(&audit, "agent_finished");
    assert!(finished
        .iter()
        .any(|r| r["agent_name"] == "caller" && r["status"] == "failed"));
}

/// Recursive delegation through MCP: `codex mcp-server` configured as an MCP server, so an
/// agent's `codex__delegate` call runs another agent in a sub-run (with its own audit log,
/// capped by that server's `--budget`). `CODEX_MCP_DEPTH` bounds the nesting.
#[test]
fn an_agent_delegates_to_another_agent_through_codex_mcp_server() {
    let ws = Workspace::new();
    ws.agent(
        "boss",
        "name: boss\ngoal: lead\ninstructions: i\ntools:\n  mcp: [\"codex.delegate\"]\n",
    );
    ws.agent("worker", &agent_yaml("worker", "false", 5_000));
    let replay = ws.replay(
        r#"
agents:
  boss:
    turns:
      - text: "Asking the worker."
        tool_calls: [{name: codex__delegate, arguments: {agent: worker, goal: "do the sub-task"}}]
      - text: "Boss done."
  worker:
    turns:
      - text: "sub-task done"
        usage: {input_tokens: 100, output_tokens: 10}
"#,
    );
    let config = format!(
        "[mcp_servers.codex]\ncommand = {:?}\nargs = [\"-C\", {:?}, \"mcp-server\", \"--replay\", {:?}, \"--budget\", \"3000\"]\n",
        env!("CARGO_BIN_EXE_codex"),
        ws.root().display().to_string(),
        replay.display().to_string(),
    );
    std::fs::write(ws.home().join("codex-actors.toml"), config).unwrap();
    ws.codex()
        .args(["delegate", "boss", "--goal", "lead", "--replay"])
        .arg(&replay)
        .assert()
        .success()
        .stdout(predicate::str::contains("1/1 agents completed"));
    // Two runs: the boss's and the worker's sub-run, each with its own complete log.
    let runs: Vec<_> = std::fs::read_dir(ws.path(".codex/runs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("audit.jsonl"))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let logs: Vec<String> = runs
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let sub = logs
        .iter()
        .find(|l| l.contains("\"agent_name\":\"worker\""))
        .unwrap();
    assert!(sub.contains("\"status\":\"completed\""), "{sub}");
    assert!(sub.contains("\"tokens_used\":110"), "{sub}");
    assert!(sub.contains("\"goal\":\"do the sub-task\""), "{sub}");
    let top = logs
        .iter()
        .find(|l| l.contains("\"agent_name\":\"boss\""))
        .unwrap();
    assert!(top.contains("\"target\":\"codex.delegate\""), "{top}");
    let call = top
        .lines()
        .find(|l| l.contains("\"type\":\"tool_call\""))
        .unwrap();
    assert!(call.contains("\"outcome\":\"ok\""), "{call}");

    // At the depth limit, no MCP server is started.
    ws.codex()
        .env("CODEX_MCP_DEPTH", "3")
        .args(["delegate", "boss", "--goal", "lead", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("levels below the first codex"));
}

#[tokio::test]
async fn create_agent_and_the_workspace_tools_are_listed_with_their_required_fields() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let tools = service.list_all_tools().await.unwrap();
    let expected: [(&str, &[&str], &[&str]); 4] = [
        ("create_agent", &["prompt"], &["budget", "name", "save"]),
        ("read_file", &["path"], &["offset", "limit"]),
        ("grep", &["pattern"], &["path", "include"]),
        ("codebase_search", &["query"], &["path", "limit"]),
    ];
    for (name, required_fields, optional) in expected {
        let (schema, required) = schema_of(&tools, name);
        assert_eq!(required, required_fields, "{name}: {schema:#}");
        for field in required_fields.iter().chain(optional) {
            assert!(
                schema["properties"].get(field).is_some(),
                "{name}: no `{field}` in {schema:#}"
            );
        }
    }
    let (read, _) = schema_of(&tools, "read_file");
    assert_eq!(read["properties"]["offset"]["minimum"], 1, "{read:#}");
    // The workspace tools say they only read.
    for name in ["read_file", "grep", "codebase_search"] {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let hints = tool.annotations.as_ref().expect("annotations");
        assert_eq!(hints.read_only_hint, Some(true), "{name}");
    }
    service.cancel().await.unwrap();
}

/// A valid definition, as the `agent-create` turn of a replay script answers it.
const DOC_WRITER: &str = "name: doc-writer\ngoal: Describe the crate\ninstructions: Read the sources and describe them.\ntools:\n  fs: { read: true }\nbudget: 9000\nmax_output_tokens: 200\n";

/// A workspace whose replay script writes `answers` (one per generation call) and then
/// plays the new agent's run (110 tokens).
fn creating_workspace(answers: &[&str]) -> Workspace {
    let ws = Workspace::new();
    let turns: String = answers
        .iter()
        .map(|a| {
            let body: String = a.lines().map(|l| format!("          {l}\n")).collect();
            format!(
                "      - text: |\n{body}        usage: {{input_tokens: 500, output_tokens: 80}}\n"
            )
        })
        .collect();
    ws.replay(&format!(
        "agents:\n  agent-create:\n    turns:\n{turns}  default:\n    turns:\n      - text: \"The crate answers 42.\"\n        usage: {{input_tokens: 100, output_tokens: 10}}\n"
    ));
    ws
}

#[tokio::test]
async fn create_agent_returns_the_definition_and_the_report_of_its_run() {
    let ws = creating_workspace(&[DOC_WRITER]);
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"prompt": "an agent that documents the crate"});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let created = result.structured_content.clone().unwrap();
    assert_eq!(created["name"], "doc-writer");
    let definition = created["definition"].as_str().unwrap();
    assert!(
        definition.contains("goal: Describe the crate"),
        "{definition}"
    );
    assert_eq!(created["saved"], Value::Null);
    let report = &created["report"];
    assert_eq!(report["agent"], "doc-writer");
    assert_eq!(report["status"], "completed");
    assert_eq!(report["budget"], 9000);
    assert_eq!(report["tokens_used"], 110);
    assert_eq!(report["final_message"], "The crate answers 42.");
    assert!(
        text(&result).contains("Created agent `doc-writer`"),
        "{}",
        text(&result)
    );
    // Not saved; run like any other agent, with an audit log.
    assert!(!ws.path(".codex/agents/doc-writer.yaml").exists());
    let audit = ws.audit();
    let finished = of_type(&audit, "agent_finished");
    assert_eq!(finished[0]["agent_name"], "doc-writer");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_with_save_writes_the_definition_file() {
    let ws = creating_workspace(&[DOC_WRITER]);
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"prompt": "documents the crate", "save": true});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let created = result.structured_content.clone().unwrap();
    assert_eq!(created["saved"], ".codex/agents/doc-writer.yaml");
    let saved = std::fs::read_to_string(ws.path(".codex/agents/doc-writer.yaml")).unwrap();
    assert_eq!(saved, created["definition"].as_str().unwrap());
    // The saved definition is one the server can delegate to.
    let listed = service
        .call_tool(CallToolRequestParams::new("list_agents"))
        .await
        .unwrap();
    assert!(
        text(&listed).lines().any(|l| l == "doc-writer"),
        "{}",
        text(&listed)
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_still_invalid_after_the_retries_is_an_error_and_nothing_is_saved() {
    let bad = "name: Not A Name\ngoal: g\ninstructions: i\n";
    let ws = creating_workspace(&[bad, bad, bad]);
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"prompt": "anything", "save": true});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("no valid agent definition in 3 tries"),
        "{message}"
    );
    assert!(message.contains("nothing was saved or run"), "{message}");
    assert!(!ws.path(".codex/agents/not-a-name.yaml").exists());
    assert!(!ws.has_runs());
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_never_replaces_an_existing_file() {
    let ws = creating_workspace(&[DOC_WRITER]);
    let mine = agent_yaml("doc-writer", "false", 1000);
    ws.agent("doc-writer", &mine);
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"prompt": "documents the crate", "save": true});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("doc-writer.yaml exists, so nothing was saved or run"),
        "{message}"
    );
    assert!(message.contains("another `name`"), "{message}");
    let kept = std::fs::read_to_string(ws.path(".codex/agents/doc-writer.yaml")).unwrap();
    assert_eq!(kept, mine);
    assert!(!ws.has_runs());
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_charges_its_generation_and_its_run_to_the_server_budget() {
    let ws = creating_workspace(&[DOC_WRITER]);
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    let (service, _) = connect(&ws, &["--budget", "5000"]).await;
    let args = json!({"prompt": "documents the crate"});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let created = result.structured_content.clone().unwrap();
    assert_eq!(created["notes"][0], "definition written (580 tokens)");
    // The agent asks for 9,000; its run gets the 4,420 the generation left.
    assert!(
        text(&result).contains("Tokens: 110 / 4,420"),
        "{}",
        text(&result)
    );
    // What the run used is charged too: a later call gets what is left.
    let args = json!({"agent": "alpha", "goal": "anything"});
    let next = service.call_tool(call("delegate", args)).await.unwrap();
    assert!(text(&next).contains("/ 4,310"), "{}", text(&next));
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_is_refused_when_the_server_budget_cannot_pay_for_a_definition() {
    let ws = creating_workspace(&[DOC_WRITER]);
    let (service, _) = connect(&ws, &["--budget", "800"]).await;
    let args = json!({"prompt": "documents the crate", "save": true});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("the budget has 800 tokens left, too few to write a definition"),
        "{message}"
    );
    assert!(!ws.path(".codex/agents/doc-writer.yaml").exists());
    assert!(!ws.has_runs());
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn read_file_returns_the_lines_of_a_file() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"path": "src/lib.rs"});
    let result = service.call_tool(call("read_file", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert_eq!(
        text(&result),
        "   1| pub fn answer() -> u32 {\n   2|     42\n   3| }\n"
    );
    service.cancel().await.unwrap();
}

/// Calls `read_file` on `path` and returns the error text; panics if it was not refused.
async fn refused_read(service: &RunningService<RoleClient, Client>, path: &str) -> String {
    let result = service
        .call_tool(call("read_file", json!({ "path": path })))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true), "{path}: {}", text(&result));
    text(&result)
}

#[tokio::test]
async fn read_file_refuses_a_relative_path_leading_out_of_the_workspace() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let message = refused_read(&service, "../outside").await;
    assert!(
        message.contains("`../outside` leads outside the workspace"),
        "{message}"
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn read_file_refuses_an_absolute_path_outside_the_workspace() {
    let ws = workspace();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "not for clients\n").unwrap();
    let (service, _) = connect(&ws, &[]).await;
    let message = refused_read(&service, secret.to_str().unwrap()).await;
    assert!(message.contains("leads outside the workspace"), "{message}");
    assert!(!message.contains("not for clients"), "{message}");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn read_file_refuses_a_symlink_leading_out_of_the_workspace() {
    let ws = workspace();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "not for clients\n").unwrap();
    std::os::unix::fs::symlink(&secret, ws.path("link.txt")).unwrap();
    let (service, _) = connect(&ws, &[]).await;
    let message = refused_read(&service, "link.txt").await;
    assert!(
        message.contains("`link.txt` leads outside the workspace"),
        "{message}"
    );
    assert!(!message.contains("not for clients"), "{message}");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn grep_finds_a_string_in_the_workspace() {
    let ws = workspace();
    ws.file("src/other.rs", "fn unrelated() {}\n");
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"pattern": "answer", "path": "src"});
    let result = service.call_tool(call("grep", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert_eq!(text(&result), "src/lib.rs:1:pub fn answer() -> u32 {\n");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn codebase_search_returns_the_best_hit_first() {
    let ws = workspace();
    ws.file(
        "src/net.rs",
        "// networking\nfn retry_with_backoff(attempts: u32) {}\n// end\n",
    );
    ws.file("src/misc.rs", "fn retry() {}\n");
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"query": "retry backoff"});
    let result = service
        .call_tool(call("codebase_search", args))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let out = text(&result);
    let first = out.lines().next().unwrap();
    assert_eq!(first, "src/net.rs:2", "{out}");
    assert!(out.contains("fn retry_with_backoff"), "{out}");
    service.cancel().await.unwrap();
}
