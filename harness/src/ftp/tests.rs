//! The FTP server against a raw client (every answer the sandbox gives)
//! and against the host's busybox wget (the guest's client, same 1.35
//! build): what the guest's `_pxe_wget` relies on.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

struct Fixture {
    dir: tempfile::TempDir,
    server: FtpServer,
}

impl Fixture {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ftp.log")).expect("log")
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    std::fs::write(root.join("sub/k"), vec![7u8; 100_000]).expect("write");
    std::fs::write(dir.path().join("secret"), b"no").expect("write");
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("out")).expect("ln");
    let log = EventLog::create(&dir.path().join("ftp.log"), Instant::now()).expect("log");
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let server = serve(Listen::Bound(l), None, &root, None, log).expect("serve");
    Fixture { dir, server }
}

/// A minimal FTP client: one control connection.
struct Client {
    ctl: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut c = Client {
            ctl: BufReader::new(s),
        };
        assert!(c.reply().starts_with("220 "));
        assert!(c.cmd("USER anonymous").starts_with("331 "));
        assert!(c.cmd("PASS busybox").starts_with("230 "));
        assert!(c.cmd("TYPE I").starts_with("200 "));
        c
    }

    /// The final line of the next reply.
    fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.ctl.read_line(&mut line).expect("reply");
            assert!(!line.is_empty(), "control connection closed");
            let b = line.as_bytes();
            if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                return line.trim_end().to_string();
            }
        }
    }

    fn cmd(&mut self, c: &str) -> String {
        self.ctl
            .get_mut()
            .write_all(format!("{c}\r\n").as_bytes())
            .expect("send");
        self.reply()
    }

    /// `PASV`: the port announced.
    fn pasv(&mut self) -> u16 {
        let r = self.cmd("PASV");
        assert!(r.starts_with("227 "), "{r}");
        let inner = &r[r.find('(').expect("(") + 1..r.find(')').expect(")")];
        let n: Vec<u16> = inner.split(',').map(|x| x.parse().expect("num")).collect();
        n[4] * 256 + n[5]
    }

    /// `RETR path` over a passive connection: (the reply after 150, the
    /// bytes received).
    fn retr(&mut self, path: &str) -> (String, Vec<u8>) {
        let port = self.pasv();
        let mut data = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("data");
        let first = self.cmd(&format!("RETR {path}"));
        let mut got = Vec::new();
        data.read_to_end(&mut got).expect("read");
        if first.starts_with("150 ") {
            (self.reply(), got)
        } else {
            (first, got)
        }
    }
}

#[test]
fn serves_files_with_their_size_and_refuses_the_rest() {
    let f = fixture();
    let mut c = Client::connect(f.server.addr);
    assert_eq!(c.cmd("SIZE sub/k"), "213 100000");
    let (end, body) = c.retr("sub/k");
    assert!(end.starts_with("226 "), "{end}");
    assert_eq!(body.len(), 100_000);
    assert!(c.cmd("SIZE sub/missing").starts_with("550 "));
    assert!(c.cmd("SIZE sub").starts_with("550 "), "a directory");
    assert!(c.cmd("SIZE out").starts_with("550 "), "symlink out");
    assert!(c.cmd("SIZE ../secret").starts_with("550 "));
    assert!(c.cmd("SIZE /../secret").starts_with("550 "));
    let (end, body) = c.retr("sub/missing");
    assert!(end.starts_with("550 "), "{end}");
    assert!(body.is_empty());
    assert!(c.cmd("CWD sub").starts_with("250 "));
    assert_eq!(c.cmd("SIZE k"), "213 100000", "relative to the cwd");
    assert!(c.cmd("CWD ..").starts_with("550 "), "`..` is refused");
    assert!(c.cmd("CWD /").starts_with("250 "), "back to the root");
    assert!(c.cmd("CWD out").starts_with("550 "), "not a directory");
    for w in ["DELE sub/k", "MKD new", "RMD sub"] {
        assert!(c.cmd(w).starts_with("550 "), "{w}");
    }
    let port = c.pasv();
    let mut data = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("data");
    let r = c.cmd("STOR sub/k");
    if r.starts_with("150 ") {
        let _ = data.write_all(b"overwrite");
        drop(data);
        let end = c.reply();
        assert!(end.starts_with("5"), "STOR: {end}");
    } else {
        assert!(r.starts_with("5"), "STOR: {r}");
    }
    assert_eq!(
        std::fs::read(f.dir.path().join("root/sub/k")).expect("read"),
        vec![7u8; 100_000],
        "the file is untouched"
    );
    let log = f.log();
    for line in [
        "connected",
        "SIZE \"sub/k\": 213 100000",
        "RETR \"sub/k\": 100000 bytes from offset 0",
        "RETR \"sub/k\": complete, 100000 bytes sent",
        "SIZE \"sub/missing\": 550 (not found)",
        "SIZE \"out\": 550 (refused: leaves the tree)",
        "SIZE \"../secret\": 550 (refused: absolute or `..` path)",
        "DELE \"sub/k\": 550 (refused: read-only server)",
    ] {
        assert!(log.contains(line), "{line:?} not in\n{log}");
    }
}

#[test]
fn passive_ports_are_ephemeral_and_distinct() {
    let f = fixture();
    let mut a = Client::connect(f.server.addr);
    let mut b = Client::connect(f.server.addr);
    let (pa, pb) = (a.pasv(), b.pasv());
    assert_ne!(pa, pb);
    assert!(pa >= 1024 && pb >= 1024, "{pa} {pb}");
    let (end, body) = b.retr("sub/k");
    assert!(end.starts_with("226 ") && body.len() == 100_000, "{end}");
}

#[test]
fn the_server_stops_when_dropped() {
    let f = fixture();
    let addr = f.server.addr;
    let _c = Client::connect(addr);
    drop(f);
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}

/// The host's busybox wget (the guest's client): exit status and `-S`
/// output for a whole file (the `SIZE` answer `213 N` is what the guest
/// checks the received size against) and for a missing one (550).
#[test]
fn busybox_wget_fetches_and_sees_550() {
    let Some(bb) = host_busybox() else {
        eprintln!("no busybox: skipped");
        return;
    };
    let f = fixture();
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("k");
    let wget = |path: &str| {
        let o = std::process::Command::new(bb)
            .args(["wget", "-q", "-S", "-O"])
            .arg(&file)
            .arg(format!("ftp://{}/{path}", f.server.addr))
            .output()
            .expect("busybox wget");
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            size,
        )
    };
    let (rc, err, size) = wget("sub/k");
    assert_eq!((rc, size), (Some(0), 100_000), "{err}");
    assert!(err.lines().any(|l| l == "213 100000"), "{err}");
    let (rc, err, _) = wget("sub/missing");
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains(" 550 "), "{err}");
    let (rc, err, _) = wget("out");
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains(" 550 "), "{err}");
}

/// busybox wget against a scripted server that answers `SIZE` with
/// `size` and sends `sent` bytes, then `226`: wget's exit code, its stderr
/// and the bytes it kept.
fn wget_against_a_size_reply(
    bb: &str,
    size: u64,
    sent: usize,
) -> (Option<i32>, String, Option<u64>) {
    let ctl = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let data = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let (cport, dport) = (
        ctl.local_addr().expect("addr").port(),
        data.local_addr().expect("addr").port(),
    );
    let script = std::thread::spawn(move || {
        let (s, _) = ctl.accept().expect("accept");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut w = s;
        let mut say = |t: &str| w.write_all(format!("{t}\r\n").as_bytes()).expect("say");
        say("220 hi");
        let mut line = String::new();
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            let cmd = line.trim_end().to_string();
            line.clear();
            match cmd.split(' ').next().unwrap_or("") {
                "USER" => say("230 ok"),
                "TYPE" => say("200 ok"),
                "SIZE" => say(&format!("213 {size}")),
                "EPSV" => say(&format!("229 ok (|||{dport}|)")),
                "RETR" => {
                    say("150 here");
                    let (mut d, _) = data.accept().expect("data");
                    // the client may close early (it stops at SIZE)
                    let _ = d.write_all(&vec![1u8; sent]);
                    drop(d);
                    say("226 done");
                }
                _ => say("502 no"),
            }
        }
    });
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("k");
    let o = std::process::Command::new(bb)
        .args(["wget", "-q", "-S", "-O"])
        .arg(&file)
        .arg(format!("ftp://127.0.0.1:{cport}/k"))
        .output()
        .expect("busybox wget");
    let _ = script.join();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        std::fs::metadata(&file).map(|m| m.len()).ok(),
    )
}

fn host_busybox() -> Option<&'static str> {
    ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// Data shorter than the `SIZE` reply (our server never lies; this pins
/// the client's side of an FTP size mismatch): exit 1, "connection closed
/// prematurely", the 100 bytes kept, `213 200` on stderr.
#[test]
fn busybox_wget_fails_when_ftp_data_is_shorter_than_size() {
    let Some(bb) = host_busybox() else {
        eprintln!("no busybox: skipped");
        return;
    };
    let (code, err, kept) = wget_against_a_size_reply(bb, 200, 100);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("connection closed prematurely"), "{err}");
    assert!(err.lines().any(|l| l == "213 200"), "{err}");
    assert_eq!(kept, Some(100));
}

/// Data longer than the `SIZE` reply: wget stops reading at SIZE and
/// succeeds with the file cut there (what image/guest/README.md says no
/// size check can see); a `SIZE` of 0 gives an empty file.
#[test]
fn busybox_wget_stops_at_the_ftp_size_reply() {
    let Some(bb) = host_busybox() else {
        eprintln!("no busybox: skipped");
        return;
    };
    let (code, err, kept) = wget_against_a_size_reply(bb, 50, 100);
    assert_eq!((code, kept), (Some(0), Some(50)), "{err}");
    let (code, err, kept) = wget_against_a_size_reply(bb, 0, 100);
    assert_eq!((code, kept), (Some(0), Some(0)), "{err}");
}
