//! HTML to readable text for `web_fetch`: a small tag stripper, not a browser.
//!
//! Chosen over an HTML engine crate to keep the build lean: the model needs the words,
//! headings, list items and code blocks of a documentation page, not its layout. Scripts,
//! styles, comments and `<head>` metadata (except the title) are dropped; block elements
//! start new lines; `<li>` becomes `- `; whitespace is collapsed except inside `<pre>`;
//! the common entities and numeric character references are decoded. Malformed HTML gives
//! imperfect text, never an error.

/// Elements whose content is dropped.
const SKIPPED: &[&str] = &["script", "style", "noscript", "template", "svg"];
/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "header",
    "footer",
    "ul",
    "ol",
    "table",
    "pre",
    "blockquote",
    "dt",
    "dd",
    "hr",
    "title",
    "nav",
    "main",
    "details",
    "summary",
];

/// The readable text of `html`.
pub fn to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    let mut pre = 0usize;
    while let Some(lt) = rest.find('<') {
        push_text(&mut out, &rest[..lt], pre > 0);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |i| &after[i + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let (name, closing) = tag_name(tag);
        if !closing && SKIPPED.contains(&name.as_str()) {
            rest = skip_element(rest, &name);
            continue;
        }
        if name == "pre" {
            pre = if closing {
                pre.saturating_sub(1)
            } else {
                pre + 1
            };
        }
        if name == "li" && !closing {
            out.push_str("\n- ");
        } else if BLOCKS.contains(&name.as_str()) {
            out.push('\n');
        } else if name == "td" || name == "th" {
            out.push(' ');
        }
    }
    push_text(&mut out, rest, pre > 0);
    tidy(&out)
}

/// `/a href=...` → (`a`, true).
fn tag_name(tag: &str) -> (String, bool) {
    let (closing, body) = match tag.strip_prefix('/') {
        Some(b) => (true, b),
        None => (false, tag),
    };
    let name: String = body
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (name.to_ascii_lowercase(), closing)
}

/// The input after `</name>` (case-insensitive), or nothing if it never closes.
fn skip_element<'a>(rest: &'a str, name: &str) -> &'a str {
    let close = format!("</{name}");
    let lower = rest.to_ascii_lowercase();
    match lower.find(&close) {
        Some(i) => rest[i..].find('>').map_or("", |j| &rest[i + j + 1..]),
        None => "",
    }
}

fn push_text(out: &mut String, text: &str, keep_space: bool) {
    let decoded = decode_entities(text);
    if keep_space {
        out.push_str(&decoded);
        return;
    }
    for (i, word) in decoded.split_whitespace().enumerate() {
        let starts_with_space = decoded.starts_with(char::is_whitespace);
        if (i > 0 || starts_with_space) && !out.ends_with([' ', '\n']) && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if decoded.ends_with(char::is_whitespace) && !decoded.trim().is_empty() {
        out.push(' ');
    }
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| entity(&rest[1..semi]).map(|c| (c, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    let numeric = |digits: &str, radix| {
        u32::from_str_radix(digits, radix)
            .ok()
            .and_then(char::from_u32)
    };
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" | "#39" => Some('\''),
        "nbsp" => Some(' '),
        _ => match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
            Some(hex) => numeric(hex, 16),
            None => name.strip_prefix('#').and_then(|d| numeric(d, 10)),
        },
    }
}

/// Trailing spaces removed from lines; at most one blank line in a row.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        blank = if line.is_empty() { blank + 1 } else { 0 };
        if blank < 2 {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim().to_owned() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_scripts_and_comments() {
        let html = "<html><head><title>Doc</title><style>p{}</style><script>alert(1)</script>\
                    </head><body><!-- hidden --><h1>Title</h1><p>Hello <b>world</b>.</p>\
                    <ul><li>one</li><li>two</li></ul></body></html>";
        assert_eq!(
            to_text(html),
            "Doc\n\nTitle\n\nHello world.\n\n- one\n- two\n"
        );
    }

    #[test]
    fn decodes_entities_and_keeps_pre_formatting() {
        let html = "<p>a &lt;b&gt; &amp; &#65;&#x42; &bogus; &</p><pre>fn x() {\n    1\n}</pre>";
        assert_eq!(
            to_text(html),
            "a <b> & AB &bogus; &\n\nfn x() {\n    1\n}\n"
        );
    }

    #[test]
    fn malformed_html_gives_text_without_markup_and_never_panics() {
        for (html, text) in [
            ("<", ""),
            ("<p", ""),
            ("<script>never closed", ""),
            ("&#xFFFFFFFF;", "&#xFFFFFFFF;"),
            ("<!-- open", ""),
            ("é<é>é", "éé"),
        ] {
            assert_eq!(to_text(html).trim(), text, "{html:?}");
        }
    }
}
