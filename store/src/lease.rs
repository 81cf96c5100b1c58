//! Leases: one holder of a named role (a projection runner, the event relay) among the processes
//! sharing a store; the others wait as hot standbys and take over when the holder goes away.
//!
//! On PostgreSQL a lease is a session advisory lock held on a connection of its own: when the
//! holding process dies, its connection closes and the lock is free. A lease that is taken
//! detaches its connection from the pool (which may open another in its place), so held leases
//! never eat the pool the commands and read models work with (14 of 16 connections did). On an embedded SQLite store
//! it is an exclusive lock on a file beside the database (`<db>.lease-<name>`), which the
//! operating system also frees when the holder dies; it excludes other processes (a CLI rebuild
//! beside a running server) and other holders in the same process alike.

use std::fs::{File, OpenOptions, TryLockError};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::{Store, StoreError};

/// A held lease; dropping it releases it.
pub struct Lease {
    name: String,
    holder: Holder,
}

enum Holder {
    Postgres(Option<PgConnection>),
    /// The locked lease file: held only to keep the lock (closing it unlocks).
    File(#[allow(dead_code)] File),
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("name", &self.name).finish()
    }
}

impl Lease {
    /// The leased role's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lease is still held (on PostgreSQL: its connection still answers).
    pub async fn is_held(&mut self) -> bool {
        match &mut self.holder {
            Holder::Postgres(Some(conn)) => conn.ping().await.is_ok(),
            Holder::Postgres(None) => false,
            Holder::File(_) => true,
        }
    }

    /// Releases the lease now (as dropping it does, but waiting for PostgreSQL to confirm).
    pub async fn release(mut self) {
        if let Holder::Postgres(conn) = &mut self.holder
            && let Some(mut conn) = conn.take()
        {
            let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(&self.name)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        match &mut self.holder {
            // Close the session rather than return it to the pool still holding the lock.
            Holder::Postgres(conn) => {
                if let Some(conn) = conn.take() {
                    tokio::spawn(async move {
                        let _ = conn.close().await;
                    });
                }
            }
            Holder::File(_) => {} // closing the file releases the lock
        }
    }
}

impl Store {
    /// Takes the lease `name` if nobody holds it.
    pub async fn try_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        match self {
            Store::Postgres(s) => {
                let mut conn = s.pool().acquire().await.map_err(StoreError::Unavailable)?;
                let got: bool =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                        .bind(name)
                        .fetch_one(&mut *conn)
                        .await?;
                // a free lease's connection goes back to the pool; a taken one leaves it
                Ok(got.then(|| Lease {
                    name: name.to_string(),
                    holder: Holder::Postgres(Some(conn.detach())),
                }))
            }
            Store::Sqlite(s) => {
                let safe: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let mut path = s.path().as_os_str().to_owned();
                path.push(format!(".lease-{safe}"));
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|e| lease_file_error(&path, e))?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(Lease {
                        name: name.to_string(),
                        holder: Holder::File(file),
                    })),
                    Err(TryLockError::WouldBlock) => Ok(None),
                    Err(TryLockError::Error(e)) => Err(lease_file_error(&path, e)),
                }
            }
        }
    }

    /// Waits until the lease `name` is free and takes it, trying every `retry`.
    pub async fn lease(&self, name: &str, retry: Duration) -> Result<Lease, StoreError> {
        loop {
            if let Some(lease) = self.try_lease(name).await? {
                return Ok(lease);
            }
            tokio::time::sleep(retry).await;
        }
    }
}

fn lease_file_error(path: &std::ffi::OsStr, err: std::io::Error) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Configuration(
        format!("lease file {}: {err}", path.to_string_lossy()).into(),
    ))
}
