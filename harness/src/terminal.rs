//! The user's terminal while `netboot-harness boot` has the guest console
//! on it: raw input (as QEMU's `-serial mon:stdio` does), so every key goes
//! to the guest at once and only the guest echoes it, with output
//! post-processing kept so the harness's own lines still start at column 0.
//! Ctrl-C arrives as the byte 0x03 and is the caller's cue to end the run
//! ([`CTRL_C`]). The saved settings come back when the [`RawTerminal`]
//! guard is dropped (return, error, panic) and, through
//! [`restore_from_signal`], when [`crate::reaper`]'s handler runs on
//! SIGINT/SIGTERM/SIGHUP. It touches only standard input's terminal and
//! must not read from it (the caller does).

use nix::sys::termios::{self, OutputFlags, SetArg, Termios};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The byte a terminal in raw mode delivers for Ctrl-C.
pub const CTRL_C: u8 = 0x03;

/// Settings to put back from a signal handler (set once, read only there).
static SAVED: OnceLock<libc::termios> = OnceLock::new();
/// True while a [`RawTerminal`] is active.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Standard input switched to raw mode; restored on drop.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Switches standard input to raw mode when it is a terminal; `Ok(None)`
    /// when it is not (a pipe or file: nothing to change).
    pub fn enter() -> std::io::Result<Option<RawTerminal>> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = termios::tcgetattr(&stdin).map_err(std::io::Error::from)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Keep "\n" → "\r\n" on output, as QEMU's stdio backend does.
        raw.output_flags |= OutputFlags::OPOST;
        let _ = SAVED.set(libc::termios::from(saved.clone()));
        ACTIVE.store(true, Ordering::SeqCst);
        if let Err(e) = termios::tcsetattr(&stdin, SetArg::TCSADRAIN, &raw) {
            ACTIVE.store(false, Ordering::SeqCst);
            return Err(e.into());
        }
        Ok(Some(RawTerminal { saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        ACTIVE.store(false, Ordering::SeqCst);
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Puts the saved terminal settings back if a [`RawTerminal`] is active.
/// Only async-signal-safe calls (an atomic load, `tcsetattr`): for
/// [`crate::reaper`]'s signal handler.
pub fn restore_from_signal() {
    if !ACTIVE.load(Ordering::SeqCst) {
        return;
    }
    if let Some(t) = SAVED.get() {
        // SAFETY: tcsetattr(3) is async-signal-safe; `t` is a valid termios
        // read from this terminal, never modified after it was set.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
        }
    }
}
