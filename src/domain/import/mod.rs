//! `missive import flask-messaging PATH`: takes over an original Flask-Messaging database.
//!
//! The source is read whole, the import planned in memory ([`plan`]), checked against what
//! Missive holds already, and written in one transaction with an import record: it either all
//! lands or none of it does, and the same source imported twice changes nothing.

mod plan;
mod rows;
mod source;
mod update;

use std::time::{Duration, Instant};

use entity::{
    import_row, message, message_hide, participant, setting, thread, unread_below_mark, user,
};
use sea_orm::sea_query::{Alias, Expr, Func, IntoIden, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, Value,
};
use sha2::{Digest, Sha256};

pub use plan::Repairs;
use plan::{IdBase, Plan};
pub use source::Source;
use source::{SourceMessage, SourceUser};
pub use update::Update;

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
    /// `--update`, with no earlier import to continue.
    #[error(
        "nothing to update: this database holds no import that recorded its rows (imports by \
         Missive before `--update` existed did not); import without --update into a fresh \
         database"
    )]
    NothingToUpdate,
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

/// Key prefix of the import records in `settings` (one per copy of a source imported).
const RECORD: &str = "import.flask-messaging.";
/// Key prefix of each origin's last import time in `settings`.
const ORIGIN: &str = "import-origin.flask-messaging.";
/// Rows per INSERT: under SQLite's 32,766 bound parameters at eight columns.
const CHUNK: usize = 2000;

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Only what the original gained or changed since the last import of it.
    pub update: bool,
    /// Do everything but commit (pending migrations included): the plan, the repairs and the
    /// refusals, with nothing written.
    pub dry_run: bool,
}

/// What an import did, or (dry run) would do.
#[derive(Debug)]
pub enum Outcome {
    /// This very copy of the source was imported before: nothing to do.
    AlreadyImported,
    Imported(Summary),
    Updated(Update),
}

/// Imports the Flask-Messaging database `source` (opened from `path`, which the import record
/// keeps) into `db`. Open it with [`Source::open`] before touching Missive's database, so that
/// a bad source changes nothing, not even the schema.
pub async fn import_flask_messaging(
    db: &Database,
    source: Source,
    path: &str,
    options: Options,
    progress: &dyn Progress,
) -> Result<Outcome, ImportError> {
    let started = Instant::now();
    progress.phase("reading users", 0);
    let users = source.users().await?;
    progress.phase("reading messages", source.count("messages").await?);
    let messages = source.messages(|n| progress.advance(n)).await?;
    let fingerprint = fingerprint(&users, &messages);
    let record_key = format!("{RECORD}{}", &fingerprint[..32]);

    let txn = db.begin_write().await?;
    if options.dry_run {
        // Rolled back with the rest.
        crate::db::migrate_within(&txn).await?;
    }
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
        return Ok(Outcome::AlreadyImported);
    }
    let now = ids::now_micros();
    let (outcome, origin) = if options.update {
        let (origin, since) = last_import(&*txn, &messages).await?;
        progress.phase("comparing", 0);
        let update = update::update(&*txn, &origin, since, &users, &messages, now).await?;
        (Outcome::Updated(update), origin)
    } else {
        let origin = fingerprint[..32].to_owned();
        let base = IdBase {
            user: next_id(&*txn, user::Entity).await?,
            thread: next_id(&*txn, thread::Entity).await?,
            message: next_id(&*txn, message::Entity).await?,
        };
        progress.phase("planning", 0);
        let plan = plan::plan(&users, &messages, base, now);
        conflicts(&*txn, &plan).await?;

        progress.phase("writing", plan.messages.len() as u64);
        write(&*txn, &plan, &origin, progress).await?;
        // Searchable as soon as it commits.
        crate::domain::search::index(&*txn, plan.messages.iter().map(|m| (m.id, m.body.as_str())))
            .await?;
        let summary = Summary {
            users: plan.users.len() - plan.placeholders,
            placeholders: plan.placeholders,
            threads: plan.threads.len(),
            messages: plan.messages.len(),
            hidden: plan.hides.len(),
            unread_below_mark: plan.unread_below_mark.len(),
            repairs: plan.repairs,
            elapsed: Duration::ZERO,
        };
        (Outcome::Imported(summary), origin)
    };
    if db.backend() == DbBackend::Postgres {
        for table in ["users", "threads", "messages"] {
            txn.execute_unprepared(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 (SELECT COALESCE(MAX(id), 1) FROM {table}))"
            ))
            .await?;
        }
    }
    // A copy whose changes were all taken: importing it again has nothing to do, and what
    // Missive writes from now on is "since" for the next update. (One with refusals is
    // compared again next time, against the same time, to list them again.)
    let complete = match &outcome {
        Outcome::Updated(u) => u.refused.is_empty(),
        _ => true,
    };
    if complete {
        // When this origin was last imported from (an update's "since").
        let last = setting::ActiveModel {
            key: sea_orm::Set(format!("{ORIGIN}{origin}")),
            value: sea_orm::Set(serde_json::json!({ "at": now, "source": path }).to_string()),
        };
        setting::Entity::insert(last)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(setting::Column::Key)
                    .update_column(setting::Column::Value)
                    .to_owned(),
            )
            .exec(&*txn)
            .await?;
        let record = serde_json::json!({
            "source": path,
            "fingerprint": fingerprint,
            "origin": origin,
            "imported_at": ids::rfc3339(now),
        });
        setting::Entity::insert(setting::ActiveModel {
            key: sea_orm::Set(record_key),
            value: sea_orm::Set(record.to_string()),
        })
        .exec(&*txn)
        .await?;
    }
    let outcome = match outcome {
        Outcome::Imported(summary) => Outcome::Imported(Summary {
            elapsed: started.elapsed(),
            ..summary
        }),
        other => other,
    };
    if options.dry_run {
        drop(txn);
        return Ok(outcome);
    }
    txn.commit().await?;
    let analyze = match db.backend() {
        DbBackend::Postgres => "ANALYZE",
        _ => "PRAGMA optimize",
    };
    db.conn.execute_unprepared(analyze).await?;
    Ok(outcome)
}

/// The earlier import an update continues, and when it was made: the origin whose rows match
/// the source's first messages best.
async fn last_import(
    db: &impl ConnectionTrait,
    messages: &[SourceMessage],
) -> Result<(String, i64), ImportError> {
    let origins: Vec<String> = import_row::Entity::find()
        .select_only()
        .column(import_row::Column::Origin)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let mut best: Option<(usize, String)> = None;
    let sample: Vec<&SourceMessage> = messages.iter().take(500).collect();
    for origin in origins {
        let rows: Vec<(i64, String)> = import_row::Entity::find()
            .select_only()
            .columns([import_row::Column::SourceId, import_row::Column::Digest])
            .filter(import_row::Column::Origin.eq(origin.clone()))
            .filter(import_row::Column::Kind.eq(rows::MESSAGE))
            .filter(import_row::Column::SourceId.is_in(sample.iter().map(|m| m.id)))
            .into_tuple()
            .all(db)
            .await?;
        let digests: std::collections::HashMap<i64, String> = rows.into_iter().collect();
        let matching = sample
            .iter()
            .filter(|m| digests.get(&m.id) == Some(&rows::message_digest(m)))
            .count();
        if best.as_ref().is_none_or(|(n, _)| matching > *n) {
            best = Some((matching, origin));
        }
    }
    let Some((_, origin)) = best else {
        return Err(ImportError::NothingToUpdate);
    };
    let since = setting::Entity::find_by_id(format!("{ORIGIN}{origin}"))
        .one(db)
        .await?
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s.value).ok())
        .and_then(|v| v["at"].as_i64())
        .unwrap_or(0);
    Ok((origin, since))
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
             different copy of it (the original changed since: import what it gained with \
             --update), or another database sharing some of its people (import into a fresh \
             Missive database instead)",
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
    origin: &str,
    progress: &dyn Progress,
) -> Result<(), DbErr> {
    insert_users(db, plan.users.iter()).await?;
    insert_threads(db, plan.threads.iter()).await?;
    insert_messages(db, &plan.messages, &|n| progress.advance(n as u64)).await?;
    insert_participants(db, plan.participants.iter()).await?;
    insert_hides(db, plan.hides.iter()).await?;
    insert_below_mark(db, plan.unread_below_mark.iter()).await?;
    insert_rows(db, origin, plan.rows.iter()).await
}

async fn insert_users<'a>(
    db: &impl ConnectionTrait,
    users: impl Iterator<Item = &'a user::Model>,
) -> Result<(), DbErr> {
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
        users.map(|u| {
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
    .await
}

async fn insert_threads<'a>(
    db: &impl ConnectionTrait,
    threads: impl Iterator<Item = &'a thread::Model>,
) -> Result<(), DbErr> {
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
        threads.map(|t| {
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
    .await
}

async fn insert_messages(
    db: &impl ConnectionTrait,
    messages: &[message::Model],
    done: &dyn Fn(usize),
) -> Result<(), DbErr> {
    use message::Column as M;
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
        messages.iter().map(|m| {
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
        done,
    )
    .await
}

async fn insert_participants<'a>(
    db: &impl ConnectionTrait,
    participants: impl Iterator<Item = &'a participant::Model>,
) -> Result<(), DbErr> {
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
        participants.map(|p| {
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
    .await
}

/// Participants, new or updated: an existing row takes the new read mark, hidden mark, last
/// message and unread count, and keeps the rest.
async fn upsert_participants<'a>(
    db: &impl ConnectionTrait,
    participants: impl Iterator<Item = &'a participant::Model>,
) -> Result<(), DbErr> {
    use participant::Column as P;
    use sea_orm::sea_query::OnConflict;
    let columns = [
        P::ThreadId,
        P::UserId,
        P::LastMessageId,
        P::ReadUpTo,
        P::HiddenBefore,
        P::Unread,
    ];
    let mut participants = participants.peekable();
    while participants.peek().is_some() {
        let mut statement = Query::insert();
        statement
            .into_table(participant::Entity.into_iden())
            .columns(columns)
            .on_conflict(
                OnConflict::columns([P::ThreadId, P::UserId])
                    .update_columns([P::LastMessageId, P::ReadUpTo, P::HiddenBefore, P::Unread])
                    .to_owned(),
            );
        for p in participants
            .by_ref()
            .take(CHUNK.min(32_766 / columns.len()))
        {
            statement
                .values(
                    [
                        p.thread_id.into(),
                        p.user_id.into(),
                        p.last_message_id.into(),
                        p.read_up_to.into(),
                        p.hidden_before.into(),
                        p.unread.into(),
                    ]
                    .into_iter()
                    .map(|v: Value| Expr::val(v)),
                )
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        db.execute(&statement).await?;
    }
    Ok(())
}

async fn insert_hides<'a>(
    db: &impl ConnectionTrait,
    hides: impl Iterator<Item = &'a message_hide::Model>,
) -> Result<(), DbErr> {
    insert(
        db,
        message_hide::Entity,
        [
            message_hide::Column::UserId,
            message_hide::Column::MessageId,
        ],
        hides.map(|h| vec![h.user_id.into(), h.message_id.into()]),
        |_| {},
    )
    .await
}

async fn insert_below_mark<'a>(
    db: &impl ConnectionTrait,
    rows: impl Iterator<Item = &'a unread_below_mark::Model>,
) -> Result<(), DbErr> {
    use unread_below_mark::Column as B;
    insert(
        db,
        unread_below_mark::Entity,
        [B::UserId, B::ThreadId, B::MessageId],
        rows.map(|u| vec![u.user_id.into(), u.thread_id.into(), u.message_id.into()]),
        |_| {},
    )
    .await
}

/// What each original row became, under `origin`.
async fn insert_rows<'a>(
    db: &impl ConnectionTrait,
    origin: &str,
    rows: impl Iterator<Item = &'a import_row::Model>,
) -> Result<(), DbErr> {
    use import_row::Column as R;
    insert(
        db,
        import_row::Entity,
        [
            R::Origin,
            R::Kind,
            R::SourceId,
            R::TargetId,
            R::Digest,
            R::Flags,
            R::Secret,
        ],
        rows.map(|r| {
            vec![
                origin.into(),
                r.kind.into(),
                r.source_id.into(),
                r.target_id.into(),
                r.digest.clone().into(),
                r.flags.into(),
                r.secret.clone().into(),
            ]
        }),
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
    // Statements of at most 32,766 bound parameters (SQLite's limit).
    let chunk = CHUNK.min(32_766 / N);
    let table = entity.into_iden();
    let columns: Vec<_> = columns.into_iter().map(|c| c.into_iden()).collect();
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let mut statement = Query::insert();
        statement.into_table(table.clone()).columns(columns.clone());
        let mut n = 0;
        for row in rows.by_ref().take(chunk) {
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
