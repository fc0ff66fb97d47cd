//! Line logs of the in-process services (`tftp.log`, `dhcp.log`): one line
//! per event, prefixed with the seconds since the network was attached.
//! Lines are written unbuffered, so a log is complete when the run stops.
//! A failed write is ignored: logging must never fail a run.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A shared, append-only event log.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Mutex<Option<File>>>,
    start: Instant,
}

impl EventLog {
    /// Creates (truncates) the log at `path`.
    pub fn create(path: &Path, start: Instant) -> std::io::Result<EventLog> {
        Ok(EventLog {
            inner: Arc::new(Mutex::new(Some(File::create(path)?))),
            start,
        })
    }

    /// A log that discards everything (tests).
    pub fn discard() -> EventLog {
        EventLog {
            inner: Arc::new(Mutex::new(None)),
            start: Instant::now(),
        }
    }

    /// Appends one line.
    pub fn line(&self, text: impl AsRef<str>) {
        let t = self.start.elapsed().as_secs_f64();
        if let Ok(mut g) = self.inner.lock() {
            if let Some(f) = g.as_mut() {
                let _ = writeln!(f, "{t:9.3} {}", text.as_ref());
            }
        }
    }
}
