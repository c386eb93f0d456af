//! A minimal MCP server (stdio, rmcp) whose tools codex agents can use: the smallest
//! example of `[mcp_servers.NAME]` in `codex-actors.toml`, and the external server of the
//! test suite (`tests/mcp.rs`).
//!
//! Tools: `echo {text}` returns the text; `exit` ends the process without answering (a
//! server that dies mid-run).
//!
//! ```toml
//! [mcp_servers.echo]
//! command = "target/debug/examples/echo_mcp_server"
//! ```
//!
//! An agent with `tools.mcp: ["echo.*"]` is then offered `echo__echo` and `echo__exit`.

use rmcp::handler::server::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::Deserialize;

/// The arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
struct EchoRequest {
    /// The text to send back.
    text: String,
}

#[derive(Clone)]
struct EchoServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl EchoServer {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Send the text back, prefixed with `echo: `.")]
    async fn echo(&self, Parameters(req): Parameters<EchoRequest>) -> String {
        format!("echo: {}", req.text)
    }

    #[tool(
        description = "End this server at once, without answering (to test a server that dies)."
    )]
    async fn exit(&self) -> String {
        std::process::exit(0)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for EchoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("An echo, and a way to die.")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = EchoServer::new().serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}
