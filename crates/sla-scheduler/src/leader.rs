//! Who runs the scheduler. On SQLite one process owns the database, so it leads. On PostgreSQL
//! the nodes elect one with a session-level advisory lock held on a dedicated connection: the
//! lock lives exactly as long as that session, so a leader that dies or loses its connection
//! loses the lead, and the server hands the lock to the next node that asks (followers ask every
//! `retry` interval, one second by default, well within the five seconds a takeover may take).

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use store::Store;

/// How often a follower asks for the lock by default.
pub const LEADER_RETRY: Duration = Duration::from_secs(1);
/// The longest a leadership check may take before it counts as lost.
pub const LEADER_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How a node becomes the scheduler's leader.
#[derive(Clone, Debug)]
pub enum Leadership {
    /// The only node (SQLite): always the leader.
    Single,
    /// One of several nodes on PostgreSQL.
    Postgres { pool: PgPool, retry: Duration },
}

impl Leadership {
    /// The leadership that fits the store's backend.
    pub fn for_store(store: &Store) -> Leadership {
        match store.postgres_pool() {
            Some(pool) => Leadership::Postgres {
                pool: pool.clone(),
                retry: LEADER_RETRY,
            },
            None => Leadership::Single,
        }
    }

    /// Waits until this node leads.
    pub async fn acquire(&self) -> Leader {
        match self {
            Leadership::Single => Leader { connection: None },
            Leadership::Postgres { pool, retry } => loop {
                match try_lock(pool).await {
                    Ok(Some(connection)) => {
                        return Leader {
                            connection: Some(connection),
                        }
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, "sla scheduler: asking for the leader lock failed")
                    }
                }
                tokio::time::sleep(*retry).await;
            },
        }
    }

    /// Leads if no one else does, without waiting.
    pub async fn try_acquire(&self) -> Result<Option<Leader>, sqlx::Error> {
        match self {
            Leadership::Single => Ok(Some(Leader { connection: None })),
            Leadership::Postgres { pool, .. } => {
                Ok(try_lock(pool).await?.map(|connection| Leader {
                    connection: Some(connection),
                }))
            }
        }
    }
}

/// The lock key: one per database schema, so test schemas on one server do not contend.
async fn lock_key(connection: &mut PgConnection) -> Result<i64, sqlx::Error> {
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut *connection)
        .await?;
    let digest = Sha256::new()
        .chain_update(b"docket.sla-scheduler.leader")
        .chain_update(schema.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    Ok(i64::from_be_bytes(bytes))
}

async fn try_lock(pool: &PgPool) -> Result<Option<PgConnection>, sqlx::Error> {
    // A connection of its own, out of the pool: the lock must not be shared or recycled.
    let mut connection = pool.acquire().await?.detach();
    let key = lock_key(&mut connection).await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut connection)
        .await?;
    if locked {
        Ok(Some(connection))
    } else {
        let _ = connection.close().await;
        Ok(None)
    }
}

/// This node's lead, while it lasts.
#[derive(Debug)]
pub struct Leader {
    connection: Option<PgConnection>,
}

impl Leader {
    /// Whether the lock's session is still alive (always, for the single node).
    pub async fn still_leading(&mut self) -> bool {
        let Some(connection) = self.connection.as_mut() else {
            return true;
        };
        let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut *connection);
        matches!(
            tokio::time::timeout(LEADER_CHECK_TIMEOUT, ping).await,
            Ok(Ok(1))
        )
    }

    /// Gives the lead up: closing the session releases the lock at once.
    pub async fn release(self) {
        if let Some(connection) = self.connection {
            let _ = connection.close().await;
        }
    }
}
