//! The harness's own tests (no guest boots): QEMU lifetime (no QEMU outlives
//! a dropped handle or a Ctrl-C) and priority (nicer than the harness),
//! console expectations against a live QEMU, QMP quit, version/firmware
//! selection, scenario-file validation (file, line and key in every error),
//! and the `run` command's failures: a scenario typo, missing fixtures, QEMU
//! killed mid-boot (no process left behind).

mod support;

use netboot_harness::console::ExpectFailure;
use netboot_harness::qemu::{parse_version, NetbootFirmware};
use netboot_harness::scenario::{self, Payload, Scenario, Source};
use std::io::BufRead;
use std::time::Duration;
use support::*;

#[test]
fn dropped_machine_leaves_no_qemu() {
    let rt = runtime();
    let pid = rt.block_on(async {
        let m = paused_machine().await;
        let pid = m.pid();
        assert!(alive(pid), "QEMU {pid} should be running");
        drop(m);
        pid
    });
    assert!(!alive(pid), "QEMU {pid} survived its dropped handle");
}

/// The nice value of process `pid` (field 19 of /proc/PID/stat, counted
/// after the command name, which may hold blanks and parentheses).
fn nice_of(pid: u32) -> i64 {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/PID/stat");
    let after_comm = &stat[stat.rfind(')').expect("comm in parentheses") + 1..];
    // after the comm: state is field 3, nice field 19
    after_comm
        .split_whitespace()
        .nth(19 - 3)
        .and_then(|v| v.parse().ok())
        .expect("nice field")
}

#[test]
fn qemu_runs_nicer_than_the_harness() {
    let rt = runtime();
    rt.block_on(async {
        let m = paused_machine().await;
        let own = nice_of(std::process::id());
        let expected = (own + i64::from(netboot_harness::qemu::DEFAULT_NICE_INCREMENT)).min(19);
        assert_eq!(
            nice_of(m.pid()),
            expected,
            "QEMU's nice value (the harness runs at {own})"
        );
    });
}

#[test]
fn ctrl_c_kills_qemu() {
    // Re-run this test binary as a helper that starts a QEMU and waits.
    let exe = std::env::current_exe().expect("test binary path");
    let token = unique_token();
    let mut helper = std::process::Command::new(exe)
        .args(["--exact", "helper_hold_qemu", "--ignored", "--nocapture"])
        .env("NBH_HOLD_QEMU", "1")
        .env(TOKEN_ENV, &token)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting the helper");
    let stdout = helper.stdout.take().expect("helper stdout");
    let qemu_pid: u32 = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("QEMU-PID ")
                .and_then(|p| p.trim().parse().ok())
        })
        .expect("helper printed QEMU-PID");
    assert!(alive(qemu_pid));
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(helper.id() as i32, libc::SIGINT);
    }
    let status = helper.wait().expect("helper exit");
    assert!(!status.success(), "helper should die of SIGINT");
    assert!(
        gone_within_5s(qemu_pid),
        "QEMU {qemu_pid} survived Ctrl-C of its harness"
    );
    assert_no_process_left(&token);
}

/// Not a test on its own: the process `ctrl_c_kills_qemu` interrupts.
#[test]
#[ignore = "helper process for ctrl_c_kills_qemu"]
fn helper_hold_qemu() {
    if std::env::var_os("NBH_HOLD_QEMU").is_none() {
        return;
    }
    let rt = runtime();
    rt.block_on(async {
        let m = paused_machine().await;
        println!("QEMU-PID {}", m.pid());
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(m);
    });
}

#[test]
fn expectation_times_out_on_its_own_deadline() {
    let rt = runtime();
    rt.block_on(async {
        let mut m = paused_machine().await;
        let never = regex::bytes::Regex::new("TARGET-UP").expect("regex");
        let started = tokio::time::Instant::now();
        let r = m
            .console
            .expect(&never, started + Duration::from_millis(300), &[])
            .await;
        assert!(matches!(r, Err(ExpectFailure::Timeout)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn qemu_exit_ends_the_expectation_at_once() {
    let rt = runtime();
    rt.block_on(async {
        let mut m = paused_machine().await;
        m.kill().await;
        let never = regex::bytes::Regex::new("TARGET-UP").expect("regex");
        let started = tokio::time::Instant::now();
        let r = m
            .console
            .expect(&never, started + Duration::from_secs(30), &[])
            .await;
        assert!(matches!(r, Err(ExpectFailure::Closed)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn qmp_quit_stops_qemu_cleanly() {
    let rt = runtime();
    rt.block_on(async {
        let mut m = paused_machine().await;
        let pid = m.pid();
        let status = m.shutdown().await.expect("exit status");
        assert!(status.success(), "QEMU exited with {status} after quit");
        assert!(!alive(pid));
    });
}

#[test]
fn firmware_follows_the_qemu_version() {
    let v7 = parse_version("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)");
    assert_eq!(v7, Some((7, 2, 15)));
    assert_eq!(
        NetbootFirmware::file_name_for((7, 2, 15)),
        "s390-netboot.img"
    );
    let v10 = parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)");
    assert_eq!(v10, Some((10, 0, 2)));
    assert_eq!(NetbootFirmware::file_name_for((10, 0, 2)), "s390-ccw.img");
    assert_eq!(parse_version("no version here"), None);
    let found = qemu();
    let expected = NetbootFirmware::file_name_for(found.version);
    let file = match &found.firmware {
        NetbootFirmware::Separate(p) | NetbootFirmware::Merged(p) => p.clone(),
    };
    assert!(
        file.ends_with(expected),
        "{file:?} for QEMU {:?}",
        found.version
    );
}

#[test]
fn every_shipped_scenario_is_valid() {
    let files = scenario::discover(&scenario::scenario_dirs()).expect("scenarios/");
    assert!(files.len() >= 20, "only {} scenarios", files.len());
    for f in files {
        let sc = Scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
        assert!(!sc.description.is_empty(), "{}: empty description", sc.name);
    }
}

#[test]
fn payloads_and_inline_text_are_told_apart() {
    let sc = scenario(
        "ok",
        &format!(
            "{MINIMAL}\n[[disk]]\nartifact = \"rootfs-disk\"\n[direct]\nkernel = \"@target-kernel\"\ninitrd = [\"@target-initrd:extra\", {{ text = \"@not-an-artifact\" }}, {{ payload = \"target-initrd\" }}]\n"
        ),
    )
    .expect("valid");
    assert_eq!(
        sc.tftp.get("pxelinux.0"),
        Some(&Source::Payload(Payload::Pxelinux))
    );
    assert_eq!(sc.disks, vec![Source::Payload(Payload::RootfsDisk)]);
    let d = sc.direct.expect("direct");
    assert_eq!(
        d.initrd,
        vec![
            Source::Payload(Payload::TargetFragment("extra".into())),
            Source::Text("@not-an-artifact".into()),
            Source::Payload(Payload::TargetInitrd),
        ]
    );
    // The minimal kernel is the default loader and target.
    assert_eq!(sc.pxelinux_kernel, "minimal");
    assert_eq!(sc.target_kernel, "minimal");
}

#[test]
fn readme_format_example_is_a_valid_scenario() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/README.md"
    ))
    .expect("scenarios/README.md");
    let example = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```toml block in scenarios/README.md");
    let sc = scenario("readme-example", example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sc.steps.len(), 4);
    assert_eq!(sc.steps[1].send.as_deref(), Some("linux extra=1\n"));
    assert_eq!(sc.tb_size_mb, Some(32));
    assert!(sc.direct.is_some() && sc.network.is_some());
    assert_eq!(
        sc.tftp.get("notes.txt"),
        Some(&Source::Text("@this is text, not a payload".into()))
    );
}

#[test]
fn failure_names_the_step_and_shows_the_console_when_qemu_exits_early() {
    let f = run_expecting_failure(
        "selftest-early-exit",
        &direct_boot(
            "",
            "[[step]]\nexpect = '^TARGET-UP cmdline=.*selftest=1$'\n[[step]]\nexpect = 'NEVER-PRINTED'\n",
        ),
    );
    let text = f.to_string();
    assert!(
        text.contains(
            "/nonexistent/scenarios/selftest-early-exit.toml:9: \
             step 2/2 expecting /NEVER-PRINTED/: QEMU exited early"
        ),
        "{text}"
    );
    assert!(
        text.contains("TARGET-UP cmdline="),
        "no console tail in:\n{text}"
    );
    assert!(f.tail.lines().count() <= netboot_harness::runner::TAIL_LINES);
    let dir = f.artifacts.expect("artifact directory");
    for file in ["console.log", "qemu-cmdline.sh", "result.txt", "qmp.log"] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing in {}",
            dir.display()
        );
    }
}

#[test]
fn forbidden_pattern_fails_at_once_with_the_line() {
    let f = run_expecting_failure(
        "selftest-forbidden",
        &direct_boot(
            "forbid = ['^TARGET-INITRDS']",
            "[[step]]\nexpect = 'TARGET-DONE'\n",
        ),
    );
    let text = f.to_string();
    assert!(
        text.contains("step 1/1 expecting /TARGET-DONE/: forbidden pattern /^TARGET-INITRDS/"),
        "{text}"
    );
    assert!(
        text.contains("\"TARGET-INITRDS target last=target\""),
        "{text}"
    );
}

#[test]
fn boot_command_boots_a_user_tree_with_the_console_on_the_terminal() {
    let tree = user_tree(
        "PROMPT 1\nTIMEOUT 600\nDEFAULT one\n\
         LABEL one\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet panic=-1 picked=one\n\
         LABEL two\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet panic=-1 picked=two\n",
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_netboot-harness"));
    cmd.args(["boot", "--mac", "52:54:00:00:00:07", "--tftp-root"])
        .arg(tree.path());
    let mut session = Interactive::spawn(cmd, netboot_harness::scaled(300.0));
    session.wait_for("try pxelinux.cfg/01-52-54-00-00-00-07 ... not found");
    session.wait_for("boot: ");
    session.type_line("two");
    session.wait_for("TARGET-UP cmdline=console=ttysclp0 quiet panic=-1 picked=two\n");
    let status = session.child.wait().expect("exit status");
    assert!(
        status.success(),
        "boot exited with {status}; output:\n{}",
        session.seen
    );
    assert!(
        !tree.path().join("pxelinux.0").exists(),
        "the user's tree was modified"
    );
}

#[test]
fn target_kernel_override_keeps_the_tb_size_default() {
    let sc = scenario("k", MINIMAL).expect("valid");
    assert_eq!(
        (sc.target_kernel.as_str(), sc.tb_size_mb),
        ("minimal", Some(32))
    );
    let old = sc.with_target_kernel("6.1");
    assert_eq!(
        (old.target_kernel.as_str(), old.tb_size_mb),
        ("6.1", Some(32))
    );
    let pinned = scenario("k", &format!("{MINIMAL}\n[machine]\ntb_size = 0\n")).expect("valid");
    assert_eq!(pinned.with_target_kernel("6.1").tb_size_mb, None);
    let loader = sc.with_loader_kernel("6.1");
    assert_eq!(
        (
            loader.pxelinux_kernel.as_str(),
            loader.target_kernel.as_str()
        ),
        ("6.1", "minimal")
    );
}

#[test]
fn kernel_panic_fails_the_run_at_once() {
    let text = "description = \"self-test: no init\"\n\
        [direct]\nkernel = \"@target-kernel\"\ninitrd = [\"@target-initrd\"]\n\
        append = \"console=ttysclp0 panic=-1 rdinit=/no-such-init init=/no-such-init\"\n\
        [[step]]\nexpect = 'TARGET-UP'\n";
    let f = run_expecting_failure("selftest-panic", text);
    let msg = f.to_string();
    assert!(
        msg.contains("step 1/1 expecting /TARGET-UP/: kernel panic at"),
        "{msg}"
    );
    assert!(msg.contains("Kernel panic - not syncing"), "{msg}");
}

#[test]
fn two_runs_of_one_scenario_take_turns_on_its_artifact_directory() {
    use netboot_harness::artifacts::ArtifactDir;
    let root = tempfile::tempdir().expect("tempdir");
    let first = ArtifactDir::fresh(root.path(), "same").expect("first");
    std::fs::write(first.console_log(), "first run").expect("write");
    let root_path = root.path().to_path_buf();
    let started = std::time::Instant::now();
    let second = std::thread::spawn(move || {
        let d = ArtifactDir::fresh(&root_path, "same").expect("second");
        (started.elapsed(), d.console_log().exists())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(first.console_log().exists(), "second run wiped a live run");
    drop(first);
    let (waited, leftover) = second.join().expect("thread");
    assert!(
        waited >= Duration::from_millis(300),
        "did not wait: {waited:?}"
    );
    assert!(
        !leftover,
        "the second run must start from an empty directory"
    );
}

/// Each `tests/scenario-errors/<case>.toml` must fail to parse with exactly
/// the message in `<case>.stderr` (file, line, column, key, the offending
/// line under a marker), as if it were `scenarios/<case>.toml`. A changed
/// message shows a diff naming the case; `NETBOOT_BLESS=1` rewrites the
/// snapshots (then review them with `git diff`), as trybuild's
/// `TRYBUILD=overwrite` does.
#[test]
fn scenario_errors_match_their_snapshots() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenario-errors");
    let bless = std::env::var_os("NETBOOT_BLESS").is_some_and(|v| v == "1");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/scenario-errors")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "only {} cases in {}",
        cases.len(),
        dir.display()
    );
    let mut mismatches = Vec::new();
    for case in cases {
        let name = case
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name");
        let text = std::fs::read_to_string(&case).expect("case text");
        let path = std::path::Path::new("scenarios").join(format!("{name}.toml"));
        let actual = match Scenario::parse(&text, &path) {
            Ok(_) => "(valid: no error)\n".to_string(),
            Err(e) => format!("{e}\n"),
        };
        let snapshot = case.with_extension("stderr");
        if bless {
            std::fs::write(&snapshot, &actual).expect("writing the snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if expected != actual {
            mismatches.push(format!(
                "{}: differs from {} (NETBOOT_BLESS=1 rewrites it)\n{}",
                case.display(),
                snapshot.display(),
                line_diff(&expected, &actual)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// `-expected` / `+actual` for the lines that differ, position by position
/// (the snapshots are a few lines: no alignment needed).
fn line_diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => out.push_str(&format!("  {x}\n")),
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("- {x}\n"));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+ {y}\n"));
                }
            }
        }
    }
    out
}

#[test]
fn run_command_reports_a_scenario_typo_with_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = lines(&[
        "description = 'x'",
        "[network]",
        "mode = 'slirp'",
        "[[step]]",
        "expct = 'y'",
    ]);
    let file = scenario_file(dir.path(), "typo", &text);
    let token = unique_token();
    let mut run = harness_command(&token, &["run", file.to_str().expect("utf-8")]);
    let (ok, output) = finished(run.spawn().expect("netboot-harness run"));
    assert!(!ok, "a scenario with a typo ran:\n{output}");
    assert!(
        output.contains(&format!(
            "{}:5:1: step 1 expct: unknown field `expct`",
            file.display()
        )),
        "{output}"
    );
    assert_no_process_left(&token);
}

/// `netboot-harness run scenarios/direct-target.toml`, for the tests of
/// what stops a run before it boots.
fn run_direct_target(token: &str) -> std::process::Command {
    harness_command(
        token,
        &[
            "run",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../scenarios/direct-target.toml"
            ),
        ],
    )
}

/// `netboot-harness run` with `var=value` fails before any boot, its
/// output holding `expected` (the variable, its value and what is wrong),
/// and leaves no process.
fn a_bad_setting_fails_the_run(var: &str, value: &str, expected: &str) {
    let token = unique_token();
    let mut run = run_direct_target(&token);
    run.env(var, value);
    let (ok, output) = finished(run.spawn().expect("netboot-harness run"));
    assert!(!ok, "ran with {var}={value}:\n{output}");
    assert!(output.contains(expected), "{output}");
    assert_no_process_left(&token);
}

#[test]
fn a_bad_qemu_nice_value_fails_the_run_naming_the_variable() {
    a_bad_setting_fails_the_run(
        "NETBOOT_QEMU_NICE",
        "20",
        "NETBOOT_QEMU_NICE=20: expected a whole number from 0 to 19",
    );
}

#[test]
fn a_bad_timeout_scale_fails_the_run_naming_the_variable() {
    a_bad_setting_fails_the_run(
        "NETBOOT_TIMEOUT_SCALE",
        "0",
        "NETBOOT_TIMEOUT_SCALE=0: expected a positive number",
    );
}

#[test]
fn missing_fixtures_fail_the_run_naming_them_and_the_fetch_command() {
    let empty = tempfile::tempdir().expect("tempdir");
    let token = unique_token();
    let mut run = run_direct_target(&token);
    run.env("S390_PXELINUX_CACHE", empty.path())
        .env("S390_PXELINUX_OFFLINE", "1");
    let (ok, output) = finished(run.spawn().expect("netboot-harness run"));
    assert!(!ok, "ran without fixtures:\n{output}");
    for needle in [
        &format!("fixtures missing from the cache {}", empty.path().display()),
        "linux-image-6.12",
        "busybox-static",
        "cargo run -p s390-pxelinux -- fixtures fetch",
    ] {
        assert!(output.contains(needle), "{needle:?} not in:\n{output}");
    }
    assert_no_process_left(&token);
}

#[test]
fn qemu_killed_mid_boot_fails_the_run_at_once_and_leaves_no_process() {
    let name = "selftest-qemu-killed";
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario_file(
        dir.path(),
        name,
        &lines(&[
            "description = 'self-test: QEMU is SIGKILLed by someone else while the firmware runs'",
            "[network]",
            "mode = 'slirp'",
            "[tftp]",
            "'pxelinux.0' = '@pxelinux'",
            "[[step]]",
            "expect = 'LOADPARM|Network boot starting'",
            "[[step]]",
            "expect = 'TARGET-UP'",
        ]),
    );
    let token = unique_token();
    let mut run = harness_command(&token, &["run", file.to_str().expect("utf-8")])
        .spawn()
        .expect("netboot-harness run");
    let tree = netboot_harness::artifacts::artifacts_root().join(name);
    let firmware_running = || {
        qemu_serving(&token, &tree).filter(|_| {
            file_contains(
                &tree.join("console.log"),
                &["LOADPARM", "Network boot starting"],
            )
        })
    };
    let mut ended = || run.try_wait().ok().flatten().is_some();
    let limit = netboot_harness::scaled(120.0);
    wait_until(limit, || firmware_running().is_some() || ended());
    let Some(pid) = firmware_running() else {
        panic!("no QEMU running the firmware:\n{}", finished(run).1);
    };
    sigkill(pid);
    let killed = std::time::Instant::now();
    let (ok, output) = finished(run);
    assert!(!ok, "the run passed:\n{output}");
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "took {:?} to notice",
        killed.elapsed()
    );
    assert!(
        output.contains(&format!(
            "{}:8: step 2/2 expecting /TARGET-UP/: QEMU exited early (signal: 9 (SIGKILL))",
            file.display()
        )),
        "{output}"
    );
    assert_no_process_left(&token);
}

#[test]
fn run_writes_verdicts_and_phase_timings_as_json() {
    let dir = tempfile::tempdir().expect("dir");
    let ok = scenario_file(
        dir.path(),
        "json-pass",
        &direct_boot("", "[[step]]\nexpect = '^TARGET-UP .*selftest=1'\n"),
    );
    let bad = scenario_file(
        dir.path(),
        "json-fail",
        &direct_boot("", "[[step]]\nexpect = 'never printed'\ntimeout = 1\n"),
    );
    let json = dir.path().join("out.json");
    let token = unique_token();
    let child = harness_command(
        &token,
        &[
            "run",
            path_str(&ok),
            path_str(&bad),
            "--json",
            path_str(&json),
        ],
    )
    .spawn()
    .expect("netboot-harness");
    let (success, output) = finished(child);
    assert!(
        !success,
        "a failing scenario must fail the command:\n{output}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid json");
    assert_eq!(v[0]["scenario"], "json-pass");
    assert_eq!(v[0]["verdict"], "PASS");
    let phases = v[0]["phases"].as_array().expect("phases");
    assert!(
        phases
            .iter()
            .any(|p| p[0] == "target up" && p[1].as_f64().is_some_and(|t| t > 0.0)),
        "no target-up phase: {phases:?}"
    );
    assert_eq!(v[1]["verdict"], "FAIL");
    assert!(
        v[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("never printed")),
        "{}",
        v[1]
    );
    assert_no_process_left(&token);
}
