//! Who runs a singleton task: the SLA scheduler, the webhook dispatcher. On SQLite one process
//! owns the database, so it leads. On PostgreSQL the nodes elect one per lock name with a
//! session-level advisory lock held on a dedicated connection: the lock lives exactly as long as
//! that session, so a leader that dies or loses its connection loses the lead, and the server
//! hands the lock to the next node that asks (followers ask every `retry` interval, one second
//! by default, well within the five seconds a takeover may take). Each task has its own lock
//! name, so the SLA scheduler and the webhook dispatcher may lead on different nodes.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use store::Store;

/// How often a follower asks for the lock by default.
pub const LEADER_RETRY: Duration = Duration::from_secs(1);
/// The longest a leadership check may take before it counts as lost.
pub const LEADER_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The SLA scheduler's lock name.
pub const SCHEDULER_LOCK: &str = "docket.sla-scheduler.leader";

/// How a node becomes the leader of one singleton task.
#[derive(Clone, Debug)]
pub enum Leadership {
    /// The only node (SQLite): always the leader.
    Single,
    /// One of several nodes on PostgreSQL, electing under the advisory lock named `lock`.
    Postgres {
        pool: PgPool,
        lock: &'static str,
        retry: Duration,
    },
}

impl Leadership {
    /// The leadership of the task named `lock` that fits the store's backend.
    pub fn for_store(store: &Store, lock: &'static str) -> Leadership {
        match store.postgres_pool() {
            Some(pool) => Leadership::Postgres {
                pool: pool.clone(),
                lock,
                retry: LEADER_RETRY,
            },
            None => Leadership::Single,
        }
    }

    /// Waits until this node leads.
    pub async fn acquire(&self) -> Leader {
        match self {
            Leadership::Single => Leader { connection: None },
            Leadership::Postgres { pool, lock, retry } => loop {
                match try_lock(pool, lock).await {
                    Ok(Some(connection)) => {
                        return Leader {
                            connection: Some(connection),
                        }
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, lock = *lock, "asking for a leader lock failed")
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
            Leadership::Postgres { pool, lock, .. } => {
                Ok(try_lock(pool, lock).await?.map(|connection| Leader {
                    connection: Some(connection),
                }))
            }
        }
    }
}

/// The lock key: one per lock name and database schema, so test schemas on one server do not
/// contend. (The scheduler's key is the one it had before locks had names.)
async fn lock_key(connection: &mut PgConnection, lock: &str) -> Result<i64, sqlx::Error> {
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut *connection)
        .await?;
    let digest = Sha256::new()
        .chain_update(lock.as_bytes())
        .chain_update(schema.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    Ok(i64::from_be_bytes(bytes))
}

async fn try_lock(pool: &PgPool, lock: &str) -> Result<Option<PgConnection>, sqlx::Error> {
    // A connection of its own, out of the pool: the lock must not be shared or recycled.
    let mut connection = pool.acquire().await?.detach();
    let key = lock_key(&mut connection, lock).await?;
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
