//! Database connection: SQLite (embedded, WAL) or PostgreSQL, migrations, and the write gate.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    QueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};
use tokio::sync::{Mutex, MutexGuard};

use crate::config::{Config, Synchronous};

/// The database, plus a gate that serialises write transactions on SQLite.
///
/// SQLite allows one writer at a time; taking the gate before `BEGIN` means writers queue in
/// the server instead of failing with `SQLITE_BUSY` when a deferred transaction upgrades.
/// Write transactions also always use the same connection on SQLite: its page cache stays
/// valid from one commit to the next, where a pooled connection that another one had written
/// behind would read its pages again.
#[derive(Clone)]
pub struct Database {
    pub conn: DatabaseConnection,
    writer: DatabaseConnection,
    write_gate: Option<Arc<Mutex<()>>>,
    /// Whether changes write their events to the per-user event log (recovery is on).
    pub log_events: bool,
}

/// A write transaction; on SQLite it holds the write gate until commit or drop.
pub struct WriteTxn<'a> {
    txn: DatabaseTransaction,
    _gate: Option<MutexGuard<'a, ()>>,
}

impl WriteTxn<'_> {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

impl Deref for WriteTxn<'_> {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl Database {
    /// Connects with the settings in `config` (no migrations).
    pub async fn connect(config: &Config) -> Result<Database, DbErr> {
        let mut opts = ConnectOptions::new(config.database_url.clone());
        opts.sqlx_logging(false)
            .max_connections(config.db_pool.max(1))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10));
        if let Some(schema) = &config.database_schema {
            opts.set_schema_search_path(schema.clone());
        }
        let sqlite = config.database_url.starts_with("sqlite:");
        if sqlite {
            // An embedded connection cannot go stale: no ping before each use (a round trip to
            // its worker thread that every request and every batch of replies used to pay).
            let sync = config.sqlite_synchronous;
            opts.test_before_acquire(false)
                .map_sqlx_sqlite_opts(move |o| sqlite_options(o, "1000", sync));
        }
        let conn = sea_orm::Database::connect(opts.clone()).await?;
        if conn.get_database_backend() != DbBackend::Sqlite {
            return Ok(Database {
                writer: conn.clone(),
                conn,
                write_gate: None,
                log_events: !config.recovery_window.is_zero(),
            });
        }
        // The writer checkpoints only as a safety net; `checkpoint` runs beside it. Its worker
        // thread may hand back a whole batch's rows (a few per reply) without waiting for them
        // to be read: past the default 50 it stopped until this side was scheduled again.
        let sync = config.sqlite_synchronous;
        opts.max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(move |o| sqlite_options(o, "10000", sync).row_buffer_size(4096));
        let writer = sea_orm::Database::connect(opts).await?;
        Ok(Database {
            conn,
            writer,
            write_gate: Some(Arc::new(Mutex::new(()))),
            log_events: !config.recovery_window.is_zero(),
        })
    }

    /// Copies committed pages from the SQLite write-ahead log into the database file, without
    /// waiting for readers or blocking the writer (nothing to do on PostgreSQL). Run from a
    /// background task, it keeps that copying, and its fsync, out of the commits that
    /// senders wait for: left to SQLite, every thousandth page made one commit pay for it.
    pub async fn checkpoint(&self) -> Result<(), DbErr> {
        if self.backend() != DbBackend::Sqlite {
            return Ok(());
        }
        self.conn
            .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
            .await
            .map(|_| ())
    }

    /// Writes a consistent copy of the SQLite database into the new file `target`, while
    /// others go on writing: one read transaction (`VACUUM INTO`) holds every commit made
    /// before it began and none after. The copy is synced to disk before this returns.
    pub async fn backup_into(&self, target: &std::path::Path) -> Result<(), DbErr> {
        let path = target
            .to_str()
            .ok_or_else(|| DbErr::Custom(format!("{} is not a UTF-8 path", target.display())))?;
        self.conn
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "VACUUM INTO ?",
                [path.into()],
            ))
            .await?;
        let sync = |p: &std::path::Path| std::fs::File::open(p).and_then(|f| f.sync_all());
        sync(target)
            .and_then(|()| match target.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => sync(dir),
                _ => sync(std::path::Path::new(".")),
            })
            .map_err(|e| DbErr::Custom(format!("syncing {}: {e}", target.display())))
    }

    /// Brings the schema up to date, all pending migrations in one transaction: one that fails
    /// half-way, or a process stopped during it, leaves the schema as it was (SQLite and
    /// PostgreSQL both roll DDL back), and the next start migrates from there.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        migrate_atomically::<Migrator>(&self.conn, None).await
    }

    /// Starts a write transaction (queued behind other writers on SQLite). On SQLite it begins
    /// IMMEDIATE: it takes the write lock at once, waiting for it within the busy timeout,
    /// where a deferred transaction that read first failed with SQLITE_BUSY, without waiting,
    /// when another connection had written since its read.
    pub async fn begin_write(&self) -> Result<WriteTxn<'_>, DbErr> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        let txn = if gate.is_some() {
            let options = TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            };
            self.writer.begin_with_options(options).await?
        } else {
            self.writer.begin().await?
        };
        Ok(WriteTxn { txn, _gate: gate })
    }

    /// Runs `work` in a write transaction and commits it; every write of the server goes
    /// through here or through a write script, so none waits on another outside the gate.
    pub async fn write<T, E: From<DbErr>>(
        &self,
        work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.begin_write().await?;
        let out = work(&txn).await?;
        txn.commit().await?;
        Ok(out)
    }

    /// Runs `script`, SQLite statements that begin and commit one write transaction, in a single
    /// round trip to the writer's thread, and returns the rows of all its statements. A
    /// transaction has to wait for that thread to be scheduled at each step: as separate
    /// `BEGIN`, query and `COMMIT` it did so three times per group commit. If a statement
    /// fails, the transaction is rolled back before the gate opens.
    pub async fn write_script(
        &self,
        script: &'static str,
        values: Vec<Value>,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let Some(gate) = &self.write_gate else {
            return Err(DbErr::Custom("write scripts are for SQLite".into()));
        };
        let _gate = gate.lock().await;
        let statement = Statement::from_sql_and_values(DbBackend::Sqlite, script, values);
        let rows = self.writer.query_all_raw(statement).await;
        if rows.is_err() {
            // Nothing to undo if `BEGIN` itself failed.
            let _ = self.writer.execute_unprepared("ROLLBACK").await;
        }
        rows
    }

    /// Answers when the database does (for /healthz).
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.execute_unprepared("SELECT 1").await.map(|_| ())
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }
}

/// Runs every pending migration inside `txn`: they commit, or roll back, with it.
pub async fn migrate_within(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    Migrator::up(txn, None).await
}

/// Runs `steps` (all when `None`) pending migrations of `M` in one transaction. sea-orm wraps
/// each migration in a transaction of its own on PostgreSQL only; on SQLite each statement ran
/// alone, on whichever pooled connection was free.
pub async fn migrate_atomically<M: MigratorTrait>(
    conn: &DatabaseConnection,
    steps: Option<u32>,
) -> Result<(), DbErr> {
    let txn = conn.begin().await?;
    M::up(&txn, steps).await?;
    txn.commit().await
}

/// SQLite settings of every connection; `autocheckpoint` is the WAL size, in pages, past which
/// a commit on that connection checkpoints. `synchronous=FULL` (the default) syncs the log at
/// every commit, so an acknowledged message survives a power cut; NORMAL syncs only at
/// checkpoints (docs/performance.md measures the difference).
fn sqlite_options(
    o: SqliteConnectOptions,
    autocheckpoint: &'static str,
    synchronous: Synchronous,
) -> SqliteConnectOptions {
    o.journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .pragma("synchronous", synchronous.pragma())
        // Statement journals of multi-row writes stay in memory, not in temp files.
        .pragma("temp_store", "MEMORY")
        .pragma("wal_autocheckpoint", autocheckpoint)
        // After a burst, the write-ahead log is cut back to this size once it starts over,
        // instead of keeping its largest size on disk for good. It is larger than the log
        // grows between checkpoints at full load (about 45 MB), which is not slowed by it.
        .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string())
}

/// Bytes of write-ahead log kept on disk once it is checkpointed and starts over.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// A database on a fresh SQLite file (deleted with the returned directory), not migrated.
#[cfg(test)]
pub(crate) async fn fresh_sqlite() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: format!("sqlite://{}/t.db?mode=rwc", dir.path().display()),
        ..Config::default()
    };
    let db = Database::connect(&config).await.unwrap();
    (dir, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one integer that `sql` answers on `conn`.
    async fn integer(conn: &DatabaseConnection, sql: &str) -> i64 {
        let row = conn
            .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index(0).unwrap()
    }

    /// A script that fails halfway leaves nothing behind and the writer free for the next one.
    #[tokio::test]
    async fn a_failed_write_script_is_rolled_back() {
        let (_dir, db) = fresh_sqlite().await;
        db.conn
            .execute_unprepared("CREATE TABLE t (v INTEGER NOT NULL)")
            .await
            .unwrap();
        let count = async || integer(&db.conn, "SELECT COUNT(*) FROM t").await;

        // The second insert breaks NOT NULL after the first has run.
        let failed = db
            .write_script(
                "BEGIN IMMEDIATE; INSERT INTO t VALUES (?1); INSERT INTO t VALUES (NULL); COMMIT",
                vec![1.into()],
            )
            .await;
        assert!(failed.is_err());
        assert_eq!(count().await, 0);

        let rows = db
            .write_script(
                "BEGIN IMMEDIATE; INSERT INTO t VALUES (?1) RETURNING v; COMMIT",
                vec![2.into()],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(count().await, 1);
    }

    /// The columns of each unique index on `messages` that covers `client_id`.
    async fn client_id_indexes(conn: &DatabaseConnection) -> Vec<(String, Vec<String>)> {
        let rows = conn
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT l.name AS name, i.name AS col FROM pragma_index_list('messages') l \
                 JOIN pragma_index_info(l.name) i WHERE l.\"unique\" \
                 AND l.name IN (SELECT name FROM pragma_index_list('messages') x \
                     WHERE 'client_id' IN (SELECT name FROM pragma_index_info(x.name))) \
                 ORDER BY l.name, i.seqno",
            ))
            .await
            .unwrap();
        let mut indexes: Vec<(String, Vec<String>)> = Vec::new();
        for row in rows {
            let (name, col): (String, String) = (
                row.try_get("", "name").unwrap(),
                row.try_get("", "col").unwrap(),
            );
            match indexes.last_mut() {
                Some((last, cols)) if *last == name => cols.push(col),
                _ => indexes.push((name, vec![col])),
            }
        }
        indexes
    }

    /// A database made before the `client_id` index was reordered gets the new index, with
    /// the same uniqueness, and going back restores the old one.
    #[tokio::test]
    async fn the_client_id_index_is_reordered_and_back() {
        let (_dir, db) = fresh_sqlite().await;
        let old = vec![(
            "idx_messages_client_id".to_owned(),
            vec!["sender_id".to_owned(), "client_id".to_owned()],
        )];
        let new = vec![(
            "idx_messages_client_id_sender".to_owned(),
            vec!["client_id".to_owned(), "sender_id".to_owned()],
        )];
        migrate_atomically::<Migrator>(&db.conn, Some(2))
            .await
            .unwrap();
        assert_eq!(client_id_indexes(&db.conn).await, old);
        db.migrate().await.unwrap();
        assert_eq!(client_id_indexes(&db.conn).await, new);
        // Back down past the reordering (and the migrations after it).
        let after = Migrator::migrations().len() as u32 - 2;
        let txn = db.conn.begin().await.unwrap();
        Migrator::down(&txn, Some(after)).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(client_id_indexes(&db.conn).await, old);
    }

    /// A migration that fails half-way (here, after creating a table of its own) leaves the
    /// schema as it was, and the migrations before it in the same run are undone with it: the
    /// next start sees them all pending and migrates from there.
    #[tokio::test]
    async fn a_migration_that_fails_half_way_leaves_the_previous_schema() {
        use migration::{MigrationTrait, SchemaManager};

        struct Breaks;
        impl migration::MigrationName for Breaks {
            fn name(&self) -> &str {
                "m29990101_000001_breaks"
            }
        }
        #[migration::async_trait::async_trait]
        impl MigrationTrait for Breaks {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager
                    .get_connection()
                    .execute_unprepared("CREATE TABLE half_done (x INTEGER)")
                    .await?;
                manager
                    .get_connection()
                    .execute_unprepared("CREATE TABLE users (x INTEGER)")
                    .await
                    .map(|_| ())
            }
        }
        struct WithBreaks;
        #[migration::async_trait::async_trait]
        impl MigratorTrait for WithBreaks {
            fn migrations() -> Vec<Box<dyn MigrationTrait>> {
                let mut all = Migrator::migrations();
                all.push(Box::new(Breaks));
                all
            }
        }
        let tables = async |conn: &DatabaseConnection| {
            integer(
                conn,
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations'",
            )
            .await
        };

        let (_dir, db) = fresh_sqlite().await;
        migrate_atomically::<Migrator>(&db.conn, Some(1))
            .await
            .unwrap();
        let before = tables(&db.conn).await;
        assert!(
            migrate_atomically::<WithBreaks>(&db.conn, None)
                .await
                .is_err()
        );
        assert_eq!(tables(&db.conn).await, before);
        let applied = integer(&db.conn, "SELECT COUNT(*) FROM seaql_migrations").await;
        assert_eq!(applied, 1);
        // The next start migrates what was pending.
        db.migrate().await.unwrap();
        assert_eq!(
            integer(&db.conn, "SELECT COUNT(*) FROM seaql_migrations").await,
            Migrator::migrations().len() as i64
        );
    }

    /// Both the readers' pool and the writer keep the write-ahead log's size bounded, and
    /// sync it at every commit (FULL = 2) unless told otherwise.
    #[tokio::test]
    async fn every_connection_limits_the_log_and_syncs_each_commit() {
        let (_dir, db) = fresh_sqlite().await;
        for conn in [&db.conn, &db.writer] {
            let limit = integer(conn, "PRAGMA journal_size_limit").await;
            assert_eq!(limit, JOURNAL_SIZE_LIMIT);
            assert_eq!(integer(conn, "PRAGMA synchronous").await, 2);
        }
    }
}
