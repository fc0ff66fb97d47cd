//! This process's resources at one moment, for leak checks: resident memory
//! (`/proc/self/status` VmRSS, split into anonymous and file-backed pages),
//! the allocator's own account (glibc `mallinfo2`: bytes in use and bytes
//! held free), open file descriptors (`/proc/self/fd`), threads and the
//! threads named like async-io's process-wide reactor. It reads only
//! `/proc/self`, so child processes (QEMU, dnsmasq) are never counted. It
//! owns measuring; deciding what growth is too much is its callers'
//! ([`crate::soak`], the leak test).

use serde::Serialize;

/// The thread name async-io gives its process-wide reactor thread (async-tftp
/// runs on async-io).
pub const ASYNC_IO_THREAD: &str = "async-io";

/// This process's resources at one moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResourceSample {
    /// Runs completed when sampled.
    pub runs_done: usize,
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Anonymous resident pages, KiB (`RssAnon`: heap, stacks).
    pub rss_anon_kib: u64,
    /// File-backed resident pages, KiB (`RssFile`: the binary's and
    /// libraries' pages touched so far).
    pub rss_file_kib: u64,
    /// Heap bytes handed out and not freed, KiB (glibc `mallinfo2`
    /// `uordblks` + `hblkhd`, summed over all arenas); None off glibc.
    pub heap_in_use_kib: Option<u64>,
    /// Heap bytes freed but kept by the allocator, KiB (`fordblks`); None
    /// off glibc.
    pub heap_free_kib: Option<u64>,
    /// Open file descriptors (entries of `/proc/self/fd`).
    pub fds: usize,
    /// Threads (`Threads`).
    pub threads: usize,
    /// Threads named [`ASYNC_IO_THREAD`].
    pub async_io_threads: usize,
    /// 1-minute load average.
    pub load1: Option<f64>,
}

/// Samples this process's resources now.
pub fn sample(runs_done: usize) -> ResourceSample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let heap = heap();
    ResourceSample {
        runs_done,
        rss_kib: status_field(&status, "VmRSS").unwrap_or(0),
        rss_anon_kib: status_field(&status, "RssAnon").unwrap_or(0),
        rss_file_kib: status_field(&status, "RssFile").unwrap_or(0),
        heap_in_use_kib: heap.map(|h| h.0),
        heap_free_kib: heap.map(|h| h.1),
        fds: fds(),
        threads: status_field(&status, "Threads").unwrap_or(0) as usize,
        async_io_threads: threads_named(ASYNC_IO_THREAD),
        load1: load1(),
    }
}

/// Open file descriptors of this process (the directory handle used to
/// count them included).
pub fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Threads of this process (`/proc/self/task`).
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// The number in `/proc/<pid>/status` field `name` (`VmRSS:  1234 kB` →
/// 1234).
pub fn status_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Threads of this process whose name (`/proc/self/task/*/comm`) is `name`.
pub fn threads_named(name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .count()
}

/// The 1-minute load average.
pub fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// (in use, held free) heap KiB over all glibc arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap() -> Option<(u64, u64)> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct; it
    // locks each arena while it sums it.
    let m = unsafe { libc::mallinfo2() };
    Some((
        ((m.uordblks + m.hblkhd) / 1024) as u64,
        (m.fordblks / 1024) as u64,
    ))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap() -> Option<(u64, u64)> {
    None
}

/// Asks glibc to give freed heap memory back to the kernel (`malloc_trim(0)`:
/// every arena, not only the top of the main heap). Returns whether it did;
/// false off glibc. RSS before and after tells memory the allocator merely
/// keeps from memory still in use.
pub fn trim_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only rearranges the allocator's free lists.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_by_name_not_prefix() {
        let status = "Name:\tx\nVmRSSX:\t1 kB\nVmRSS:\t  2048 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "VmRSS"), Some(2048));
        assert_eq!(status_field(status, "Threads"), Some(7));
        assert_eq!(status_field(status, "VmSwap"), None);
    }

    #[test]
    fn a_sample_of_this_process_sees_memory_files_and_named_threads() {
        let s = sample(0);
        assert!(s.rss_kib > 0 && s.threads >= 1 && s.fds >= 1, "{s:?}");
        assert!(s.rss_anon_kib + s.rss_file_kib <= s.rss_kib + 4, "{s:?}");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::Builder::new()
            .name("soak-probe".into())
            .spawn(move || rx.recv())
            .unwrap();
        // The new thread names itself once it runs, and a joined thread can
        // stay listed while the kernel finishes its exit: poll, up to 1 s.
        let within_1s = |n: usize| {
            (0..200).any(|_| {
                let seen = threads_named("soak-probe") == n;
                if !seen {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                seen
            })
        };
        assert!(within_1s(1), "the named thread is not listed");
        drop(tx);
        let _ = t.join();
        assert!(within_1s(0), "the joined thread is still listed");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn heap_in_use_counts_a_live_allocation_and_not_a_freed_one() {
        let before = sample(0).heap_in_use_kib.unwrap();
        // 64 MiB, touched so it is real; mmapped by malloc (hblkhd).
        let big = vec![1u8; 64 << 20];
        let during = sample(0).heap_in_use_kib.unwrap();
        assert!(std::hint::black_box(&big)[12345] == 1);
        drop(big);
        let after = sample(0).heap_in_use_kib.unwrap();
        // Other test threads allocate meanwhile: allow them 16 MiB.
        assert!(during >= before + (48 << 10), "{before} -> {during}");
        assert!(after + (48 << 10) <= during, "{during} -> {after}");
    }
}
