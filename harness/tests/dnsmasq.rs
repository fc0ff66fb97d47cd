//! The `dnsmasq` network mode leaves nothing behind: after an attach that
//! is dropped, and after a real run (the firmware loads pxelinux.0 from the
//! host's dnsmasq), neither that dnsmasq process nor its `s390pxe-*`
//! network namespace exists; a namespace of a dead harness process is
//! removed, with what runs in it, at the next setup. Needs root, dnsmasq,
//! ip and /dev/net/tun: without them the trials that need them are
//! *ignored* with the reason on stderr, as `boot.rs` does with its
//! `*.dnsmasq` trials, except under `CI=true` as root, where a missing tool
//! fails them. (libtest-mimic runner: `harness = false`.)

mod support;

use libtest_mimic::{Arguments, Trial};
use netboot_harness::artifacts::ArtifactDir;
use netboot_harness::dnsmasq::{self, Dnsmasq, DnsmasqConfig};
use netboot_harness::network::{NetContext, Network};
use std::path::Path;
use std::process::Command;
use support::*;

/// The tools, or `None` (with the reason on stderr) when the test must be
/// skipped; panics when CI as root lacks them.
fn tools_or_skip(test: &str) -> Option<dnsmasq::Tools> {
    match dnsmasq::prerequisites() {
        Ok(t) => Some(t),
        Err(reason) => {
            if dnsmasq::prerequisites_required() {
                panic!("{test}: CI=true as root, but {reason}");
            }
            eprintln!("{test}: skipped: {reason}");
            None
        }
    }
}

/// The namespace and dnsmasq pid of a run, from the artifact directory
/// (the header line of dnsmasq.conf and dnsmasq.pid).
fn run_identity(artifacts: &Path) -> (String, u32) {
    let conf = std::fs::read_to_string(artifacts.join("dnsmasq.conf")).expect("dnsmasq.conf");
    let ns = conf
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# netboot-harness: namespace "))
        .and_then(|l| l.split_whitespace().next())
        .expect("namespace in the header of dnsmasq.conf")
        .to_string();
    let pid = std::fs::read_to_string(artifacts.join("dnsmasq.pid"))
        .expect("dnsmasq.pid")
        .trim()
        .parse()
        .expect("pid");
    (ns, pid)
}

fn namespace_exists(name: &str) -> bool {
    dnsmasq::namespace_path(name).exists()
}

/// Namespaces named after this test process (`s390pxe-<our pid>-*`).
fn our_namespaces() -> Vec<String> {
    let mine = format!("{}{}-", dnsmasq::NETNS_PREFIX, std::process::id());
    dnsmasq::our_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&mine))
        .collect()
}

fn scenario_keys_of_the_mode_are_checked() {
    let e = scenario_error(&MINIMAL.replace(
        "mode = \"slirp\"",
        "mode = \"slirp\"\n[network.dnsmasq]\nopt209 = \"a.cfg\"",
    ));
    assert!(
        e.contains("network.dnsmasq: only meaningful with mode \"dnsmasq\""),
        "{e}"
    );
    let e = scenario_error(&MINIMAL.replace(
        "mode = \"slirp\"",
        "mode = \"dnsmasq\"\ntftp_server_name = \"10.0.2.9\"",
    ));
    assert!(
        e.contains("network.tftp_server_name \"10.0.2.9\": not supported"),
        "{e}"
    );
    let e = scenario_error(&MINIMAL.replace(
        "mode = \"slirp\"",
        "mode = \"dnsmasq\"\n[network.dnsmasq]\nopt210 = \"1234\"",
    ));
    assert!(e.contains("opt210 \"1234\""), "{e}");
    let sc = scenario(
        "x",
        &MINIMAL.replace("mode = \"slirp\"", "mode = [\"slirp\", \"dnsmasq\"]"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = sc.variants().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["x", "x.dnsmasq"]);
}

fn dropped_attachment_leaves_no_dnsmasq_and_no_namespace() {
    if tools_or_skip("dropped_attachment_leaves_no_dnsmasq_and_no_namespace").is_none() {
        return;
    }
    let root = tempfile::tempdir().expect("tftp root");
    let artifacts = tempfile::tempdir().expect("artifacts");
    let settings = DnsmasqConfig::default()
        .resolve("pxelinux.0", None, None)
        .expect("settings");
    let run_dir = ArtifactDir::existing(artifacts.path()).expect("run dir");
    let att = Dnsmasq::new(settings)
        .attach(&NetContext {
            tftp_root: root.path(),
            mac: None,
            artifacts: &run_dir,
            http_backend: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (ns, pid) = run_identity(artifacts.path());
    assert!(alive(pid), "dnsmasq {pid} runs while attached");
    assert!(
        namespace_exists(&ns),
        "namespace {ns} exists while attached"
    );
    assert_eq!(att.netns.as_deref(), Some(&*dnsmasq::namespace_path(&ns)));
    let log = std::fs::read_to_string(artifacts.path().join("dnsmasq.log")).expect("log");
    assert!(
        log.contains("DHCP, IP range 10.0.2.15 -- 10.0.2.15"),
        "{log}"
    );
    assert!(log.contains("TFTP root is"), "{log}");
    drop(att);
    assert!(!alive(pid), "dnsmasq {pid} still running after drop");
    assert!(!namespace_exists(&ns), "namespace {ns} left after drop");
}

fn run_leaves_no_dnsmasq_and_no_namespace() {
    if tools_or_skip("run_leaves_no_dnsmasq_and_no_namespace").is_none() {
        return;
    }
    let sc = scenario(
        "dnsmasq-cleanup-selftest",
        r#"
description = "the firmware loads pxelinux.0 from dnsmasq"
[network]
mode = "dnsmasq"
[tftp]
"pxelinux.0" = "@pxelinux"
[[step]]
expect = 'TFTP: Received pxelinux\.0'
timeout = 90
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let h = netboot_harness::runner::Harness::new().unwrap_or_else(|e| panic!("{e}"));
    let report = netboot_harness::runner::run_blocking(&h, &sc, &Default::default())
        .unwrap_or_else(|f| panic!("{f}"));
    let (ns, pid) = run_identity(&report.artifacts);
    assert!(!alive(pid), "dnsmasq {pid} still running after the run");
    assert!(!namespace_exists(&ns), "namespace {ns} left after the run");
    assert_eq!(our_namespaces(), Vec::<String>::new());
    let log = std::fs::read_to_string(report.artifacts.join("dnsmasq.log")).expect("log");
    assert!(log.contains("pxelinux.0 to 10.0.2.15"), "{log}");
}

fn stale_namespace_of_a_dead_harness_is_removed() {
    let Some(tools) = tools_or_skip("stale_namespace_of_a_dead_harness_is_removed") else {
        return;
    };
    // A pid that no longer exists: a child that has been reaped.
    let mut gone = Command::new("true").spawn().expect("spawn true");
    let dead = gone.id();
    gone.wait().expect("wait");
    let name = format!("{}{dead}-0", dnsmasq::NETNS_PREFIX);
    let st = Command::new(&tools.ip)
        .args(["netns", "add", &name])
        .status()
        .expect("ip netns add");
    assert!(st.success(), "ip netns add {name}");
    // Something left running in it, as a killed harness would leave.
    let mut sleeper = Command::new(&tools.ip)
        .args(["netns", "exec", &name, "sleep", "300"])
        .spawn()
        .expect("sleep in the namespace");
    std::thread::sleep(std::time::Duration::from_millis(300));
    dnsmasq::remove_stale_namespaces(&tools);
    let killed = gone_within_5s(sleeper.id());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let left = namespace_exists(&name);
    if left {
        let _ = Command::new(&tools.ip)
            .args(["netns", "del", &name])
            .status();
    }
    assert!(killed, "the process in the stale namespace was not killed");
    assert!(!left, "stale namespace {name} not removed");
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    // Missing prerequisites ignore the trials that need them (the reason on
    // stderr); under CI=true as root they run and fail in tools_or_skip.
    let missing = match dnsmasq::prerequisites() {
        Err(reason) if !dnsmasq::prerequisites_required() => {
            eprintln!(
                "dnsmasq: trials needing root, dnsmasq, ip and /dev/net/tun ignored: {reason}"
            );
            true
        }
        _ => false,
    };
    let trial = |name: &str, body: fn(), needs_tools: bool| {
        Trial::test(name, move || {
            body();
            Ok(())
        })
        .with_ignored_flag(needs_tools && missing)
    };
    let trials = vec![
        trial(
            "scenario_keys_of_the_mode_are_checked",
            scenario_keys_of_the_mode_are_checked,
            false,
        ),
        trial(
            "dropped_attachment_leaves_no_dnsmasq_and_no_namespace",
            dropped_attachment_leaves_no_dnsmasq_and_no_namespace,
            true,
        ),
        trial(
            "run_leaves_no_dnsmasq_and_no_namespace",
            run_leaves_no_dnsmasq_and_no_namespace,
            true,
        ),
        trial(
            "stale_namespace_of_a_dead_harness_is_removed",
            stale_namespace_of_a_dead_harness_is_removed,
            true,
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
