//! Reading audit logs as they are shipped: one event per line (log files, CloudWatch exports),
//! JSON arrays, `EventList`s (webhook backend), CloudWatch Logs envelopes (`logEvents[].message`
//! from subscriptions, `events[].message` from `aws logs filter-log-events`), each optionally
//! gzipped. Streaming: line input is never held in memory whole.

use std::io::{BufRead, BufReader, Read};

use serde_json::Value;
use serde_json::value::RawValue;

/// Input errors.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("not JSON audit events: {0}")]
    Json(String),
}

/// Calls `each` with the text of every event in `reader` and its line number (when the input is
/// one event per line); `each` returns false for text that is not an audit event, which is then
/// searched for an envelope.
pub fn for_each_event(
    reader: impl Read,
    mut each: impl FnMut(&str, Option<usize>) -> bool,
) -> Result<(), InputError> {
    // 128 KiB: large enough for few reads, small enough to stay in the cache beside the parsed
    // batch until its lines are analysed (1 MiB measured slower).
    let mut buffered = BufReader::with_capacity(1 << 17, reader);
    let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        let inner = flate2::read::MultiGzDecoder::new(buffered);
        return from_text(BufReader::with_capacity(1 << 20, inner), &mut each);
    }
    from_text(buffered, &mut each)
}

fn from_text(
    mut reader: impl BufRead,
    each: &mut impl FnMut(&str, Option<usize>) -> bool,
) -> Result<(), InputError> {
    let mut line = String::new();
    let mut number = 0;
    // Peek the first non-empty line: a complete JSON value means line-delimited input.
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if !line.trim().is_empty() {
            break;
        }
    }
    let first = line.trim();
    if first.starts_with('[') || serde_json::from_str::<&RawValue>(first).is_err() {
        // A JSON array, or one document spread over lines: read it whole.
        let mut rest = String::new();
        reader.read_to_string(&mut rest)?;
        let whole = format!("{line}{rest}");
        match serde_json::from_str::<Value>(&whole) {
            Ok(doc) => visit(&doc, &mut |t| each(t, None)),
            Err(e) if first.starts_with('[') => return Err(InputError::Json(e.to_string())),
            // Not one document either: one event per line after all, the first one damaged
            // (a truncated write). It is skipped like any other bad line, not fatal.
            Err(_) => {
                for (i, text) in whole.lines().enumerate() {
                    one_line(text.trim(), number + i, each);
                }
            }
        }
        return Ok(());
    }
    one_line(line.trim(), number, each);
    // simdutf8: validating each line is otherwise a visible share of the per-event cost.
    for_each_line(reader, number + 1, |bytes, number| match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => one_line(text.trim(), number, each),
        // The API server writes valid UTF-8 (Go replaces invalid bytes with U+FFFD); a damaged
        // line is read the same way rather than ending the run.
        Err(_) => one_line(String::from_utf8_lossy(bytes).trim(), number, each),
    })?;
    Ok(())
}

/// Calls `each` with every line of `reader` (without its newline) and its number, starting at
/// `number`. Lines are found in the reader's buffer with a SIMD newline search and handed out
/// in place; only a line that spans two buffer fills is copied.
fn for_each_line(
    mut reader: impl BufRead,
    mut number: usize,
    mut each: impl FnMut(&[u8], usize),
) -> std::io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            if !carry.is_empty() {
                each(&carry, number);
            }
            return Ok(());
        }
        let filled = chunk.len();
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', chunk) {
            let piece = chunk.get(start..newline).unwrap_or_default();
            if carry.is_empty() {
                each(piece, number);
            } else {
                carry.extend_from_slice(piece);
                each(&carry, number);
                carry.clear();
            }
            number += 1;
            start = newline + 1;
        }
        carry.extend_from_slice(chunk.get(start..).unwrap_or_default());
        reader.consume(filled);
    }
}

/// The events inside `text` if it is an envelope of events (`EventList`, CloudWatch): for a
/// reader that has already found `text` is not an event itself.
pub fn for_each_enveloped(text: &str, mut each: impl FnMut(&str) -> bool) {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        visit_envelope(&v, &mut each);
    }
}

/// One line: an event, or an envelope of events (`EventList`, CloudWatch), or something to skip.
fn one_line(text: &str, number: usize, each: &mut impl FnMut(&str, Option<usize>) -> bool) {
    if !text.is_empty()
        && !each(text, Some(number))
        && let Ok(v) = serde_json::from_str::<Value>(text)
    {
        visit_envelope(&v, &mut |t| each(t, Some(number)));
    }
}

fn visit(doc: &Value, each: &mut impl FnMut(&str) -> bool) {
    match doc {
        Value::Array(items) => items.iter().for_each(|i| visit(i, each)),
        Value::Object(_) => {
            let text = doc.to_string();
            if !each(&text) {
                visit_envelope(doc, each);
            }
        }
        _ => {}
    }
}

/// `EventList.items`, `logEvents[].message`, `events[].message`.
fn visit_envelope(doc: &Value, each: &mut impl FnMut(&str) -> bool) {
    if let Some(items) = doc.get("items").and_then(Value::as_array) {
        items.iter().for_each(|i| visit(i, each));
    }
    for key in ["logEvents", "events"] {
        for entry in doc.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(message) = entry.get("message").and_then(Value::as_str) {
                each(message.trim());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: &str = r#"{"kind":"Event","auditID":"1","verb":"get","stage":"ResponseComplete"}"#;
    const E2: &str = r#"{"kind":"Event","auditID":"2","verb":"list","stage":"ResponseComplete"}"#;

    fn collect(input: &[u8]) -> Vec<String> {
        let mut seen = Vec::new();
        for_each_event(input, |t, _| {
            let kind = serde_json::from_str::<Value>(t).ok().and_then(|v| v.get("kind").cloned());
            let is_event = kind.as_ref().and_then(Value::as_str) == Some("Event");
            if is_event {
                seen.push(t.to_owned());
            }
            is_event
        })
        .unwrap();
        seen
    }

    #[test]
    fn lines_across_buffer_fills_crlf_damage_and_no_final_newline() {
        // A 7-byte buffer makes every line span several fills.
        let input = format!("{E1}\r\n\n{E2}\n{{\"kind\":\"Event\",\"verb\":\"get\",\"x\":\"\u{1F600}\"}}\n")
            .into_bytes();
        let mut damaged = input.clone();
        damaged.extend_from_slice(b"{\"kind\":\"Event\",\"verb\":\"get\",\"x\":\"\xff\"}");
        let mut lines = Vec::new();
        for_each_line(BufReader::with_capacity(7, damaged.as_slice()), 1, |bytes, n| {
            lines.push((n, bytes.to_vec()))
        })
        .unwrap();
        assert_eq!(lines.len(), 5, "no final newline: the last line still counts");
        assert_eq!(lines[0], (1, format!("{E1}\r").into_bytes()));
        assert_eq!(lines[1], (2, vec![]));
        assert_eq!(lines[4].0, 5);
        // Through the event reader: CRLF trimmed, the invalid byte read as U+FFFD, numbers kept.
        let mut seen = Vec::new();
        for_each_event(damaged.as_slice(), |t, n| {
            seen.push((n, t.to_owned()));
            true
        })
        .unwrap();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0], (Some(1), E1.to_owned()));
        assert_eq!(seen[1].0, Some(3));
        assert!(seen[3].1.contains('\u{FFFD}'), "{}", seen[3].1);
    }

    #[test]
    fn every_shipping_format() {
        assert_eq!(collect(format!("{E1}\n\n{E2}\n").as_bytes()).len(), 2, "json lines");
        assert_eq!(collect(format!("[{E1},\n{E2}]").as_bytes()).len(), 2, "array");
        assert_eq!(
            collect(format!("{{\"kind\":\"EventList\",\"items\":[{E1},{E2}]}}\n").as_bytes()).len(),
            2,
            "EventList"
        );
        let cw = serde_json::json!({"messageType": "DATA_MESSAGE", "logEvents": [{"id": "1", "message": E1}, {"id": "2", "message": E2}]});
        assert_eq!(collect(cw.to_string().as_bytes()).len(), 2, "CloudWatch subscription");
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(E1).unwrap()).unwrap();
        assert_eq!(collect(pretty.as_bytes()).len(), 1, "pretty-printed");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, format!("{E1}\n{E2}\n").as_bytes()).unwrap();
        assert_eq!(collect(&gz.finish().unwrap()).len(), 2, "gzip");
        assert!(collect(b"").is_empty());
        let truncated = format!("{{\"kind\":\"Event\",\"audi\n{E1}\n{E2}\n");
        assert_eq!(collect(truncated.as_bytes()).len(), 2, "a damaged first line is skipped");
    }
}
