//! Leases: one holder of a named role (a projection runner, the event relay) among the processes
//! sharing a store; the others wait as hot standbys and take over when the holder goes away.
//!
//! On PostgreSQL a lease is a session advisory lock held on a connection of its own: when the
//! holding process dies, its connection closes and the lock is free. An embedded SQLite store
//! belongs to one process, so there a lease is an in-process lock.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Postgres};

use crate::{Store, StoreError};

/// The names leased in this process on an embedded store.
#[derive(Clone, Default)]
pub(crate) struct LocalLeases(Arc<Mutex<HashSet<String>>>);

/// A held lease; dropping it releases it.
pub struct Lease {
    name: String,
    holder: Holder,
}

enum Holder {
    Postgres(Option<PoolConnection<Postgres>>),
    Local(LocalLeases),
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
            Holder::Local(_) => true,
        }
    }

    /// Releases the lease now (as dropping it does, but waiting for PostgreSQL to confirm).
    pub async fn release(mut self) {
        if let Holder::Postgres(conn) = &mut self.holder
            && let Some(mut conn) = conn.take()
        {
            let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(&self.name)
                .execute(&mut *conn)
                .await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        match &mut self.holder {
            // Close the session rather than return it to the pool still holding the lock.
            Holder::Postgres(conn) => {
                if let Some(conn) = conn.take() {
                    let conn = conn.detach();
                    tokio::spawn(async move {
                        let _ = conn.close().await;
                    });
                }
            }
            Holder::Local(leases) => {
                leases.0.lock().expect("lease registry").remove(&self.name);
            }
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
                Ok(got.then(|| Lease {
                    name: name.to_string(),
                    holder: Holder::Postgres(Some(conn)),
                }))
            }
            Store::Sqlite(s) => {
                let leases = s.leases().clone();
                let fresh = leases
                    .0
                    .lock()
                    .expect("lease registry")
                    .insert(name.to_string());
                Ok(fresh.then(|| Lease {
                    name: name.to_string(),
                    holder: Holder::Local(leases),
                }))
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
