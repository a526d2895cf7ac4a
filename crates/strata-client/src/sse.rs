//! A small incremental parser of server-sent events (the `text/event-stream`
//! format of the WHATWG HTML standard), enough for `/subscribe/all`: fields
//! `event`, `id` and `data` (several `data` lines join with `\n`), comments
//! (`:` lines) and `retry` ignored, lines ended by `\n` or `\r\n`, a message
//! dispatched at a blank line when it has data. Used by the client
//! (`strata tail --server`) and by `strata bench http-append`.

use std::fmt;

/// Longest line the parser buffers, and longest message (its `data` lines
/// together) it gathers, in bytes (an event's JSON is far smaller; the
/// server's own body limit is 16 MiB).
pub const MAX_SSE_LINE_BYTES: usize = 16 * 1024 * 1024;

/// One dispatched message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseMessage {
    /// The `event` field; `None` for the default type (`message`).
    pub event: Option<String>,
    /// The `id` field of this message, if it had one.
    pub id: Option<String>,
    /// The `data` lines, joined with `\n`.
    pub data: String,
}

/// Why a stream could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseError {
    /// A line longer than [`MAX_SSE_LINE_BYTES`].
    LineTooLong {
        /// Bytes buffered without a line end.
        bytes: usize,
    },
    /// A line that is not UTF-8.
    NotUtf8,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::LineTooLong { bytes } => write!(
                f,
                "an event-stream line is over {MAX_SSE_LINE_BYTES} bytes ({bytes} buffered without a line end)"
            ),
            SseError::NotUtf8 => f.write_str("an event-stream line is not UTF-8"),
        }
    }
}

impl std::error::Error for SseError {}

/// The fields of the message being read.
#[derive(Debug, Default)]
struct Pending {
    event: Option<String>,
    id: Option<String>,
    data: String,
    has_data: bool,
}

/// Turns chunks of an event stream into messages.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    pending: Pending,
}

impl SseParser {
    /// A parser at the start of a stream.
    ///
    /// ```
    /// let mut parser = strata_client::sse::SseParser::new();
    /// let mut out = Vec::new();
    /// parser.feed(b"data: hi\n\n", &mut out).unwrap();
    /// assert_eq!(out[0].data, "hi");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `chunk` (any split of the stream) and pushes the messages it
    /// completes onto `out`.
    ///
    /// ```
    /// let mut parser = strata_client::sse::SseParser::new();
    /// let mut out = Vec::new();
    /// // A message split across chunks completes on its blank line.
    /// parser.feed(b"event: caught_up\nid: 7\nda", &mut out).unwrap();
    /// assert!(out.is_empty());
    /// parser.feed(b"ta: {}\n\n", &mut out).unwrap();
    /// assert_eq!(out[0].event.as_deref(), Some("caught_up"));
    /// assert_eq!(out[0].id.as_deref(), Some("7"));
    /// ```
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseMessage>) -> Result<(), SseError> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(off) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + off;
            let mut line = &self.buf[start..end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
            if let Some(m) = self.pending.line(line) {
                out.push(m);
            }
            if self.pending.data.len() > MAX_SSE_LINE_BYTES {
                return Err(SseError::LineTooLong {
                    bytes: self.pending.data.len(),
                });
            }
            start = end + 1;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_SSE_LINE_BYTES {
            return Err(SseError::LineTooLong {
                bytes: self.buf.len(),
            });
        }
        Ok(())
    }
}

impl Pending {
    /// Takes one line; returns a message at a blank line that ends one.
    fn line(&mut self, line: &str) -> Option<SseMessage> {
        if line.is_empty() {
            let p = std::mem::take(self);
            return p.has_data.then_some(SseMessage {
                event: p.event,
                id: p.id,
                data: p.data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()).filter(|e| e != "message"),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(stream: &[u8], piece: usize) -> Vec<SseMessage> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for chunk in stream.chunks(piece) {
            p.feed(chunk, &mut out).unwrap();
        }
        out
    }

    const STREAM: &str = "id: 17\ndata: {\"position\":17}\n\n\
        : heartbeat\n\n\
        event: caught_up\r\nid: 17\r\ndata: {\"position\": 17}\r\n\r\n\
        data: line one\ndata:line two\nretry: 100\n\n\
        event: error\ndata: {\"error\":\"slow_consumer\"}\n\n\
        id: 18\ndata: {\"position\":18}\n";

    #[test]
    fn parses_events_comments_and_multi_line_data_in_any_split() {
        let want = vec![
            SseMessage {
                event: None,
                id: Some("17".into()),
                data: "{\"position\":17}".into(),
            },
            SseMessage {
                event: Some("caught_up".into()),
                id: Some("17".into()),
                data: "{\"position\": 17}".into(),
            },
            SseMessage {
                event: None,
                id: None,
                data: "line one\nline two".into(),
            },
            SseMessage {
                event: Some("error".into()),
                id: None,
                data: "{\"error\":\"slow_consumer\"}".into(),
            },
        ];
        for piece in [1, 2, 3, 7, 64, STREAM.len()] {
            // The last message has no blank line yet: not dispatched.
            assert_eq!(parse_in_pieces(STREAM.as_bytes(), piece), want, "{piece}");
        }
    }

    #[test]
    fn the_rest_of_a_message_completes_it_later() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"id: 18\ndata: {\"posi", &mut out).unwrap();
        assert!(out.is_empty());
        p.feed(b"tion\":18}\n", &mut out).unwrap();
        assert!(out.is_empty());
        p.feed(b"\n", &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id.as_deref(), Some("18"));
        assert_eq!(out[0].data, "{\"position\":18}");
        assert_eq!(out[0].event, None);
    }

    #[test]
    fn a_message_without_data_is_not_dispatched_and_message_is_the_default_type() {
        let out = parse_in_pieces(b"event: x\nid: 3\n\nevent: message\ndata: a\n\n", 5);
        assert_eq!(
            out,
            vec![SseMessage {
                event: None,
                id: None,
                data: "a".into()
            }]
        );
    }

    #[test]
    fn rejects_bad_utf8_and_endless_lines() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        assert_eq!(
            p.feed(b"data: \xff\xfe\n", &mut out),
            Err(SseError::NotUtf8)
        );
        let mut p = SseParser::new();
        let big = vec![b'x'; MAX_SSE_LINE_BYTES + 1];
        assert!(matches!(
            p.feed(&big, &mut out),
            Err(SseError::LineTooLong { .. })
        ));
    }
}
