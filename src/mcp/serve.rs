//! How `codex mcp-server` is served, and how it shuts down.
//!
//! Two transports, both rmcp's: stdio (the default: one client, which started the process)
//! and Streamable HTTP (`--http ADDR`: one long-running server that several clients share;
//! each MCP session gets a clone of the same [`CodexServer`], so they share one session
//! budget, one set of runs and one shutdown). HTTP is bound to loopback unless the
//! operator says otherwise, and anywhere else it refuses to start without a bearer token
//! ([`TOKEN_VAR`]); with a token set, every request must carry it.
//!
//! Shutdown, on the end of the input (stdio), SIGTERM or SIGINT: the server's shutdown
//! token is cancelled, so every run in progress is cancelled and writes the end of its
//! audit log, and its call is answered with a cancellation error while the client can
//! still read it; then the transport closes. Clients (both official SDKs) close a server
//! by closing its input and sending SIGTERM about 2 s later, so all of it is bounded by
//! [`SHUTDOWN_WITHIN`].

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use rmcp::ServiceExt;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::server::CodexServer;

/// The environment variable holding the bearer token that HTTP clients must send
/// (`Authorization: Bearer TOKEN`). Required when `--http` is not a loopback address.
pub const TOKEN_VAR: &str = "CODEX_MCP_TOKEN";

/// The shortest bearer token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// From the shutdown signal to the end of the process, at most (less a margin for the
/// runtime to stop).
pub const SHUTDOWN_WITHIN: Duration = Duration::from_millis(1800);

/// Over HTTP, how long before [`SHUTDOWN_WITHIN`] ends the MCP sessions are closed (their
/// clients' open streams with them), after the answers in flight had the time before.
const SESSIONS_CLOSE_MARGIN: Duration = Duration::from_millis(300);

/// Why the server shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Its input (stdin) closed: the client went away.
    InputClosed,
    /// SIGTERM.
    Terminated,
    /// SIGINT (Ctrl-C in the terminal that started the client).
    Interrupted,
}

/// Serves `server` on stdin/stdout until its input closes or a signal stops it.
pub async fn stdio(server: CodexServer) -> anyhow::Result<()> {
    let mut termination = Termination::watch()?;
    let shutdown = server.shutdown_token();
    let runs = server.runs();
    let (stdin, stdout) = rmcp::transport::io::stdio_pipes();
    let input = EndCancels {
        inner: stdin,
        on_end: shutdown.clone(),
    };
    let service = server
        .serve((input, stdout))
        .await
        .map_err(|e| anyhow::anyhow!("the MCP session could not start: {e}"))?;
    let stop = tokio::select! {
        signal = termination.received() => signal,
        _ = shutdown.cancelled() => Stop::InputClosed,
    };
    tracing::info!(?stop, "shutting down");
    let deadline = Instant::now() + SHUTDOWN_WITHIN;
    shutdown.cancel();
    end_runs(runs, deadline).await;
    // The cancelled calls' answers are sent while the service drains (bounded here too).
    if tokio::time::timeout_at(deadline, service.cancel())
        .await
        .is_err()
    {
        tracing::warn!("the MCP session did not close in time; exiting anyway");
    }
    Ok(())
}

/// Serves `server` over Streamable HTTP on `addr` (path `/mcp`) until a signal stops it.
/// `token`: the bearer token clients must send (required when `addr` is not loopback).
/// Says where it listens on stderr (with the real port, when `addr`'s is 0).
pub async fn http(
    server: CodexServer,
    addr: SocketAddr,
    token: Option<String>,
) -> anyhow::Result<()> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

    check_exposure(addr, token.as_deref())?;
    let mut termination = Termination::watch()?;
    let shutdown = server.shutdown_token();
    let runs = server.runs();
    let sessions_ct = CancellationToken::new();
    let mut config =
        StreamableHttpServerConfig::default().with_cancellation_token(sessions_ct.child_token());
    if !addr.ip().is_loopback() {
        // The Host check guards a loopback server against DNS rebinding; elsewhere the
        // bearer token guards it, and the Host is whatever name clients use.
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mut router = axum::Router::new().nest_service("/mcp", service);
    if let Some(token) = token {
        let token = Arc::new(token);
        router = router.layer(axum::middleware::from_fn_with_state(token, require_bearer));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("no local address")?;
    eprintln!("codex mcp-server: serving MCP over Streamable HTTP at http://{local}/mcp");
    let stop_listening = CancellationToken::new();
    let graceful = stop_listening.clone();
    let mut serving = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { graceful.cancelled().await })
            .await
    });
    let stop = tokio::select! {
        signal = termination.received() => signal,
        ended = &mut serving => {
            ended.context("the HTTP server panicked")?.context("the HTTP server failed")?;
            anyhow::bail!("the HTTP server stopped on its own");
        }
    };
    tracing::info!(?stop, "shutting down");
    let deadline = Instant::now() + SHUTDOWN_WITHIN;
    shutdown.cancel();
    end_runs(runs, deadline).await;
    // No new connections; the responses in flight (the cancelled calls' answers) are
    // written and their streams end. Streams that never end by themselves (a client's
    // stream for server notifications) are closed with the sessions, shortly before the
    // deadline.
    stop_listening.cancel();
    let sessions_deadline = deadline - SESSIONS_CLOSE_MARGIN;
    if tokio::time::timeout_at(sessions_deadline, &mut serving)
        .await
        .is_err()
    {
        sessions_ct.cancel();
        if tokio::time::timeout_at(deadline, serving).await.is_err() {
            tracing::warn!("HTTP connections still open at shutdown; exiting anyway");
        }
    }
    Ok(())
}

/// Refuses to serve HTTP beyond loopback without a bearer token, or with a short one.
pub fn check_exposure(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<()> {
    match token {
        Some(t) if t.len() < MIN_TOKEN_LEN => anyhow::bail!(
            "{TOKEN_VAR} is {} characters long; use at least {MIN_TOKEN_LEN} random characters \
             (for example `openssl rand -hex 32`)",
            t.len()
        ),
        None if !addr.ip().is_loopback() => anyhow::bail!(
            "--http {addr} is not a loopback address, so anyone who can reach it could run \
             agents: set a bearer token in {TOKEN_VAR} (at least {MIN_TOKEN_LEN} random \
             characters) that clients send as `Authorization: Bearer TOKEN`, or bind to \
             127.0.0.1"
        ),
        _ => Ok(()),
    }
}

/// Lets a request through only with `Authorization: Bearer <token>`.
async fn require_bearer(
    axum::extract::State(token): axum::extract::State<Arc<String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "codex mcp-server: missing or wrong bearer token (Authorization: Bearer TOKEN)\n",
    )
        .into_response()
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SIGTERM and SIGINT, watched from its creation on: made before the server says it is
/// ready, so a signal sent as soon as it is ready is a shutdown, never the default action
/// (a kill).
struct Termination {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Termination {
    fn watch() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    /// Waits for the first of them.
    async fn received(&mut self) -> Stop {
        tokio::select! {
            _ = self.term.recv() => Stop::Terminated,
            _ = self.int.recv() => Stop::Interrupted,
        }
    }
}

/// Waits (until `deadline`) for the runs in progress, cancelled, to end their audit logs.
async fn end_runs(runs: TaskTracker, deadline: Instant) {
    runs.close();
    if tokio::time::timeout_at(deadline, runs.wait())
        .await
        .is_err()
    {
        tracing::warn!("runs still in progress at shutdown; exiting anyway");
    }
}

/// The server's input: cancels `on_end` when it ends (or fails), so the runs in progress
/// are cancelled at once rather than after rmcp's drain.
struct EndCancels<R> {
    inner: R,
    on_end: CancellationToken,
}

impl<R: AsyncRead + Unpin> AsyncRead for EndCancels<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                self.on_end.cancel()
            }
            Poll::Ready(Err(_)) => self.on_end.cancel(),
            _ => {}
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_needs_no_token() {
        assert!(check_exposure(addr("127.0.0.1:8080"), None).is_ok());
        assert!(check_exposure(addr("[::1]:8080"), None).is_ok());
    }

    #[test]
    fn another_address_is_refused_without_a_token_naming_the_variable() {
        let e = check_exposure(addr("0.0.0.0:8080"), None).unwrap_err();
        assert!(e.to_string().contains(TOKEN_VAR), "{e}");
        assert!(check_exposure(addr("0.0.0.0:8080"), Some("0123456789abcdef")).is_ok());
    }

    #[test]
    fn a_short_token_is_refused() {
        let e = check_exposure(addr("127.0.0.1:0"), Some("short")).unwrap_err();
        assert!(e.to_string().contains("at least 16"), "{e}");
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }

    #[tokio::test]
    async fn the_end_of_the_input_cancels_the_token() {
        use tokio::io::AsyncReadExt;
        let token = CancellationToken::new();
        let mut input = EndCancels {
            inner: &b"{}\n"[..],
            on_end: token.clone(),
        };
        let mut buf = [0u8; 2];
        input.read_exact(&mut buf).await.unwrap();
        assert!(!token.is_cancelled());
        let mut rest = Vec::new();
        input.read_to_end(&mut rest).await.unwrap();
        assert!(token.is_cancelled());
    }
}
