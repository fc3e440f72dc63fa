//! One batch of replies on SQLite: a single script that begins, writes and commits.

use std::sync::LazyLock;

use sea_orm::DbBackend;

use super::batch::{BatchWrite, Reply, quote, read_batch, recipient_of, with_event_names};
use crate::db::Database;
use crate::domain::{DomainError, DomainResult};
use crate::ids;

/// The batch up to its event log entries. A reply is stored only while its thread is at the
/// `version` the sender's membership was checked against (`?1`'s seventh field); the threads'
/// versions come back, so that a reply whose copy was older is checked again and retried. What
/// a reply shows of the message it answers is read as the commit finds that one, and each
/// stored message's search terms go to the index.
const WRITE: &str = "\
        BEGIN IMMEDIATE; \
        INSERT INTO messages (public_id, thread_id, sender_id, recipient_id, body, created_at, client_id, \
                reply_to_id, reply_to) \
            SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, \
                MAX(?2, (SELECT t.updated_at FROM threads t WHERE t.id = r.value ->> 1)), r.value ->> 5, \
                r.value ->> 7, {QUOTE} \
            FROM jsonb_each(?1) r \
            WHERE (SELECT t.version FROM threads t WHERE t.id = r.value ->> 1) = r.value ->> 6 \
            ON CONFLICT (client_id, sender_id) DO NOTHING \
            RETURNING 'message' AS kind, id, public_id, created_at, reply_to; \
        INSERT INTO message_search (rowid, terms) \
            SELECT m.id, r.value ->> 8 FROM jsonb_each(?1) r CROSS JOIN messages m \
            ON m.public_id = r.value ->> 0; \
        INSERT INTO message_hides (user_id, message_id) \
            SELECT p.user_id, m.id FROM messages m \
            JOIN participants p ON p.thread_id = m.thread_id AND p.member_until IS NULL \
            JOIN blocks b ON b.blocker_id = p.user_id AND b.blocked_id = m.sender_id \
            WHERE m.public_id IN (SELECT r.value ->> 0 FROM jsonb_each(?1) r) \
            RETURNING 'hidden' AS kind, user_id, message_id AS id; \
        SELECT 'thread' AS kind, id AS thread_id, version FROM threads \
            WHERE id IN (SELECT r.value ->> 1 FROM jsonb_each(?1) r); \
        UPDATE threads SET updated_at = MAX(updated_at, ?2), last_message_id = \
                (SELECT MAX(m.id) FROM messages m WHERE m.thread_id = threads.id) \
            WHERE id IN (SELECT m.thread_id FROM messages m \
                WHERE m.public_id IN (SELECT r.value ->> 0 FROM jsonb_each(?1) r)); \
        UPDATE participants SET \
                unread = unread + (SELECT COUNT(*) FROM messages m \
                    WHERE m.thread_id = participants.thread_id \
                    AND m.id > participants.last_message_id AND m.sender_id <> participants.user_id \
                    AND NOT EXISTS (SELECT 1 FROM message_hides h \
                        WHERE h.user_id = participants.user_id AND h.message_id = m.id)), \
                last_message_id = \
                    (SELECT MAX(m.id) FROM messages m WHERE m.thread_id = participants.thread_id) \
            WHERE thread_id IN (SELECT m.thread_id FROM messages m \
                WHERE m.public_id IN (SELECT r.value ->> 0 FROM jsonb_each(?1) r)) \
                AND member_until IS NULL \
            RETURNING 'participant' AS kind, thread_id, user_id, last_message_id, read_up_to, \
                hidden_before, unread, joined_after, member_until, joined_at, muted_until, \
                (SELECT u.read_receipts FROM users u WHERE u.id = participants.user_id) AS receipts, \
                (SELECT m.public_id FROM messages m WHERE m.id = participants.read_up_to) AS read_url; \
";

/// The event log entries of the batch (written when recovery is on): each stored message's
/// `message:new` to each member of its thread, then one `unread` to each member who received
/// one, at the users' next positions (the writer is alone, behind `BEGIN IMMEDIATE`). They are
/// appended in one run of keys (`gid`) at the end of the log, each pointing to its user's
/// entry before it, and each user's newest position and entry move. Only the users' new heads
/// come back: `batch::read_batch` numbers the entries from them the same way, where a row per
/// entry cost a fifth of the throughput. The keys follow the largest ever used
/// (`sqlite_sequence`, kept by `AUTOINCREMENT`), so a log pruned to nothing never hands out a
/// key that a user's newest entry still names. The heads are found by the batch's time (`?2`,
/// indexed), and never move back should an older entry share it.
const LOG: &str = "\
        INSERT INTO event_log (gid, user_id, seq, prev, event, ref_id, created_at) \
            WITH stored AS MATERIALIZED ( \
                SELECT id, thread_id, sender_id FROM messages \
                WHERE public_id IN (SELECT r.value ->> 0 FROM jsonb_each(?1) r) \
            ), members AS MATERIALIZED ( \
                SELECT m.id, m.sender_id, p.user_id FROM stored m \
                JOIN participants p ON p.thread_id = m.thread_id AND p.member_until IS NULL \
                WHERE NOT EXISTS (SELECT 1 FROM message_hides h \
                    WHERE h.user_id = p.user_id AND h.message_id = m.id) \
            ), entries AS ( \
                SELECT user_id, id AS ord, '{NEW}' AS event, id AS ref_id FROM members \
                UNION ALL \
                SELECT DISTINCT user_id, 9223372036854775807, '{UNREAD}', NULL FROM members \
                    WHERE user_id <> sender_id \
            ), numbered AS ( \
                SELECT e.user_id, e.event, e.ref_id, u.log_gid AS before, \
                    u.log_seq + ROW_NUMBER() OVER (PARTITION BY e.user_id ORDER BY e.ord) AS seq, \
                    (SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'event_log') \
                        + ROW_NUMBER() OVER (ORDER BY e.user_id, e.ord) AS gid \
                FROM entries e JOIN users u ON u.id = e.user_id \
            ) \
            SELECT gid, user_id, seq, \
                COALESCE(LAG(gid) OVER (PARTITION BY user_id ORDER BY seq), NULLIF(before, 0)), \
                event, ref_id, ?2 \
            FROM numbered ORDER BY gid; \
        UPDATE users SET log_seq = MAX(log_seq, h.seq), log_gid = MAX(log_gid, h.gid) \
            FROM (SELECT user_id, MAX(seq) AS seq, MAX(gid) AS gid FROM event_log \
                WHERE created_at = ?2 GROUP BY user_id) h \
            WHERE users.id = h.user_id \
            RETURNING 'head' AS kind, id AS user_id, log_seq AS seq; \
";

/// The totals of the members who received a message, and the commit.
const TOTALS: &str = "\
        SELECT 'unread' AS kind, user_id, SUM(unread) AS messages, COUNT(*) AS threads \
            FROM participants WHERE user_id IN \
                (SELECT p.user_id FROM messages m \
                JOIN participants p ON p.thread_id = m.thread_id AND p.member_until IS NULL \
                WHERE m.public_id IN (SELECT r.value ->> 0 FROM jsonb_each(?1) r) \
                    AND p.user_id <> m.sender_id AND NOT EXISTS (SELECT 1 FROM message_hides h \
                        WHERE h.user_id = p.user_id AND h.message_id = m.id)) \
            AND unread > 0 GROUP BY user_id; \
        COMMIT";

static LOGGED: LazyLock<String> =
    LazyLock::new(|| with_event_names(&format!("{}{LOG}{TOTALS}", write_text())));
static UNLOGGED: LazyLock<String> = LazyLock::new(|| format!("{}{TOTALS}", write_text()));

/// [`WRITE`] with the quote of the message each reply answers (`?1`'s eighth field).
fn write_text() -> String {
    WRITE.replace("{QUOTE}", &quote(DbBackend::Sqlite, "r.value ->> 7"))
}

/// The batch on SQLite, as one multi-statement query that also begins and commits its
/// transaction: the whole batch goes to the connection's worker thread in one message and its
/// rows come back in one stream, where a statement each cost a round trip that waited for a CPU
/// under load. The rows travel as JSON arrays, so the text never changes and SQLite prepares it
/// once; `jsonb_each` hands each row over as JSONB, which `->>` reads without parsing it again
/// (`json_each` turned every row back into text, parsed anew by each field's `->>`).
pub(super) async fn write(
    db: &Database,
    batch: &[Reply],
    urls: &[String],
) -> DomainResult<BatchWrite> {
    // Every statement reads the rows as `?1`, and those that stamp the time also read `?2`:
    // sqlx binds the parameters of each statement of a multi-statement query in turn, and a
    // statement that skipped a lower number (one that used only `?4`, say) had that parameter
    // left unbound, NULL, without an error. A message is stamped no earlier than its thread's
    // last activity, so that time order and id order agree within a thread, and one UPDATE
    // then moves each thread's time and newest message together.

    let rows: Vec<_> = batch
        .iter()
        .zip(urls)
        .map(|(r, url)| {
            let recipient = recipient_of(r);
            (
                url,
                r.meta.id,
                r.sender.id,
                recipient,
                &r.body,
                &r.client_id,
                r.meta.version,
                r.reply_to_id,
                &r.terms,
            )
        })
        .collect();
    let values = vec![json(&rows)?.into(), ids::now_micros().into()];
    let script: &'static str = if db.log_events {
        LOGGED.as_str()
    } else {
        UNLOGGED.as_str()
    };
    let results = db.write_script(script, values).await?;

    read_batch(results, batch, urls)
}

/// `value` as JSON text, for SQLite's `jsonb_each`.
fn json(value: &impl serde::Serialize) -> DomainResult<String> {
    serde_json::to_string(value).map_err(|e| DomainError::Internal(e.to_string()))
}
