//! Gives the memory the server freed back to the operating system.
//!
//! glibc's allocator keeps what a thread frees in that thread's arena (up to 8 per core) for
//! later reuse, and hands memory back to the system only from the top of a heap. A rebuild
//! frees thousands of events and rows every batch, on whichever thread ran the batch, and the
//! freed pages stayed resident: a 100 000-event rebuild on SQLite peaked at 410 MiB in 13
//! arenas. So on glibc the server keeps two arenas and trims the free pages every second
//! (`malloc_trim` returns free pages inside the arenas, not only at their tops).

use std::time::Duration;

use tokio::task::JoinHandle;

/// How often free heap pages are returned.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Limits the allocator's arenas and starts returning freed memory every second, until the
/// returned task is aborted. Does nothing but wait on other C libraries.
pub fn start_trimming() -> JoinHandle<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; glibc takes its own locks
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    tokio::spawn(async {
        let mut every = tokio::time::interval(TRIM_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim walks the arenas under their locks; it frees nothing in use
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    })
}
