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
//!
//! The same goes for code. The start runs much code that never runs again
//! (config parsing, the command line, the runtime's and the kernel
//! tables' setup, the first table), and the kernel maps a binary's code 64
//! KiB around each page touched: an idle agent kept 6.5 MB of code
//! resident of which a quiet day needs 2.6 MB. Once the daemon is ready
//! and quiet for the first time, its own binary's pages are handed back
//! (`MADV_PAGEOUT`); what runs later is faulted in again as it runs, read
//! ahead from the page cache or the disk. Pages another process maps too
//! (a second agent of the same binary, the CLI) are left alone by the
//! kernel.

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
pub async fn give_back(ready: impl Fn() -> bool) {
    let mut code_released = false;
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
        if quiet && !code_released && ready() {
            code_released = true;
            release_startup_code();
        }
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

/// Hand back the pages of this process's own binary, once: the start's
/// code goes, what still runs comes back as it runs.
fn release_startup_code() {
    let before = resident_kb();
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let exe = exe.to_string_lossy();
    for line in maps.lines() {
        // ADDR-ADDR PERMS OFFSET DEV INODE PATH
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [range, perms, _, _, _, path] = fields[..] else {
            continue;
        };
        // Code and read-only data, as the file has them; the relocated
        // (written) pages are the process's own and stay.
        if path != exe || !perms.starts_with('r') || perms.as_bytes().get(1) == Some(&b'w') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        #[cfg(target_os = "linux")]
        // SAFETY: the range is a whole mapping of this process, read from
        // its maps; MADV_PAGEOUT only reclaims its pages, which are faulted
        // in again on the next access. A kernel before 5.4 says EINVAL.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT);
        }
    }
    tracing::debug!(
        before_kb = before,
        after_kb = resident_kb(),
        "start-up code handed back"
    );
}

/// This process's resident set, kB (0 when it cannot be read).
fn resident_kb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| {
            // SAFETY: sysconf only reads a system constant.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            pages * u64::try_from(page).unwrap_or(4096) / 1024
        })
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
