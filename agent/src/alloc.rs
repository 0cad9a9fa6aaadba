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

/// The shortest and the longest wait between two trims.
const TRIM_FIRST: Duration = Duration::from_millis(200);
const TRIM_MAX: Duration = Duration::from_millis(1600);

/// Hand the heaps' free pages back to the kernel: soon after a burst, and
/// seldom while bursts keep coming. A trim walks every heap under its lock
/// and what it gives back is faulted in (and zeroed) again by the next
/// allocation: a reflector trimming five times a second under steady churn
/// spent a tenth of its CPU on it. So each trim that gave something back
/// doubles the wait before the next, up to `TRIM_MAX`; one that found
/// nothing puts it back to `TRIM_FIRST`.
pub async fn give_back() {
    let mut wait = TRIM_FIRST;
    loop {
        tokio::time::sleep(wait).await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: malloc_trim is thread-safe; it only releases free memory.
            let released = unsafe { libc::malloc_trim(0) } != 0;
            wait = if released {
                (wait * 2).min(TRIM_MAX)
            } else {
                TRIM_FIRST
            };
        }
    }
}
