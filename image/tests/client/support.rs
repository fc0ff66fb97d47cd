//! Support layer of the client tests: builds a fake guest root and TFTP tree
//! for one corpus case, runs the real guest scripts (`image/guest/init` and
//! what it starts) under the host's busybox with the stubs of
//! `tests/client/stubs`, reads back the console markers and the kexec call,
//! runs the host model (`pxelinux::resolve`) on the same input, and reports
//! every difference under the case's name. Tests read as scripts over this.

#![allow(dead_code)]

use s390_pxelinux::pxelinux::config::wait_text;
use s390_pxelinux::pxelinux::lookup::Target;
use s390_pxelinux::pxelinux::{self, Attempt, Outcome, Request, Resolution, TreeSource};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The main corpus file, relative to the crate.
pub const CORPUS: &str = "tests/client/corpus.toml";
/// More corpus files (`*.toml`, read in name order after [`CORPUS`]): one
/// per topic, so that cases added for one purpose (e.g. killing the mutants
/// of one guest script) live together.
pub const CORPUS_DIR: &str = "tests/client/corpus.d";

/// What a case expects, beyond "guest and model agree".
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub outcome: Option<String>,
    pub label: Option<String>,
    pub kernel: Option<String>,
    pub initrd: Option<Vec<String>>,
    pub cmdline: Option<String>,
    pub config: Option<String>,
    pub reason: Option<String>,
    pub errors: Option<Vec<String>>,
    pub say: Option<Vec<String>>,
    pub includes: Option<Vec<String>>,
    pub tried: Option<Vec<String>>,
    pub onerror: Option<bool>,
    /// Labels listed at the prompt (empty: no prompt).
    pub listed: Option<Vec<String>>,
    /// The prompt's wait as printed (`1.5s`, `forever`; empty: no prompt).
    pub prompt_wait: Option<String>,
    /// Marker lines (without `S390-PXELINUX: `) that must be printed.
    pub markers: Option<Vec<String>>,
    /// Text that must appear nowhere on the console (e.g. what an injected
    /// command would print).
    pub forbid: Option<Vec<String>>,
}

/// One corpus case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// udhcpc environment overrides ("" removes a default).
    #[serde(default)]
    pub dhcp: BTreeMap<String, String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub cmdline: Option<String>,
    /// Line typed at the prompt (None: stdin at EOF, i.e. timeout).
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub kexec_fail: bool,
    /// Extra environment for the stubs (e.g. `STUB_TSIZE_LIE`).
    #[serde(default)]
    pub stub_env: BTreeMap<String, String>,
    #[serde(default)]
    pub expect: Expect,
    /// Binary files (generated cases only).
    #[serde(skip)]
    pub raw_files: BTreeMap<String, Vec<u8>>,
    /// Files of the guest's own root (generated cases only), e.g. libstdbuf.
    #[serde(skip)]
    pub root_files: BTreeMap<String, Vec<u8>>,
    /// Paths removed from the default fake root (generated cases only),
    /// e.g. `sys/class/net/eth0` for a machine without a NIC, or
    /// `proc/cmdline`.
    #[serde(skip)]
    pub root_removed: Vec<String>,
    /// Stubs left out of the machine (generated cases only), e.g. `atftp`
    /// for an image without it.
    #[serde(skip)]
    pub stubs_removed: Vec<String>,
    /// The corpus file the case came from (empty for generated cases).
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

/// Loads the corpus: [`CORPUS`], then every `*.toml` of [`CORPUS_DIR`] in
/// name order. Case names are unique across all files.
pub fn corpus() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join(CORPUS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files.insert(0, root.join(CORPUS));
    let mut cases: Vec<Case> = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let loaded = toml::from_str::<Corpus>(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .case;
        for mut case in loaded {
            if let Some(first) = cases.iter().find(|c| c.name == case.name) {
                panic!(
                    "{}: case {:?} is already defined in {}",
                    path.display(),
                    case.name,
                    first.source.display()
                );
            }
            case.source = path.clone();
            cases.push(case);
        }
    }
    cases
}

/// A case with only a name and files, for generated inputs.
pub fn generated(name: &str, files: Vec<(&str, Vec<u8>)>) -> Case {
    Case {
        name: name.to_string(),
        files: BTreeMap::new(),
        dhcp: BTreeMap::new(),
        uuid: None,
        cmdline: None,
        answer: None,
        kexec_fail: false,
        stub_env: BTreeMap::new(),
        expect: Expect::default(),
        raw_files: files.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        root_files: BTreeMap::new(),
        root_removed: Vec::new(),
        stubs_removed: Vec::new(),
        source: PathBuf::new(),
    }
}

pub const MAC: &str = "52:54:00:12:34:56";

fn dhcp_env(case: &Case) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("ip", "10.0.2.15"),
        ("subnet", "255.255.255.0"),
        ("mask", "24"),
        ("router", "10.0.2.2"),
        ("dns", "10.0.2.3"),
        ("siaddr", "10.0.2.2"),
        ("serverid", "10.0.2.2"),
        ("boot_file", "boot/pxelinux.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in &case.dhcp {
        if v.is_empty() {
            env.remove(k);
        } else {
            env.insert(k.clone(), v.clone());
        }
    }
    env
}

/// What a run printed or did, in the shape both sides can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub tried: Vec<Attempt>,
    pub config: Option<String>,
    pub includes: Vec<Attempt>,
    pub say: Vec<String>,
    pub fetched: Vec<String>,
    pub errors: Vec<String>,
    /// Labels listed at the prompt.
    pub listed: Vec<String>,
    /// The prompt's wait (`1.5s`, `forever`), empty without a prompt.
    pub prompt_wait: String,
    pub outcome: Outcome,
}

/// A guest run.
#[derive(Debug)]
pub struct GuestRun {
    pub console: String,
    pub observed: Observed,
    pub kexec_argv: Vec<String>,
    pub kexec_kernel: Option<Vec<u8>>,
    pub kexec_initrd: Option<Vec<u8>>,
    pub calls: String,
    /// The files left in the guest's download directory (`PXE_TMP`) when
    /// it stopped, sorted: a failed download must not leave its file.
    pub tmp_left: Vec<String>,
}

fn write(path: &Path, content: &[u8]) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
}

fn busybox() -> PathBuf {
    ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox-static is required for the client tests")
}

fn attempt(line: &str) -> Option<Attempt> {
    for result in ["found", "not found", "loop", "too deep"] {
        if let Some(p) = line.strip_suffix(&format!(" ... {result}")) {
            if !(result == "found" && p.ends_with(" ... not")) {
                return Some(Attempt {
                    path: p.to_string(),
                    result: result.to_string(),
                });
            }
        }
    }
    None
}

fn parse_console(console: &str) -> Observed {
    let mut o = Observed {
        tried: Vec::new(),
        config: None,
        includes: Vec::new(),
        say: Vec::new(),
        fetched: Vec::new(),
        errors: Vec::new(),
        listed: Vec::new(),
        prompt_wait: String::new(),
        outcome: Outcome::Rescue {
            reason: "<guest printed no outcome>".to_string(),
        },
    };
    let mut onerror = false;
    for line in console.lines() {
        let Some(m) = line.split(pxelinux::MARKER_PREFIX).nth(1) else {
            continue;
        };
        if let Some(r) = m.strip_prefix("try ") {
            o.tried.extend(attempt(r));
        } else if let Some(r) = m.strip_prefix("include ") {
            o.includes.extend(attempt(r));
        } else if let Some(r) = m.strip_prefix("config ") {
            o.config = Some(r.to_string());
        } else if let Some(r) = m.strip_prefix("say ") {
            o.say.push(r.to_string());
        } else if m.starts_with("say") && m.len() == 3 {
            o.say.push(String::new());
        } else if let Some(r) = m.strip_prefix("fetch ") {
            let path = r.rsplitn(3, ' ').nth(2).unwrap_or(r);
            o.fetched.push(path.to_string());
        } else if let Some(r) = m.strip_prefix("label ") {
            o.listed.push(r.split(' ').next().unwrap_or("").to_string());
        } else if let Some(r) = m.strip_prefix("prompt wait ") {
            o.prompt_wait = r.to_string();
        } else if let Some(r) = m.strip_prefix("ERROR ") {
            o.errors.push(r.to_string());
        } else if m.starts_with("onerror ") {
            onerror = true;
        } else if let Some(r) = m.strip_prefix("RESCUE ") {
            o.outcome = Outcome::Rescue {
                reason: r.to_string(),
            };
        } else if let Some(r) = m.strip_prefix("REBOOT in ") {
            o.outcome = Outcome::Reboot {
                after_seconds: r.trim_end_matches('s').parse().unwrap_or(u32::MAX),
            };
        } else if let Some(r) = m.strip_prefix("boot label=") {
            let (label, r) = r.split_once(" kernel=").unwrap_or((r, ""));
            let (kernel, r) = r.split_once(" initrd=").unwrap_or((r, ""));
            let (initrd, cmdline) = r.split_once(" cmdline=").unwrap_or((r, ""));
            o.outcome = Outcome::Boot(pxelinux::BootTarget {
                label: label.to_string(),
                kernel: kernel.to_string(),
                initrd: initrd
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                cmdline: cmdline.to_string(),
                via_onerror: onerror,
            });
        }
    }
    o
}

/// The guest scripts under test: `image/guest`, or the directory named by
/// `CLIENT_TESTS_GUEST_DIR` (the mutation run, `ci/mutate-guest`, points it
/// at a mutated copy).
pub fn guest_dir() -> PathBuf {
    std::env::var_os("CLIENT_TESTS_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("guest"))
}

/// Runs the real guest scripts for a case.
pub fn run_guest(case: &Case) -> GuestRun {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    let (root, tree, out, stubs) = (
        t.join("root"),
        t.join("tree"),
        t.join("out"),
        t.join("stubs"),
    );
    for (p, c) in &case.files {
        write(&tree.join(p), c.as_bytes());
    }
    for (p, c) in &case.raw_files {
        write(&tree.join(p), c);
    }
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::create_dir_all(&out).expect("mkdir");
    let cmdline = case
        .cmdline
        .clone()
        .unwrap_or_else(|| "console=ttysclp0 pxe.retries=0".into());
    write(
        &root.join("proc/cmdline"),
        format!("{cmdline}\n").as_bytes(),
    );
    if let Some(u) = &case.uuid {
        write(
            &root.join("proc/sysinfo"),
            format!("VM00 Name:            GUEST\nVM00 UUID:            {u}\n").as_bytes(),
        );
    }
    write(
        &root.join("sys/class/net/lo/address"),
        b"00:00:00:00:00:00\n",
    );
    write(
        &root.join("sys/class/net/eth0/address"),
        format!("{MAC}\n").as_bytes(),
    );
    write(
        &root.join("etc/pxe/modules"),
        b"/lib/modules/virtio_net.ko\n",
    );
    // A case's own root files replace the defaults above (e.g. a MAC address).
    for (p, c) in &case.root_files {
        write(&root.join(p), c);
    }
    for p in &case.root_removed {
        let p = root.join(p);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("remove a default root path");
        } else {
            std::fs::remove_file(&p).expect("remove a default root file");
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client/stubs");
    std::fs::create_dir_all(&stubs).expect("mkdir");
    for e in std::fs::read_dir(&src).expect("stubs") {
        let e = e.expect("entry");
        if case
            .stubs_removed
            .iter()
            .any(|s| e.file_name() == s.as_str())
        {
            continue;
        }
        let dst = stubs.join(e.file_name());
        let ft = e.file_type().expect("type");
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).expect("link"), &dst)
                .expect("symlink");
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
    std::os::unix::fs::symlink(busybox(), stubs.join("sh")).expect("symlink");
    // one file per variable, so that a value may hold any byte but NUL
    for (k, v) in dhcp_env(case) {
        write(&stubs.join("dhcp.eth0").join(k), v.as_bytes());
    }
    let guest = guest_dir();
    let console_path = t.join("console");
    let console_file = std::fs::File::create(&console_path).expect("console");
    let stdin = match &case.answer {
        Some(a) => {
            write(&t.join("stdin"), format!("{a}\n").as_bytes());
            Stdio::from(std::fs::File::open(t.join("stdin")).expect("stdin"))
        }
        None => Stdio::null(),
    };
    let mut cmd = Command::new(stubs.join("sh"));
    cmd.arg(guest.join("init"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("PXE_ROOT", &root)
        .env("PXE_LIB", &guest)
        .env("PXE_BIN", format!("{}/", stubs.display()))
        .env("PXE_SH", stubs.join("sh"))
        .env("STUB_TREE", &tree)
        .env("STUB_OUT", &out)
        .env("STUB_DIR", &stubs)
        .stdin(stdin)
        .stdout(Stdio::from(console_file.try_clone().expect("dup")))
        .stderr(Stdio::from(console_file));
    if case.kexec_fail {
        cmd.env("STUB_KEXEC_FAIL", "1");
    }
    if !case.stub_env.contains_key("PXE_CHECK_IMAGES") {
        // the corpus uses tiny text files as kernels and initrds
        cmd.env("PXE_CHECK_IMAGES", "0");
    }
    cmd.envs(&case.stub_env);
    // its own process group, so that a guest stopped at the time limit
    // takes its background jobs (watchdogs, stub servers) with it
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("spawn busybox sh");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > guest_time_limit() {
            let group = i32::try_from(child.id()).expect("pid");
            // SAFETY: kill(2) with a negative pid signals that process group.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = child.wait();
            panic!(
                "case {}: guest scripts still running after {} s:\n{}",
                case.name,
                guest_time_limit().as_secs(),
                std::fs::read_to_string(&console_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let console =
        String::from_utf8_lossy(&std::fs::read(&console_path).unwrap_or_default()).into_owned();
    let kexec_argv = std::fs::read_to_string(out.join("kexec.argv"))
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default();
    GuestRun {
        observed: parse_console(&console),
        console,
        kexec_argv,
        kexec_kernel: std::fs::read(out.join("kexec.kernel")).ok(),
        kexec_initrd: std::fs::read(out.join("kexec.initrd")).ok(),
        calls: std::fs::read_to_string(out.join("calls")).unwrap_or_default(),
        tmp_left: files_in(&root.join("tmp/pxe")),
    }
}

/// Asserts that the kernel `display` could not be fetched, nothing was
/// kexec'd and the failed download left no `kernel` file behind.
pub fn assert_failed_kernel_fetch_left_nothing(run: &GuestRun, name: &str, display: &str) {
    let m = markers(run);
    let error = format!("ERROR cannot fetch kernel {display}");
    assert!(m.contains(&error), "{name}: {m:#?}");
    assert!(run.kexec_kernel.is_none(), "{name}: kexec ran");
    assert!(
        !run.tmp_left.iter().any(|f| f == "kernel"),
        "{name}: the failed download left its file: {:?}",
        run.tmp_left
    );
}

/// How long one guest run may take: 120 s, or `CLIENT_TESTS_GUEST_LIMIT_S`
/// seconds (ci/mutate-guest sets it lower: a mutant that loops is killed
/// at the limit, and most of a mutation run's time went to such loops).
fn guest_time_limit() -> Duration {
    let secs = std::env::var("CLIENT_TESTS_GUEST_LIMIT_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// The names of the files in `dir` (not recursive), sorted; none when it
/// does not exist.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The model's request for a case (what `resolve` would be given).
pub fn request(case: &Case) -> Request {
    let env = dhcp_env(case);
    // dhcp-event leaves out a value with a control byte (`ignored=`)
    let get = |k: &str| {
        env.get(k)
            .cloned()
            .filter(|v| !v.is_empty() && !has_control_byte(v))
    };
    let siaddr = get("siaddr").filter(|s| s != "0.0.0.0");
    Request {
        mac: MAC.to_string(),
        ip: get("ip").and_then(|i| i.parse().ok()),
        uuid: case.uuid.clone(),
        bootfile: get("bootfile").or_else(|| get("boot_file")),
        opt209: get("pxeconffile").or_else(|| hex_option(&env, "opt209")),
        opt210: get("pxepathprefix").or_else(|| hex_option(&env, "opt210")),
        opt211: get("reboottime")
            .and_then(|r| r.parse().ok())
            .or_else(|| get("opt211").and_then(|h| u32::from_str_radix(&h, 16).ok())),
        server: get("tftp")
            .or(siaddr)
            .or_else(|| get("serverid"))
            .unwrap_or_default(),
        gateway: get("router")
            .and_then(|r| r.split(' ').next().map(str::to_string))
            .unwrap_or_default(),
        netmask: get("subnet").unwrap_or_default(),
        answer: case.answer.clone(),
    }
}

/// A control byte, as dhcp-event's awk sees one (0x01–0x1f, 0x7f).
fn has_control_byte(v: &str) -> bool {
    v.bytes().any(|b| (1..0x20).contains(&b) || b == 0x7f)
}

/// An option udhcpc passes as hex digits (`optNNN`), decoded, unless it
/// decodes to a value dhcp-event leaves out.
fn hex_option(env: &BTreeMap<String, String>, key: &str) -> Option<String> {
    unhex(env.get(key)?).filter(|v| !v.is_empty() && !has_control_byte(v))
}

/// An option udhcpc does not know by name, as it passes it (hex digits).
fn unhex(hex: &str) -> Option<String> {
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// Runs the host model for a case.
pub fn run_model(case: &Case) -> Resolution {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (p, c) in &case.files {
        write(&tmp.path().join(p), c.as_bytes());
    }
    for (p, c) in &case.raw_files {
        write(&tmp.path().join(p), c);
    }
    let source = TreeSource {
        root: tmp.path().to_path_buf(),
    };
    pxelinux::resolve(&source, &request(case))
        .unwrap_or_else(|e| panic!("case {}: model error {e}", case.name))
}

fn observed(r: &Resolution) -> Observed {
    Observed {
        tried: r.tried.clone(),
        config: r.config.clone(),
        includes: r.includes.clone(),
        say: r.say.clone(),
        fetched: r.fetched.clone(),
        errors: r.errors.clone(),
        listed: r
            .prompt
            .as_ref()
            .map(|p| p.labels.clone())
            .unwrap_or_default(),
        prompt_wait: r
            .prompt
            .as_ref()
            .map(|p| wait_text(p.timeout_tenths))
            .unwrap_or_default(),
        outcome: r.outcome.clone(),
    }
}

fn diff<T: std::fmt::Debug + PartialEq>(out: &mut String, what: &str, guest: &T, model: &T) {
    if guest != model {
        let _ = writeln!(out, "  {what}:\n    guest: {guest:?}\n    model: {model:?}");
    }
}

fn expect_eq<T: std::fmt::Debug + PartialEq>(
    out: &mut String,
    what: &str,
    want: &Option<T>,
    got: &T,
) {
    if let Some(w) = want {
        if w != got {
            let _ = writeln!(out, "  expected {what}: {w:?}\n    got: {got:?}");
        }
    }
}

/// Runs a case on both sides; returns a report of every difference (empty
/// when guest, model and expectations agree).
pub fn check(case: &Case) -> String {
    let g = run_guest(case);
    let m = run_model(case);
    let mo = observed(&m);
    let go = &g.observed;
    let mut out = String::new();
    diff(&mut out, "tried", &go.tried, &mo.tried);
    diff(&mut out, "config", &go.config, &mo.config);
    diff(&mut out, "includes", &go.includes, &mo.includes);
    diff(&mut out, "say", &go.say, &mo.say);
    diff(&mut out, "fetched", &go.fetched, &mo.fetched);
    diff(&mut out, "listed", &go.listed, &mo.listed);
    diff(&mut out, "prompt_wait", &go.prompt_wait, &mo.prompt_wait);
    if case.kexec_fail {
        // the model cannot know that kexec fails: compare the entry only
        let _ = match (&mo.outcome, &go.errors.first()) {
            (Outcome::Boot(_), Some(e)) if e.as_str() == "kexec -l failed" => Ok(()),
            _ => writeln!(
                out,
                "  kexec_fail: model {:?}, guest errors {:?}",
                mo.outcome, go.errors
            ),
        };
    } else {
        diff(&mut out, "errors", &go.errors, &mo.errors);
        diff(&mut out, "outcome", &go.outcome, &mo.outcome);
    }
    let e = &case.expect;
    let outcome_name = match &go.outcome {
        Outcome::Boot(_) => "boot",
        Outcome::Rescue { .. } => "rescue",
        Outcome::Reboot { .. } => "reboot",
    };
    expect_eq(&mut out, "outcome", &e.outcome.as_deref(), &outcome_name);
    expect_eq(
        &mut out,
        "config",
        &e.config,
        &go.config.clone().unwrap_or_default(),
    );
    expect_eq(&mut out, "errors", &e.errors, &go.errors);
    expect_eq(&mut out, "say", &e.say, &go.say);
    expect_eq(&mut out, "listed", &e.listed, &go.listed);
    expect_eq(&mut out, "prompt_wait", &e.prompt_wait, &go.prompt_wait);
    let printed = markers(&g);
    for m in e.markers.iter().flatten() {
        if !printed.contains(m) {
            let _ = writeln!(out, "  expected marker {m:?}: not printed");
        }
    }
    for f in e.forbid.iter().flatten() {
        if g.console.contains(f.as_str()) {
            let _ = writeln!(out, "  forbidden text {f:?} is on the console");
        }
    }
    expect_eq(
        &mut out,
        "tried",
        &e.tried,
        &go.tried
            .iter()
            .map(|a| format!("{} ... {}", a.path, a.result))
            .collect(),
    );
    expect_eq(
        &mut out,
        "includes",
        &e.includes,
        &go.includes
            .iter()
            .map(|a| format!("{} ... {}", a.path, a.result))
            .collect(),
    );
    match &go.outcome {
        Outcome::Boot(b) => {
            expect_eq(&mut out, "label", &e.label, &b.label);
            expect_eq(&mut out, "kernel", &e.kernel, &b.kernel);
            expect_eq(&mut out, "initrd", &e.initrd, &b.initrd);
            expect_eq(&mut out, "cmdline", &e.cmdline, &b.cmdline);
            expect_eq(&mut out, "onerror", &e.onerror, &b.via_onerror);
            check_kexec(case, &g, b, &mut out);
        }
        Outcome::Rescue { reason } => expect_eq(&mut out, "reason", &e.reason, reason),
        Outcome::Reboot { .. } => {}
    }
    if !out.is_empty() {
        let from = if case.source.as_os_str().is_empty() {
            String::new()
        } else {
            format!(" ({})", case.source.display())
        };
        out = format!(
            "case {}{from}:\n{out}  console:\n{}",
            case.name,
            g.console
                .lines()
                .map(|l| format!("    | {l}\n"))
                .collect::<String>()
        );
    }
    out
}

fn tree_file(case: &Case, display: &str) -> Option<Vec<u8>> {
    // A printed location resolves to itself; the tree serves every host.
    let p = match pxelinux::lookup::resolve_path(display, "").target {
        Target::Tftp { path, .. } => path,
        Target::Url(u) => {
            let rest = u.split_once("://").map_or("", |(_, r)| r);
            let path = rest.split_once('/').map_or("", |(_, p)| p);
            path.split(['?', '#']).next().unwrap_or("").to_string()
        }
        Target::Unsupported(_) => return None,
    };
    let p = p
        .split('/')
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    case.raw_files
        .get(&p)
        .cloned()
        .or_else(|| case.files.get(&p).map(|s| s.as_bytes().to_vec()))
}

/// The kexec stub saw the kernel, the padded initrd concatenation and the
/// command line of the boot marker.
fn check_kexec(case: &Case, g: &GuestRun, b: &pxelinux::BootTarget, out: &mut String) {
    let want_cmd = format!("--command-line={}", b.cmdline);
    if g.kexec_argv.first().map(String::as_str) != Some("-l")
        || g.kexec_argv.last() != Some(&want_cmd)
    {
        let _ = writeln!(
            out,
            "  kexec argv {:?} does not end with {want_cmd:?}",
            g.kexec_argv
        );
    }
    if case.kexec_fail {
        return;
    }
    if g.kexec_kernel != tree_file(case, &b.kernel) {
        let _ = writeln!(out, "  kexec kernel differs from {}", b.kernel);
    }
    let mut want: Option<Vec<u8>> = None;
    for (i, p) in b.initrd.iter().enumerate() {
        let w = want.get_or_insert_with(Vec::new);
        if i > 0 {
            w.resize(w.len().div_ceil(4096) * 4096, 0);
        }
        w.extend(tree_file(case, p).unwrap_or_default());
    }
    if g.kexec_initrd != want {
        let _ = writeln!(
            out,
            "  kexec initrd ({:?} bytes) is not the 4 KiB padded concatenation of {:?}",
            g.kexec_initrd.as_ref().map(Vec::len),
            b.initrd
        );
    }
    if !g.calls.contains("kexec -e") {
        let _ = writeln!(out, "  kexec -e was not called");
    }
}

/// A one-label tree (kernel `boot/vmlinuz`, initrd `boot/initrd.img`) with
/// the given kernel command line and stub environment, for transfer tests.
pub fn one_label_case(name: &str, cmdline: &str, stub_env: &[(&str, &str)]) -> Case {
    let mut c = generated(
        name,
        vec![
            (
                "boot/pxelinux.cfg/default",
                b"DEFAULT l\nLABEL l\nKERNEL vmlinuz\nINITRD initrd.img\n".to_vec(),
            ),
            ("boot/vmlinuz", b"KERNEL".to_vec()),
            ("boot/initrd.img", b"INITRD".to_vec()),
        ],
    );
    c.cmdline = Some(cmdline.to_string());
    c.stub_env = stub_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    c
}

/// The `S390-PXELINUX:` console markers of a guest run, without the prefix.
pub fn markers(run: &GuestRun) -> Vec<String> {
    run.console
        .lines()
        .filter_map(|l| l.split(pxelinux::MARKER_PREFIX).nth(1))
        .map(str::to_string)
        .collect()
}

/// The smallest file the guest's kernel check accepts: zeros with
/// "S390EP" at 0x10008, as in every s390 Linux image.
pub fn fake_s390_kernel() -> Vec<u8> {
    let mut k = vec![0u8; 0x10010];
    k[0x10008..0x1000e].copy_from_slice(b"S390EP");
    k
}

/// A one-label case with the given kernel and initrd contents and the
/// guest's image checks switched on.
pub fn image_check_case(name: &str, kernel: Vec<u8>, initrd: Vec<u8>) -> Case {
    let mut c = one_label_case(
        name,
        "console=ttysclp0 pxe.retries=0",
        &[("PXE_CHECK_IMAGES", "1")],
    );
    c.raw_files.insert("boot/vmlinuz".into(), kernel);
    c.raw_files.insert("boot/initrd.img".into(), initrd);
    c
}
