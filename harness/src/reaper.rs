//! Makes sure no QEMU outlives the harness. Owns a process-wide table of the
//! QEMU pids currently running and a SIGINT/SIGTERM/SIGHUP handler that
//! SIGKILLs every one of them before the harness dies of the signal. The
//! handler only uses async-signal-safe calls (atomics, `kill`, `signal`,
//! `raise`). It must not be used for anything but QEMU children of this
//! process: [`crate::qemu::Machine`] registers and unregisters its pid.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

const SLOTS: usize = 128;
static PIDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static INSTALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &PIDS {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe; pid is one of our children.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    crate::terminal::restore_from_signal();
    // SAFETY: signal(2) and raise(3) are async-signal-safe; restoring the
    // default disposition and re-raising ends the process with the signal.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Installs the signal handler once per process (idempotent).
pub fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: on_signal only performs async-signal-safe operations.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// Records a running QEMU pid; returns false if the table is full (the
/// process is then still killed on drop, just not on a signal).
pub fn register(pid: u32) -> bool {
    install();
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    PIDS.iter().any(|slot| {
        slot.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

/// Forgets a pid (after it has been reaped).
pub fn unregister(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    for slot in &PIDS {
        let _ = slot.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// The QEMU pids currently registered (started and not yet reaped).
pub fn registered() -> Vec<u32> {
    PIDS.iter()
        .map(|slot| slot.load(Ordering::SeqCst))
        .filter(|&p| p > 0)
        .filter_map(|p| u32::try_from(p).ok())
        .collect()
}

/// True if a process with this pid exists and is not a zombie (the
/// builder's check, [`s390_pxelinux::atomic::process_alive`]). Used by
/// tests to prove QEMU is gone.
pub fn process_alive(pid: u32) -> bool {
    s390_pxelinux::atomic::process_alive(pid)
}
