//! One batch of replies on PostgreSQL: a single statement, prepared once, in one round trip.
//!
//! Data-modifying CTEs over the batch's rows (handed over as one JSON array, so the text never
//! changes): lock the batch's threads in id order and stamp the time, insert the messages of
//! the replies whose thread is still at the version their sender's membership was checked
//! against (the lock waits for a change of membership in flight and reads the thread as it
//! committed; the rest of the statement reads an older snapshot, which the version vouches
//! for: nothing changed the thread since the sender's copy, read before the statement),
//! move each thread's and each participant's newest message and unread count, and read the
//! recipients' unread totals. A statement outside a transaction block is its own transaction,
//! so no BEGIN or COMMIT travels either: the previous version ran seven round trips (BEGIN,
//! five statements, COMMIT), each waiting for a CPU on a loaded machine.
//!
//! Every part of one statement sees the same snapshot: the participants' rows as they were
//! before it. The totals therefore add the rows this statement moved (from its RETURNING) to
//! the untouched rows of the other threads.
//!
//! The planner expects one row from a data-modifying CTE, so it joins two of them as a nested
//! loop, each row of one against every row of the other: the inserted messages are joined to
//! the participants' table (an index probe each) and counted per participant (`deltas`) once,
//! and what needs them per participant reads that, not the moved rows (each participant's
//! count scanning every inserted message, and the recipients and log entries joining the
//! inserted messages to the moved participants, took half of a 256-reply statement).

use std::sync::LazyLock;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Serialize;

use super::batch::{BatchWrite, Reply, quote, read_batch, recipient_of, with_event_names};
use crate::db::Database;
use crate::domain::{DomainError, DomainResult};
use crate::ids;

/// The batch's writes and totals, up to its event log entries.
const WRITE: &str = "\
WITH input AS ( \
    SELECT * FROM ROWS FROM (json_to_recordset($1::json) \
        AS (public_id text, thread_id int8, sender_id int8, recipient_id int8, body text, \
            client_id text, version int8, reply_to_id int8, terms text)) WITH ORDINALITY \
        AS r(public_id, thread_id, sender_id, recipient_id, body, client_id, version, reply_to_id, \
            terms, n) \
), locked AS ( \
    SELECT id, GREATEST(updated_at, $2::int8) AS stamp, version FROM threads \
    WHERE id IN (SELECT thread_id FROM input) ORDER BY id FOR UPDATE \
), inserted AS ( \
    INSERT INTO messages (public_id, thread_id, sender_id, recipient_id, body, created_at, client_id, \
        reply_to_id, reply_to, search) \
    SELECT i.public_id, i.thread_id, i.sender_id, i.recipient_id, i.body, l.stamp, i.client_id, \
        i.reply_to_id, {QUOTE}, \
        array_to_tsvector(string_to_array(i.terms, ' ')) \
    FROM input i JOIN locked l ON l.id = i.thread_id AND l.version = i.version ORDER BY i.n \
    ON CONFLICT (client_id, sender_id) DO NOTHING \
    RETURNING id, public_id, thread_id, sender_id, recipient_id, created_at, reply_to \
), hidden AS ( \
    INSERT INTO message_hides (user_id, message_id) \
    SELECT p.user_id, i.id FROM inserted i \
    JOIN participants p ON p.thread_id = i.thread_id AND p.member_until IS NULL \
    JOIN blocks b ON b.blocker_id = p.user_id AND b.blocked_id = i.sender_id \
    RETURNING user_id, message_id \
), newest AS ( \
    SELECT thread_id, MAX(id) AS last FROM inserted GROUP BY thread_id \
), moved_threads AS ( \
    UPDATE threads t SET updated_at = l.stamp, last_message_id = n.last \
    FROM locked l JOIN newest n ON n.thread_id = l.id WHERE t.id = l.id \
    RETURNING t.id \
), deltas AS ( \
    SELECT i.thread_id, p.user_id, MAX(i.id) AS last, \
        COUNT(*) FILTER (WHERE i.sender_id <> p.user_id AND NOT EXISTS ( \
            SELECT 1 FROM hidden h WHERE h.user_id = p.user_id AND h.message_id = i.id)) AS add \
    FROM inserted i \
    JOIN participants p ON p.thread_id = i.thread_id AND p.member_until IS NULL \
    GROUP BY i.thread_id, p.user_id \
), moved AS ( \
    UPDATE participants p SET unread = p.unread + d.add, last_message_id = d.last \
    FROM deltas d WHERE p.thread_id = d.thread_id AND p.user_id = d.user_id \
    RETURNING p.thread_id, p.user_id, p.last_message_id, p.read_up_to, p.hidden_before, p.unread, \
        p.joined_after, p.member_until, p.joined_at, p.muted_until, \
        (SELECT u.read_receipts FROM users u WHERE u.id = p.user_id) AS receipts, \
        (SELECT m.public_id FROM messages m WHERE m.id = p.read_up_to) AS read_url \
), recipients AS ( \
    SELECT DISTINCT user_id FROM deltas WHERE add > 0 \
), totals AS ( \
    SELECT u.user_id, SUM(u.unread)::int8 AS messages, COUNT(*)::int8 AS threads FROM ( \
        SELECT m.user_id, m.unread FROM moved m \
        WHERE m.user_id IN (SELECT user_id FROM recipients) \
        UNION ALL \
        SELECT p.user_id, p.unread FROM participants p \
        WHERE p.user_id IN (SELECT user_id FROM recipients) \
            AND p.thread_id NOT IN (SELECT thread_id FROM newest) \
    ) u WHERE u.unread > 0 GROUP BY u.user_id \
)";

/// The event log entries (when recovery is on): each stored message's `message:new` to each
/// participant of its thread, then one `unread` to each recipient, at the users' next
/// positions. The users' rows are locked in id order, as the threads' are, and read as locked
/// (the newest committed version); each entry takes its key from the log's sequence and points
/// to its user's entry before it, and each user's newest position and entry move. `numbered`
/// calls a volatile function and `chained` is read twice: both are computed once. A
/// data-modifying CTE runs whether or not it is read: `logged` is not.
const LOG: &str = "\
, entries AS ( \
    SELECT p.user_id, i.id AS ord, '{NEW}'::text AS event, i.id AS ref_id \
    FROM inserted i \
    JOIN participants p ON p.thread_id = i.thread_id AND p.member_until IS NULL \
    WHERE NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = p.user_id AND h.message_id = i.id) \
    UNION ALL \
    SELECT user_id, 9223372036854775807, '{UNREAD}', NULL FROM recipients \
), locked_users AS ( \
    SELECT id, log_seq, log_gid FROM users WHERE id IN (SELECT user_id FROM entries) \
    ORDER BY id FOR UPDATE \
), numbered AS ( \
    SELECT e.user_id, e.event, e.ref_id, lu.log_gid AS before, \
        lu.log_seq + ROW_NUMBER() OVER (PARTITION BY e.user_id ORDER BY e.ord) AS seq, \
        nextval('event_log_gid_seq') AS gid \
    FROM entries e JOIN locked_users lu ON lu.id = e.user_id \
), chained AS ( \
    SELECT n.*, \
        COALESCE(LAG(gid) OVER (PARTITION BY user_id ORDER BY seq), NULLIF(before, 0)) AS prev, \
        ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY seq DESC) AS from_end \
    FROM numbered n \
), heads AS ( \
    UPDATE users u SET log_seq = c.seq, log_gid = c.gid \
    FROM chained c WHERE c.from_end = 1 AND u.id = c.user_id \
    RETURNING u.id, u.log_seq AS head \
), logged AS ( \
    INSERT INTO event_log (gid, user_id, seq, prev, event, ref_id, created_at) \
    SELECT gid, user_id, seq, prev, event, ref_id, $2::int8 FROM chained ORDER BY gid \
)";

/// The rows handed back: stored messages, the threads' versions, participants, totals (and
/// log entries).
const SELECT: &str = "\
SELECT 'message' AS kind, id, public_id, created_at, reply_to, NULL::int8 AS thread_id, \
    NULL::int8 AS user_id, NULL::int8 AS last_message_id, NULL::int8 AS read_up_to, \
    NULL::int8 AS hidden_before, NULL::int4 AS unread, NULL::int8 AS joined_after, \
    NULL::int8 AS member_until, NULL::int8 AS joined_at, NULL::int8 AS muted_until, \
    NULL::bool AS receipts, \
    NULL::text AS read_url, NULL::int8 AS messages, NULL::int8 AS threads, NULL::int8 AS seq, \
    NULL::int8 AS version \
FROM inserted \
UNION ALL \
SELECT 'thread', NULL, NULL, NULL, NULL, id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
    NULL, NULL, NULL, NULL, NULL, NULL, version FROM locked \
UNION ALL \
SELECT 'participant', NULL, NULL, NULL, NULL, thread_id, user_id, last_message_id, read_up_to, \
    hidden_before, unread, joined_after, member_until, joined_at, muted_until, receipts, read_url, \
    NULL, NULL, NULL, NULL FROM moved \
UNION ALL \
SELECT 'hidden', message_id, NULL, NULL, NULL, NULL, user_id, NULL, NULL, NULL, NULL, NULL, NULL, \
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM hidden \
UNION ALL \
SELECT 'unread', NULL, NULL, NULL, NULL, NULL, user_id, NULL, NULL, NULL, NULL, NULL, \
    NULL, NULL, NULL, NULL, NULL, messages, threads, NULL, NULL \
FROM totals";

/// The users' new heads (`batch::read_batch` numbers the entries from them).
const SELECT_LOG: &str = "\
UNION ALL \
SELECT 'head', NULL, NULL, NULL, NULL, NULL, id, NULL, NULL, NULL, NULL, NULL, NULL, \
    NULL, NULL, NULL, NULL, NULL, NULL, head, NULL \
FROM heads";

static LOGGED: LazyLock<String> =
    LazyLock::new(|| with_event_names(&format!("{}{LOG} {SELECT} {SELECT_LOG}", write_text())));
static UNLOGGED: LazyLock<String> = LazyLock::new(|| format!("{} {SELECT}", write_text()));

/// [`WRITE`] with the quote of the message each reply answers.
fn write_text() -> String {
    WRITE.replace("{QUOTE}", &quote(DbBackend::Postgres, "i.reply_to_id"))
}

/// One reply as the statement reads it.
#[derive(Serialize)]
struct Row<'a> {
    public_id: &'a str,
    thread_id: i64,
    sender_id: i64,
    recipient_id: i64,
    body: &'a str,
    client_id: Option<&'a str>,
    version: i64,
    reply_to_id: Option<i64>,
    terms: &'a str,
}

/// Writes the batch: the stored messages (a reply whose `client_id` was used before is
/// absent), the participant rows of the threads that got a message, the recipients' totals.
pub(super) async fn write(
    db: &Database,
    batch: &[Reply],
    urls: &[String],
) -> DomainResult<BatchWrite> {
    let rows: Vec<Row> = batch
        .iter()
        .zip(urls)
        .map(|(r, url)| Row {
            public_id: url,
            thread_id: r.meta.id,
            sender_id: r.sender.id,
            recipient_id: recipient_of(r),
            body: &r.body,
            client_id: r.client_id.as_deref(),
            version: r.meta.version,
            reply_to_id: r.reply_to_id,
            terms: &r.terms,
        })
        .collect();
    let rows = serde_json::to_string(&rows).map_err(|e| DomainError::Internal(e.to_string()))?;
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        if db.log_events {
            LOGGED.as_str()
        } else {
            UNLOGGED.as_str()
        },
        [rows.into(), ids::now_micros().into()],
    );
    let results = db.conn.query_all_raw(statement).await?;

    read_batch(results, batch, urls)
}
