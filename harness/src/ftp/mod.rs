//! The run's FTP server: libunftp serving the run's tree read-only through
//! [`tree::Tree`] (the TFTP server's sandbox rules, every transfer in
//! `ftp.log`), anonymous login (any user name and password), passive mode
//! only. It runs on a thread of its own with its own tokio runtime, started
//! inside the run's network namespace when there is one, so that every
//! socket it opens (the control listener and each passive data listener)
//! lives where the guest reaches it; dropping [`FtpServer`] stops the
//! runtime, which ends every session, transfer and listener with it.
//!
//! Passive data ports are ephemeral: the range given to libunftp is `0..=0`,
//! so each `PASV`/`EPSV` binds port 0 and the kernel picks a free port,
//! which the reply announces. Parallel runs never collide, and no port is
//! guessed. Where it listens ([`Plan`]): slirp, an ephemeral port of
//! 127.0.0.1, reached by the guest at the slirp host address (10.0.2.2 by
//! default; slirp forwards any port of it, passive ports included); dnsmasq,
//! port 21 of the server address inside the run's namespace; the inprocess
//! mode carries no FTP ([`unsupported`]). Scenarios name the server with
//! [`PLACEHOLDER`] (`${ftp}`), replaced per run by [`Plan::base_url`] in
//! inline tree text. This module must not know about consoles, QEMU or
//! steps.

pub mod tree;

use crate::inprocess::log::EventLog;
use crate::network::{HttpSite, Network};
use crate::HarnessError;
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tree::Tree;

/// The text scenarios write for the run's FTP server: replaced by
/// [`Plan::base_url`] (`ftp://ADDRESS[:PORT]`, no trailing slash) in inline
/// tree text.
pub const PLACEHOLDER: &str = "${ftp}";

/// Port the server uses inside a run's own network namespace.
pub const NAMESPACE_PORT: u16 = 21;

/// The greeting (220) clients see.
const GREETING: &str = "netboot-harness FTP server (read-only)";

/// `[ftp]` as written in a scenario: the run gets an FTP server serving
/// its tree. No keys (yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpConfig {}

/// `[ftp]` validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FtpSettings {}

impl FtpConfig {
    /// The settings (nothing to check yet).
    pub fn resolve(&self) -> FtpSettings {
        FtpSettings {}
    }
}

/// Why `network` cannot carry the run's FTP server, if it cannot: the
/// inprocess mode's segment relays only TCP port 80 of the server address
/// to loopback ([`crate::inprocess::tcp`]), and FTP's passive data
/// connections go to ports the server picks per transfer.
pub fn unsupported(network: &dyn Network) -> Option<String> {
    match network.http_site() {
        Ok(HttpSite::Relayed { .. }) => Some(format!(
            "ftp: the {} mode has no FTP server: its segment relays only TCP port 80 \
             (HTTP) to the host, and FTP's passive data connections go to ports the \
             server picks per transfer; use slirp or dnsmasq",
            network.name()
        )),
        _ => None,
    }
}

/// Where the run's FTP server will listen, decided before the tree is
/// written (the tree's text names the server's URL).
#[derive(Debug)]
pub struct Plan {
    /// `ftp://ADDRESS[:PORT]` as the guest reaches the server.
    pub base_url: String,
    bind: Bind,
    /// The address `PASV` announces (`None`: the control connection's
    /// local address).
    passive_host: Option<Ipv4Addr>,
}

#[derive(Debug)]
enum Bind {
    /// Already bound on the host's loopback (slirp forwards to it).
    Loopback(TcpListener),
    /// To be bound inside the run's network namespace, once it exists.
    InNamespace(SocketAddr),
}

impl Plan {
    /// The plan for a run in `network`: on the host's loopback it binds
    /// 127.0.0.1:0 now.
    pub fn for_network(network: &dyn Network) -> Result<Plan, HarnessError> {
        let tool = |message: String| HarnessError::Tool {
            tool: "ftp",
            message,
        };
        if let Some(why) = unsupported(network) {
            return Err(tool(why));
        }
        match network.http_site().map_err(tool)? {
            HttpSite::HostLoopback { guest_addr } => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .map_err(|e| HarnessError::io("binding the FTP server on", "127.0.0.1", e))?;
                let port = l
                    .local_addr()
                    .map_err(|e| HarnessError::io("reading the address of", "127.0.0.1", e))?
                    .port();
                Ok(Plan {
                    base_url: format!("ftp://{guest_addr}:{port}"),
                    bind: Bind::Loopback(l),
                    passive_host: Some(guest_addr),
                })
            }
            HttpSite::InNamespace { addr } => Ok(Plan {
                base_url: format!("ftp://{addr}"),
                bind: Bind::InNamespace(SocketAddr::from((addr, NAMESPACE_PORT))),
                passive_host: None,
            }),
            HttpSite::Relayed { .. } => Err(tool(format!(
                "ftp: the {} mode has no FTP server",
                network.name()
            ))),
        }
    }

    /// Starts serving `root`; `netns` is the run's network namespace, if it
    /// has one. The server stops when the returned value is dropped.
    pub fn start(
        self,
        root: &Path,
        netns: Option<&Path>,
        log: EventLog,
    ) -> Result<FtpServer, HarnessError> {
        let (bind, ns) = match self.bind {
            Bind::Loopback(l) => (Listen::Bound(l), None),
            Bind::InNamespace(addr) => {
                let ns = netns.ok_or_else(|| HarnessError::Tool {
                    tool: "ftp",
                    message: format!("{addr}: the network has no namespace to listen in"),
                })?;
                (Listen::Bind(addr), Some(ns.to_path_buf()))
            }
        };
        serve(bind, ns, root, self.passive_host, log)
    }
}

/// The control listener: bound already, or to bind (inside the namespace).
#[derive(Debug)]
pub enum Listen {
    /// A bound listener.
    Bound(TcpListener),
    /// An address to bind on the server's thread.
    Bind(SocketAddr),
}

/// A running FTP server; dropping it stops its runtime (every session,
/// transfer and passive listener ends) and joins its thread.
pub struct FtpServer {
    /// Where it listens for control connections.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `root` on `listen` from a thread of its own (inside the network
/// namespace `netns`, when given); `passive_host` is the address `PASV`
/// announces (`None`: the control connection's local address).
pub fn serve(
    listen: Listen,
    netns: Option<PathBuf>,
    root: &Path,
    passive_host: Option<Ipv4Addr>,
    log: EventLog,
) -> Result<FtpServer, HarnessError> {
    let root = root
        .canonicalize()
        .map_err(|e| HarnessError::io("opening the FTP root", root, e))?;
    let trusted: Arc<Vec<PathBuf>> = Arc::new(
        crate::payload::target_dir()
            .join("boot-payloads")
            .canonicalize()
            .into_iter()
            .collect(),
    );
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<SocketAddr>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let where_ = netns.clone();
    let thread = std::thread::Builder::new()
        .name("ftp-server".into())
        .spawn(move || {
            let started = (|| {
                if let Some(ns) = &netns {
                    enter_namespace(ns)?;
                }
                let l = match listen {
                    Listen::Bound(l) => l,
                    Listen::Bind(addr) => TcpListener::bind(addr)?,
                };
                l.set_nonblocking(true)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let l = {
                    let _guard = rt.enter();
                    tokio::net::TcpListener::from_std(l)?
                };
                Ok((rt, l))
            })();
            let (rt, listener) = match started {
                Ok(x) => x,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let addr = listener.local_addr();
            let ok = addr.is_ok();
            let _ = ready_tx.send(addr);
            if ok {
                rt.block_on(async move {
                    tokio::select! {
                        _ = stop_rx => {}
                        _ = accept(listener, root, trusted, passive_host, log) => {}
                    }
                });
            }
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        })
        .map_err(|e| HarnessError::io("starting", "the FTP server thread", e))?;
    let what = where_.map_or_else(|| "the FTP listener".into(), |p| p.display().to_string());
    let addr = match ready_rx.recv() {
        Ok(Ok(addr)) => addr,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(HarnessError::io("starting the FTP server in", what, e));
        }
        Err(_) => {
            let _ = thread.join();
            return Err(HarnessError::Tool {
                tool: "ftp",
                message: "the FTP server thread ended before listening".into(),
            });
        }
    };
    Ok(FtpServer {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Moves the calling thread into the network namespace `ns` (the server's
/// thread only: every socket it creates afterwards lives there).
fn enter_namespace(ns: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(ns)?;
    // SAFETY: setns(2) on an open namespace fd, for this thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Accepts control connections until the runtime stops; each is served by
/// a libunftp server of its own (its storage knows the client, for the
/// log).
async fn accept(
    listener: tokio::net::TcpListener,
    root: PathBuf,
    trusted: Arc<Vec<PathBuf>>,
    passive_host: Option<Ipv4Addr>,
    log: EventLog,
) {
    let shown = listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string());
    log.line(format!(
        "ftp: serving {} on {shown} (passive ports: ephemeral, announced as {})",
        root.display(),
        passive_host.map_or_else(
            || "the control connection's address".into(),
            |a| a.to_string()
        )
    ));
    let mut sessions = tokio::task::JoinSet::new();
    let mut n = 0u32;
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                log.line(format!("ftp: accept failed: {e}"));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        n += 1;
        let who = format!("#{n} {client}");
        log.line(format!("ftp: {who} connected"));
        let tree = Tree::new(root.clone(), trusted.clone(), log.clone(), who.clone());
        let mut builder = libunftp::ServerBuilder::new(Box::new(move || tree.clone()))
            .greeting(GREETING)
            .passive_ports(0..=0);
        if let Some(host) = passive_host {
            builder = builder.passive_host(host);
        }
        let server = match builder.build() {
            Ok(s) => s,
            Err(e) => {
                log.line(format!("ftp: {who}: cannot serve: {e}"));
                continue;
            }
        };
        let log = log.clone();
        sessions.spawn(async move {
            if let Err(e) = server.service(stream).await {
                log.line(format!("ftp: {who}: session failed: {e}"));
            }
            log.line(format!("ftp: {who} closed"));
        });
        while sessions.try_join_next().is_some() {}
    }
}

#[cfg(test)]
mod tests;
