//! The run's HTTP server: axum (hyper) with tower-http's `ServeDir` serving
//! the run's tree read-only, behind a gate that applies the TFTP server's
//! sandbox rules ([`crate::inprocess::tftp::confine`]: no `..`, no absolute
//! paths, no symlinks out of the tree, regular files only), refuses every
//! method but GET and HEAD, injects the scenario's `[[http.fault]]`s
//! ([`config`], [`shape`]) and writes one `http.log` line per request
//! (client, path, status) and one per body (bytes, duration, outcome).
//! `ServeDir` sends `Content-Length`.
//!
//! Where it listens depends on the network mode ([`Plan`]): slirp, on an
//! ephemeral port of 127.0.0.1, which the guest reaches as the slirp host
//! address (10.0.2.2 by default); dnsmasq, on port 80 of the server address
//! inside the run's network namespace; inprocess, on an ephemeral port of
//! 127.0.0.1, to which the segment's smoltcp stack relays the guest's
//! connections to port 80 of the server address
//! ([`crate::inprocess::tcp`]). Scenarios name it with the placeholder
//! [`crate::network::HTTP_PLACEHOLDER`] (`${http}`), replaced per run by [`Plan::base_url`]
//! (e.g. `http://10.0.2.2:38517`). This module must not know about
//! consoles, QEMU or steps.

pub mod config;
pub mod shape;

pub use config::{HttpConfig, HttpSettings};

use crate::inprocess::log::EventLog;
use crate::inprocess::tftp::{confine, Refusal};
use crate::network::{HttpSite, Network};
use crate::HarnessError;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use config::{Action, Fault};
use shape::{Shape, Stop};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Port the server uses inside a run's own network namespace.
pub const NAMESPACE_PORT: u16 = 80;

/// Where the run's HTTP server will listen, decided before the tree is
/// written (the tree's text names the server's URL).
#[derive(Debug)]
pub struct Plan {
    /// `http://ADDRESS[:PORT]` as the guest reaches the server.
    pub base_url: String,
    bind: Bind,
}

#[derive(Debug)]
enum Bind {
    /// Already bound on the host's loopback (slirp forwards to it).
    Loopback(TcpListener),
    /// To be bound inside the run's network namespace, once it exists.
    InNamespace(SocketAddr),
}

impl Plan {
    /// The plan for a run in `network` ([`Network::http_site`]): on the
    /// host's loopback it binds 127.0.0.1:0 now.
    pub fn for_network(network: &dyn Network) -> Result<Plan, HarnessError> {
        let site = network.http_site().map_err(|message| HarnessError::Tool {
            tool: "http",
            message,
        })?;
        let loopback = || {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| HarnessError::io("binding the HTTP server on", "127.0.0.1", e))
        };
        match site {
            HttpSite::HostLoopback { guest_addr } => {
                let l = loopback()?;
                let port = l
                    .local_addr()
                    .map_err(|e| HarnessError::io("reading the address of", "127.0.0.1", e))?
                    .port();
                Ok(Plan {
                    base_url: format!("http://{guest_addr}:{port}"),
                    bind: Bind::Loopback(l),
                })
            }
            HttpSite::Relayed { guest_addr } => Ok(Plan {
                base_url: format!("http://{guest_addr}"),
                bind: Bind::Loopback(loopback()?),
            }),
            HttpSite::InNamespace { addr } => Ok(Plan {
                base_url: format!("http://{addr}"),
                bind: Bind::InNamespace(SocketAddr::from((addr, NAMESPACE_PORT))),
            }),
        }
    }

    /// The loopback address the server will listen on, if it is on the
    /// host's loopback (slirp, inprocess).
    pub fn loopback(&self) -> Option<SocketAddr> {
        match &self.bind {
            Bind::Loopback(l) => l.local_addr().ok(),
            Bind::InNamespace(_) => None,
        }
    }

    /// Starts serving `root` (inside the current tokio runtime); `netns` is
    /// the run's network namespace, if it has one. The server stops when
    /// the returned value is dropped.
    pub fn start(
        self,
        root: &Path,
        netns: Option<&Path>,
        settings: &HttpSettings,
        log: EventLog,
    ) -> Result<HttpServer, HarnessError> {
        let listener = match self.bind {
            Bind::Loopback(l) => l,
            Bind::InNamespace(addr) => {
                let ns = netns.ok_or_else(|| HarnessError::Tool {
                    tool: "http",
                    message: format!("{addr}: the network has no namespace to listen in"),
                })?;
                bind_in_namespace(ns, addr)
                    .map_err(|e| HarnessError::io("binding the HTTP server in", ns, e))?
            }
        };
        serve(listener, root, settings, log)
    }
}

/// Binds `addr` inside the network namespace `ns` (a socket keeps the
/// namespace it was created in; only the helper thread enters it).
fn bind_in_namespace(ns: &Path, addr: SocketAddr) -> std::io::Result<TcpListener> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(ns)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns(2) on an open namespace fd, for this thread only.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            TcpListener::bind(addr)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
    })
}

/// A running HTTP server; dropping it stops accepting connections (open
/// ones end with the run's runtime).
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the gate needs for every request.
struct Served {
    root: PathBuf,
    trusted: Vec<PathBuf>,
    faults: Vec<Fault>,
    log: EventLog,
    counts: Mutex<(u32, HashMap<String, u32>)>,
}

impl Served {
    /// Numbers the request: (overall, for this path).
    fn count(&self, path: &str) -> (u32, u32) {
        let Ok(mut c) = self.counts.lock() else {
            return (0, 0);
        };
        let (overall, per_path) = &mut *c;
        *overall += 1;
        let per = per_path.entry(path.to_string()).or_insert(0);
        *per += 1;
        (*overall, *per)
    }
}

/// Serves `root` on `listener` (inside the current tokio runtime).
pub fn serve(
    listener: TcpListener,
    root: &Path,
    settings: &HttpSettings,
    log: EventLog,
) -> Result<HttpServer, HarnessError> {
    let root = root
        .canonicalize()
        .map_err(|e| HarnessError::io("opening the HTTP root", root, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| HarnessError::io("reading the address of", "the HTTP listener", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| HarnessError::io("configuring", "the HTTP listener", e))?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| HarnessError::io("registering", "the HTTP listener", e))?;
    let trusted = crate::payload::target_dir()
        .join("boot-payloads")
        .canonicalize()
        .into_iter()
        .collect();
    log.line(format!("http: serving {} on {addr}", root.display()));
    let state = Arc::new(Served {
        root: root.clone(),
        trusted,
        faults: settings.faults.clone(),
        log: log.clone(),
        counts: Mutex::new((0, HashMap::new())),
    });
    let files = tower_http::services::ServeDir::new(&root).append_index_html_on_directories(false);
    let app = axum::Router::new()
        .fallback_service(files)
        .layer(axum::middleware::from_fn_with_state(state, gate));
    let task = tokio::spawn(async move {
        let make = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, make).await {
            log.line(format!("http: server stopped: {e}"));
        }
    });
    Ok(HttpServer { addr, task })
}

/// The sandbox, the faults and the log around `ServeDir`.
async fn gate(
    State(s): State<Arc<Served>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let raw = req.uri().path().trim_start_matches('/').to_string();
    let path = percent_encoding::percent_decode_str(&raw)
        .decode_utf8_lossy()
        .into_owned();
    let (n, per) = s.count(&path);
    let who = format!("#{n} {client} {method} {path:?}");
    let answer = |status: StatusCode, why: &str| {
        s.log
            .line(format!("http: {who}: {} ({why})", status.as_u16()));
        (status, format!("{why}\n")).into_response()
    };
    if method != Method::GET && method != Method::HEAD {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "read-only server");
    }
    if let Err(r) = confine(&s.root, &s.trusted, Path::new(&path)) {
        return match r {
            Refusal::NotFound => answer(StatusCode::NOT_FOUND, "not found"),
            Refusal::Unsafe => answer(StatusCode::FORBIDDEN, "refused: absolute or `..` path"),
            Refusal::Escapes => answer(StatusCode::FORBIDDEN, "refused: leaves the tree"),
        };
    }
    let faults: Vec<Action> = s
        .faults
        .iter()
        .filter(|f| f.applies(&path, n, per))
        .map(|f| f.action)
        .collect();
    if let Some(code) = faults.iter().find_map(|a| match a {
        Action::Status(c) => Some(*c),
        _ => None,
    }) {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return answer(status, "injected by the scenario");
    }
    let mut resp = next.run(req).await;
    let status = resp.status();
    let mut announced = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut shape = Shape::default();
    let mut notes = Vec::new();
    for a in &faults {
        match *a {
            Action::Cut(b) => shape.stop = Some((b, Stop::Cut)),
            Action::Stall(b) => shape.stop = Some((b, Stop::Stall)),
            Action::Length(l) => {
                shape.stop = Some((l, Stop::End));
                resp.headers_mut().insert(header::CONTENT_LENGTH, l.into());
                notes.push(format!(
                    "Content-Length {l} announced instead of {}",
                    announced.map_or("none".into(), |a| a.to_string())
                ));
                announced = Some(l);
            }
            Action::Rate(r) => shape.rate = Some(r),
            Action::Status(_) => {}
        }
    }
    let note = if notes.is_empty() {
        String::new()
    } else {
        format!(" [{}]", notes.join("; "))
    };
    s.log.line(format!(
        "http: {who}: {} after {:.3} s{note}",
        status.as_u16(),
        started.elapsed().as_secs_f64()
    ));
    if method == Method::HEAD {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let body = shape::shaped(body, shape, s.log.clone(), who, announced);
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Fault;
    use std::io::{Read, Write};

    /// One raw HTTP/1.0 GET against `addr`: (status line, headers, body,
    /// whether the read ended in an error).
    fn get(addr: SocketAddr, path: &str) -> (String, String, Vec<u8>) {
        let mut c = std::net::TcpStream::connect(addr).expect("connect");
        c.write_all(format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes())
            .expect("send");
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all);
        let split = all
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no headers in {:?}", String::from_utf8_lossy(&all)));
        let head = String::from_utf8_lossy(&all[..split]).into_owned();
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, head, all[split + 4..].to_vec())
    }

    fn with_server(faults: Vec<Fault>, f: impl FnOnce(SocketAddr, &Path) + Send) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/k"), vec![7u8; 100_000]).expect("write");
        std::fs::write(dir.path().join("secret"), b"no").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("out")).expect("ln");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let log_path = dir.path().join("http.log");
        let log = EventLog::create(&log_path, Instant::now()).expect("log");
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let server = rt
            .block_on(async { serve(l, &root, &HttpSettings { faults }, log) })
            .expect("serve");
        f(server.addr, &log_path);
        drop(server);
    }

    #[test]
    fn serves_files_with_their_length_and_refuses_the_rest() {
        with_server(Vec::new(), |addr, log| {
            let (status, head, body) = get(addr, "/sub/k");
            assert!(status.contains("200"), "{status}");
            assert!(
                head.to_ascii_lowercase().contains("content-length: 100000"),
                "{head}"
            );
            assert_eq!(body.len(), 100_000);
            assert!(get(addr, "/sub/missing").0.contains("404"));
            assert!(
                get(addr, "/sub").0.contains("404"),
                "a directory is not a file"
            );
            assert!(
                get(addr, "/out").0.contains("403"),
                "symlink out of the tree"
            );
            assert!(get(addr, "/sub/../../secret").0.starts_with("HTTP/1.0 4"));
            assert!(get(addr, "/%2e%2e/secret").0.contains("403"));
            let text = std::fs::read_to_string(log).expect("log");
            assert!(text.contains("GET \"sub/k\": 200"), "{text}");
            assert!(
                text.contains("complete, 100000 bytes sent (Content-Length 100000)"),
                "{text}"
            );
            assert!(text.contains("\"out\": 403"), "{text}");
        });
    }

    #[test]
    fn faults_shape_the_answers() {
        let faults = vec![
            Fault {
                path: Some("sub/k".into()),
                requests: vec![1, 2],
                action: Action::Status(500),
            },
            Fault {
                path: Some("sub/k".into()),
                requests: vec![3],
                action: Action::Cut(30_000),
            },
            Fault {
                path: Some("sub/k".into()),
                requests: vec![4],
                action: Action::Length(100_500),
            },
            Fault {
                path: Some("sub/k".into()),
                requests: vec![5],
                action: Action::Rate(400_000),
            },
        ];
        with_server(faults, |addr, log| {
            assert!(get(addr, "/sub/k").0.contains("500"));
            assert!(get(addr, "/sub/k").0.contains("500"));
            let (_, head, body) = get(addr, "/sub/k");
            assert!(head.to_ascii_lowercase().contains("content-length: 100000"));
            assert_eq!(body.len(), 30_000, "cut after 30000 bytes");
            let (_, head, body) = get(addr, "/sub/k");
            assert!(
                head.to_ascii_lowercase().contains("content-length: 100500"),
                "{head}"
            );
            assert_eq!(
                body.len(),
                100_000,
                "the whole file, then the connection closes"
            );
            let t = Instant::now();
            let (_, _, body) = get(addr, "/sub/k");
            assert_eq!(body.len(), 100_000);
            let secs = t.elapsed().as_secs_f64();
            assert!(secs >= 0.2, "100 kB at 400 kB/s took {secs} s");
            assert_eq!(get(addr, "/sub/k").2.len(), 100_000, "request 6: no fault");
            let text = std::fs::read_to_string(log).expect("log");
            assert!(
                text.contains("connection cut after 30000 bytes (fault)"),
                "{text}"
            );
            assert!(
                text.contains("Content-Length 100500 announced instead of 100000"),
                "{text}"
            );
        });
    }

    #[test]
    fn a_stalled_body_stops_sending_but_keeps_the_connection() {
        let faults = vec![Fault {
            path: None,
            requests: vec![],
            action: Action::Stall(20_000),
        }];
        with_server(faults, |addr, _| {
            let mut c = std::net::TcpStream::connect(addr).expect("connect");
            c.set_read_timeout(Some(std::time::Duration::from_millis(700)))
                .expect("timeout");
            c.write_all(b"GET /sub/k HTTP/1.0\r\n\r\n").expect("send");
            let mut got = Vec::new();
            let mut buf = [0u8; 65536];
            let err = loop {
                match c.read(&mut buf) {
                    Ok(0) => panic!("connection closed; expected a stall"),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => break e,
                }
            };
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
            let split = got.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
            assert_eq!(got.len() - split - 4, 20_000);
        });
    }

    /// The host's busybox wget (the guest's is the same 1.35 build for
    /// s390x) against each fault: the exit status and messages that the
    /// guest's `_pxe_wget` and the client tests' wget stub rely on.
    #[test]
    fn busybox_wget_sees_the_faults_as_the_guest_expects() {
        let Some(bb) = ["/usr/bin/busybox", "/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
        else {
            eprintln!("no busybox: skipped");
            return;
        };
        let fault = |requests: Vec<u32>, action| Fault {
            path: Some("sub/k".into()),
            requests,
            action,
        };
        let faults = vec![
            fault(vec![1], Action::Status(500)),
            fault(vec![2], Action::Cut(30_000)),
            fault(vec![3], Action::Length(100_500)),
            fault(vec![4], Action::Status(404)),
        ];
        with_server(faults, |addr, _| {
            let out = tempfile::tempdir().expect("tempdir");
            let file = out.path().join("k");
            let wget = || {
                let o = std::process::Command::new(bb)
                    .args(["wget", "-q", "-S", "-O"])
                    .arg(&file)
                    .arg(format!("http://{addr}/sub/k"))
                    .output()
                    .expect("busybox wget");
                let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                (
                    o.status.code(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                    size,
                )
            };
            let (rc, err, _) = wget();
            assert_eq!(rc, Some(1));
            assert!(err.contains("server returned error: HTTP/1.1 500"), "{err}");
            let (rc, err, size) = wget();
            assert_eq!((rc, size), (Some(1), 30_000), "{err}");
            assert!(err.contains("content-length: 100000"), "{err}");
            assert!(err.contains("connection closed prematurely"), "{err}");
            let (rc, err, size) = wget();
            assert_eq!((rc, size), (Some(1), 100_000), "{err}");
            assert!(err.contains("content-length: 100500"), "{err}");
            let (rc, err, _) = wget();
            assert_eq!(rc, Some(1));
            assert!(err.contains("server returned error: HTTP/1.1 404"), "{err}");
            let (rc, err, size) = wget();
            assert_eq!((rc, size), (Some(0), 100_000), "{err}");
        });
    }
}
