//! The search index's words: the server cuts a text into words and folds each (lower case,
//! accents and compatibility forms taken apart and the marks dropped) itself, so that SQLite's
//! FTS5 table and PostgreSQL's `tsvector` hold the same terms and a query matches the same
//! messages on both (their own parsers split hyphens, numbers and scripts each their own way).
//! The index is written in the transaction that stores, edits or removes a message; an import
//! writes its messages' terms in its own, and the messages of a database from before the index
//! are indexed once at start-up ([`catch_up`]). On SQLite it is an FTS5 table that keeps
//! neither the text nor positions nor sizes: each commit adds only the terms' lists.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::{DomainError, DomainResult};

/// Longest query, in characters.
pub const MAX_QUERY: usize = 200;
/// Most words in a query.
pub const MAX_QUERY_WORDS: usize = 10;
/// A longer word is indexed and matched by its first this many characters.
const MAX_TERM: usize = 64;
/// Messages indexed per statement by [`index`] and [`catch_up`].
const CHUNK: usize = 500;
/// The `settings` key of the messages from before the index not yet in it: `"<last indexed
/// id> <newest id of them>"` (written by the migration that made the index).
const BACKLOG: &str = "search_index_backlog";

/// A word of a text: its folded term, and where it stands (in code points, end excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub term: String,
    pub start: usize,
    pub end: usize,
}

/// The words of `text`: runs of letters and digits (with the marks that follow them), each
/// folded; one that folds into several (`½` into `1⁄2`) gives each its place.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.chars().enumerate() {
        if c.is_alphanumeric() || (is_combining_mark(c) && !word.is_empty()) {
            if word.is_empty() {
                start = i;
            }
            word.push(c);
            end = i + 1;
        } else if !word.is_empty() {
            fold_into(&mut out, &word, start, end);
            word.clear();
        }
    }
    if !word.is_empty() {
        fold_into(&mut out, &word, start, end);
    }
    out
}

fn fold_into(out: &mut Vec<Word>, raw: &str, start: usize, end: usize) {
    if raw.is_ascii() {
        // Letters and digits of ASCII: lower case is all there is to fold.
        out.push(Word {
            term: raw[..raw.len().min(MAX_TERM)].to_ascii_lowercase(),
            start,
            end,
        });
        return;
    }
    let folded: String = raw
        .chars()
        .flat_map(char::to_lowercase)
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .collect();
    for piece in folded.split(|c: char| !c.is_alphanumeric()) {
        if !piece.is_empty() {
            out.push(Word {
                term: piece.chars().take(MAX_TERM).collect(),
                start,
                end,
            });
        }
    }
}

/// The distinct terms of `text`, separated by spaces: what the index holds of a body.
pub fn terms(text: &str) -> String {
    let mut terms: Vec<String> = words(text).into_iter().map(|w| w.term).collect();
    terms.sort_unstable();
    terms.dedup();
    terms.join(" ")
}

/// A parsed query: every term must match a word, the last as a prefix of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<String>,
}

impl Query {
    /// `q` as a query, or 400 `invalid_query`: empty, longer than [`MAX_QUERY`] characters,
    /// without a word, or of more than [`MAX_QUERY_WORDS`] words.
    pub fn parse(q: &str) -> DomainResult<Query> {
        let q = q.trim();
        let bad = |message: String| Err(DomainError::BadRequest("invalid_query", message));
        if q.is_empty() {
            return bad("the query is empty".into());
        }
        if q.chars().count() > MAX_QUERY {
            return bad(format!("a query is at most {MAX_QUERY} characters"));
        }
        let terms: Vec<String> = words(q).into_iter().map(|w| w.term).collect();
        if terms.is_empty() {
            return bad("the query has no word to look for (letters or digits)".into());
        }
        if terms.len() > MAX_QUERY_WORDS {
            return bad(format!("a query has at most {MAX_QUERY_WORDS} words"));
        }
        Ok(Query { terms })
    }

    /// Whether term `i` matches the folded word `term`.
    pub fn matches(&self, i: usize, term: &str) -> bool {
        if i + 1 == self.terms.len() {
            term.starts_with(self.terms[i].as_str())
        } else {
            term == self.terms[i]
        }
    }

    /// Whether term `i` matches any word of `text`.
    pub fn matches_text(&self, i: usize, text: &[Word]) -> bool {
        text.iter().any(|w| self.matches(i, &w.term))
    }

    /// Where the terms match in `text`: code point ranges, in order, merged where they touch.
    pub fn highlights(&self, text: &str) -> Vec<[usize; 2]> {
        let mut out: Vec<[usize; 2]> = Vec::new();
        for w in words(text) {
            if !(0..self.terms.len()).any(|i| self.matches(i, &w.term)) {
                continue;
            }
            match out.last_mut() {
                Some(last) if last[1] >= w.start => last[1] = last[1].max(w.end),
                _ => out.push([w.start, w.end]),
            }
        }
        out
    }

    /// The terms `which` as an FTS5 query: every one, the last as a prefix or, when given,
    /// as any of the index's terms that it begins (`expanded`, not empty). FTS5 gathers every
    /// match of a prefix before it yields the first (35 ms for a word in a third of a million
    /// messages), where it walks the matches of named terms newest first and stops at a page.
    pub fn fts5(&self, which: &[usize], expanded: Option<&[String]>) -> String {
        self.joined(which, " AND ", |term, prefix| match (prefix, expanded) {
            (true, Some(terms)) => {
                let any: Vec<String> = terms.iter().map(|t| format!("\"{t}\"")).collect();
                format!("({})", any.join(" OR "))
            }
            (true, None) => format!("\"{term}\"*"),
            (false, _) => format!("\"{term}\""),
        })
    }

    /// The last term: the one matched as a prefix.
    pub fn prefix(&self) -> &str {
        &self.terms[self.terms.len() - 1]
    }

    /// The terms `which` as a `tsquery` (every one, the last as a prefix). Terms hold letters
    /// and digits only: nothing to escape.
    pub fn tsquery(&self, which: &[usize]) -> String {
        self.joined(which, " & ", |term, prefix| match prefix {
            true => format!("'{term}':*"),
            false => format!("'{term}'"),
        })
    }

    fn joined(&self, which: &[usize], and: &str, each: impl Fn(&str, bool) -> String) -> String {
        which
            .iter()
            .map(|&i| each(&self.terms[i], i + 1 == self.terms.len()))
            .collect::<Vec<_>>()
            .join(and)
    }
}

/// One message's entry: its id and its terms.
#[derive(Serialize)]
struct Entry<'a>(i64, &'a str);

/// Puts new `messages` (id, body) in the index.
pub async fn index(
    db: &impl ConnectionTrait,
    messages: impl IntoIterator<Item = (i64, &str)>,
) -> Result<(), DbErr> {
    let all: Vec<(i64, String)> = messages
        .into_iter()
        .map(|(id, body)| (id, terms(body)))
        .collect();
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE messages SET search = array_to_tsvector(string_to_array(e.value ->> 1, ' ')) \
             FROM json_array_elements($1::json) e WHERE messages.id = (e.value ->> 0)::int8"
        }
        _ => {
            "INSERT INTO message_search (rowid, terms) \
             SELECT e.value ->> 0, e.value ->> 1 FROM json_each(?) e"
        }
    };
    for chunk in all.chunks(CHUNK) {
        let entries: Vec<Entry> = chunk.iter().map(|(id, t)| Entry(*id, t)).collect();
        let json = serde_json::to_string(&entries).map_err(|e| DbErr::Custom(e.to_string()))?;
        db.execute_raw(Statement::from_sql_and_values(backend, sql, [json.into()]))
            .await?;
    }
    Ok(())
}

/// Takes message `id`, whose body was `old`, out of the index. SQLite's table keeps no copy
/// of what it indexed (nor, to spare every commit a write, a way to find a row's terms by its
/// id): it is handed the terms it was given, cut again from the body. A change of [`words`]
/// must therefore come with a new migration that empties the index and sets the backlog.
pub async fn unindex(db: &impl ConnectionTrait, id: i64, old: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let (sql, values): (&str, Vec<sea_orm::Value>) = match backend {
        DbBackend::Postgres => (
            "UPDATE messages SET search = NULL WHERE id = $1",
            vec![id.into()],
        ),
        _ => (
            "INSERT INTO message_search (message_search, rowid, terms) VALUES ('delete', ?, ?)",
            vec![id.into(), terms(old).into()],
        ),
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// Indexes message `id` again: its body was `old`, it is `new`.
pub async fn reindex(
    db: &impl ConnectionTrait,
    id: i64,
    old: &str,
    new: &str,
) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        unindex(db, id, old).await?;
    }
    index(db, [(id, new)]).await
}

/// Indexes the messages of a database from before the index, once. The migration that made
/// the index recorded them as a backlog (`settings`: the last one indexed, and the newest of
/// them); every message since is indexed by its write. Each chunk moves the backlog in its own
/// transaction, so a start cut short carries on where it stopped.
pub async fn catch_up(db: &crate::db::Database) -> DomainResult<u64> {
    use entity::setting;
    use sea_orm::{ActiveModelTrait, EntityTrait};
    let Some(backlog) = setting::Entity::find_by_id(BACKLOG.to_owned())
        .one(&db.conn)
        .await?
    else {
        return Ok(0);
    };
    let parse = |v: &str| -> Option<(i64, i64)> {
        let (done, upto) = v.split_once(' ')?;
        Some((done.parse().ok()?, upto.parse().ok()?))
    };
    let (mut done, upto) = parse(&backlog.value)
        .ok_or_else(|| DomainError::Internal(format!("unreadable {BACKLOG}: {}", backlog.value)))?;
    let backend = db.backend();
    let chunk = match backend {
        DbBackend::Postgres => {
            "SELECT id, body FROM messages WHERE id > $1 AND id <= $2 AND removed_at IS NULL \
             ORDER BY id LIMIT 2000"
        }
        _ => {
            "SELECT id, body FROM messages WHERE id > ? AND id <= ? AND removed_at IS NULL \
             ORDER BY id LIMIT 2000"
        }
    };
    let mut indexed = 0u64;
    loop {
        let rows = db
            .conn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                chunk,
                [done.into(), upto.into()],
            ))
            .await?;
        let found: Vec<(i64, String)> = rows
            .iter()
            .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "body")?)))
            .collect::<Result<_, DbErr>>()?;
        let last = found.last().map(|(id, _)| *id);
        indexed += found.len() as u64;
        db.write(async |txn| {
            index(txn, found.iter().map(|(id, body)| (*id, body.as_str()))).await?;
            let moved = setting::ActiveModel {
                key: sea_orm::Set(BACKLOG.to_owned()),
                value: sea_orm::Set(format!("{} {upto}", last.unwrap_or(upto))),
            };
            match last {
                Some(_) => {
                    moved.update(txn).await?;
                }
                None => {
                    setting::Entity::delete_by_id(BACKLOG.to_owned())
                        .exec(txn)
                        .await?;
                }
            }
            Ok::<_, DomainError>(())
        })
        .await?;
        match last {
            Some(id) => done = id,
            None => break,
        }
    }
    if indexed > 0 {
        tracing::info!(messages = indexed, "search index caught up");
    }
    Ok(indexed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms_of(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.term).collect()
    }

    /// Case, accents and compatibility forms fold away; hyphens, apostrophes and points cut
    /// words; scripts without spaces stay one word; ranges count code points.
    #[test]
    fn words_are_cut_and_folded() {
        assert_eq!(terms_of("Crème BRÛLÉE"), ["creme", "brulee"]);
        assert_eq!(
            terms_of("e-mail l'été 3.14"),
            ["e", "mail", "l", "ete", "3", "14"]
        );
        assert_eq!(
            terms_of("Straße İstanbul ﬁne"),
            ["straße", "istanbul", "fine"]
        );
        assert_eq!(
            terms_of("Привет, Мир! 東京タワー"),
            ["привет", "мир", "東京タワー"]
        );
        // "e" and a combining acute accent: one word, folded as "é" is.
        assert_eq!(terms_of("cafe\u{301} ok"), ["cafe", "ok"]);
        let w = words("😀 Tschüß, Zoë");
        assert_eq!((w[0].start, w[0].end), (2, 8));
        assert_eq!((w[1].start, w[1].end), (10, 13));
        assert_eq!(terms("b a b"), "a b");
    }

    #[test]
    fn a_query_matches_whole_words_and_the_last_as_a_prefix() {
        let q = Query::parse("  Tea caf ").unwrap();
        assert_eq!(q.terms, ["tea", "caf"]);
        assert!(q.matches(0, "tea") && !q.matches(0, "teapot"));
        assert!(q.matches(1, "cafe") && q.matches(1, "caf"));
        assert_eq!(q.fts5(&[0, 1], None), "\"tea\" AND \"caf\"*");
        let expanded = ["cafe".to_owned(), "caftan".to_owned()];
        assert_eq!(
            q.fts5(&[0, 1], Some(&expanded)),
            "\"tea\" AND (\"cafe\" OR \"caftan\")"
        );
        assert_eq!(q.prefix(), "caf");
        assert_eq!(q.tsquery(&[0, 1]), "'tea' & 'caf':*");
        assert_eq!(
            q.highlights("Tea at the Café, teapot tea"),
            [[0, 3], [11, 15], [24, 27]]
        );
        for bad in ["", "   ", "?!", &"a".repeat(201), "a b c d e f g h i j k"] {
            assert!(
                matches!(
                    Query::parse(bad),
                    Err(DomainError::BadRequest("invalid_query", _))
                ),
                "{bad:?}"
            );
        }
    }
}
