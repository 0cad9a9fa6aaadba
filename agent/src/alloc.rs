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

/// Five times a second, hand the heaps' free pages back to the kernel.
pub async fn give_back() {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim is thread-safe; it only releases free memory.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
