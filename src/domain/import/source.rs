//! Reading an original Flask-Messaging database: an SQLite file, or an `sqlite:`/`postgres:`
//! URL. Only reads; rows come back as the original stored them, NULLs included.

use std::path::Path;

use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, QueryResult, Statement};

use super::ImportError;

/// A `users` row of the original app.
#[derive(Debug, Clone, Default)]
pub struct SourceUser {
    pub id: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub websocket_id: Option<String>,
}

/// A `messages` row of the original app (`sender_id`, `recipient_id` are usernames).
#[derive(Debug, Clone, Default)]
pub struct SourceMessage {
    pub id: i64,
    pub url: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub timestamp: Option<String>,
    pub read: Option<bool>,
    pub thread_id: Option<String>,
    pub sender_del: Option<bool>,
    pub recipient_del: Option<bool>,
}

/// An open original database.
pub struct Source {
    conn: DatabaseConnection,
}

const USERS: &str = "SELECT CAST(id AS BIGINT) AS id, username, password, websocket_id FROM users";
// Timestamps as text on both backends (SQLite stores text; PostgreSQL has a `timestamp`);
// booleans and ids as 64-bit integers (SQLite stores 0/1, PostgreSQL a `boolean`, which
// casts only to a 32-bit integer).
const MESSAGES: &str = "SELECT CAST(id AS BIGINT) AS id, url, sender_id, recipient_id, subject, \
    body, CAST(\"timestamp\" AS TEXT) AS timestamp, \
    CAST(CAST(\"read\" AS INTEGER) AS BIGINT) AS read, thread_id, \
    CAST(CAST(sender_del AS INTEGER) AS BIGINT) AS sender_del, \
    CAST(CAST(recipient_del AS INTEGER) AS BIGINT) AS recipient_del FROM messages";
/// Rows read per query: the source is read in pages of ids, never whole into one result.
const PAGE: u64 = 20_000;

impl Source {
    /// Opens `path` (a file, or a `sqlite:`/`postgres:` URL) read-only and checks that it
    /// holds the original app's two tables with the columns the import reads.
    pub async fn open(path: &str) -> Result<Source, ImportError> {
        let url = source_url(path)?;
        let mut opts = ConnectOptions::new(url);
        opts.sqlx_logging(false).max_connections(1);
        let conn = sea_orm::Database::connect(opts)
            .await
            .map_err(|e| ImportError::Source(format!("cannot open {path}: {e}")))?;
        let source = Source { conn };
        for probe in [USERS, MESSAGES] {
            let sql = format!("{probe} WHERE 1 = 0");
            source.query(&sql).await.map_err(|e| {
                ImportError::NotFlaskMessaging(format!(
                    "{path} is not a Flask-Messaging database: {}",
                    first_line(&e.to_string())
                ))
            })?;
        }
        Ok(source)
    }

    async fn query(&self, sql: &str) -> Result<Vec<QueryResult>, sea_orm::DbErr> {
        let backend = self.conn.get_database_backend();
        self.conn
            .query_all_raw(Statement::from_string(backend, sql.to_owned()))
            .await
    }

    pub async fn count(&self, table: &str) -> Result<u64, ImportError> {
        let rows = self
            .query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .await
            .map_err(read_error)?;
        let n: i64 = rows
            .first()
            .map(|r| r.try_get("", "n"))
            .transpose()
            .map_err(read_error)?
            .unwrap_or(0);
        Ok(n.max(0) as u64)
    }

    pub async fn users(&self) -> Result<Vec<SourceUser>, ImportError> {
        let mut users = Vec::new();
        self.pages(USERS, |row| {
            users.push(SourceUser {
                id: row.try_get("", "id")?,
                username: row.try_get("", "username")?,
                password: row.try_get("", "password")?,
                websocket_id: row.try_get("", "websocket_id")?,
            });
            Ok(())
        })
        .await?;
        Ok(users)
    }

    /// Every message in id order; `progress` hears of each page read.
    pub async fn messages(
        &self,
        mut progress: impl FnMut(u64),
    ) -> Result<Vec<SourceMessage>, ImportError> {
        let mut messages = Vec::new();
        let flag = |row: &QueryResult, column: &str| -> Result<Option<bool>, sea_orm::DbErr> {
            Ok(row.try_get::<Option<i64>>("", column)?.map(|v| v != 0))
        };
        self.pages(MESSAGES, |row| {
            messages.push(SourceMessage {
                id: row.try_get("", "id")?,
                url: row.try_get("", "url")?,
                sender: row.try_get("", "sender_id")?,
                recipient: row.try_get("", "recipient_id")?,
                subject: row.try_get("", "subject")?,
                body: row.try_get("", "body")?,
                timestamp: row.try_get("", "timestamp")?,
                read: flag(row, "read")?,
                thread_id: row.try_get("", "thread_id")?,
                sender_del: flag(row, "sender_del")?,
                recipient_del: flag(row, "recipient_del")?,
            });
            if messages.len().is_multiple_of(1000) {
                progress(1000);
            }
            Ok(())
        })
        .await?;
        progress(messages.len() as u64 % 1000);
        Ok(messages)
    }

    /// Runs `select` page by page in id order, handing each row to `each`.
    async fn pages(
        &self,
        select: &str,
        mut each: impl FnMut(&QueryResult) -> Result<(), sea_orm::DbErr>,
    ) -> Result<(), ImportError> {
        let mut after: Option<i64> = None;
        loop {
            let from = after
                .map(|id| format!("WHERE id > {id}"))
                .unwrap_or_default();
            let sql = format!("{select} {from} ORDER BY id LIMIT {PAGE}");
            let rows = self.query(&sql).await.map_err(read_error)?;
            for row in &rows {
                each(row).map_err(read_error)?;
            }
            match rows.last() {
                Some(last) if rows.len() as u64 == PAGE => {
                    after = Some(last.try_get("", "id").map_err(read_error)?);
                }
                _ => return Ok(()),
            }
        }
    }
}

/// The connection URL for `path`: URLs as given (an SQLite one read-only), files checked to
/// exist and to be SQLite before anything opens them.
fn source_url(path: &str) -> Result<String, ImportError> {
    if path.starts_with("postgres://") || path.starts_with("postgresql://") {
        return Ok(path.to_owned());
    }
    let file = match path.strip_prefix("sqlite://") {
        Some(rest) => rest.split('?').next().unwrap_or(rest),
        None => path.strip_prefix("sqlite:").unwrap_or(path),
    };
    let file = Path::new(file);
    let mut head = [0u8; 16];
    match std::fs::File::open(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImportError::Source(format!(
                "{}: no such file",
                file.display()
            )));
        }
        Err(e) => return Err(ImportError::Source(format!("{}: {e}", file.display()))),
        Ok(mut f) => {
            use std::io::Read;
            let sqlite = f.read_exact(&mut head).is_ok() && &head == b"SQLite format 3\0";
            if !sqlite {
                return Err(ImportError::NotFlaskMessaging(format!(
                    "{} is not an SQLite database",
                    file.display()
                )));
            }
        }
    }
    Ok(format!("sqlite://{}?mode=ro", file.display()))
}

fn read_error(e: sea_orm::DbErr) -> ImportError {
    ImportError::Source(format!("reading the original database failed: {e}"))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
