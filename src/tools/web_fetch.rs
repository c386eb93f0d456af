//! `web_fetch`: GET one `http`/`https` URL the agent's network allowlist permits, as text.
//!
//! The plan is one `Network(url)` access with the URL normalised by the `url` crate (the
//! same parser the policy uses), and exactly that URL is fetched. Redirects are **not
//! followed**: a redirect target is a new URL that needs its own policy decision, which a
//! tool cannot ask for in the middle of a call. The tool returns an error naming the new
//! URL, and the model may call `web_fetch` again with it; that call is planned, decided
//! and audited like any other, so a redirect to a host outside the allowlist is denied.
//!
//! Limits: a 30 s timeout for the whole request, at most 2 MiB of body (cut with a note),
//! at most 48 K characters of text. HTML is reduced to text ([`super::html_text`]); other
//! text types (`text/*`, JSON, XML) are shown as they are; binary types are refused.
//! Proxies from the environment are ignored, so a request goes only where the policy saw
//! it going. Not defended: a permitted host whose DNS points at a private address.

use std::time::Duration;

use async_trait::async_trait;
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{redirect, Response};
use serde_json::{json, Value};
use url::Url;

use super::args::Args;
use super::html_text;
use super::limits::{FETCH_MAX_BODY_BYTES, FETCH_MAX_TEXT_CHARS, FETCH_TIMEOUT_SECS};
use super::spec;

const NAME: &str = "web_fetch";
const KNOWN: &[&str] = &["url"];

/// The `web_fetch` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebFetch;

#[async_trait]
impl Tool for WebFetch {
    fn spec(&self) -> ToolSpec {
        spec(
            NAME,
            "Fetch a web page or document by URL (GET) and return it as text (HTML is \
             reduced to its text). Only URLs your network permissions allow. Redirects are \
             not followed: you get the new URL and may fetch it in another call. Text is \
             cut at 48K characters.",
            json!({
                "url": {"type": "string", "description": "The http(s) URL to fetch."},
            }),
            &["url"],
        )
    }

    fn plan(&self, arguments: &Value, _ctx: &ToolContext) -> Result<Vec<Access>, ToolError> {
        Ok(vec![Access::Network(parse(arguments)?.to_string())])
    }

    async fn invoke(
        &self,
        arguments: Value,
        approved: &[Access],
        _ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let url = parse(&arguments)?;
        if !approved.contains(&Access::Network(url.to_string())) {
            return Err(ToolError::new(format!(
                "web_fetch: `{url}` was not approved"
            )));
        }
        let response = client()?
            .get(url.clone())
            .send()
            .await
            .map_err(|e| ToolError::new(format!("web_fetch: `{url}`: {}", describe(&e))))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(redirect_error(&url, &response));
        }
        if !status.is_success() {
            return Err(ToolError::new(format!(
                "web_fetch: `{url}` answered HTTP {status}"
            )));
        }
        read(url, response).await.map(ToolOutput::text)
    }
}

fn parse(arguments: &Value) -> Result<Url, ToolError> {
    let args = Args::parse(NAME, arguments, KNOWN)?;
    let raw = args.string("url")?;
    let url = Url::parse(raw.trim())
        .map_err(|e| ToolError::new(format!("web_fetch: `{raw}` is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ToolError::new(format!(
            "web_fetch: only http and https URLs can be fetched, not `{}`",
            url.scheme()
        )));
    }
    Ok(url)
}

fn client() -> Result<reqwest::Client, ToolError> {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(FETCH_TIMEOUT_SECS))
        .no_proxy()
        .user_agent(concat!("codex-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ToolError::new(format!("web_fetch: cannot build the HTTP client: {e}")))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {FETCH_TIMEOUT_SECS} s")
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        e.to_string()
    }
}

fn redirect_error(url: &Url, response: &Response) -> ToolError {
    let target = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|loc| url.join(loc).ok());
    match target {
        Some(target) => ToolError::new(format!(
            "web_fetch: `{url}` redirects (HTTP {}) to `{target}`. Redirects are not followed, \
             because the new URL needs its own permission check: call web_fetch with that \
             URL if you need it",
            response.status().as_u16()
        )),
        None => ToolError::new(format!(
            "web_fetch: `{url}` answered HTTP {} without a usable Location",
            response.status()
        )),
    }
}

async fn read(url: Url, mut response: Response) -> Result<String, ToolError> {
    let kind = content_type(&response);
    if !is_text(&kind) {
        return Err(ToolError::new(format!(
            "web_fetch: `{url}` is `{kind}`, not text; only text and HTML can be shown"
        )));
    }
    let (body, cut) = body(&url, &mut response).await?;
    let text = String::from_utf8_lossy(&body);
    let text = if kind.contains("html") {
        html_text::to_text(&text)
    } else {
        text.into_owned()
    };
    Ok(render(&url, &kind, &text, cut))
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain")
        .to_ascii_lowercase()
}

fn is_text(kind: &str) -> bool {
    kind.starts_with("text/")
        || ["json", "xml", "javascript"]
            .iter()
            .any(|t| kind.contains(t))
}

/// The body, at most [`FETCH_MAX_BODY_BYTES`]; `true` if it was cut.
async fn body(url: &Url, response: &mut Response) -> Result<(Vec<u8>, bool), ToolError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ToolError::new(format!("web_fetch: reading `{url}`: {}", describe(&e))))?
    {
        let room = FETCH_MAX_BODY_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

fn render(url: &Url, kind: &str, text: &str, body_cut: bool) -> String {
    let mut out = format!("URL: {url}\nContent-Type: {kind}\n\n");
    let shown: String = text.chars().take(FETCH_MAX_TEXT_CHARS).collect();
    out.push_str(&shown);
    if shown.len() < text.len() || body_cut {
        out.push_str(&format!(
            "\n[output truncated: showing the first {} characters]\n",
            shown.chars().count()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    #[test]
    fn plan_is_the_normalised_url() {
        let f = Fixture::new();
        let plan = f
            .plan(&WebFetch, json!({"url": "HTTPS://Docs.RS/ractor/../tokio"}))
            .unwrap();
        assert_eq!(plan, [Access::Network("https://docs.rs/tokio".into())]);
    }

    #[test]
    fn other_schemes_and_garbage_are_refused() {
        let f = Fixture::new();
        for url in [
            "file:///etc/passwd",
            "ftp://x/y",
            "not a url",
            "javascript:alert(1)",
        ] {
            assert!(f.plan(&WebFetch, json!({ "url": url })).is_err(), "{url}");
        }
    }

    #[tokio::test]
    async fn invoke_refuses_a_url_the_plan_did_not_approve() {
        let f = Fixture::new();
        let approved = [Access::Network("https://docs.rs/".into())];
        let args = json!({"url": "https://evil.example/"});
        let err = WebFetch.invoke(args, &approved, &f.ctx).await.unwrap_err();
        assert!(err.0.contains("not approved"), "{err}");
    }
}
