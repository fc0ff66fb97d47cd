//! A response body as the scenario's faults shape it: sent in pieces, at
//! most `bytes_per_second` fast, stopped after N bytes (the body ends, the
//! connection is cut, or it stalls), and accounted: when the body is done
//! or dropped (the client went away), one `http.log` line gives the bytes
//! sent, the time and how it ended. It knows nothing about paths or
//! requests; [`super`] decides the shape.

use crate::inprocess::log::EventLog;
use axum::body::{Body, Bytes};
use futures_lite::StreamExt;
use std::time::{Duration, Instant};

/// Largest piece handed to hyper at once (so that a rate limit or a cut
/// lands close to its byte count).
const PIECE: usize = 16 * 1024;

/// How long a body that ends short (a cut, or less than the announced
/// `Content-Length`) waits before it ends. hyper drops the connection when
/// such a body ends, and with it whatever it has not yet written to the
/// socket; waiting (the body is pending) lets it flush first, so the client
/// gets the bytes sent so far unless the socket stays full that long.
const FLUSH_PAUSE: Duration = Duration::from_millis(500);

/// What happens once `after` body bytes were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The body ends there (hyper closes the connection if the announced
    /// `Content-Length` was larger).
    End,
    /// The body fails: hyper drops the connection.
    Cut,
    /// Nothing more is sent; the connection stays open.
    Stall,
}

/// How the body is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Stop after this many bytes, this way.
    pub stop: Option<(u64, Stop)>,
    /// Rate limit in bytes per second.
    pub rate: Option<u64>,
}

/// The log line written when the body is done, whatever way it ends.
struct Report {
    log: EventLog,
    who: String,
    announced: Option<u64>,
    sent: u64,
    started: Instant,
    outcome: Option<String>,
}

impl Drop for Report {
    fn drop(&mut self) {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.sent as f64 / secs / 1e6
        } else {
            0.0
        };
        let announced = self.announced.map_or_else(
            || "no Content-Length".to_string(),
            |n| format!("Content-Length {n}"),
        );
        // hyper stops polling a body once it sent the announced length.
        let outcome = match self.outcome.take() {
            Some(o) => o,
            None if self.announced == Some(self.sent) => "complete".into(),
            None => "incomplete (the client closed the connection)".into(),
        };
        self.log.line(format!(
            "http: {}: {outcome}, {} bytes sent ({announced}) in {secs:.3} s ({rate:.2} MB/s)",
            self.who, self.sent
        ));
    }
}

struct State {
    inner: axum::body::BodyDataStream,
    pending: Bytes,
    shape: Shape,
    done: bool,
    report: Report,
}

/// `body` sent as `shape` says; `who` and `announced` (the
/// `Content-Length` sent) go to the log line.
pub fn shaped(
    body: Body,
    shape: Shape,
    log: EventLog,
    who: String,
    announced: Option<u64>,
) -> Body {
    let state = State {
        inner: body.into_data_stream(),
        pending: Bytes::new(),
        shape,
        done: false,
        report: Report {
            log,
            who,
            announced,
            sent: 0,
            started: Instant::now(),
            outcome: None,
        },
    };
    Body::from_stream(futures_lite::stream::unfold(state, next_piece))
}

async fn next_piece(mut st: State) -> Option<(Result<Bytes, std::io::Error>, State)> {
    if st.done {
        return None;
    }
    let sent = st.report.sent;
    let mut room = usize::MAX;
    if let Some((after, stop)) = st.shape.stop {
        if sent >= after {
            match stop {
                Stop::End => {
                    st.report.outcome = Some(format!("body ended after {after} bytes (fault)"));
                    if st.report.announced.is_some_and(|a| a > sent) {
                        tokio::time::sleep(FLUSH_PAUSE).await;
                    }
                    return None;
                }
                Stop::Cut => {
                    st.report.outcome = Some(format!("connection cut after {after} bytes (fault)"));
                    tokio::time::sleep(FLUSH_PAUSE).await;
                    st.done = true;
                    let e = std::io::Error::other("connection cut by the scenario");
                    return Some((Err(e), st));
                }
                Stop::Stall => {
                    st.report.outcome = Some(format!(
                        "stalled after {after} bytes (fault), connection closed by the client"
                    ));
                    std::future::pending::<()>().await;
                }
            }
        }
        room = usize::try_from(after - sent).unwrap_or(usize::MAX);
    }
    while st.pending.is_empty() {
        match st.inner.next().await {
            None => {
                if st.report.announced.is_some_and(|a| a > sent) {
                    st.report.outcome = Some(format!(
                        "the file ended after {sent} bytes, short of the Content-Length (fault)"
                    ));
                    tokio::time::sleep(FLUSH_PAUSE).await;
                } else {
                    st.report.outcome = Some("complete".into());
                }
                return None;
            }
            Some(Err(e)) => {
                st.report.outcome = Some(format!("reading the file failed: {e}"));
                st.done = true;
                return Some((Err(std::io::Error::other(e.to_string())), st));
            }
            Some(Ok(b)) => st.pending = b,
        }
    }
    let n = st.pending.len().min(PIECE).min(room);
    let piece = st.pending.split_to(n);
    if let Some(rate) = st.shape.rate {
        let due = Duration::from_secs_f64((sent + n as u64) as f64 / rate as f64);
        let at = st.report.started + due;
        tokio::time::sleep_until(at.into()).await;
    }
    st.report.sent += n as u64;
    Some((Ok(piece), st))
}
