//! `missive import flask-messaging PATH`: takes over an original Flask-Messaging database.
//!
//! The source is read whole, the import planned in memory ([`plan`]), checked against what
//! Missive holds already, and written in one transaction with an import record: it either all
//! lands or none of it does, and the same source imported twice changes nothing.

mod plan;
mod source;

use std::time::{Duration, Instant};

use entity::{message, message_hide, participant, setting, thread, unread_below_mark, user};
use sea_orm::sea_query::{Alias, Expr, Func, IntoIden, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, Value,
};
use sha2::{Digest, Sha256};

pub use plan::Repairs;
use plan::{IdBase, Plan};
pub use source::Source;
use source::{SourceMessage, SourceUser};

use crate::db::Database;
use crate::ids;

/// Why an import did not happen. Missive's database is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source cannot be opened or read.
    #[error("{0}")]
    Source(String),
    /// The source opens but is not an original Flask-Messaging database.
    #[error("{0}")]
    NotFlaskMessaging(String),
    /// Part of the source is in Missive already (an earlier import of an older copy, or native
    /// accounts with the same names): importing would duplicate or merge people.
    #[error("nothing imported: {}", .0.join("; "))]
    Conflict(Vec<String>),
    #[error("writing to Missive's database failed, nothing was imported: {0}")]
    Db(#[from] DbErr),
}

/// What the import reports while it runs (a progress bar on a terminal).
pub trait Progress {
    /// A new phase of `total` steps (0: unknown).
    fn phase(&self, name: &str, total: u64);
    fn advance(&self, steps: u64);
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Summary {
    /// The same source had been imported before: nothing was written.
    pub already_imported: bool,
    pub users: usize,
    pub placeholders: usize,
    pub threads: usize,
    pub messages: usize,
    /// Messages hidden for one side (the original's `sender_del` / `recipient_del`).
    pub hidden: usize,
    /// Unread messages below their reader's read mark (read out of order in the original).
    pub unread_below_mark: usize,
    pub repairs: Repairs,
    pub elapsed: Duration,
}

/// Key prefix of the import records in `settings`.
const RECORD: &str = "import.flask-messaging.";
/// Rows per INSERT: under SQLite's 32,766 bound parameters at eight columns.
const CHUNK: usize = 2000;

/// Imports the Flask-Messaging database `source` (opened from `path`, which the import record
/// keeps) into `db`. Open it with [`Source::open`] before touching Missive's database, so that
/// a bad source changes nothing, not even the schema.
pub async fn import_flask_messaging(
    db: &Database,
    source: Source,
    path: &str,
    progress: &dyn Progress,
) -> Result<Summary, ImportError> {
    let started = Instant::now();
    progress.phase("reading users", 0);
    let users = source.users().await?;
    progress.phase("reading messages", source.count("messages").await?);
    let messages = source.messages(|n| progress.advance(n)).await?;
    let fingerprint = fingerprint(&users, &messages);
    let record_key = format!("{RECORD}{}", &fingerprint[..32]);

    let txn = db.begin_write().await?;
    if db.backend() == DbBackend::Postgres {
        // Rows get their ids here, from each table's next free one: no server may take ids
        // while the import runs.
        txn.execute_unprepared(
            "LOCK TABLE users, threads, messages, participants IN EXCLUSIVE MODE",
        )
        .await?;
    }
    if setting::Entity::find_by_id(record_key.clone())
        .one(&*txn)
        .await?
        .is_some()
    {
        return Ok(Summary {
            already_imported: true,
            elapsed: started.elapsed(),
            ..Summary::default()
        });
    }
    let base = IdBase {
        user: next_id(&*txn, user::Entity).await?,
        thread: next_id(&*txn, thread::Entity).await?,
        message: next_id(&*txn, message::Entity).await?,
    };
    progress.phase("planning", 0);
    let plan = plan::plan(&users, &messages, base, ids::now_micros());
    conflicts(&*txn, &plan).await?;

    progress.phase("writing", plan.messages.len() as u64);
    write(&*txn, &plan, progress).await?;
    // Searchable as soon as it commits.
    crate::domain::search::index(&*txn, plan.messages.iter().map(|m| (m.id, m.body.as_str())))
        .await?;
    if db.backend() == DbBackend::Postgres {
        for table in ["users", "threads", "messages"] {
            txn.execute_unprepared(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 (SELECT COALESCE(MAX(id), 1) FROM {table}))"
            ))
            .await?;
        }
    }
    let record = serde_json::json!({
        "source": path,
        "fingerprint": fingerprint,
        "imported_at": ids::rfc3339(ids::now_micros()),
        "users": plan.users.len(),
        "threads": plan.threads.len(),
        "messages": plan.messages.len(),
    });
    setting::Entity::insert(setting::ActiveModel {
        key: sea_orm::Set(record_key),
        value: sea_orm::Set(record.to_string()),
    })
    .exec(&*txn)
    .await?;
    txn.commit().await?;
    let analyze = match db.backend() {
        DbBackend::Postgres => "ANALYZE",
        _ => "PRAGMA optimize",
    };
    db.conn.execute_unprepared(analyze).await?;

    Ok(Summary {
        already_imported: false,
        users: plan.users.len() - plan.placeholders,
        placeholders: plan.placeholders,
        threads: plan.threads.len(),
        messages: plan.messages.len(),
        hidden: plan.hides.len(),
        unread_below_mark: plan.unread_below_mark.len(),
        repairs: plan.repairs,
        elapsed: started.elapsed(),
    })
}

/// SHA-256 of every row the import reads: the same source, the same fingerprint.
fn fingerprint(users: &[SourceUser], messages: &[SourceMessage]) -> String {
    fn field(hash: &mut Sha256, value: Option<&str>) {
        match value {
            None => hash.update([0u8]),
            Some(v) => {
                hash.update([1u8]);
                hash.update((v.len() as u64).to_le_bytes());
                hash.update(v.as_bytes());
            }
        }
    }
    fn flag(hash: &mut Sha256, value: Option<bool>) {
        hash.update([match value {
            None => 0u8,
            Some(false) => 1,
            Some(true) => 2,
        }]);
    }
    let mut hash = Sha256::new();
    for u in users {
        hash.update(u.id.to_le_bytes());
        field(&mut hash, u.username.as_deref());
        field(&mut hash, u.password.as_deref());
        field(&mut hash, u.websocket_id.as_deref());
    }
    hash.update(b"messages");
    for m in messages {
        hash.update(m.id.to_le_bytes());
        for value in [
            &m.url,
            &m.sender,
            &m.recipient,
            &m.subject,
            &m.body,
            &m.timestamp,
            &m.thread_id,
        ] {
            field(&mut hash, value.as_deref());
        }
        for value in [m.read, m.sender_del, m.recipient_del] {
            flag(&mut hash, value);
        }
    }
    ids::hex(&hash.finalize())
}

/// The next free id of `E`'s table (its `id` column).
async fn next_id<E: EntityTrait>(db: &impl ConnectionTrait, _: E) -> Result<i64, DbErr> {
    let max: Option<Option<i64>> = E::find()
        .select_only()
        .expr(Func::max(Expr::col(Alias::new("id"))))
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten().unwrap_or(0) + 1)
}

/// Refuses an import that overlaps what Missive holds: names, `websocket_id`s, thread ids or
/// message urls that exist already. Lists what overlaps, and says when an earlier import did.
async fn conflicts(db: &impl ConnectionTrait, plan: &Plan) -> Result<(), ImportError> {
    let mut found = Vec::new();
    let names: Vec<String> = plan.users.iter().map(|u| u.username.clone()).collect();
    let taken = existing(db, user::Entity, user::Column::Username, &names).await?;
    if !taken.is_empty() {
        found.push(format!(
            "{} of its usernames have accounts in Missive already ({})",
            taken.len(),
            sample(&taken)
        ));
    }
    let sockets: Vec<String> = plan.users.iter().map(|u| u.websocket_id.clone()).collect();
    let taken = existing(db, user::Entity, user::Column::WebsocketId, &sockets).await?;
    if !taken.is_empty() {
        found.push(format!(
            "{} of its websocket_ids belong to Missive accounts already ({})",
            taken.len(),
            sample(&taken)
        ));
    }
    let threads: Vec<String> = plan.threads.iter().map(|t| t.public_id.clone()).collect();
    let taken = existing(db, thread::Entity, thread::Column::PublicId, &threads).await?;
    if !taken.is_empty() {
        found.push(format!(
            "{} of its thread_ids exist in Missive already ({})",
            taken.len(),
            sample(&taken)
        ));
    }
    let urls: Vec<String> = plan.messages.iter().map(|m| m.public_id.clone()).collect();
    let taken = existing(db, message::Entity, message::Column::PublicId, &urls).await?;
    if !taken.is_empty() {
        found.push(format!(
            "{} of its message urls exist in Missive already ({})",
            taken.len(),
            sample(&taken)
        ));
    }
    if found.is_empty() {
        return Ok(());
    }
    let earlier = setting::Entity::find()
        .filter(setting::Column::Key.starts_with(RECORD))
        .all(db)
        .await?;
    if !earlier.is_empty() {
        found.push(format!(
            "Missive holds {} earlier import(s) of a Flask-Messaging database: this one is a \
             different copy of it (the original changed since), or another database sharing \
             some of its people; import into a fresh Missive database instead",
            earlier.len()
        ));
    }
    Err(ImportError::Conflict(found))
}

/// Which of `values` are in `column` of `entity` already.
async fn existing<E: EntityTrait>(
    db: &impl ConnectionTrait,
    _: E,
    column: E::Column,
    values: &[String],
) -> Result<Vec<String>, DbErr> {
    // An empty table (a fresh Missive) holds none of them.
    if E::find().one(db).await?.is_none() {
        return Ok(Vec::new());
    }
    let mut taken = Vec::new();
    for chunk in values.chunks(CHUNK) {
        let mut rows: Vec<String> = E::find()
            .select_only()
            .column(column)
            .filter(column.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        taken.append(&mut rows);
    }
    taken.sort();
    Ok(taken)
}

/// The first few of `values`, for a message.
fn sample(values: &[String]) -> String {
    let mut shown = values
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if values.len() > 5 {
        shown.push_str(", ...");
    }
    shown
}

/// Writes the whole plan (inside the caller's transaction).
async fn write(
    db: &impl ConnectionTrait,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<(), DbErr> {
    use message::Column as M;
    use user::Column as U;
    insert(
        db,
        user::Entity,
        [
            U::Id,
            U::Username,
            U::PasswordHash,
            U::KeyHash,
            U::WebsocketId,
            U::IsAdmin,
            U::CreatedAt,
            U::LegacyPasswordHash,
        ],
        plan.users.iter().map(|u| {
            vec![
                u.id.into(),
                u.username.clone().into(),
                u.password_hash.clone().into(),
                u.key_hash.clone().into(),
                u.websocket_id.clone().into(),
                u.is_admin.into(),
                u.created_at.into(),
                u.legacy_password_hash.clone().into(),
            ]
        }),
        |_| {},
    )
    .await?;
    use thread::Column as T;
    insert(
        db,
        thread::Entity,
        [
            T::Id,
            T::PublicId,
            T::Subject,
            T::CreatedAt,
            T::UpdatedAt,
            T::LastMessageId,
        ],
        plan.threads.iter().map(|t| {
            vec![
                t.id.into(),
                t.public_id.clone().into(),
                t.subject.clone().into(),
                t.created_at.into(),
                t.updated_at.into(),
                t.last_message_id.into(),
            ]
        }),
        |_| {},
    )
    .await?;
    insert(
        db,
        message::Entity,
        [
            M::Id,
            M::PublicId,
            M::ThreadId,
            M::SenderId,
            M::RecipientId,
            M::Body,
            M::CreatedAt,
            M::ClientId,
        ],
        plan.messages.iter().map(|m| {
            vec![
                m.id.into(),
                m.public_id.clone().into(),
                m.thread_id.into(),
                m.sender_id.into(),
                m.recipient_id.into(),
                m.body.clone().into(),
                m.created_at.into(),
                m.client_id.clone().into(),
            ]
        }),
        |n| progress.advance(n as u64),
    )
    .await?;
    use participant::Column as P;
    insert(
        db,
        participant::Entity,
        [
            P::ThreadId,
            P::UserId,
            P::LastMessageId,
            P::ReadUpTo,
            P::HiddenBefore,
            P::Unread,
        ],
        plan.participants.iter().map(|p| {
            vec![
                p.thread_id.into(),
                p.user_id.into(),
                p.last_message_id.into(),
                p.read_up_to.into(),
                p.hidden_before.into(),
                p.unread.into(),
            ]
        }),
        |_| {},
    )
    .await?;
    insert(
        db,
        message_hide::Entity,
        [
            message_hide::Column::UserId,
            message_hide::Column::MessageId,
        ],
        plan.hides
            .iter()
            .map(|h| vec![h.user_id.into(), h.message_id.into()]),
        |_| {},
    )
    .await?;
    use unread_below_mark::Column as B;
    insert(
        db,
        unread_below_mark::Entity,
        [B::UserId, B::ThreadId, B::MessageId],
        plan.unread_below_mark
            .iter()
            .map(|u| vec![u.user_id.into(), u.thread_id.into(), u.message_id.into()]),
        |_| {},
    )
    .await
}

/// Inserts `rows` into `entity`'s table, `CHUNK` rows a statement; `done` hears of each chunk.
async fn insert<E: EntityTrait, const N: usize>(
    db: &impl ConnectionTrait,
    entity: E,
    columns: [E::Column; N],
    rows: impl Iterator<Item = Vec<Value>>,
    done: impl Fn(usize),
) -> Result<(), DbErr> {
    let table = entity.into_iden();
    let columns: Vec<_> = columns.into_iter().map(|c| c.into_iden()).collect();
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let mut statement = Query::insert();
        statement.into_table(table.clone()).columns(columns.clone());
        let mut n = 0;
        for row in rows.by_ref().take(CHUNK) {
            statement
                .values(row.into_iter().map(Expr::val))
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            n += 1;
        }
        db.execute(&statement).await?;
        done(n);
    }
    Ok(())
}
