//! The allocator, tuned for a daemon that holds a full table.
//!
//! The RIB and the FIB keep a million prefixes in chunks of about 128 KiB,
//! among a stream of short-lived buffers (decoded UPDATEs, batches of
//! changes, netlink messages). glibc puts both in the same heaps once it
//! has raised its mmap threshold (it does so on the first large free), and
//! a heap only shrinks from its top: freed buffers below live ones stay
//! resident, a third more memory than is in use. So every allocation of
//! 64 KiB or more gets pages of its own, and what the heaps free is given
//! back now and then.

use std::time::Duration;

/// Fix glibc's mmap threshold; call before any thread starts.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy, and no other
    // thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

/// How often the daemon looks at whether to trim, while it works; idle,
/// the wait doubles up to `IDLE_TICK`, so an idle daemon wakes for it
/// about once every three seconds, not five times a second.
const TICK: Duration = Duration::from_millis(200);
const IDLE_TICK: Duration = Duration::from_millis(3200);
/// While busy, the shortest and the longest wait between two trims.
const BUSY_FIRST: Duration = Duration::from_millis(400);
const BUSY_MAX: Duration = Duration::from_millis(3200);

/// Hand the heaps' free pages back to the kernel: as soon as the daemon
/// goes quiet after work, and seldom while it stays busy. A trim walks
/// every heap under its lock, and what it gives back is faulted in (and
/// zeroed) again by the next allocation: a reflector trimming five times a
/// second under steady churn spent a tenth of its CPU on it. So while the
/// daemon keeps working, each trim that gave something back doubles the
/// wait before the next; once a tick passes with under 5 % of a core used,
/// what the work left free goes back at once.
pub async fn give_back() {
    let mut last = cpu_time();
    let mut worked = false;
    let mut since = Duration::ZERO;
    let mut busy_wait = BUSY_FIRST;
    let mut tick = TICK;
    loop {
        tokio::time::sleep(tick).await;
        since += tick;
        let now = cpu_time();
        let used = now.saturating_sub(last);
        last = now;
        let quiet = used < tick / 20;
        tick = if quiet {
            (tick * 2).min(IDLE_TICK)
        } else {
            TICK
        };
        worked |= !quiet;
        if (quiet && worked) || (!quiet && since >= busy_wait) {
            let released = trim();
            busy_wait = if released && !quiet {
                (busy_wait * 2).min(BUSY_MAX)
            } else {
                BUSY_FIRST
            };
            since = Duration::ZERO;
            worked = false;
        }
    }
}

/// Give the heaps' free pages back; whether there were any.
fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe; it only releases free memory.
    return unsafe { libc::malloc_trim(0) } != 0;
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// The CPU time this process has used, all threads.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    micros(usage.ru_utime) + micros(usage.ru_stime)
}
