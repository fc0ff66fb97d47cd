//! The FTP server's storage: the run's tree, read-only, behind the TFTP
//! server's sandbox rules ([`crate::inprocess::tftp::confine`]: no `..`, no
//! absolute paths, no symlinks out of the tree but into the payload cache,
//! regular files only), as a libunftp storage back end
//! ([`unftp_core::storage::StorageBackend`]). `SIZE` and `RETR` are served
//! and logged (path, answer, bytes, duration, outcome); `CWD` enters a
//! directory of the tree (no `..`: libunftp joins paths without
//! normalising them); listings and every write (`STOR`, `DELE`, `MKD`,
//! `RMD`, `RNFR`/`RNTO`) are refused. One value serves one control
//! connection (its client is in every log line). This module must not open
//! sockets.

use crate::inprocess::log::EventLog;
use crate::inprocess::tftp::{confine, Refusal};
use async_trait::async_trait;
use std::fmt::Debug;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::io::AsyncWriteExt;
use unftp_core::auth::DefaultUser;
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Metadata, Result, StorageBackend};

/// The run's tree as one control connection sees it.
#[derive(Debug, Clone)]
pub struct Tree {
    root: PathBuf,
    trusted: Arc<Vec<PathBuf>>,
    log: Log,
    /// `#N CLIENT`: the connection's number in the run and its client.
    who: String,
}

/// [`EventLog`] has no `Debug`; the storage trait wants it.
#[derive(Clone)]
struct Log(EventLog);

impl Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventLog")
    }
}

impl Tree {
    /// The tree at `root` (canonical), with symlinks allowed into
    /// `trusted` (canonical), for the connection `who` (`#N CLIENT`).
    pub fn new(root: PathBuf, trusted: Arc<Vec<PathBuf>>, log: EventLog, who: String) -> Tree {
        Tree {
            root,
            trusted,
            log: Log(log),
            who,
        }
    }

    fn line(&self, text: String) {
        self.log.0.line(format!("ftp: {} {text}", self.who));
    }

    /// The path as the client named it, relative to the tree (libunftp
    /// joins it to the session's working directory, which starts at `/`).
    fn relative(path: &Path) -> PathBuf {
        path.components()
            .skip_while(|c| matches!(c, Component::RootDir))
            .collect()
    }

    /// Confines `path` to a regular file of the tree; a refusal is logged
    /// with `what` (the command) and answered 550.
    fn file(&self, what: &str, path: &Path) -> Result<(String, PathBuf)> {
        let rel = Self::relative(path);
        let shown = rel.display().to_string();
        confine(&self.root, &self.trusted, &rel)
            .map(|real| (shown.clone(), real))
            .map_err(|r| {
                let why = match r {
                    Refusal::NotFound => "not found",
                    Refusal::Unsafe => "refused: absolute or `..` path",
                    Refusal::Escapes => "refused: leaves the tree",
                };
                self.line(format!("{what} {shown:?}: 550 ({why})"));
                Error::from(ErrorKind::PermanentFileNotAvailable)
            })
    }

    fn refuse(&self, what: &str, path: &Path) -> Error {
        self.line(format!(
            "{what} {:?}: 550 (refused: read-only server)",
            Self::relative(path).display().to_string()
        ));
        Error::from(ErrorKind::PermissionDenied)
    }

    /// Opens the confined file `path` at `start_pos`: (path as shown, the
    /// file, its size).
    async fn open(&self, path: &Path, start_pos: u64) -> Result<(String, tokio::fs::File, u64)> {
        use tokio::io::AsyncSeekExt;
        let (shown, real) = self.file("RETR", path)?;
        let mut f = tokio::fs::File::open(&real).await.map_err(Error::from)?;
        let size = f.metadata().await.map_err(Error::from)?.len();
        if start_pos > 0 {
            f.seek(std::io::SeekFrom::Start(start_pos))
                .await
                .map_err(Error::from)?;
        }
        Ok((shown, f, size))
    }
}

/// A file's metadata as `SIZE` and `MDTM` report it.
#[derive(Debug, Clone)]
pub struct Meta {
    len: u64,
    dir: bool,
    modified: Option<SystemTime>,
}

impl Metadata for Meta {
    fn len(&self) -> u64 {
        self.len
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_file(&self) -> bool {
        !self.dir
    }
    fn is_symlink(&self) -> bool {
        false
    }
    fn modified(&self) -> Result<SystemTime> {
        self.modified
            .ok_or_else(|| Error::from(ErrorKind::LocalError))
    }
    fn gid(&self) -> u32 {
        0
    }
    fn uid(&self) -> u32 {
        0
    }
}

#[async_trait]
impl StorageBackend<DefaultUser> for Tree {
    type Metadata = Meta;

    async fn metadata<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        path: P,
    ) -> Result<Meta> {
        let (shown, real) = self.file("SIZE", path.as_ref())?;
        let m = tokio::fs::metadata(&real).await.map_err(Error::from)?;
        self.line(format!("SIZE {shown:?}: 213 {}", m.len()));
        Ok(Meta {
            len: m.len(),
            dir: false,
            modified: m.modified().ok(),
        })
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Meta>>> {
        self.line(format!(
            "LIST {:?}: 550 (refused: no listings)",
            Self::relative(path.as_ref()).display().to_string()
        ));
        Err(Error::from(ErrorKind::PermissionDenied))
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
        let (_, f, _) = self.open(path.as_ref(), start_pos).await?;
        Ok(Box::new(f))
    }

    /// `RETR`: the file copied to the data connection, logged with its
    /// outcome.
    async fn get_into<'a, P, W>(
        &self,
        _user: &DefaultUser,
        path: P,
        start_pos: u64,
        output: &'a mut W,
    ) -> Result<u64>
    where
        W: tokio::io::AsyncWrite + Unpin + Sync + Send + ?Sized,
        P: AsRef<Path> + Send + Debug,
    {
        use tokio::io::AsyncReadExt;
        let started = Instant::now();
        let (shown, mut file, size) = self.open(path.as_ref(), start_pos).await?;
        self.line(format!(
            "RETR {shown:?}: {size} bytes from offset {start_pos}"
        ));
        let mut sent = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        let outcome = loop {
            match file.read(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(n) => match output.write_all(&buf[..n]).await {
                    Ok(()) => sent += n as u64,
                    Err(e) => break Err(("the client closed the data connection", e)),
                },
                Err(e) => break Err(("reading the file failed", e)),
            }
        };
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => {
                let rate = if secs > 0.0 {
                    format!(", {:.1} MB/s", sent as f64 / secs / 1e6)
                } else {
                    String::new()
                };
                self.line(format!(
                    "RETR {shown:?}: complete, {sent} bytes sent in {secs:.3} s{rate}"
                ));
                Ok(sent)
            }
            Err((why, e)) => {
                self.line(format!(
                    "RETR {shown:?}: incomplete ({why}: {e}), {sent} bytes sent in {secs:.3} s"
                ));
                Err(Error::from(e))
            }
        }
    }

    async fn put<
        P: AsRef<Path> + Send + Debug,
        R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static,
    >(
        &self,
        _user: &DefaultUser,
        _input: R,
        path: P,
        _start_pos: u64,
    ) -> Result<u64> {
        Err(self.refuse("STOR", path.as_ref()))
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, path: P) -> Result<()> {
        Err(self.refuse("DELE", path.as_ref()))
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, path: P) -> Result<()> {
        Err(self.refuse("MKD", path.as_ref()))
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        from: P,
        _to: P,
    ) -> Result<()> {
        Err(self.refuse("RNTO", from.as_ref()))
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, path: P) -> Result<()> {
        Err(self.refuse("RMD", path.as_ref()))
    }

    /// `CWD`: a directory of the tree (the same rules as for files, but a
    /// directory, and no symlink out of the tree at all); the tree's root
    /// is always one.
    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, path: P) -> Result<()> {
        let rel = Self::relative(path.as_ref());
        let shown = rel.display().to_string();
        let ok = rel.as_os_str().is_empty()
            || (rel.components().all(|c| matches!(c, Component::Normal(_)))
                && self
                    .root
                    .join(&rel)
                    .canonicalize()
                    .is_ok_and(|real| real.starts_with(&self.root) && real.is_dir()));
        if ok {
            self.line(format!("CWD {shown:?}: 250"));
            Ok(())
        } else {
            self.line(format!("CWD {shown:?}: 550 (not a directory of the tree)"));
            Err(Error::from(ErrorKind::PermanentDirectoryNotAvailable))
        }
    }
}
