//! A lean reader of the server's event stream for the `http-append`
//! subscriber: it finds each message's `event`, `id` and `data` fields as
//! slices of the bytes received, without copying every message into strings
//! or checking its UTF-8, so that the load generator's own parsing is not
//! what bounds a run with the subscriber on.
//!
//! It reads the event-stream format as the server writes it: lines end with
//! `\n` (a `\r` before it is dropped), a blank line ends a message, lines
//! starting with `:` are comments, one space after a field's colon is not
//! part of its value, several `data` lines join with `\n`, and a message
//! without `data` is not dispatched.

use std::borrow::Cow;

use crate::BenchError;

/// Most bytes buffered without the blank line that ends a message (the
/// client's own limit for an event-stream line).
pub(super) const MAX_MESSAGE_BYTES: usize = strata_client::sse::MAX_SSE_LINE_BYTES;

/// One message, borrowed from the scanner's buffer.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Message<'a> {
    /// The `event` field; `None` for the default type (`message`).
    pub event: Option<&'a [u8]>,
    /// The `id` field.
    pub id: Option<&'a [u8]>,
    /// The `data` lines, joined with `\n`.
    pub data: Cow<'a, [u8]>,
}

/// Turns chunks of an event stream (split anywhere) into [`Message`]s.
#[derive(Debug, Default)]
pub(super) struct SseScanner {
    /// Bytes of the message not yet ended.
    buf: Vec<u8>,
}

impl SseScanner {
    /// Scans `chunk` and calls `each` with every message it completes, in
    /// order; stops at the first error `each` returns.
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        mut each: impl FnMut(Message<'_>) -> Result<(), BenchError>,
    ) -> Result<(), BenchError> {
        self.buf.extend_from_slice(chunk);
        let mut block = 0;
        let mut line = 0;
        while let Some(off) = self.buf[line..].iter().position(|&b| b == b'\n') {
            let end = line + off;
            let text = strip_cr(&self.buf[line..end]);
            if text.is_empty() {
                if let Some(m) = message(&self.buf[block..line]) {
                    each(m)?;
                }
                block = end + 1;
            }
            line = end + 1;
        }
        self.buf.drain(..block);
        if self.buf.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "an event-stream message is over {MAX_MESSAGE_BYTES} bytes ({} buffered without its end)",
                self.buf.len()
            )
            .into());
        }
        Ok(())
    }
}

/// The line without the `\r` of a `\r\n` ending.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The message of one block of lines (each ended by `\n`); `None` when it
/// has no `data` field.
fn message(block: &[u8]) -> Option<Message<'_>> {
    let mut event = None;
    let mut id = None;
    let mut data: Option<Cow<'_, [u8]>> = None;
    for line in block.split(|&b| b == b'\n').map(strip_cr) {
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &line[line.len()..]),
        };
        match field {
            b"event" => event = Some(value).filter(|e| *e != b"message"),
            b"id" if !value.contains(&0) => id = Some(value),
            b"data" => {
                data = Some(match data {
                    None => Cow::Borrowed(value),
                    Some(before) => {
                        let mut joined = before.into_owned();
                        joined.push(b'\n');
                        joined.extend_from_slice(value);
                        Cow::Owned(joined)
                    }
                })
            }
            _ => {}
        }
    }
    Some(Message {
        event,
        id,
        data: data?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use strata_client::sse::SseParser;

    use super::*;

    /// What the scanner makes of `chunks`, as the client's parser shows it.
    fn scanned(chunks: &[&[u8]]) -> Vec<(Option<String>, Option<String>, String)> {
        let mut scanner = SseScanner::default();
        let mut out = Vec::new();
        for chunk in chunks {
            scanner
                .feed(chunk, |m| {
                    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                    out.push((m.event.map(text), m.id.map(text), text(&m.data)));
                    Ok(())
                })
                .unwrap();
        }
        out
    }

    #[test]
    fn it_reads_what_the_client_parser_reads() {
        let stream: &[u8] = b": heartbeat\n\nid: 7\ndata: {\"seq\":1}\n\n\
            event: caught_up\r\nid: 7\r\ndata: {}\r\n\r\n\
            data: a\ndata:b\ndata\n\nevent: error\ndata: {\"error\":\"slow_consumer\"}\n\n\
            id: 9\n\nid: 10\ndata: x: y\n\n";
        let mut parser = SseParser::new();
        let mut expected = Vec::new();
        parser.feed(stream, &mut expected).unwrap();
        let expected: Vec<_> = expected
            .into_iter()
            .map(|m| (m.event, m.id, m.data))
            .collect();
        assert_eq!(expected.len(), 5);
        // Whole, and split at every byte.
        assert_eq!(scanned(&[stream]), expected);
        for at in 0..stream.len() {
            assert_eq!(
                scanned(&[&stream[..at], &stream[at..]]),
                expected,
                "split at {at}"
            );
        }
    }

    #[test]
    fn a_message_without_an_end_is_refused_past_the_limit() {
        let mut scanner = SseScanner::default();
        let line = vec![b'x'; MAX_MESSAGE_BYTES + 1];
        let err = scanner.feed(&line, |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("over"), "{err}");
    }
}
