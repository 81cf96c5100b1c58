//! Helpers for test suites across the workspace: a fresh, migrated store on either backend.
//!
//! Compiled only with the `testing` feature (`store = { workspace = true, features = ["testing"] }`
//! under `[dev-dependencies]`).
//!
//! PostgreSQL tests get a database of their own (`lifeos_t_<uuid>`) on the server named by
//! `LIFEOS_TEST_DATABASE_URL`, so they can run in parallel without seeing each other's events.
//! When that server cannot be reached the PostgreSQL helpers return `None` and the test should
//! return early, except when `CI=true`, where they panic: CI must not pass by skipping.

use std::path::Path;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::{Journal, Position, Store, migrate};

/// The variable naming the PostgreSQL server tests create their databases on.
pub const DATABASE_URL_ENV: &str = "LIFEOS_TEST_DATABASE_URL";

/// The server used when [`DATABASE_URL_ENV`] is not set: local, trust auth.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long connecting to the server may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The URL of the PostgreSQL server (and a database on it we may `CREATE DATABASE` from):
/// `LIFEOS_TEST_DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn admin_url() -> String {
    std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Connects to the admin database; `None` (after saying so) when the server is unreachable
/// outside CI. Panics in CI.
async fn admin_connection() -> Option<PgConnection> {
    let url = admin_url();
    let error = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&url)).await {
        Ok(Ok(conn)) => return Some(conn),
        Ok(Err(err)) => err.to_string(),
        Err(_) => format!("no answer within {CONNECT_TIMEOUT:?}"),
    };
    let shown = redact(&url);
    if in_ci() {
        panic!(
            "PostgreSQL required in CI: cannot connect to {shown} ({error}); \
             set {DATABASE_URL_ENV} to a reachable server"
        );
    }
    eprintln!("skipping: PostgreSQL not reachable at {shown} ({error}); set {DATABASE_URL_ENV}");
    None
}

/// Creates an empty database `lifeos_t_<uuid>` on the [`admin_url`] server and returns its URL.
///
/// Returns `None` when the server cannot be reached (printing a "skipping" line), so a test can
/// `let Some(url) = fresh_postgres_url().await else { return };`. When the environment variable
/// `CI` is `"true"` an unreachable server panics instead. A server that is reachable but refuses
/// `CREATE DATABASE` always panics.
pub async fn fresh_postgres_url() -> Option<String> {
    let mut admin = admin_connection().await?;
    let name = format!("lifeos_t_{}", Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {}: {e}", redact(&admin_url())));
    let _ = admin.close().await;
    Some(with_database(&admin_url(), &name))
}

/// A migrated [`Store::Postgres`] on a database of its own (see [`fresh_postgres_url`]).
///
/// `None` when PostgreSQL is unreachable outside CI. Pass the store to [`drop_postgres_store`]
/// at the end of the test to delete the database.
pub async fn fresh_postgres_store() -> Option<Store> {
    let url = fresh_postgres_url().await?;
    let store = Store::open(Some(&url), &std::env::temp_dir())
        .await
        .unwrap_or_else(|e| panic!("opening {}: {e}", redact(&url)));
    migrate(&store)
        .await
        .unwrap_or_else(|e| panic!("migrating {}: {e}", redact(&url)));
    Some(store)
}

/// A migrated [`Store::Sqlite`] whose file lives in `dir` (typically a `tempfile::TempDir`, which
/// must outlive the store).
pub async fn sqlite_store(dir: &Path) -> Store {
    let store = Store::open(None, dir)
        .await
        .unwrap_or_else(|e| panic!("opening SQLite store in {}: {e}", dir.display()));
    migrate(&store)
        .await
        .unwrap_or_else(|e| panic!("migrating SQLite store in {}: {e}", dir.display()));
    store
}

/// Closes `store` and, for a PostgreSQL store made by [`fresh_postgres_store`], drops its
/// `lifeos_t_*` database so test runs do not pile databases up. Call it at the end of a passing
/// test (a failing one keeps its database for inspection). Does nothing more for SQLite.
pub async fn drop_postgres_store(store: Store) {
    let Store::Postgres(pg) = &store else {
        store.close().await;
        return;
    };
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pg.pool())
        .await
        .expect("current_database()");
    store.close().await;
    if !name.starts_with("lifeos_t_") {
        return; // never drop a database these helpers did not create
    }
    let Some(mut admin) = admin_connection().await else {
        return;
    };
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("DROP DATABASE {name}: {e}"));
    let _ = admin.close().await;
}

/// Waits until the log reader can see everything up to `position` (typically the last receipt's
/// position): `head() >= position`. Panics after 30 s.
///
/// On SQLite that is at once. On PostgreSQL a committed event stays invisible to
/// [`Journal::read_after`] and [`Journal::head`] while any older transaction of the cluster is
/// still running (that is what keeps the reader from skipping events), and parallel tests in other
/// databases run such transactions: read the log only after this wait.
pub async fn wait_for_head(store: &Store, position: Position) {
    let mut wakeups = store.wakeups();
    let wait = async {
        loop {
            wakeups.borrow_and_update();
            let head = store.head().await.expect("head()");
            if head >= position {
                return;
            }
            // Unrelated transactions ending wake nobody: the timeout is the poll interval.
            let _ = tokio::time::timeout(Duration::from_millis(20), wakeups.changed()).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .is_err()
    {
        panic!("the log head did not reach {position} within 30 s");
    }
}

/// `url` with its database (the path after the authority) replaced by `database`; the query
/// string, if any, is kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    format!("{server}/{database}{query}")
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{}{user}{hidden}{}", &url[..scheme_end], &rest[at..])
        }
        None => url.to_string(),
    }
}

/// The temporary-directory crate the macros below use (so test crates need not depend on it).
pub use tempfile;

/// Runs each `async fn case(store: Store)` as two tests: `$sqlite` on a fresh SQLite store in a
/// temporary directory and `$postgres` on a fresh PostgreSQL database (returning early when
/// PostgreSQL is unreachable outside CI; failing in CI).
///
/// Usage, in an integration test file: `store::on_both_stores! { append_then_read =>
/// sqlite_append_then_read, postgres_append_then_read; }`.
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let dir = $crate::testing::tempfile::tempdir().expect("temp dir");
            let store = $crate::testing::sqlite_store(dir.path()).await;
            $case(store.clone()).await;
            store.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(store) = $crate::testing::fresh_postgres_store().await else {
                return;
            };
            $case(store.clone()).await;
            $crate::testing::drop_postgres_store(store).await;
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_and_query_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
        assert_eq!(with_database("postgres://h?a=b", "x"), "postgres://h/x?a=b");
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
