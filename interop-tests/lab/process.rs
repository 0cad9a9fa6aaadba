//! Processes of the lab: signals for the long-running lab programs, and
//! the daemons' processes found, reniced and measured.

use super::{host_pids, Host};

/// Block SIGINT and SIGTERM in this thread and those it starts, and run
/// `then` with the signal on a thread of its own when one comes: a
/// long-running lab program's way to stop cleanly.
pub fn on_signal(then: impl FnOnce(i32) + Send + 'static) {
    // SAFETY: a zeroed sigset_t is valid storage; sigemptyset and
    // sigaddset initialise it; pthread_sigmask changes only this
    // thread's mask, inherited by the threads it starts.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut signal = 0;
        // SAFETY: `set` is an initialised signal set; sigwait writes the
        // signal taken into `signal`.
        unsafe { libc::sigwait(&set, &mut signal) };
        then(signal);
    });
}

/// Put every thread of `pid` at `nice`; threads it starts later inherit
/// the value from the thread that starts them.
pub fn renice(pid: u32, nice: i32) {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
    for t in tasks.into_iter().flatten().flatten() {
        if let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
            // SAFETY: setpriority has no memory-safety preconditions.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
        }
    }
}

/// The process called `name` in the host's namespace.
pub fn pid_in(host: &Host, name: &str) -> Option<i32> {
    host_pids(&host.ns).into_iter().find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == name)
    })
}

/// User plus system clock ticks `pid` has run, and its RSS in kB.
pub fn usage(pid: i32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis: utime is the
    // 12th of them, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}
