//! Scratch databases for tests and benchmarks: a fresh SQLite file in its own directory, or a
//! fresh PostgreSQL schema, so that runs never collide. PostgreSQL comes from
//! `DOCKET_TEST_DATABASE_URL`; under CI (`CI=true`) a missing or unreachable server is an error,
//! not a skip.

use std::path::PathBuf;

use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::{BackendKind, StoreConfig};

pub const TEST_DATABASE_URL_VAR: &str = "DOCKET_TEST_DATABASE_URL";
/// Scratch schemas older than this are dropped by later runs (a crashed run leaves its own).
const STALE_SCHEMA_SECONDS: i64 = 6 * 3600;
const SCHEMA_PREFIX: &str = "docket_scratch_";

/// One scratch database. Call `cleanup` when done; a run that crashes leaves it to the next.
#[derive(Debug)]
pub struct ScratchDb {
    pub kind: BackendKind,
    pub config: StoreConfig,
    dir: Option<PathBuf>,
    admin_url: Option<String>,
}

impl ScratchDb {
    pub async fn sqlite() -> ScratchDb {
        let dir = std::env::temp_dir().join(format!("docket-scratch-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("creating a scratch directory in the temp dir");
        let url = format!("sqlite://{}", dir.join("docket.db").display());
        ScratchDb {
            kind: BackendKind::Sqlite,
            config: StoreConfig::new(url),
            dir: Some(dir),
            admin_url: None,
        }
    }

    /// A fresh schema on the test PostgreSQL server, or `None` when none is configured outside
    /// CI. Panics under CI when the server is missing or unreachable: CI must run these tests.
    pub async fn postgres() -> Option<ScratchDb> {
        let ci = std::env::var("CI").is_ok_and(|value| value == "true");
        let url = match std::env::var(TEST_DATABASE_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    !ci,
                    "CI=true but {TEST_DATABASE_URL_VAR} is not set: PostgreSQL tests must run"
                );
                return None;
            }
        };
        match ScratchDb::postgres_at(&url).await {
            Ok(db) => Some(db),
            Err(error) => panic!("{TEST_DATABASE_URL_VAR}={url} is unreachable: {error}"),
        }
    }

    /// A fresh schema on the PostgreSQL server at `url`.
    pub async fn postgres_at(url: &str) -> Result<ScratchDb, sqlx::Error> {
        let mut conn = PgConnection::connect(url).await?;
        let now = jiff::Timestamp::now().as_second();
        drop_stale_schemas(&mut conn, now).await;
        let schema = format!("{SCHEMA_PREFIX}{now}_{}", Uuid::now_v7().simple());
        conn.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await?;
        let _ = conn.close().await;
        let mut config = StoreConfig::new(url);
        config.schema = Some(schema);
        config.application_name = format!("docket-test-{}", Uuid::now_v7().simple());
        Ok(ScratchDb {
            kind: BackendKind::Postgres,
            config,
            dir: None,
            admin_url: Some(url.to_owned()),
        })
    }

    /// SQLite always, and PostgreSQL when configured (always under CI).
    pub async fn all() -> Vec<ScratchDb> {
        let mut dbs = vec![ScratchDb::sqlite().await];
        dbs.extend(ScratchDb::postgres().await);
        dbs
    }

    /// The SQLite file, for tests that tamper with it directly.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| dir.join("docket.db"))
    }

    /// A direct connection to the scratch schema (PostgreSQL), for tests that tamper with it.
    pub async fn postgres_connection(&self) -> Option<PgConnection> {
        let url = self.admin_url.as_ref()?;
        let mut conn = PgConnection::connect(url)
            .await
            .expect("connecting to the test server");
        let schema = self.config.schema.as_ref()?;
        conn.execute(format!("SET search_path TO {schema}").as_str())
            .await
            .expect("search_path");
        Some(conn)
    }

    pub async fn cleanup(self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let (Some(url), Some(schema)) = (&self.admin_url, &self.config.schema) {
            if let Ok(mut conn) = PgConnection::connect(url).await {
                let _ = conn
                    .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
                    .await;
                let _ = conn.close().await;
            }
        }
    }
}

async fn drop_stale_schemas(conn: &mut PgConnection, now: i64) {
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'docket_scratch_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for schema in schemas {
        let created = schema
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|seconds| seconds.parse::<i64>().ok());
        if created.is_some_and(|created| now - created > STALE_SCHEMA_SECONDS) {
            let _ = conn
                .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
                .await;
        }
    }
}
