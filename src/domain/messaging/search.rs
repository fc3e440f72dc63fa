//! Searching the caller's messages: every word of the query in a message's body or its
//! thread's subject (the last as a prefix), among the messages they can see, newest first.
//! Subjects are matched here, against the caller's threads; bodies by the index
//! (`domain::search`), the same terms on both backends.

use entity::{message, participant, thread};
use sea_orm::sea_query::{Query as SqlQuery, Value};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Statement,
};

use super::MAX_PAGE;
use super::queries::{find_message, views_in_context, visible_membership};
use crate::domain::search::{Query, words};
use crate::domain::views::{SearchResult, SearchThread};
use crate::domain::{DomainError, DomainResult};

/// A page of the messages of `user_id` that match `q`, newest first, and the cursor of the
/// next (`before`: the last result's url). `thread_id` keeps to one thread.
pub async fn search(
    db: &impl ConnectionTrait,
    user_id: i64,
    q: &str,
    thread_id: Option<&str>,
    before: Option<&str>,
    limit: u64,
) -> DomainResult<(Vec<SearchResult>, Option<String>)> {
    let query = Query::parse(q)?;
    let limit = limit.clamp(1, MAX_PAGE);
    let only = match thread_id {
        Some(id) => Some(visible_membership(db, user_id, id).await?.0.id),
        None => None,
    };
    let before = match before {
        Some(cursor) => Some(
            find_message(db, cursor)
                .await?
                .ok_or_else(|| DomainError::invalid("before", "invalid_cursor", "unknown cursor"))?
                .id,
        ),
        None => None,
    };
    // The caller's threads whose subject each word matches.
    let mut threads = thread::Entity::find().filter(
        thread::Column::Id.in_subquery(
            SqlQuery::select()
                .column(participant::Column::ThreadId)
                .from(participant::Entity)
                .and_where(participant::Column::UserId.eq(user_id))
                .to_owned(),
        ),
    );
    if let Some(id) = only {
        threads = threads.filter(thread::Column::Id.eq(id));
    }
    let subjects: Vec<(i64, Vec<_>)> = threads
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, words(&t.subject)))
        .collect();
    let in_subjects: Vec<Vec<i64>> = (0..query.terms.len())
        .map(|i| {
            subjects
                .iter()
                .filter(|(_, w)| query.matches_text(i, w))
                .map(|(id, _)| *id)
                .collect()
        })
        .collect();

    let ids = matching_ids(db, user_id, &query, &in_subjects, only, before, limit + 1).await?;
    let more = ids.len() as u64 > limit;
    let found = message::Entity::find()
        .filter(message::Column::Id.is_in(ids.iter().take(limit as usize).copied()))
        .order_by_desc(message::Column::Id)
        .all(db)
        .await?;
    let next = more
        .then(|| found.last().map(|m| m.public_id.clone()))
        .flatten();

    let (contexts, views) = views_in_context(db, user_id, &found).await?;
    let results = views
        .into_iter()
        .map(|(m, message)| {
            let thread = &contexts[&m.thread_id].thread;
            SearchResult {
                highlights: query
                    .highlights(&m.body)
                    .into_iter()
                    .map(|[a, b]| [a as u32, b as u32])
                    .collect(),
                thread: SearchThread {
                    thread_id: thread.public_id.clone(),
                    subject: thread.subject.clone(),
                },
                message,
            }
        })
        .collect();
    Ok((results, next))
}

/// Most terms a prefix is looked up as, one by one.
const MAX_EXPANSION: u64 = 64;

/// The terms of the SQLite index that begin with `prefix`, when there are at most
/// [`MAX_EXPANSION`] (`None`: more).
async fn prefixed_terms(
    db: &impl ConnectionTrait,
    prefix: &str,
) -> DomainResult<Option<Vec<String>>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT term FROM message_search_terms WHERE term >= ? AND term < ? LIMIT ?",
            [
                prefix.into(),
                format!("{prefix}\u{10ffff}").into(),
                (MAX_EXPANSION + 1).into(),
            ],
        ))
        .await?;
    let terms = rows
        .iter()
        .map(|r| r.try_get::<String>("", "term"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((terms.len() as u64 <= MAX_EXPANSION).then_some(terms))
}

/// A statement's text and its values, with the backend's placeholders.
struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                let n = self.values.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self
    }
}

/// The ids of the newest `limit` messages that `user_id` sees and that match: each word in
/// the body (the index) or, for word `i`, in a thread of `in_subjects[i]`.
async fn matching_ids(
    db: &impl ConnectionTrait,
    user_id: i64,
    query: &Query,
    in_subjects: &[Vec<i64>],
    only: Option<i64>,
    before: Option<i64>,
    limit: u64,
) -> DomainResult<Vec<i64>> {
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    // Words no subject matches are looked up together; the others each on their own.
    let together: Vec<usize> = (0..query.terms.len())
        .filter(|&i| in_subjects[i].is_empty())
        .collect();
    let last = query.terms.len() - 1;
    // On SQLite the last word is looked up as the terms it begins, when they are few.
    let expanded = match postgres {
        true => None,
        false => prefixed_terms(db, query.prefix()).await?,
    };
    let nowhere = expanded.as_ref().is_some_and(Vec::is_empty);
    if nowhere && in_subjects[last].is_empty() {
        // The last word begins no word of any body, nor a subject of the caller's.
        return Ok(Vec::new());
    }
    let expanded = expanded.as_deref();
    let mut sql = Sql {
        backend,
        text: String::new(),
        values: Vec::new(),
    };
    // On SQLite the index leads, newest first, when it can: it yields the matches in id order.
    let fts_leads = !postgres && !together.is_empty();
    sql.push(match fts_leads {
        true => "SELECT m.id FROM message_search s JOIN messages m ON m.id = s.rowid",
        false => "SELECT m.id FROM messages m",
    });
    sql.push(" JOIN participants p ON p.thread_id = m.thread_id AND p.user_id = ")
        .bind(user_id)
        .push(" WHERE m.removed_at IS NULL");
    if !together.is_empty() {
        match postgres {
            true => sql
                .push(" AND m.search @@ ")
                .bind(query.tsquery(&together))
                .push("::tsquery"),
            false => sql
                .push(" AND s.message_search MATCH ")
                .bind(query.fts5(&together, expanded)),
        };
    }
    for (i, threads) in in_subjects.iter().enumerate() {
        if threads.is_empty() {
            continue;
        }
        let list = threads
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        match postgres {
            true => sql
                .push(" AND (m.search @@ ")
                .bind(query.tsquery(&[i]))
                .push("::tsquery OR"),
            // Only a subject has it.
            false if i == last && nowhere => sql.push(" AND ("),
            false => sql
                .push(" AND (m.id IN (SELECT rowid FROM message_search WHERE message_search MATCH ")
                .bind(query.fts5(&[i], expanded))
                .push(") OR"),
        };
        sql.push(&format!(" m.thread_id IN ({list}))"));
    }
    sql.push(match postgres {
        true => " AND m.id > GREATEST(p.hidden_before, p.joined_after)",
        false => " AND m.id > MAX(p.hidden_before, p.joined_after)",
    });
    sql.push(" AND (p.member_until IS NULL OR m.id <= p.member_until)")
        .push(" AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.user_id = ")
        .bind(user_id)
        .push(" AND h.message_id = m.id)");
    if let Some(id) = only {
        sql.push(" AND m.thread_id = ").bind(id);
    }
    if let Some(id) = before {
        sql.push(match fts_leads {
            true => " AND s.rowid < ",
            false => " AND m.id < ",
        })
        .bind(id);
    }
    sql.push(match fts_leads {
        true => " ORDER BY s.rowid DESC LIMIT ",
        false => " ORDER BY m.id DESC LIMIT ",
    })
    .bind(limit as i64);
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend, sql.text, sql.values,
        ))
        .await?;
    let ids = rows
        .iter()
        .map(|r| r.try_get::<i64>("", "id"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}
