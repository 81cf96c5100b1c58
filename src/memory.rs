//! The process's heap allocator: mimalloc.
//!
//! A rebuild allocates and frees millions of small values (events, rows, JSON text) on
//! whichever worker thread runs a batch. Under glibc's allocator 42 % of the server's CPU
//! went to `malloc`/`free` and their arena locks and consolidation (perf, 300 000-event rebuild
//! on PostgreSQL), and freed pages stayed resident in up to 8 arenas per core until trimmed.
//! mimalloc keeps per-thread free lists and returns unused pages to the system by itself.

/// Every allocation of a binary linking this crate (`lifeos`, the bench harness, the tests).
#[global_allocator]
static HEAP: mimalloc::MiMalloc = mimalloc::MiMalloc;
