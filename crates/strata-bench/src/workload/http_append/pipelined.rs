//! The lean HTTP/1.1 client of `http-append --pipeline DEPTH`.
//!
//! Each writer owns one TCP connection and keeps up to `DEPTH` append
//! requests written ahead of their answers (HTTP/1.1 pipelining: the server
//! answers them in order). The requests of one refill are written with one
//! `write_all` (at most [`MAX_REFILL_BYTES`] of them, and always at least
//! one); answers are parsed from one read buffer with `httparse`, and every
//! complete answer in it is taken before the next read. There is no
//! connection pool, no per-request future stack and no header map: the load
//! generator shares the machine with the server, and with `reqwest` it took
//! about half of the CPU at 64 writers.
//!
//! Only `http://` is spoken, and only answers with a `Content-Length` (the
//! server's JSON answers always have one). Every read and write waits at
//! most [`super::REQUEST_TIMEOUT_SECS`]; an answer's head and body have
//! named limits. When the server answers an error and closes the connection
//! on requests it did not read (a wrong key, a body over its limit), the
//! error answer is reported rather than the broken connection. The latency
//! of one append runs from building its request to reading its answer, so
//! with `DEPTH` > 1 it includes waiting behind the requests before it on
//! the connection.
//!
//! The writer never reads while it writes. That is safe only because the
//! answers that can pile up meanwhile are small: at most [`MAX_PIPELINE`]
//! answers of ~100 bytes, far below a socket's receive buffer, so the
//! server never blocks writing them. Raising the limit or pipelining
//! requests with large answers needs reading and writing to run at once.

use std::io::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::server_child::quote;
use crate::BenchError;

/// Largest `--pipeline`: requests one connection may have in flight (see
/// the module's note on why answers cannot fill the socket meanwhile).
pub const MAX_PIPELINE: usize = 64;
/// Most request bytes one refill builds before writing them; a single
/// larger request is still written on its own.
pub const MAX_REFILL_BYTES: usize = 1 << 20;
/// Largest answer head (status line and headers) accepted, in bytes.
const MAX_ANSWER_HEAD_BYTES: usize = 16 * 1024;
/// Largest answer body accepted, in bytes (an append's answer is ~100).
const MAX_ANSWER_BODY_BYTES: usize = 1 << 20;
/// Most headers one answer may have.
const MAX_ANSWER_HEADERS: usize = 32;
/// Bytes the read buffer grows by before each read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Where the writers send their appends: parsed once from the server's URL.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header's value.
    host: String,
    /// The URL's path without a trailing `/` (prefixed to `/streams/…`).
    base_path: String,
    /// `Authorization: Bearer …` line, when there is a key.
    auth_line: Option<String>,
}

impl Endpoint {
    /// The endpoint of `url` (`http://host[:port][/path]`), sending `key`
    /// as a bearer token when given.
    pub fn parse(url: &str, key: Option<&str>) -> Result<Endpoint, BenchError> {
        let u = reqwest::Url::parse(url).map_err(|e| format!("bad server URL {url}: {e}"))?;
        if u.scheme() != "http" {
            return Err(format!(
                "--pipeline speaks plain http:// only, not {}:// ({url})",
                u.scheme()
            )
            .into());
        }
        if u.query().is_some() || !u.username().is_empty() || u.password().is_some() {
            return Err(format!(
                "--pipeline takes a server URL without a query or credentials ({url}); give the key with --key"
            )
            .into());
        }
        if let Some(k) = key {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(
                    "--key must be visible ASCII characters (no spaces or line breaks)".into(),
                );
            }
        }
        let host = u
            .host_str()
            .ok_or_else(|| format!("server URL {url} has no host"))?;
        let port = u.port_or_known_default().unwrap_or(80);
        Ok(Endpoint {
            addr: format!("{host}:{port}"),
            host: match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            },
            base_path: u.path().trim_end_matches('/').to_string(),
            auth_line: key.map(|k| format!("Authorization: Bearer {k}\r\n")),
        })
    }

    /// Appends to `out` one `POST {base}/streams/{stream}` request with
    /// `body` (JSON).
    pub fn write_append(&self, out: &mut Vec<u8>, stream: &str, body: &[u8]) {
        out.extend_from_slice(b"POST ");
        out.extend_from_slice(self.base_path.as_bytes());
        out.extend_from_slice(b"/streams/");
        out.extend_from_slice(stream.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(self.host.as_bytes());
        // Writing into a `Vec` cannot fail.
        let _ = write!(
            out,
            "\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(a) = &self.auth_line {
            out.extend_from_slice(a.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
    }
}

/// One parsed answer at the front of the read buffer.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    /// Its status code.
    status: u16,
    /// Bytes it takes in the buffer (head and body).
    len: usize,
    /// Where its body starts in the buffer.
    body_at: usize,
}

/// Parses the answer at the front of `buf`: `None` while it is incomplete.
fn parse_answer(buf: &[u8]) -> Result<Option<Answer>, BenchError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_ANSWER_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_ANSWER_HEAD_BYTES => {
            return Err(
                format!("an answer's head is longer than {MAX_ANSWER_HEAD_BYTES} bytes").into(),
            )
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("unreadable answer ({e}): {}", quote(buf)).into()),
    };
    let status = res.code.unwrap_or(0);
    let mut body_len = None;
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!(
                "the server answered {status} with Transfer-Encoding; --pipeline reads Content-Length answers only"
            )
            .into());
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| format!("bad Content-Length in an answer: {}", quote(h.value)))?;
            body_len = Some(n);
        }
    }
    let body_len = match body_len {
        Some(n) if n > MAX_ANSWER_BODY_BYTES => {
            return Err(format!(
                "an answer's body of {n} bytes is over the limit of {MAX_ANSWER_BODY_BYTES}"
            )
            .into())
        }
        Some(n) => n,
        None if status == 204 || status == 304 || (100..200).contains(&status) => 0,
        None => {
            return Err(format!("the server answered {status} without a Content-Length").into())
        }
    };
    if buf.len() < head_len + body_len {
        return Ok(None);
    }
    Ok(Some(Answer {
        status,
        len: head_len + body_len,
        body_at: head_len,
    }))
}

/// One writer's connection with its requests in flight.
pub struct Pipeline {
    /// The connection.
    stream: TcpStream,
    /// Bytes read and not yet taken as answers.
    buf: Vec<u8>,
    /// Longest one read may wait.
    timeout: Duration,
}

impl Pipeline {
    /// Connects to `endpoint`, waiting at most `connect_timeout`.
    pub async fn connect(
        endpoint: &Endpoint,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Pipeline, BenchError> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(&endpoint.addr))
            .await
            .map_err(|_| format!("connecting to {} timed out", endpoint.addr))?
            .map_err(|e| format!("connecting to {}: {e}", endpoint.addr))?;
        stream.set_nodelay(true)?;
        Ok(Pipeline {
            stream,
            buf: Vec::with_capacity(READ_CHUNK_BYTES),
            timeout,
        })
    }

    /// Writes `requests` (one or more whole requests). When the
    /// connection breaks, an error answer the server sent before it is the
    /// error reported.
    pub async fn send(&mut self, requests: &[u8]) -> Result<(), BenchError> {
        match tokio::time::timeout(self.timeout, self.stream.write_all(requests)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self
                .answered_error()
                .unwrap_or_else(|| format!("writing requests: {e}").into())),
            Err(_) => Err("writing requests timed out".into()),
        }
    }

    /// The first error answer among those the server sent and this side
    /// has not taken, reading what the socket already holds first.
    fn answered_error(&mut self) -> Option<BenchError> {
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        while self.buf.len() < MAX_ANSWER_HEAD_BYTES + MAX_ANSWER_BODY_BYTES {
            match self.stream.try_read(&mut chunk) {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        loop {
            match self.take_buffered(usize::MAX) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(e),
            }
        }
    }

    /// Takes the answers that are already complete in the read buffer,
    /// reading first when there is none; errors on an answer that is not a
    /// success. Returns how many were taken (at least one).
    pub async fn take_answers(&mut self, in_flight: usize) -> Result<usize, BenchError> {
        loop {
            let taken = self.take_buffered(in_flight)?;
            if taken > 0 {
                return Ok(taken);
            }
            let old = self.buf.len();
            self.buf.resize(old + READ_CHUNK_BYTES, 0);
            let read =
                tokio::time::timeout(self.timeout, self.stream.read(&mut self.buf[old..])).await;
            let n = match read {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    self.buf.truncate(old);
                    return Err(self
                        .answered_error()
                        .unwrap_or_else(|| format!("reading answers: {e}").into()));
                }
                Err(_) => {
                    self.buf.truncate(old);
                    return Err(format!(
                        "no answer within {} s with {in_flight} requests in flight",
                        self.timeout.as_secs()
                    )
                    .into());
                }
            };
            self.buf.truncate(old + n);
            if n == 0 {
                return Err(format!(
                    "the server closed the connection with {in_flight} requests in flight"
                )
                .into());
            }
        }
    }

    /// Takes the complete success answers at the front of the buffer, at
    /// most `in_flight` of them; errors when the first one is not a success.
    fn take_buffered(&mut self, in_flight: usize) -> Result<usize, BenchError> {
        let mut at = 0;
        let mut taken = 0;
        while taken < in_flight {
            let Some(a) = parse_answer(&self.buf[at..])? else {
                break;
            };
            if !(200..300).contains(&a.status) {
                if taken > 0 {
                    // The answers before it count; the next call errors.
                    break;
                }
                let body = &self.buf[at + a.body_at..at + a.len];
                return Err(format!("an append answered {}: {}", a.status, quote(body)).into());
            }
            at += a.len;
            taken += 1;
        }
        self.buf.drain(..at);
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"first\":12}\n";

    #[test]
    fn complete_partial_and_several_answers() {
        let a = parse_answer(OK).unwrap().unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.len, OK.len());
        assert_eq!(&OK[a.body_at..a.len], b"{\"first\":12}\n");
        for cut in [1, 20, OK.len() - 1] {
            assert_eq!(parse_answer(&OK[..cut]).unwrap(), None, "cut at {cut}");
        }
        let mut two = OK.to_vec();
        two.extend_from_slice(OK);
        let first = parse_answer(&two).unwrap().unwrap();
        assert_eq!(
            parse_answer(&two[first.len..]).unwrap().unwrap().len,
            OK.len()
        );
    }

    #[test]
    fn chunked_missing_length_and_oversized_answers_are_errors() {
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse_answer(chunked).is_err());
        let no_length = b"HTTP/1.1 200 OK\r\n\r\n";
        assert!(parse_answer(no_length).is_err());
        let no_content = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            parse_answer(no_content).unwrap().unwrap().len,
            no_content.len()
        );
        let huge = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_ANSWER_BODY_BYTES + 1
        );
        assert!(parse_answer(huge.as_bytes()).is_err());
        let endless_head = vec![b'a'; MAX_ANSWER_HEAD_BYTES + 1];
        assert!(parse_answer(&endless_head).is_err());
    }

    #[test]
    fn requests_carry_path_host_length_and_key() {
        let e = Endpoint::parse("http://127.0.0.1:7700/base/", Some("k1")).unwrap();
        let mut out = Vec::new();
        e.write_append(&mut out, "s-1", b"{}");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "POST /base/streams/s-1 HTTP/1.1\r\nHost: 127.0.0.1:7700\r\nContent-Type: application/json\r\nContent-Length: 2\r\nAuthorization: Bearer k1\r\n\r\n{}"
        );
        assert!(Endpoint::parse("https://127.0.0.1:7700", None).is_err());
    }

    /// A server of one connection that runs `script` on it, and a
    /// pipeline connected to it that sends `key`.
    async fn scripted<F, Fut>(
        key: Option<&str>,
        script: F,
    ) -> (Endpoint, Pipeline, tokio::task::JoinHandle<()>)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            script(s).await;
        });
        let e = Endpoint::parse(&url, key).unwrap();
        let p = Pipeline::connect(&e, Duration::from_secs(5), Duration::from_secs(5))
            .await
            .unwrap();
        (e, p, server)
    }

    #[tokio::test]
    async fn an_error_answer_before_the_server_closes_is_the_error_reported() {
        // The server reads a little of a large pipeline, answers 401 and
        // closes with the rest unread (so the client's write breaks): the
        // 401 is what the client reports, not the broken connection.
        let (e, mut p, server) = scripted(Some("wrong"), |mut s| async move {
            let mut got = vec![0u8; 1024];
            let _ = s.read(&mut got).await.unwrap();
            s.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 15\r\n\r\nunknown API key")
                .await
                .unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        })
        .await;
        let body = vec![b' '; 256 * 1024];
        let mut out = Vec::new();
        for _ in 0..32 {
            e.write_append(&mut out, "a", &body);
        }
        let err = match p.send(&out).await {
            Err(e) => e.to_string(),
            Ok(()) => p.take_answers(32).await.unwrap_err().to_string(),
        };
        assert!(
            err.contains("401") && err.contains("unknown API key"),
            "{err}"
        );
        server.await.unwrap();
    }

    #[test]
    fn urls_and_keys_the_client_cannot_send_are_refused() {
        for url in [
            "http://127.0.0.1:7700/?x=1",
            "http://user:pw@127.0.0.1:7700",
            "ftp://127.0.0.1:7700",
        ] {
            assert!(Endpoint::parse(url, None).is_err(), "{url}");
        }
        for key in ["", "two words", "line\r\nX-Injected: 1"] {
            assert!(
                Endpoint::parse("http://127.0.0.1:7700", Some(key)).is_err(),
                "{key:?}"
            );
        }
        let v6 = Endpoint::parse("http://[::1]:7700/", Some("k")).unwrap();
        assert_eq!(v6.addr, "[::1]:7700");
        assert_eq!(v6.host, "[::1]:7700");
        assert_eq!(v6.base_path, "");
    }

    #[tokio::test]
    async fn an_error_answer_ends_the_pipeline_with_its_body() {
        let (e, mut p, server) = scripted(None, |mut s| async move {
            let mut got = vec![0u8; 4096];
            let _ = s.read(&mut got).await.unwrap();
            // The first answer split across two writes, then an error.
            s.write_all(&OK[..10]).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(&OK[10..]).await.unwrap();
            s.write_all(b"HTTP/1.1 409 Conflict\r\ncontent-length: 8\r\n\r\nconflict")
                .await
                .unwrap();
        })
        .await;
        let mut out = Vec::new();
        e.write_append(&mut out, "a", b"{}");
        e.write_append(&mut out, "b", b"{}");
        p.send(&out).await.unwrap();
        assert_eq!(p.take_answers(2).await.unwrap(), 1);
        let err = p.take_answers(1).await.unwrap_err().to_string();
        assert!(err.contains("409") && err.contains("conflict"), "{err}");
        server.await.unwrap();
    }
}
