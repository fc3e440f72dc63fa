//! `missive seed`: bulk history for benchmarks, written with batched inserts.
//!
//! Seeded users are `seed_0`..`seed_{users-1}` (password `seed-password`); thread `k` is between
//! `seed_{k % users}` and `seed_{(k + 1) % users}`. Each run appends messages round-robin over the
//! threads, so running it with growing counts grows one history.

use entity::{message, participant, thread};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::messaging::queries::{newest_in_thread, received_after};
use super::{DomainResult, accounts, search};
use crate::db::Database;
use crate::ids;

/// Password of every seeded user.
pub const SEED_PASSWORD: &str = "seed-password";
const BATCH: usize = 1000;

/// Words of the seeded bodies: common ones first (each body draws more of those), some of other
/// languages, so that a search meets words of every frequency.
const VOCABULARY: &[&str] = &[
    "the",
    "and",
    "tea",
    "we",
    "meet",
    "tomorrow",
    "at",
    "noon",
    "see",
    "you",
    "thanks",
    "ok",
    "train",
    "late",
    "coffee",
    "lunch",
    "call",
    "later",
    "project",
    "report",
    "draft",
    "review",
    "friday",
    "monday",
    "weekend",
    "garden",
    "book",
    "film",
    "concert",
    "tickets",
    "dinner",
    "kitchen",
    "bicycle",
    "repair",
    "invoice",
    "budget",
    "meeting",
    "agenda",
    "holiday",
    "beach",
    "mountain",
    "river",
    "photos",
    "birthday",
    "present",
    "cake",
    "music",
    "piano",
    "lesson",
    "café",
    "crème",
    "brûlée",
    "déjà",
    "naïve",
    "straße",
    "grüße",
    "über",
    "mañana",
    "niño",
    "привет",
    "спасибо",
    "встреча",
    "東京",
    "ありがとう",
    "e-mail",
    "follow-up",
    "3.14",
    "2026",
    "zeppelin",
    "quokka",
    "xylophone",
    "kumquat",
    "fjord",
    "sphinx",
    "wyvern",
    "quasar",
];

/// The body of seeded message `n`: six to twelve words, drawn mostly from the common ones,
/// and its number.
fn seeded_body(n: usize) -> String {
    let mut state = (n as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let count = 6 + (next() * 7.0) as usize;
    let mut words: Vec<&str> = (0..count)
        .map(|_| {
            let r = next();
            VOCABULARY[((r * r * r) * VOCABULARY.len() as f64) as usize % VOCABULARY.len()]
        })
        .collect();
    let number = n.to_string();
    words.push(&number);
    words.join(" ")
}

/// Ensures `users` users and `threads` threads exist, then appends `messages` messages.
pub async fn seed(
    db: &Database,
    users: usize,
    threads: usize,
    messages: usize,
) -> DomainResult<()> {
    let users = users.max(2);
    let hash = accounts::hash_password(SEED_PASSWORD.to_owned()).await?;
    let mut user_ids = Vec::with_capacity(users);
    for i in 0..users {
        let name = format!("seed_{i}");
        let id = match accounts::find_by_username(&db.conn, &name).await? {
            Some(u) => u.id,
            None => {
                accounts::insert_user(&db.conn, name, Some(hash.clone()), None, false)
                    .await?
                    .id
            }
        };
        user_ids.push(id);
    }

    let mut existing: Vec<thread::Model> = thread::Entity::find()
        .filter(thread::Column::Subject.starts_with("seed thread "))
        .order_by_asc(thread::Column::Id)
        .all(&db.conn)
        .await?;
    let now = ids::now_micros();
    let txn = db.begin_write().await?;
    for k in existing.len()..threads {
        let t = thread::Entity::insert(thread::ActiveModel {
            public_id: Set(ids::public_id()),
            subject: Set(format!("seed thread {k}")),
            created_at: Set(now),
            updated_at: Set(now),
            last_message_id: Set(None),
            ..Default::default()
        })
        .exec_with_returning(&*txn)
        .await?;
        let pair = [user_ids[k % users], user_ids[(k + 1) % users]];
        participant::Entity::insert_many(pair.map(|user_id| participant::ActiveModel {
            thread_id: Set(t.id),
            user_id: Set(user_id),
            last_message_id: Set(0),
            read_up_to: Set(0),
            hidden_before: Set(0),
            unread: Set(0),
            joined_after: Set(0),
            member_until: Set(None),
            joined_at: Set(t.created_at),
            muted_until: Set(None),
        }))
        .exec(&*txn)
        .await?;
        existing.push(t);
    }
    txn.commit().await?;
    let threads = &existing[..threads.min(existing.len())];
    if threads.is_empty() {
        return Ok(());
    }

    let start = ids::now_micros();
    let mut written = 0;
    while written < messages {
        let n = BATCH.min(messages - written);
        let urls: Vec<String> = (0..n).map(|_| ids::message_url()).collect();
        let rows: Vec<message::ActiveModel> = (0..n)
            .map(|j| {
                let k = (written + j) % threads.len();
                let (a, b) = (user_ids[k % users], user_ids[(k + 1) % users]);
                let (sender, recipient) = if ((written + j) / threads.len()).is_multiple_of(2) {
                    (a, b)
                } else {
                    (b, a)
                };
                message::ActiveModel {
                    public_id: Set(urls[j].clone()),
                    thread_id: Set(threads[k].id),
                    sender_id: Set(sender),
                    recipient_id: Set(recipient),
                    body: Set(seeded_body(written + j)),
                    created_at: Set(start + (written + j) as i64),
                    client_id: Set(None),
                    ..Default::default()
                }
            })
            .collect();
        let txn = db.begin_write().await?;
        message::Entity::insert_many(rows).exec(&*txn).await?;
        // Searchable as they are stored, as sent messages are.
        let stored: Vec<(i64, String)> = message::Entity::find()
            .select_only()
            .column(message::Column::Id)
            .column(message::Column::Body)
            .filter(message::Column::PublicId.is_in(urls))
            .into_tuple()
            .all(&*txn)
            .await?;
        search::index(&*txn, stored.iter().map(|(id, body)| (*id, body.as_str()))).await?;
        txn.commit().await?;
        written += n;
    }

    // Derived columns, once for the whole batch: newest message and unread counts.
    let txn = db.begin_write().await?;
    let ids_of: Vec<i64> = threads.iter().map(|t| t.id).collect();
    for chunk in ids_of.chunks(500) {
        let thread_id = (thread::Entity, thread::Column::Id);
        thread::Entity::update_many()
            .col_expr(
                thread::Column::LastMessageId,
                newest_in_thread(message::Column::Id, thread_id),
            )
            .col_expr(
                thread::Column::UpdatedAt,
                newest_in_thread(message::Column::CreatedAt, thread_id),
            )
            .filter(thread::Column::Id.is_in(chunk.to_vec()))
            .exec(&*txn)
            .await?;
        participant::Entity::update_many()
            .col_expr(
                participant::Column::LastMessageId,
                newest_in_thread(
                    message::Column::Id,
                    (participant::Entity, participant::Column::ThreadId),
                ),
            )
            .col_expr(
                participant::Column::Unread,
                received_after(participant::Column::ReadUpTo),
            )
            .filter(participant::Column::ThreadId.is_in(chunk.to_vec()))
            .exec(&*txn)
            .await?;
    }
    txn.commit().await?;
    if db.backend() == sea_orm::DbBackend::Postgres {
        db.conn.execute_unprepared("ANALYZE").await?;
    } else {
        db.conn.execute_unprepared("PRAGMA optimize").await?;
    }
    Ok(())
}
