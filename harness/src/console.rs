//! The guest console: a UNIX socket QEMU connects to (the harness listens, so
//! no byte is lost before a reader exists), drained continuously by a tokio
//! task into an in-memory transcript (carriage returns dropped) with the
//! arrival time of every line and into `console.log` with timestamps.
//! Expectations are regexes matched in order from a cursor, each against its
//! own deadline, while forbidden patterns are checked on every complete line.
//! Keys are sent back over the same socket. This module knows nothing about
//! scenarios or QEMU's lifetime: end of file simply means the peer is gone.

use regex::bytes::Regex;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A console pattern that fails the run as soon as it shows up.
#[derive(Debug, Clone)]
pub struct Forbidden {
    /// Short name used in the failure message (e.g. `kernel panic`).
    pub name: String,
    /// The pattern, matched against each complete line.
    pub regex: Regex,
}

/// A successful match.
#[derive(Debug, Clone)]
pub struct Matched {
    /// The matched text.
    pub text: String,
    /// Capture groups (index 0 = whole match).
    pub groups: Vec<Option<String>>,
    /// When the line holding the match started, relative to the console start.
    pub at: Duration,
    /// Index (0-based) of the transcript line where the match starts, as in
    /// [`Console::lines`].
    pub line: usize,
}

/// Why an expectation was not met.
#[derive(Debug, Clone)]
pub enum ExpectFailure {
    /// The deadline passed.
    Timeout,
    /// A forbidden pattern appeared first.
    Forbidden {
        /// The forbidden pattern's name.
        name: String,
        /// The whole console line that matched it.
        line: String,
        /// When that line started.
        at: Duration,
    },
    /// The console closed (QEMU exited) before the pattern appeared.
    Closed,
}

#[derive(Default)]
struct State {
    /// Everything received, `\r` removed.
    text: Vec<u8>,
    /// (offset of a line start in `text`, time its first byte arrived).
    line_starts: Vec<(usize, Duration)>,
    /// True once the peer closed the stream.
    eof: bool,
    /// The log file (`console.log`), written line by line with timestamps.
    log: Option<std::io::BufWriter<std::fs::File>>,
    /// Copy raw output to the harness's stdout (interactive `boot`).
    echo: bool,
}

impl State {
    fn push(&mut self, chunk: &[u8], now: Duration) {
        if self.echo {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(chunk);
            let _ = out.flush();
        }
        for &b in chunk {
            if b == b'\r' {
                continue;
            }
            let at_line_start = self.text.last().is_none_or(|&l| l == b'\n');
            if at_line_start {
                self.line_starts.push((self.text.len(), now));
            }
            self.text.push(b);
            if b == b'\n' {
                self.flush_line(false);
            }
        }
        if let Some(log) = self.log.as_mut() {
            let _ = log.flush();
        }
    }

    /// Writes the last (complete, or at EOF partial) line to the log.
    fn flush_line(&mut self, partial: bool) {
        let Some(&(start, at)) = self.line_starts.last() else {
            return;
        };
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let line = self.text.get(start..).unwrap_or_default();
        if line.is_empty() || (partial && line.ends_with(b"\n")) {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\n');
        let _ = writeln!(log, "[{:>9.3}] {}", at.as_secs_f64(), line);
    }

    /// Index of the line holding byte `offset` of the transcript.
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|(o, _)| *o <= offset)
            .saturating_sub(1)
    }

    /// Line `i`: the time it started and its text without the newline.
    fn line(&self, i: usize) -> (Duration, String) {
        let (start, at) = self.line_starts[i];
        let end = self
            .line_starts
            .get(i + 1)
            .map(|(o, _)| *o)
            .unwrap_or(self.text.len());
        let text = String::from_utf8_lossy(self.text.get(start..end).unwrap_or_default());
        (at, text.trim_end_matches('\n').to_string())
    }

    fn time_of(&self, offset: usize) -> Duration {
        let i = self.line_starts.partition_point(|(o, _)| *o <= offset);
        i.checked_sub(1)
            .and_then(|i| self.line_starts.get(i))
            .map(|(_, t)| *t)
            .unwrap_or_default()
    }

    /// End (exclusive) of the last complete line, or everything at EOF.
    fn complete_end(&self) -> usize {
        if self.eof {
            return self.text.len();
        }
        self.text
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(0)
    }
}

/// The harness's end of one guest console.
pub struct Console {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    writer: OwnedWriteHalf,
    reader: tokio::task::JoinHandle<()>,
    started: Instant,
    cursor: usize,
    forbid_cursor: usize,
}

impl Console {
    /// Starts draining `stream` (QEMU's console socket) in a background task;
    /// `log` (if given) receives the timestamped transcript. `started` is time
    /// zero for timestamps (normally the QEMU launch).
    pub fn attach(
        stream: UnixStream,
        log: Option<&Path>,
        started: Instant,
    ) -> std::io::Result<Console> {
        let log = match log {
            Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
            None => None,
        };
        let state = Arc::new(Mutex::new(State {
            log,
            ..State::default()
        }));
        let notify = Arc::new(Notify::new());
        let (mut rd, writer) = stream.into_split();
        let (st, nt) = (state.clone(), notify.clone());
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = rd.read(&mut buf).await.unwrap_or(0);
                let now = started.elapsed();
                {
                    let Ok(mut s) = st.lock() else { break };
                    if n == 0 {
                        s.eof = true;
                        s.flush_line(true);
                        if let Some(log) = s.log.as_mut() {
                            let _ = log.flush();
                        }
                    } else if let Some(chunk) = buf.get(..n) {
                        s.push(chunk, now);
                    }
                }
                nt.notify_waiters();
                if n == 0 {
                    break;
                }
            }
        });
        Ok(Console {
            state,
            notify,
            writer,
            reader,
            started,
            cursor: 0,
            forbid_cursor: 0,
        })
    }

    /// Copies all console output to stdout from now on (used by `boot`).
    pub fn set_echo(&self, on: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.echo = on;
        }
    }

    /// Time since the console's time zero.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until `re` matches the transcript after the previous match,
    /// failing on `deadline`, on any `forbidden` pattern in a complete line
    /// not yet checked, or when the console closes. On success the cursor
    /// moves past the match.
    pub async fn expect(
        &mut self,
        re: &Regex,
        deadline: Instant,
        forbidden: &[Forbidden],
    ) -> Result<Matched, ExpectFailure> {
        let notify = self.notify.clone();
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(result) = self.check(re, forbidden) {
                return result;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {
                    // One last look: data may have arrived with the deadline.
                    return self.check(re, forbidden).unwrap_or(Err(ExpectFailure::Timeout));
                }
            }
        }
    }

    fn check(
        &mut self,
        re: &Regex,
        forbidden: &[Forbidden],
    ) -> Option<Result<Matched, ExpectFailure>> {
        let state = self.state.clone();
        let s = state.lock().ok()?;
        let end = s.complete_end();
        if end > self.forbid_cursor {
            let region = s.text.get(self.forbid_cursor..end).unwrap_or_default();
            let mut offset = self.forbid_cursor;
            for line in region.split_inclusive(|&b| b == b'\n') {
                if let Some(f) = forbidden.iter().find(|f| f.regex.is_match(line)) {
                    let at = s.time_of(offset);
                    self.forbid_cursor = offset + line.len();
                    return Some(Err(ExpectFailure::Forbidden {
                        name: f.name.clone(),
                        line: String::from_utf8_lossy(line).trim_end().to_string(),
                        at,
                    }));
                }
                offset += line.len();
            }
            self.forbid_cursor = end;
        }
        let hay = s.text.get(self.cursor..).unwrap_or_default();
        if let Some(caps) = re.captures(hay) {
            let whole = caps.get(0)?;
            let at = s.time_of(self.cursor + whole.start());
            let line = s.line_of(self.cursor + whole.start());
            let groups = caps
                .iter()
                .map(|g| g.map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned()))
                .collect();
            let m = Matched {
                text: String::from_utf8_lossy(whole.as_bytes()).into_owned(),
                groups,
                at,
                line,
            };
            self.cursor += whole.end();
            return Some(Ok(m));
        }
        if s.eof {
            return Some(Err(ExpectFailure::Closed));
        }
        None
    }

    /// Sends keys to the guest.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// Waits (up to `timeout`) for the console to close; true if it did.
    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state.lock().map(|s| s.eof).unwrap_or(true) {
                return true;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }

    /// The last `n` lines of the transcript, each prefixed with its time.
    pub fn tail(&self, n: usize) -> String {
        let Ok(s) = self.state.lock() else {
            return String::new();
        };
        let first = s.line_starts.len().saturating_sub(n);
        (first..s.line_starts.len())
            .map(|i| {
                let (at, line) = s.line(i);
                format!("[{:>9.3}] {line}\n", at.as_secs_f64())
            })
            .collect()
    }

    /// The first time (relative to time zero) a line matching `re` started,
    /// searching the whole transcript.
    pub fn first_time(&self, re: &Regex) -> Option<Duration> {
        let s = self.state.lock().ok()?;
        let m = re.find(&s.text)?;
        Some(s.time_of(m.start()))
    }

    /// The last time a line matching `re` started.
    pub fn last_time(&self, re: &Regex) -> Option<Duration> {
        let s = self.state.lock().ok()?;
        let m = re.find_iter(&s.text).last()?;
        Some(s.time_of(m.start()))
    }

    /// The transcript as lines: (time the line started, text without its
    /// newline), in order; the line indices are those of [`Matched::line`].
    pub fn lines(&self) -> Vec<(Duration, String)> {
        let Ok(s) = self.state.lock() else {
            return Vec::new();
        };
        (0..s.line_starts.len()).map(|i| s.line(i)).collect()
    }

    /// The whole transcript (lossy UTF-8, `\r` removed).
    pub fn text(&self) -> String {
        self.state
            .lock()
            .map(|s| String::from_utf8_lossy(&s.text).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
