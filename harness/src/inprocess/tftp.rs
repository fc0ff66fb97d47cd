//! The TFTP server: a real async-tftp server on 127.0.0.1 (an ephemeral
//! port) whose handler serves the scenario's tree read-only. The handler
//! refuses write requests, absolute paths, `..` and anything whose real path
//! (symlinks resolved) leaves the root, serves regular files only, applies
//! the scenario's TFTP faults (error on the n-th request or on a path,
//! truncated files) and logs every request with its outcome. It knows
//! nothing about the segment: the relay ([`super::relay`]) carries the
//! guest's packets to and from it.

use super::config::Fault;
use super::log::EventLog;
use async_tftp::packet;
use async_tftp::server::{Handler, TftpServerBuilder};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The TFTP faults the handler applies.
#[derive(Debug, Clone, Default)]
pub struct TftpFaults {
    errors: Vec<ErrorFault>,
    truncate: Vec<Truncation>,
    zero_files: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
struct Truncation {
    path: String,
    keep: u64,
    announce_full: bool,
}

#[derive(Debug, Clone)]
struct ErrorFault {
    nth: Option<u32>,
    path: Option<String>,
    code: u16,
    message: String,
}

impl TftpFaults {
    /// The TFTP faults among `faults`.
    pub fn from_faults(faults: &[Fault]) -> TftpFaults {
        let mut t = TftpFaults::default();
        for f in faults {
            match f {
                Fault::TftpError {
                    nth,
                    path,
                    code,
                    message,
                } => t.errors.push(ErrorFault {
                    nth: *nth,
                    path: path.as_ref().map(|p| p.trim_start_matches('/').to_string()),
                    code: *code,
                    message: message.clone().unwrap_or_else(|| "injected error".into()),
                }),
                Fault::Truncate {
                    path,
                    bytes,
                    announce_full,
                } => t.truncate.push(Truncation {
                    path: path.trim_start_matches('/').to_string(),
                    keep: *bytes,
                    announce_full: *announce_full,
                }),
                _ => {}
            }
        }
        t
    }

    /// Adds generated all-zero files (path → size).
    pub fn with_zero_files(mut self, files: &std::collections::BTreeMap<String, u64>) -> Self {
        self.zero_files = files.clone();
        self
    }
}

fn tftp_error(code: u16, message: &str) -> packet::Error {
    match code {
        1 => packet::Error::FileNotFound,
        2 => packet::Error::PermissionDenied,
        3 => packet::Error::DiskFull,
        4 => packet::Error::IllegalOperation,
        5 => packet::Error::UnknownTransferId,
        6 => packet::Error::FileAlreadyExists,
        7 => packet::Error::NoSuchUser,
        _ => packet::Error::Msg(message.to_string()),
    }
}

/// What the handler serves a file from.
pub type Reader = Box<dyn futures_lite::AsyncRead + Unpin + Send>;

/// Resolves `requested` inside `root` (canonical), or says why not: the
/// sandbox rules of every server that serves a run's tree (TFTP here, HTTP
/// in [`crate::http`]): no absolute paths or `..`, nothing whose real path
/// (symlinks resolved) leaves `root` except into a `trusted` (canonical)
/// directory, regular files only.
pub fn confine(root: &Path, trusted: &[PathBuf], requested: &Path) -> Result<PathBuf, Refusal> {
    if requested.as_os_str().is_empty() {
        return Err(Refusal::NotFound);
    }
    for c in requested.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Refusal::Unsafe)
            }
        }
    }
    let real = root
        .join(requested)
        .canonicalize()
        .map_err(|_| Refusal::NotFound)?;
    if !real.starts_with(root) && !trusted.iter().any(|t| real.starts_with(t)) {
        return Err(Refusal::Escapes);
    }
    match std::fs::metadata(&real) {
        Ok(m) if m.is_file() => Ok(real),
        _ => Err(Refusal::NotFound),
    }
}

/// The read-only, sandboxed handler.
pub struct SandboxHandler {
    root: PathBuf,
    trusted: Vec<PathBuf>,
    faults: TftpFaults,
    log: EventLog,
    requests: u32,
    per_path: HashMap<String, u32>,
    /// Guest-side address of each loopback client port, for the log.
    names: Arc<Mutex<HashMap<SocketAddr, String>>>,
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Absolute or containing `..` (or a prefix/root component).
    Unsafe,
    /// Missing, not a regular file, or unreadable.
    NotFound,
    /// Resolves (through symlinks) outside the root.
    Escapes,
}

impl SandboxHandler {
    /// A handler serving `root` (canonicalised here). `names` maps the
    /// relay's loopback sockets to the guest flow they carry (for logs).
    pub fn new(
        root: &Path,
        faults: TftpFaults,
        log: EventLog,
        names: Arc<Mutex<HashMap<SocketAddr, String>>>,
    ) -> std::io::Result<SandboxHandler> {
        Ok(SandboxHandler {
            root: root.canonicalize()?,
            trusted: Vec::new(),
            faults,
            log,
            requests: 0,
            per_path: HashMap::new(),
            names,
        })
    }

    /// Also serves files that symlinks in the root lead to inside `dir`
    /// (the harness's own payload cache, which TFTP trees link to when a
    /// hard link is impossible). A missing `dir` is ignored.
    pub fn trust(mut self, dir: &Path) -> SandboxHandler {
        if let Ok(d) = dir.canonicalize() {
            self.trusted.push(d);
        }
        self
    }

    /// Resolves a requested path inside the root, or says why not.
    pub fn resolve(&self, requested: &Path) -> Result<PathBuf, Refusal> {
        confine(&self.root, &self.trusted, requested)
    }

    fn who(&self, client: &SocketAddr) -> String {
        self.names
            .lock()
            .ok()
            .and_then(|n| n.get(client).cloned())
            .unwrap_or_else(|| client.to_string())
    }

    fn open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
    ) -> Result<(Reader, u64), (String, packet::Error)> {
        self.requests += 1;
        let n = self.requests;
        let shown = path.to_string_lossy().into_owned();
        let who = self.who(client);
        let per = self.per_path.entry(shown.clone()).or_insert(0);
        *per += 1;
        let per = *per;
        for e in &self.faults.errors {
            let hit = match (&e.path, e.nth) {
                (Some(p), Some(k)) => *p == shown && per == k,
                (Some(p), None) => *p == shown,
                (None, Some(k)) => n == k,
                (None, None) => false,
            };
            if hit {
                return Err((
                    format!(
                        "request #{n} {who} RRQ {shown:?}: injected error {} {:?}",
                        e.code, e.message
                    ),
                    tftp_error(e.code, &e.message),
                ));
            }
        }
        if let Some(size) = self.faults.zero_files.get(&shown).copied() {
            let size = self
                .faults
                .truncate
                .iter()
                .find(|t| t.path == shown)
                .map_or(size, |t| size.min(t.keep));
            self.log.line(format!(
                "tftp: request #{n} {who} RRQ {shown:?}: serving {size} generated zero bytes"
            ));
            let r = futures_lite::AsyncReadExt::take(futures_lite::io::repeat(0), size);
            return Ok((Box::new(r), size));
        }
        let real = self.resolve(path).map_err(|r| {
            let err = match r {
                Refusal::NotFound => packet::Error::FileNotFound,
                Refusal::Unsafe | Refusal::Escapes => packet::Error::PermissionDenied,
            };
            (
                format!("request #{n} {who} RRQ {shown:?}: refused ({r:?})"),
                err,
            )
        })?;
        let mut data = std::fs::read(&real).map_err(|e| {
            (
                format!("request #{n} {who} RRQ {shown:?}: unreadable: {e}"),
                packet::Error::FileNotFound,
            )
        })?;
        let full = data.len() as u64;
        let mut note = String::new();
        let mut announced = full;
        if let Some(t) = self.faults.truncate.iter().find(|t| t.path == shown) {
            let keep = usize::try_from(t.keep).unwrap_or(usize::MAX);
            if keep < data.len() {
                data.truncate(keep);
                note = format!(" (truncated from {full} bytes by the scenario)");
                if !t.announce_full {
                    announced = data.len() as u64;
                } else {
                    note.push_str(&format!(", tsize {full} announced"));
                }
            }
        }
        let size = data.len() as u64;
        self.log.line(format!(
            "tftp: request #{n} {who} RRQ {shown:?}: serving {size} bytes{note}"
        ));
        Ok((Box::new(futures_lite::io::Cursor::new(data)), announced))
    }
}

impl Handler for SandboxHandler {
    type Reader = Reader;
    type Writer = futures_lite::io::Sink;

    async fn read_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
    ) -> Result<(Self::Reader, Option<u64>), packet::Error> {
        match self.open(client, path) {
            Ok((reader, size)) => Ok((reader, Some(size))),
            Err((msg, err)) => {
                self.log.line(format!("tftp: {msg}"));
                Err(err)
            }
        }
    }

    async fn write_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
        _size: Option<u64>,
    ) -> Result<Self::Writer, packet::Error> {
        self.requests += 1;
        self.log.line(format!(
            "tftp: request #{} {} WRQ {:?}: refused (read-only server)",
            self.requests,
            self.who(client),
            path.to_string_lossy()
        ));
        Err(packet::Error::PermissionDenied)
    }
}

/// A running TFTP server.
pub struct TftpService {
    /// Where it listens (127.0.0.1:port).
    pub addr: SocketAddr,
    /// The server future; poll it (spawn it) to serve.
    pub serve: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Starts the server on 127.0.0.1:0 with `handler`.
pub async fn start(
    handler: SandboxHandler,
    timeout: Duration,
    max_blksize: u16,
    log: EventLog,
) -> Result<TftpService, String> {
    let server = TftpServerBuilder::with_handler(handler)
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .timeout(timeout)
        .block_size_limit(max_blksize)
        .max_send_retries(20)
        .build()
        .await
        .map_err(|e| format!("starting the TFTP server: {e}"))?;
    let addr = server
        .listen_addr()
        .map_err(|e| format!("TFTP server address: {e}"))?;
    let serve = Box::pin(async move {
        if let Err(e) = server.serve().await {
            log.line(format!("tftp: server stopped: {e}"));
        }
    });
    Ok(TftpService { addr, serve })
}
