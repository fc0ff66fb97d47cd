//! Support layer for the harness's own tests: a paused QEMU (no guest code
//! runs, so these tests are fast), a runtime per test, scenario parsing from
//! text, and process checks. Tests read as scripts over these helpers.

#![allow(dead_code)]

use netboot_harness::qemu::{Machine, MachineLogs, MachineSpec, QemuBinary};
use netboot_harness::scenario::Scenario;
use netboot_harness::HarnessError;
use std::path::Path;

/// A current-thread tokio runtime, as the runner uses.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The QEMU under test.
pub fn qemu() -> QemuBinary {
    QemuBinary::find().expect("qemu-system-s390x (run ci/install-deps)")
}

/// Launches QEMU stopped before the first instruction (`-S`): it runs until
/// killed or told to quit.
pub async fn paused_machine() -> Machine {
    let spec = MachineSpec {
        extra: vec!["-S".into()],
        ..MachineSpec::default()
    };
    let logs = MachineLogs {
        console: None,
        qemu_output: None,
        qmp: None,
        cmdline: None,
    };
    Machine::launch(&qemu(), &spec, &logs)
        .await
        .expect("launching a paused QEMU")
}

/// True if `pid` is a live (non-zombie) process.
pub fn alive(pid: u32) -> bool {
    netboot_harness::reaper::process_alive(pid)
}

/// Waits up to 5 s for `pid` to disappear.
pub fn gone_within_5s(pid: u32) -> bool {
    for _ in 0..500 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// Parses scenario text as if read from `scenarios/<name>.toml`.
pub fn scenario(name: &str, text: &str) -> Result<Scenario, HarnessError> {
    Scenario::parse(
        text,
        &Path::new("/nonexistent/scenarios").join(format!("{name}.toml")),
    )
}

/// The error message of a scenario that must not parse.
pub fn scenario_error(text: &str) -> String {
    match scenario("bad", text) {
        Ok(_) => panic!("scenario unexpectedly valid:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A minimal valid scenario body to extend.
pub const MINIMAL: &str = r#"
description = "minimal"
[network]
mode = "slirp"
[tftp]
"pxelinux.0" = "@pxelinux"
[[step]]
expect = "TARGET-UP"
"#;

/// Runs a scenario given as text (a direct boot of the target payloads is
/// fast) and returns its failure; panics if it passed.
pub fn run_expecting_failure(name: &str, text: &str) -> netboot_harness::runner::ScenarioFailure {
    let sc = scenario(name, text).unwrap_or_else(|e| panic!("{e}"));
    let h = netboot_harness::runner::Harness::new().unwrap_or_else(|e| panic!("{e}"));
    match netboot_harness::runner::run_blocking(&h, &sc, &Default::default()) {
        Ok(r) => panic!("scenario {name} passed unexpectedly: {r:?}"),
        Err(f) => *f,
    }
}

/// A direct boot of `@target-kernel` with `@target-initrd`, followed by `steps`.
pub fn direct_boot(top: &str, steps: &str) -> String {
    format!(
        "description = \"self-test\"\n{top}\n[direct]\nkernel = \"@target-kernel\"\ninitrd = [\"@target-initrd\"]\nappend = \"console=ttysclp0 quiet panic=-1 selftest=1\"\n{steps}"
    )
}
