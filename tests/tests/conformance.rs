//! PROTOCOL.md checked against the server (issue 16): every worked example
//! of the document — the `transcript` blocks of sections 2.1, 8, 9.4,
//! 10.5 and 11 and the `frame` blocks of section 9.2 — is parsed from the document
//! itself and walked byte for byte against a real `qchatd`, so the document
//! cannot drift from the server.
//!
//! The notation is the one PROTOCOL.md section 8.1 defines for its readers;
//! this file implements exactly that and nothing looser: every byte outside
//! a `<placeholder>` must be equal, a placeholder matches only what the
//! document says it does, and a name bound once must stay equal.

use std::collections::HashMap;

use anyhow::{Context as _, bail, ensure};
use qchat_tests::{RawConn, TestServer, within};
use serde_json::Value;

/// The document, as the test binary was built with it.
const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// Who talks on a connection of a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnNo(u8);

/// One line of a transcript (PROTOCOL.md §8.1).
#[derive(Debug)]
enum Step {
    /// `C: JSON` — one frame with this payload.
    Send(ConnNo, String),
    /// `C: bytes HEX` — these bytes on the control stream, as they are.
    SendBytes(ConnNo, Vec<u8>),
    /// `C: upload HEADER "TEXT" [trailer]` — an upload stream.
    Upload { conn: ConnNo, header: String, body: Vec<u8>, trailer: bool },
    /// `S: JSON` — the next frame's payload matches.
    Expect(ConnNo, String),
    /// `S: bytes HEX` — the next frame, length prefix included, is these bytes.
    ExpectBytes(ConnNo, Vec<u8>),
    /// `S: download HEADER "TEXT"` — a server-opened stream with this
    /// header frame, then these bytes, then FIN.
    Download { conn: ConnNo, header: String, body: Vec<u8> },
    /// `S: close CODE "REASON"` — the server closes the connection so,
    /// with no frame left unread before.
    Close { conn: ConnNo, code: u64, reason: String },
}

/// A fenced block of the document: its info string, its lines, and the
/// line it starts on (for messages).
struct Block<'a> {
    info: &'a str,
    lines: Vec<&'a str>,
    at: usize,
}

/// Every fenced (```` ``` ````) block of `doc`, in order.
fn blocks(doc: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut open: Option<Block<'_>> = None;
    for (n, line) in doc.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block { info: info.trim(), lines: Vec::new(), at: n + 1 })
            }
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some(b), None) => b.lines.push(line),
            (None, None) => {}
        }
    }
    out
}

/// Bytes written as two lower-case hex digits each, separated by spaces.
fn hex(text: &str) -> anyhow::Result<Vec<u8>> {
    text.split_whitespace()
        .map(|pair| {
            let digits =
                pair.len() == 2 && pair.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            ensure!(digits, "not a hex byte: {pair:?}");
            Ok(u8::from_str_radix(pair, 16)?)
        })
        .collect()
}

/// The first JSON value of `text` as written, and what follows it.
fn json_prefix(text: &str) -> anyhow::Result<(&str, &str)> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    values.next().context("a JSON value")?.context("valid JSON")?;
    let end = values.byte_offset();
    Ok((&text[..end], text[end..].trim_start()))
}

/// A JSON string literal at the start of `text`, decoded, and what follows.
fn string_prefix(text: &str) -> anyhow::Result<(String, &str)> {
    let (literal, rest) = json_prefix(text)?;
    let s: String = serde_json::from_str(literal).context("a JSON string")?;
    Ok((s, rest))
}

/// Parses one transcript block into steps.
fn transcript(block: &Block<'_>) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut in_comment = false;
    for (i, raw) in block.lines.iter().enumerate() {
        let at = || format!("PROTOCOL.md line {}", block.at + i + 1);
        let line = raw.trim_end();
        // A comment runs from a line starting with `(` to one ending with `)`.
        if in_comment || line.starts_with('(') {
            in_comment = !line.ends_with(')');
            continue;
        }
        if line.is_empty() {
            continue;
        }
        if line.starts_with(' ') {
            // Continues a `bytes` line: more hex, or an annotation under it.
            let more = line.trim_start();
            if more.starts_with('|') {
                continue;
            }
            match steps.last_mut() {
                Some(Step::SendBytes(_, b) | Step::ExpectBytes(_, b)) => {
                    b.extend(hex(more).with_context(at)?);
                }
                _ => bail!("{}: an indented line continues only a bytes line", at()),
            }
            continue;
        }
        let (who, rest) =
            line.split_once(": ").with_context(|| format!("{}: no `C:`/`S:`", at()))?;
        let (side, n) = who.split_at(1);
        let conn = ConnNo(if n.is_empty() { 1 } else { n.parse().with_context(at)? });
        let step = match (side, rest.split_once(' ')) {
            ("C", Some(("bytes", h))) => Step::SendBytes(conn, hex(h).with_context(at)?),
            ("S", Some(("bytes", h))) => Step::ExpectBytes(conn, hex(h).with_context(at)?),
            ("C", Some(("upload", spec))) => {
                let (header, rest) = json_prefix(spec).with_context(at)?;
                let (body, rest) = string_prefix(rest).with_context(at)?;
                ensure!(rest.is_empty() || rest == "trailer", "{}: after the text: {rest:?}", at());
                Step::Upload {
                    conn,
                    header: header.to_owned(),
                    body: body.into_bytes(),
                    trailer: rest == "trailer",
                }
            }
            ("S", Some(("download", spec))) => {
                let (header, rest) = json_prefix(spec).with_context(at)?;
                let (body, rest) = string_prefix(rest).with_context(at)?;
                ensure!(rest.is_empty(), "{}: after the text: {rest:?}", at());
                Step::Download { conn, header: header.to_owned(), body: body.into_bytes() }
            }
            ("S", Some(("close", spec))) => {
                let (code, reason) = spec.split_once(' ').with_context(at)?;
                let (reason, rest) = string_prefix(reason).with_context(at)?;
                ensure!(rest.is_empty(), "{}: after the reason: {rest:?}", at());
                Step::Close { conn, code: code.parse().with_context(at)?, reason }
            }
            ("C", _) => Step::Send(conn, rest.to_owned()),
            ("S", _) => Step::Expect(conn, rest.to_owned()),
            _ => bail!("{}: lines start with C or S", at()),
        };
        steps.push(step);
    }
    Ok(steps)
}

/// Placeholders bound so far: name → the text it stood for.
#[derive(Default)]
struct Bindings(HashMap<String, String>);

/// A piece of a template: literal text, or `<name>`, inside a JSON string
/// or outside one.
enum Piece<'a> {
    Text(&'a str),
    Hole { name: &'a str, in_string: bool },
}

/// Splits a template at its placeholders: `<` followed by one or more of
/// `a-z`, `0-9`, `_` and then `>`. Whether a placeholder stands inside a
/// JSON string follows from the unescaped quotes before it.
fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let (mut start, mut in_string, mut escaped) = (0, false, false);
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'<' {
            let name_len = bytes[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || **c == b'_')
                .count();
            if name_len > 0 && bytes.get(i + 1 + name_len) == Some(&b'>') {
                out.push(Piece::Text(&template[start..i]));
                out.push(Piece::Hole { name: &template[i + 1..i + 1 + name_len], in_string });
                i += name_len + 2;
                start = i;
                escaped = false;
                continue;
            }
        }
        if in_string && escaped {
            escaped = false;
        } else if in_string && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            in_string = !in_string;
        }
        i += 1;
    }
    out.push(Piece::Text(&template[start..]));
    out
}

impl Bindings {
    /// A client line's bytes: every placeholder must be bound already.
    fn fill(&self, template: &str) -> anyhow::Result<String> {
        let mut out = String::new();
        for piece in pieces(template) {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole { name, .. } => out.push_str(
                    self.0.get(name).with_context(|| format!("<{name}> used before bound"))?,
                ),
            }
        }
        Ok(out)
    }

    /// Matches a server frame against a template, binding new names. A
    /// bound name is literal text. A new name matches, outside a string,
    /// one or more decimal digits; inside a string, the shortest non-empty
    /// run of characters other than `"` and `\` after which the rest of
    /// the template's text follows.
    fn matches(&mut self, template: &str, actual: &str) -> anyhow::Result<()> {
        let mut rest = actual;
        let mut new = Vec::new();
        let pieces = pieces(template);
        for (k, piece) in pieces.iter().enumerate() {
            match piece {
                Piece::Text(t) => {
                    rest = rest.strip_prefix(t).with_context(|| {
                        format!("expected {t:?} at {:?}", &rest[..rest.len().min(80)])
                    })?;
                }
                Piece::Hole { name, in_string } => {
                    let known = self.0.get(*name).or_else(|| {
                        new.iter().find(|(n, _)| n == name).map(|(_, v): &(&str, String)| v)
                    });
                    if let Some(v) = known {
                        rest = rest.strip_prefix(v.as_str()).with_context(|| {
                            format!("<{name}> is {v:?}, got {:?}", &rest[..rest.len().min(80)])
                        })?;
                        continue;
                    }
                    let len = if *in_string {
                        let next = match pieces.get(k + 1) {
                            Some(Piece::Text(t)) if !t.is_empty() => *t,
                            _ => bail!("<{name}> in a string must be followed by text"),
                        };
                        let run = rest.find(['"', '\\']).unwrap_or(rest.len());
                        (1..=run)
                            .find(|&n| rest[n..].starts_with(next))
                            .with_context(|| format!("<{name}>: no match in {rest:?}"))?
                    } else {
                        rest.bytes().take_while(u8::is_ascii_digit).count()
                    };
                    ensure!(len > 0, "<{name}>: nothing to match at {rest:?}");
                    new.push((*name, rest[..len].to_owned()));
                    rest = &rest[len..];
                }
            }
        }
        ensure!(rest.is_empty(), "unexpected trailing {rest:?}");
        for (name, value) in new {
            self.0.insert(name.to_owned(), value);
        }
        Ok(())
    }
}

/// The connections of one transcript, opened on first use.
struct Conns<'s> {
    server: &'s TestServer,
    open: HashMap<ConnNo, RawConn>,
    closed: Vec<ConnNo>,
}

impl Conns<'_> {
    async fn get(&mut self, n: ConnNo) -> anyhow::Result<&mut RawConn> {
        ensure!(!self.closed.contains(&n), "connection {} is closed", n.0);
        if !self.open.contains_key(&n) {
            let c = RawConn::connect(self.server.addr, &self.server.data_dir()).await?;
            self.open.insert(n, c);
        }
        self.open.get_mut(&n).context("just opened")
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

async fn walk(server: &TestServer, steps: &[Step], bound: &mut Bindings) -> anyhow::Result<()> {
    let mut conns = Conns { server, open: HashMap::new(), closed: Vec::new() };
    for (i, step) in steps.iter().enumerate() {
        let at = || format!("step {} ({step:?})", i + 1);
        match step {
            Step::Send(n, template) => {
                let payload = bound.fill(template).with_context(at)?;
                let c = conns.get(*n).await?;
                c.write_raw(&frame(payload.as_bytes())).await.with_context(at)?;
            }
            Step::SendBytes(n, bytes) => conns.get(*n).await?.write_raw(bytes).await?,
            Step::Expect(n, template) => {
                let c = conns.get(*n).await?;
                let got = within("a frame", c.read_payload()).await.with_context(at)?;
                let text = std::str::from_utf8(&got).with_context(at)?;
                bound.matches(template, text).with_context(|| format!("{}: got {text}", at()))?;
            }
            Step::ExpectBytes(n, bytes) => {
                let c = conns.get(*n).await?;
                let got = frame(&within("a frame", c.read_payload()).await.with_context(at)?);
                ensure!(&got == bytes, "{}: got {}", at(), String::from_utf8_lossy(&got));
            }
            Step::Upload { conn, header, body, trailer } => {
                let header = bound.fill(header).with_context(at)?;
                let c = conns.get(*conn).await?;
                let mut s = c.conn.open_uni().await?;
                s.write_all(&frame(header.as_bytes())).await?;
                s.write_all(body).await?;
                if *trailer {
                    s.write_all(blake3::hash(body).as_bytes()).await?;
                }
                s.finish()?;
            }
            Step::Download { conn, header, body } => {
                let c = conns.get(*conn).await?;
                let mut s =
                    within("a download stream", c.conn.accept_uni()).await.with_context(at)?;
                let got = within("the download", s.read_to_end(1 << 20)).await.with_context(at)?;
                ensure!(got.len() >= 4, "{}: {} bytes", at(), got.len());
                let len = u32::from_be_bytes([got[0], got[1], got[2], got[3]]) as usize;
                ensure!(got.len() >= 4 + len, "{}: a cut header", at());
                let text = std::str::from_utf8(&got[4..4 + len]).with_context(at)?;
                bound.matches(header, text).with_context(|| format!("{}: got {text}", at()))?;
                ensure!(&got[4 + len..] == body.as_slice(), "{}: other bytes", at());
            }
            Step::Close { conn, code, reason } => {
                let c = conns.get(*conn).await?;
                // Nothing was sent that the transcript does not show: the
                // control stream ends (or the connection does) next.
                let left = within("the end of the control stream", c.read_payload()).await;
                ensure!(left.is_err(), "{}: an unread frame {left:?}", at());
                let how = within("the close", c.conn.closed()).await;
                match &how {
                    quinn::ConnectionError::ApplicationClosed(close) => ensure!(
                        close.error_code.into_inner() == *code && close.reason == reason.as_bytes(),
                        "{}: closed with {how}",
                        at()
                    ),
                    other => bail!("{}: closed with {other}", at()),
                }
                conns.closed.push(*conn);
            }
        }
    }
    let open: Vec<u8> =
        conns.open.keys().filter(|n| !conns.closed.contains(n)).map(|n| n.0).collect();
    ensure!(
        open.is_empty(),
        "the transcript leaves connections {open:?} open; end each with `S: close`"
    );
    Ok(())
}

/// A `frame` block (§9.2): hex lines (annotations under them start with
/// `|`) and a line `= JSON`; the hex must be exactly that JSON framed.
fn check_frame_block(block: &Block<'_>) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    let mut payload = None;
    for line in &block.lines {
        let line = line.trim();
        if let Some(json) = line.strip_prefix("= ") {
            payload = Some(json);
        } else if !line.is_empty() && !line.starts_with('|') {
            bytes.extend(hex(line)?);
        }
    }
    let payload = payload.context("a `= JSON` line")?;
    serde_json::from_str::<Value>(payload).context("valid JSON")?;
    ensure!(bytes == frame(payload.as_bytes()), "the hex is not {payload} framed");
    Ok(())
}

#[tokio::test]
async fn protocol_md_worked_examples_hold_byte_for_byte() -> anyhow::Result<()> {
    let all = blocks(DOC);
    let frames: Vec<_> = all.iter().filter(|b| b.info == "frame").collect();
    for b in &frames {
        check_frame_block(b)
            .with_context(|| format!("frame block at PROTOCOL.md line {}", b.at))?;
    }
    let transcripts: Vec<_> = all.iter().filter(|b| b.info == "transcript").collect();
    // Guards the parser: the document's examples must all be found.
    ensure!(transcripts.len() >= 3 && frames.len() >= 2, "examples not found");

    // The starting state the document gives (§8.1).
    let s = TestServer::start().await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", "correct horse").await?;
    s.user("acme", "bob", "battery staple").await?;
    s.room("acme", "general").await?;
    let mut bound = Bindings::default();
    let mut steps = 0;
    for b in transcripts {
        let parsed = transcript(b)?;
        steps += parsed.len();
        walk(&s, &parsed, &mut bound)
            .await
            .with_context(|| format!("transcript at PROTOCOL.md line {}", b.at))?;
    }
    ensure!(steps >= 40, "only {steps} steps found");
    eprintln!("PROTOCOL.md: {steps} transcript steps and {} frames hold", frames.len());
    Ok(())
}

#[test]
fn placeholders_match_only_what_the_document_says() {
    let mut b = Bindings::default();
    b.matches(
        r#"{"a":<n>,"t":"x<tok>y","v":"qchatd/<ver>"}"#,
        r#"{"a":42,"t":"xABCy","v":"qchatd/0.1.0"}"#,
    )
    .expect("matches");
    assert_eq!(b.0["n"], "42");
    assert_eq!(b.0["tok"], "ABC");
    // Bound names are literal from then on.
    assert!(b.matches(r#"{"a":<n>}"#, r#"{"a":43}"#).is_err());
    assert!(b.matches(r#"{"a":<n>}"#, r#"{"a":42}"#).is_ok());
    // A number placeholder takes digits only; a string one never crosses a quote.
    assert!(b.matches(r#"{"b":<m>}"#, r#"{"b":"1"}"#).is_err());
    assert!(b.matches(r#"{"c":"<s>"}"#, r#"{"c":"a","d":"b"}"#).is_err());
    assert!(b.matches(r#"{"c":"<s>"}"#, r#"{"c":""}"#).is_err(), "never empty");
    // Everything else is compared byte for byte.
    assert!(b.matches(r#"{"a":42}"#, r#"{"a": 42}"#).is_err());
    assert_eq!(b.fill(r#"{"token":"<tok>"}"#).expect("bound"), r#"{"token":"ABC"}"#);
    assert!(b.fill("<unbound>").is_err());
}
