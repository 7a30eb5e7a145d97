//! Append-only schema migrations for both backends. Each component (the log, and later the read
//! models) ships an ordered list; an applied migration is recorded with the SHA-256 of its SQL and
//! must never change, and a database migrated by a newer build is refused rather than guessed at.

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Row, SqliteConnection};

use crate::error::StoreError;

/// One migration: applied once, in version order, inside a transaction.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

/// The event log's own migrations; never edit one that has shipped, add a new one.
pub(crate) const LOG_SQLITE: &[Migration] = &[Migration {
    version: 1,
    name: "event_log",
    sql: include_str!("migrations/sqlite/0001_event_log.sql"),
}];

pub(crate) const LOG_POSTGRES: &[Migration] = &[Migration {
    version: 1,
    name: "event_log",
    sql: include_str!("migrations/postgres/0001_event_log.sql"),
}];

pub(crate) const LOG_COMPONENT: &str = "log";

const CREATE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
    checksum BLOB NOT NULL, applied_at INTEGER NOT NULL, PRIMARY KEY (component, version))";

const CREATE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL,
    checksum BYTEA NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (component, version))";

/// Compares what is applied with what this build ships and returns the migrations to apply.
fn pending<'m>(
    component: &str,
    migrations: &'m [Migration],
    applied: &[(i64, Vec<u8>)],
) -> Result<Vec<&'m Migration>, StoreError> {
    for (version, checksum) in applied {
        match migrations
            .iter()
            .find(|migration| migration.version == *version)
        {
            Some(migration) if migration.checksum() == *checksum => {}
            Some(migration) => {
                return Err(StoreError::MigrationChanged {
                    component: component.to_owned(),
                    version: *version,
                    name: migration.name.to_owned(),
                })
            }
            None => {
                return Err(StoreError::MigrationUnknown {
                    component: component.to_owned(),
                    version: *version,
                })
            }
        }
    }
    Ok(migrations
        .iter()
        .filter(|migration| {
            !applied
                .iter()
                .any(|(version, _)| *version == migration.version)
        })
        .collect())
}

fn now_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

pub async fn migrate_sqlite(
    conn: &mut SqliteConnection,
    component: &str,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    sqlx::raw_sql(CREATE_SQLITE).execute(&mut *conn).await?;
    // BEGIN IMMEDIATE takes the write lock up front, so two processes never both apply.
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = async {
        let applied: Vec<(i64, Vec<u8>)> =
            sqlx::query("SELECT version, checksum FROM schema_migrations WHERE component = ?1")
                .bind(component)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?;
        for migration in pending(component, migrations, &applied)? {
            sqlx::raw_sql(migration.sql).execute(&mut *conn).await?;
            sqlx::query(
                "INSERT INTO schema_migrations (component, version, name, checksum, applied_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(component)
            .bind(migration.version)
            .bind(migration.name)
            .bind(migration.checksum())
            .bind(now_micros())
            .execute(&mut *conn)
            .await?;
        }
        Ok::<(), StoreError>(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = sqlx::raw_sql(end).execute(&mut *conn).await;
    result?;
    ended?;
    Ok(())
}

pub async fn migrate_postgres(
    conn: &mut PgConnection,
    component: &str,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let mut tx = conn.begin().await?;
    // One migrator at a time per database, across processes; released at commit.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('docket.migrate'))")
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(CREATE_POSTGRES).execute(&mut *tx).await?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query("SELECT version, checksum FROM schema_migrations WHERE component = $1")
            .bind(component)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
    for migration in pending(component, migrations, &applied)? {
        sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (component, version, name, checksum, applied_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(component)
        .bind(migration.version)
        .bind(migration.name)
        .bind(migration.checksum())
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every shipped migration: if this changes, an applied migration was edited, which
    /// breaks every existing database. Add a new migration instead.
    #[test]
    fn shipped_migrations_never_change() {
        let pins: Vec<String> = [("sqlite", LOG_SQLITE), ("postgres", LOG_POSTGRES)]
            .iter()
            .flat_map(|(backend, migrations)| {
                migrations.iter().map(move |migration| {
                    let checksum: String = migration
                        .checksum()
                        .iter()
                        .map(|byte| format!("{byte:02x}"))
                        .collect();
                    format!(
                        "{backend} {} {} {checksum}",
                        migration.version, migration.name
                    )
                })
            })
            .collect();
        expect_test::expect![[r#"
            sqlite 1 event_log 44d7a184075cb896434781bf631fef77ac2b40dd9f63a88fb66a92d1ba874bb3
            postgres 1 event_log 51bea7dd3fff0ad3bc0c0a28c8418b170095a55f65b5e6a90e09c1112cf2e0d4"#]].assert_eq(&pins.join("\n"));
    }

    #[test]
    fn changed_and_unknown_migrations_are_refused() {
        let migrations = [Migration {
            version: 1,
            name: "one",
            sql: "SELECT 1",
        }];
        let changed = pending("log", &migrations, &[(1, vec![0; 32])]).unwrap_err();
        assert_eq!(
            changed.to_string(),
            "migration log/1 (one) was changed after it was applied"
        );
        let unknown = pending(
            "log",
            &migrations,
            &[(1, migrations[0].checksum()), (2, vec![])],
        )
        .unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "the database has migration log/2, newer than this build knows"
        );
        let todo = pending("log", &migrations, &[]).unwrap();
        assert_eq!(todo.len(), 1);
    }
}
