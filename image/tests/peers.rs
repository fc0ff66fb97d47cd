//! Replays the public PXELINUX test configs of peer projects through the
//! host model (`pxelinux::resolve`, i.e. what `s390-pxelinux resolve`
//! computes) and compares with what each peer's own test expects:
//! petitboot's `test/parser/test-pxe-*.c` and u-root's `pkg/boot/syslinux`
//! (the `testdata/` installer trees and the inline configs of
//! `syslinux_test.go`). The peers' files are read from their own checkouts
//! at the commits pinned in `tests/peers.toml`, never copied here; that file
//! holds, per case, the peer's expectation, ours, and a verdict for every
//! difference (summarised in `image/guest/README.md`).
//!
//! The replay needs the checkouts and is ignored by default:
//!
//! ```sh
//! git clone https://github.com/open-power/petitboot /tmp/petitboot
//! git clone https://github.com/u-root/u-root /tmp/u-root
//! PEER_PETITBOOT=/tmp/petitboot PEER_UROOT=/tmp/u-root \
//!     cargo test -p s390-pxelinux --test peers -- --ignored
//! ```
//!
//! `PEERS_PRINT=1` (with `-- --nocapture`) prints the computed cases in the
//! form of `tests/peers.toml`. `peers_file_gives_every_difference_a_verdict`
//! always runs.

use s390_pxelinux::pxelinux::lookup::{self, Location, Target};
use s390_pxelinux::pxelinux::{self, Outcome, Request, Source};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What a boot resolves to, in the peer's URL form. Fields left out of a
/// peer's expectation are not checked by that peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Summary {
    /// Whether anything boots (petitboot: at least one boot option).
    boots: bool,
    label: Option<String>,
    kernel: Option<String>,
    initrd: Option<Vec<String>>,
    cmdline: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pin {
    repo: String,
    commit: String,
    env: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerCase {
    /// `petitboot`, `u-root-testdata` or `u-root-test`.
    kind: String,
    /// The test file (petitboot), the testdata tree (u-root) or the case's
    /// `desc` in `syslinux_test.go`.
    test: String,
    /// The peer's expectation (read from its test by the replay, except for
    /// `syslinux_test.go`, whose Go structs are transcribed here).
    theirs: Summary,
    /// The model's result.
    ours: Summary,
    /// `same`, or the difference and who is right, with the syslinux
    /// reference.
    verdict: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Peers {
    petitboot: Pin,
    #[serde(rename = "u-root")]
    u_root: Pin,
    case: Vec<PeerCase>,
}

fn peers() -> Peers {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers.toml");
    let text = std::fs::read_to_string(&path).expect("tests/peers.toml");
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A URL path for comparison: which file the server serves (`//` and `/./`
/// collapsed, as TFTP and HTTP servers do).
fn file_identity(url: &str) -> String {
    let (head, path) = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            (format!("{scheme}://{host}/"), path)
        }
        None => (String::new(), url),
    };
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("{head}{}", parts.join("/"))
}

/// Whether our result meets every field of the peer's expectation.
fn agrees(theirs: &Summary, ours: &Summary) -> bool {
    if theirs.boots != ours.boots {
        return false;
    }
    let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => file_identity(a) == file_identity(b),
        (Some(_), None) => false,
        (None, _) => true,
    };
    let initrd_ok = match (&theirs.initrd, &ours.initrd) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| file_identity(x) == file_identity(y))
        }
        (Some(a), None) => a.is_empty(),
        (None, _) => true,
    };
    same(&theirs.kernel, &ours.kernel)
        && initrd_ok
        && (theirs.label.is_none() || theirs.label == ours.label)
        && (theirs.cmdline.is_none() || theirs.cmdline == ours.cmdline)
}

#[test]
fn peers_file_gives_every_difference_a_verdict() {
    let p = peers();
    assert!(p.petitboot.commit.len() == 40 && p.u_root.commit.len() == 40);
    assert!(!p.petitboot.repo.is_empty() && !p.u_root.repo.is_empty());
    let mut bad = Vec::new();
    for c in &p.case {
        let same = agrees(&c.theirs, &c.ours);
        let says_same = c.verdict == "same";
        let cites = ["ours is right", "theirs is right", "deliberate choice"]
            .iter()
            .any(|v| c.verdict.starts_with(v))
            && (c.verdict.contains(".c") || c.verdict.contains(".txt"));
        if same != says_same || (!same && !cites) {
            bad.push(format!(
                "{} {}: agrees={same}, verdict {:?}",
                c.kind, c.test, c.verdict
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "verdicts must be `same` exactly when the results agree, and otherwise \
         start with `ours is right`, `theirs is right` or `deliberate choice` and \
         cite a syslinux file:\n{}",
        bad.join("\n")
    );
}

// ---------------------------------------------------------------------------
// The replay.
// ---------------------------------------------------------------------------

struct Checkout<'a> {
    dir: String,
    pin: &'a Pin,
}

impl Checkout<'_> {
    fn open(pin: &Pin) -> Checkout<'_> {
        let dir = std::env::var(&pin.env).unwrap_or_else(|_| {
            panic!(
                "set {} to a checkout of https://github.com/{} (commit {})",
                pin.env, pin.repo, pin.commit
            )
        });
        Checkout { dir, pin }
    }

    fn git(&self, args: &[&str]) -> Vec<u8> {
        let o = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("git");
        assert!(
            o.status.success(),
            "git -C {} {args:?}: {}",
            self.dir,
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }

    fn show(&self, path: &str) -> Vec<u8> {
        self.git(&["show", &format!("{}:{path}", self.pin.commit)])
    }

    fn files(&self, dir: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.git(&["ls-tree", "-r", "--name-only", &self.pin.commit, dir]))
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A tree of in-memory files; kernels and initrds always "exist" (the peers'
/// tests check names, not contents).
struct PeerSource(BTreeMap<String, Vec<u8>>);

fn served_path(loc: &Location) -> Option<String> {
    let p = match &loc.target {
        Target::Tftp { path, .. } => path.clone(),
        Target::Url(u) => {
            let rest = u.split_once("://").map_or("", |(_, r)| r);
            let p = rest.split_once('/').map_or("", |(_, p)| p);
            p.split(['?', '#']).next().unwrap_or("").to_string()
        }
        Target::Unsupported(_) => return None,
    };
    Some(file_identity(&p))
}

impl Source for PeerSource {
    fn read(&self, loc: &Location) -> Option<Vec<u8>> {
        if loc.refused() {
            return None;
        }
        self.0.get(&served_path(loc)?).cloned()
    }
    fn exists(&self, loc: &Location) -> bool {
        !loc.refused()
    }
}

/// A printed location as a URL: `tftp://<server>/<path>` for TFTP.
fn as_url(display: &str, server: &str, base: Option<&str>) -> String {
    let loc = lookup::resolve_path(display, "");
    match (&loc.target, base) {
        (Target::Tftp { path, .. }, Some(base)) => format!("{base}{path}"),
        (
            Target::Tftp {
                server: s,
                port,
                path,
            },
            None,
        ) => {
            let host = s.as_deref().unwrap_or(server);
            let port = if *port == lookup::TFTP_PORT {
                String::new()
            } else {
                format!(":{port}")
            };
            format!("tftp://{host}{port}/{path}")
        }
        _ => loc.display,
    }
}

fn ours(source: &PeerSource, req: &Request, base: Option<&str>) -> Summary {
    let r = pxelinux::resolve(source, req).expect("resolve");
    match r.outcome {
        Outcome::Boot(t) => Summary {
            boots: true,
            label: Some(t.label),
            kernel: Some(as_url(&t.kernel, &req.server, base)),
            initrd: Some(
                t.initrd
                    .iter()
                    .map(|i| as_url(i, &req.server, base))
                    .collect(),
            ),
            cmdline: Some(t.cmdline),
        },
        Outcome::Rescue { .. } | Outcome::Reboot { .. } => Summary::default(),
    }
}

fn request(server: &str) -> Request {
    Request {
        mac: "52:54:00:12:34:56".into(),
        ip: Some("10.0.2.15".parse().expect("ip")),
        server: server.into(),
        netmask: "255.255.255.0".into(),
        ..Request::default()
    }
}

/// The calls of `name(…);` in C source: each argument as its concatenated
/// string literals (`"a" "b"` → `a b` joined without a space), or as the
/// raw token when it has none.
fn c_calls(src: &str, name: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(&format!("{name}(")) {
        let body = &rest[i + name.len() + 1..];
        let end = body.find(");").unwrap_or(body.len());
        let mut args = Vec::new();
        let (mut cur, mut lit, mut in_str, mut saw_str) =
            (String::new(), String::new(), false, false);
        for ch in body[..end].chars() {
            match (in_str, ch) {
                (true, '"') => in_str = false,
                (true, c) => lit.push(c),
                (false, '"') => {
                    in_str = true;
                    saw_str = true;
                }
                (false, ',') => {
                    args.push(if saw_str {
                        lit.clone()
                    } else {
                        cur.trim().to_string()
                    });
                    cur.clear();
                    lit.clear();
                    saw_str = false;
                }
                (false, c) => cur.push(c),
            }
        }
        args.push(if saw_str { lit } else { cur.trim().to_string() });
        out.push(args);
        rest = &body[end..];
    }
    out
}

fn url_path(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    Some(file_identity(rest.split_once('/').map_or("", |(_, p)| p)))
}

/// A petitboot `test-pxe-*.c`: its embedded config, event parameters and
/// checks, replayed.
fn petitboot_case(c: &Checkout, test: &str) -> (Summary, Summary) {
    let src = String::from_utf8_lossy(&c.show(&format!("test/parser/{test}.c"))).into_owned();
    let config = src
        .split_once("#if 0 /* PARSER_EMBEDDED_CONFIG */\n")
        .and_then(|(_, r)| r.split_once("#endif"))
        .map_or("", |(cfg, _)| cfg)
        .to_string();
    let params: BTreeMap<String, String> = c_calls(&src, "test_set_event_param")
        .into_iter()
        .filter(|a| a.len() == 3)
        .map(|a| (a[1].clone(), a[2].clone()))
        .collect();
    let server = params
        .get("tftp")
        .or_else(|| params.get("siaddr"))
        .cloned()
        .unwrap_or_else(|| "host".into());
    let mut req = request(&server);
    req.bootfile = params.get("bootfile").cloned();
    req.opt209 = params
        .get("pxeconffile")
        .or_else(|| params.get("bootfile_url"))
        .cloned();
    req.opt210 = params.get("pxepathprefix").cloned();
    if let Some(m) = params.get("mac") {
        req.mac = m.clone();
    }
    // The test network's only device (test/parser/network.c: em1).
    if c_calls(&src, "test_set_event_device")
        .iter()
        .any(|a| a.get(1).map(String::as_str) == Some("em1"))
    {
        req.mac = "01:02:03:04:05:06".into();
    }
    if let Some(ip) = params.get("ip") {
        req.ip = Some(ip.parse().expect("ip"));
    }
    // Where the config is served: the URL the test reads it from, else the
    // option-209 file.
    let conf_url = c_calls(&src, "test_read_conf_embedded_url")
        .first()
        .and_then(|a| a.get(1).cloned());
    let at = conf_url
        .as_deref()
        .filter(|u| !u.starts_with("file://"))
        .and_then(url_path)
        .or_else(|| {
            req.opt209.as_deref().and_then(|o| {
                let prefix = lookup::path_prefix(req.opt210.as_deref(), req.bootfile.as_deref());
                served_path(&lookup::resolve_path(o, &prefix))
            })
        });
    let mut files = BTreeMap::new();
    if let Some(at) = at {
        files.insert(at, config.into_bytes());
    }
    let ours = ours(&PeerSource(files), &req, None);

    let count = c_calls(&src, "check_boot_option_count")
        .first()
        .and_then(|a| a.get(1)?.parse::<u32>().ok())
        .unwrap_or(0);
    let mut theirs = Summary {
        boots: count > 0,
        ..Summary::default()
    };
    if count > 0 {
        theirs.label = c_calls(&src, "check_name").first().map(|a| a[1].clone());
        theirs.cmdline = c_calls(&src, "check_args").first().map(|a| {
            if a[1] == "NULL" {
                String::new()
            } else {
                a[1].clone()
            }
        });
        for a in c_calls(&src, "check_resolved_url_resource") {
            match a[0].as_str() {
                "opt->boot_image" => theirs.kernel = Some(a[1].clone()),
                "opt->initrd" => theirs.initrd = Some(vec![a[1].clone()]),
                _ => {}
            }
        }
    }
    (theirs, ours)
}

/// A u-root `testdata/<name>` installer tree replayed as a TFTP tree: boot
/// file `isolinux/pxelinux.0` (prefix `isolinux/`), option 209
/// `isolinux.cfg`. u-root's expectation is the first (default) image of
/// `testdata/<name>.json`.
fn uroot_testdata_case(c: &Checkout, name: &str) -> (Summary, Summary) {
    let dir = format!("pkg/boot/syslinux/testdata/{name}/");
    let mut files = BTreeMap::new();
    for f in c.files(&dir) {
        if f.ends_with(".cfg") {
            files.insert(f[dir.len()..].to_string(), c.show(&f));
        }
    }
    let mut req = request("host");
    req.bootfile = Some("isolinux/pxelinux.0".into());
    req.opt209 = Some("isolinux.cfg".into());
    let base = format!("file://testdata/{name}/");
    let ours = ours(&PeerSource(files), &req, Some(&base));
    let json: serde_json::Value =
        serde_json::from_slice(&c.show(&format!("pkg/boot/syslinux/testdata/{name}.json")))
            .expect("json");
    let first = &json[0];
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let theirs = Summary {
        boots: !first.is_null(),
        label: None,
        kernel: s(&first["kernel"]["url"]),
        initrd: Some(s(&first["initrd"]["url"]).into_iter().collect()),
        cmdline: s(&first["cmdline"]),
    };
    (theirs, ours)
}

/// One inline case of u-root's `syslinux_test.go` `TestParseGeneral`: its
/// config files (Go raw strings under `configFiles`), served from TFTP
/// server 1.2.3.4 with the working directory `foobar/` (boot file
/// `foobar/pxelinux.0`).
fn uroot_test_case(c: &Checkout, desc: &str) -> Summary {
    let src = String::from_utf8_lossy(&c.show("pkg/boot/syslinux/syslinux_test.go")).into_owned();
    let start = src
        .find(&format!("desc: \"{desc}\""))
        .unwrap_or_else(|| panic!("syslinux_test.go: no case {desc:?}"));
    let body = &src[start..];
    let body = &body[..body[6..].find("desc: \"").map_or(body.len(), |e| e + 6)];
    let mut files = BTreeMap::new();
    if let Some(cf) = body.split_once("configFiles:") {
        let mut rest = cf.1.split_once("want:").map_or(cf.1, |(a, _)| a);
        while let Some(k) = rest.find("\"/") {
            let key_end = rest[k + 1..].find('"').expect("key") + k + 1;
            let key = &rest[k + 2..key_end];
            let Some(open) = rest[key_end..].find('`') else {
                break;
            };
            let open = key_end + open + 1;
            let close = rest[open..].find('`').expect("raw string") + open;
            let text: String = rest[open..close]
                .lines()
                .map(|l| format!("{}\n", l.trim_start()))
                .collect();
            files.insert(key.to_string(), text.into_bytes());
            rest = &rest[close + 1..];
        }
    }
    let mut req = request("1.2.3.4");
    req.bootfile = Some("foobar/pxelinux.0".into());
    ours(&PeerSource(files), &req, None)
}

/// A summary as a TOML inline table (for `PEERS_PRINT=1`, which prints
/// the computed cases in `tests/peers.toml` form).
fn inline(s: &Summary) -> String {
    let mut f = vec![format!("boots = {}", s.boots)];
    if let Some(l) = &s.label {
        f.push(format!("label = {l:?}"));
    }
    if let Some(k) = &s.kernel {
        f.push(format!("kernel = {k:?}"));
    }
    if let Some(i) = &s.initrd {
        f.push(format!("initrd = {i:?}"));
    }
    if let Some(c) = &s.cmdline {
        f.push(format!("cmdline = {c:?}"));
    }
    format!("{{ {} }}", f.join(", "))
}

#[test]
#[ignore = "needs checkouts of petitboot and u-root (PEER_PETITBOOT, PEER_UROOT)"]
fn peer_test_configs_replay_as_recorded() {
    let p = peers();
    let pb = Checkout::open(&p.petitboot);
    let ur = Checkout::open(&p.u_root);
    let mut report = Vec::new();
    let mut seen = Vec::new();
    for case in &p.case {
        let (theirs, ours) = match case.kind.as_str() {
            "petitboot" => petitboot_case(&pb, &case.test),
            "u-root-testdata" => uroot_testdata_case(&ur, &case.test),
            "u-root-test" => (case.theirs.clone(), uroot_test_case(&ur, &case.test)),
            k => panic!("unknown kind {k}"),
        };
        seen.push((case.kind.clone(), case.test.clone()));
        if std::env::var_os("PEERS_PRINT").is_some() {
            println!(
                "[[case]]\nkind = {:?}\ntest = {:?}\ntheirs = {}\nours = {}\nverdict = {:?}\n",
                case.kind,
                case.test,
                inline(&theirs),
                inline(&ours),
                if agrees(&theirs, &ours) {
                    "same"
                } else {
                    case.verdict.as_str()
                }
            );
        }
        if theirs != case.theirs || ours != case.ours {
            report.push(format!(
                "{} {}:\n  theirs: {theirs:?}\n  (recorded {:?})\n  ours:   {ours:?}\n  (recorded {:?})",
                case.kind, case.test, case.theirs, case.ours
            ));
        }
    }
    // Every petitboot test-pxe-* and every u-root testdata tree is covered.
    for f in pb.files("test/parser") {
        let name = f.trim_start_matches("test/parser/").trim_end_matches(".c");
        if name.starts_with("test-pxe-") && !seen.iter().any(|(k, t)| k == "petitboot" && t == name)
        {
            report.push(format!("petitboot {name}: not in tests/peers.toml"));
        }
    }
    for f in ur.files("pkg/boot/syslinux/testdata") {
        if let Some(name) = f
            .strip_prefix("pkg/boot/syslinux/testdata/")
            .and_then(|n| n.strip_suffix(".json"))
        {
            if !seen
                .iter()
                .any(|(k, t)| k == "u-root-testdata" && t == name)
            {
                report.push(format!("u-root testdata {name}: not in tests/peers.toml"));
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}
