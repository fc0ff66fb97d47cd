//! A minimal QMP client over the UNIX socket QEMU connects to: reads the
//! greeting, negotiates capabilities, records every message (events such as
//! `GUEST_PANICKED` and `SHUTDOWN` included) to `qmp.log`, and sends `quit`.
//! It must not be the only way QEMU is stopped: the caller still kills the
//! process if QMP does not answer.

use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;

/// The harness's end of QEMU's QMP monitor.
pub struct Qmp {
    writer: OwnedWriteHalf,
    events: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Qmp {
    /// Starts reading `stream` (logging to `log`) and sends `qmp_capabilities`.
    pub async fn attach(stream: UnixStream, log: Option<&Path>) -> std::io::Result<Qmp> {
        let mut file = match log {
            Some(p) => Some(std::fs::File::create(p)?),
            None => None,
        };
        let (rd, mut writer) = stream.into_split();
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(rd).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(f) = file.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "<- {line}");
                }
                if line.contains("\"event\"") {
                    if let Ok(mut e) = ev.lock() {
                        e.push(line);
                    }
                }
            }
        });
        writer
            .write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
            .await?;
        Ok(Qmp {
            writer,
            events,
            reader,
        })
    }

    /// Asks QEMU to quit.
    pub async fn quit(&mut self) -> std::io::Result<()> {
        self.writer.write_all(b"{\"execute\":\"quit\"}\n").await?;
        self.writer.flush().await
    }

    /// The events received so far (raw JSON lines).
    pub fn events(&self) -> Vec<String> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// True if QEMU reported a guest panic.
    pub fn guest_panicked(&self) -> bool {
        self.events().iter().any(|e| e.contains("GUEST_PANICKED"))
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
