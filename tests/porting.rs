//! `missive import flask-messaging`: the shared sample of the original app's database imported,
//! then checked through the API as its users see it: every login with the old password (hash
//! upgraded), every message in its thread with its read and deletion state, unread counts, inbox
//! order and paging, the repairs; a second import; bad inputs; an import killed half-way.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Backend, Http, TestServer, flask_sample, run_import, run_import_with};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

/// A `messages` row of the original database.
#[derive(Debug, Clone)]
struct Original {
    id: i64,
    url: Option<String>,
    sender: String,
    recipient: String,
    body: String,
    timestamp: String,
    read: bool,
    thread_id: Option<String>,
    sender_del: bool,
    recipient_del: bool,
}

async fn connect(url: &str) -> DatabaseConnection {
    sea_orm::Database::connect(url).await.expect("connect")
}

async fn originals(sample: &Path) -> Vec<Original> {
    let db = connect(&format!("sqlite://{}?mode=ro", sample.display())).await;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, url, sender_id, recipient_id, body, timestamp, \"read\", thread_id, \
             sender_del, recipient_del FROM messages ORDER BY id",
        ))
        .await
        .unwrap();
    let flag = |r: &sea_orm::QueryResult, c: &str| {
        r.try_get::<Option<i64>>("", c).unwrap().unwrap_or(0) != 0
    };
    rows.iter()
        .map(|r| Original {
            id: r.try_get("", "id").unwrap(),
            url: r.try_get("", "url").unwrap(),
            sender: r.try_get("", "sender_id").unwrap(),
            recipient: r.try_get("", "recipient_id").unwrap(),
            body: r.try_get("", "body").unwrap(),
            timestamp: r.try_get("", "timestamp").unwrap(),
            read: flag(r, "read"),
            thread_id: r.try_get("", "thread_id").unwrap(),
            sender_del: flag(r, "sender_del"),
            recipient_del: flag(r, "recipient_del"),
        })
        .collect()
}

fn passwords() -> BTreeMap<String, String> {
    let path = flask_sample().with_extension("db.passwords.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Whether `m` is hidden for `user` (each side deletes for itself; a note to oneself is gone
/// when either flag is set).
fn hidden_for(m: &Original, user: &str) -> bool {
    (m.sender == user && m.sender_del) || (m.recipient == user && m.recipient_del)
}

/// `2021-03-01 09:09:51.566950` as the API writes it: `2021-03-01T09:09:51.566Z`.
fn rfc3339(original: &str) -> String {
    let t = chrono::NaiveDateTime::parse_from_str(original, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One message as compared: ids that the import had to make up are left out.
type Seen = (
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    bool,
);

fn original_id(id: &str) -> Option<String> {
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_lowercase())).then(|| id.to_owned())
}

/// Everything `user` sees, paging through the API in small pages: threads in inbox order and
/// every message of each, oldest first.
async fn everything(http: &Http) -> (Vec<Value>, Vec<Seen>) {
    let mut threads = Vec::new();
    let mut path = "/api/v1/threads?limit=7".to_owned();
    loop {
        let (status, page) = http.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        threads.extend(page["threads"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/threads?limit=7&before={next}"),
            None => break,
        }
    }
    let mut seen = Vec::new();
    for t in &threads {
        let id = t["thread_id"].as_str().unwrap();
        let mut pages = Vec::new();
        let mut path = format!("/api/v1/threads/{id}/messages?limit=3");
        loop {
            let (status, page) = http.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let messages = page["messages"].as_array().unwrap().clone();
            let oldest = messages
                .first()
                .map(|m| m["url"].as_str().unwrap().to_owned());
            pages.push(messages);
            match (page["has_more"].as_bool().unwrap(), oldest) {
                (true, Some(oldest)) => {
                    path = format!("/api/v1/threads/{id}/messages?limit=3&before={oldest}")
                }
                _ => break,
            }
        }
        let thread: Vec<Value> = pages.into_iter().rev().flatten().collect();
        assert_eq!(
            t["last_message"]["url"],
            thread.last().unwrap()["url"],
            "a thread's last message is its newest"
        );
        for m in thread {
            let s = |k: &str| m[k].as_str().unwrap().to_owned();
            seen.push((
                original_id(&s("url")),
                original_id(&s("thread_id")),
                s("sender"),
                s("recipient"),
                s("body"),
                s("timestamp"),
                m["read"].as_bool().unwrap(),
            ));
        }
    }
    (threads, seen)
}

/// What `user` should see of the original messages, in the order `everything` lists them.
fn expected(originals: &[Original], user: &str) -> (Vec<Option<String>>, Vec<Seen>, i64, i64) {
    // Threads by original id (a NULL thread_id made a thread of its own), newest first.
    let mut threads: BTreeMap<String, Vec<&Original>> = BTreeMap::new();
    for m in originals
        .iter()
        .filter(|m| m.sender == user || m.recipient == user)
    {
        let key = m
            .thread_id
            .clone()
            .unwrap_or_else(|| format!("null-{}", m.id));
        threads.entry(key).or_default().push(m);
    }
    let mut order: Vec<(&String, &Vec<&Original>)> = threads
        .iter()
        .filter(|(_, ms)| ms.iter().any(|m| !hidden_for(m, user)))
        .collect();
    order.sort_by_key(|(_, ms)| std::cmp::Reverse(ms.iter().map(|m| m.id).max()));
    let mut seen = Vec::new();
    let (mut unread, mut unread_threads) = (0, 0);
    for (_, ms) in &order {
        let mut here = 0;
        for m in ms.iter().filter(|m| !hidden_for(m, user)) {
            let read = m.sender == m.recipient || m.read;
            if m.recipient == user && !read {
                here += 1;
            }
            seen.push((
                m.url.clone(),
                m.thread_id.clone(),
                m.sender.clone(),
                m.recipient.clone(),
                m.body.clone(),
                rfc3339(&m.timestamp),
                read,
            ));
        }
        unread += here;
        unread_threads += i64::from(here > 0);
    }
    let ids = order
        .iter()
        .map(|(k, _)| (!k.starts_with("null-")).then(|| k.to_string()))
        .collect();
    (ids, seen, unread, unread_threads)
}

/// `user`'s unread messages in the original.
fn unread_before(originals: &[Original], user: &str) -> i64 {
    expected(originals, user).2
}

/// Every table and row of Missive's SQLite database, to show that something changed nothing.
async fn dump(url: &str) -> Vec<String> {
    let db = connect(url).await;
    let mut out = Vec::new();
    let tables: Vec<String> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            // The search index keeps no rows to read (its terms are in its shadow tables).
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'message_search' \
             ORDER BY name",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("", "name").unwrap())
        .collect();
    for table in tables {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT * FROM {table}"),
            ))
            .await
            .unwrap();
        out.push(format!("{table}: {} rows", rows.len()));
        // Sorted here: the search index's tables have one column or several.
        let mut rows: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
        rows.sort();
        out.extend(rows);
    }
    out
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_imports_whole_and_every_user_logs_in_and_sees_their_mail() {
    let sample = flask_sample();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missive.db?mode=rwc", dir.path().display());
    let output = run_import(&url, None, sample.to_str().unwrap()).await;
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("imported 12 users, 95 threads, 302 messages"),
        "{said}"
    );
    for repair in [
        "url NULL: a fresh id given: 4",
        "thread_id NULL, empty or over 32 characters: a thread of its own with a fresh id: 1",
        "read NULL: taken as false: 4",
        "sender_del NULL: taken as false: 4",
        "recipient_del NULL: taken as false: 4",
        "a placeholder account made (cannot log in): 1",
        "someone_deleted_later (first named as recipient of message 301)",
    ] {
        assert!(
            said.contains(repair),
            "the summary lists {repair:?}: {said}"
        );
    }
    // The import indexed its messages for search in its own transaction: no backlog is left
    // for a server to catch up on (each user's newest message is searched for below).
    let imported = connect(&url).await;
    let backlog = imported
        .query_one_raw(Statement::from_string(
            imported.get_database_backend(),
            "SELECT COUNT(*) AS n FROM settings WHERE key = 'search_index_backlog'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backlog.try_get::<i64>("", "n").unwrap(), 0);

    let srv = TestServer::start_with(Backend::Sqlite, |c| c.database_url = url.clone())
        .await
        .unwrap();
    let originals = originals(&sample).await;
    let db = connect(&url).await;
    let hash_of = async |name: &str| {
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "SELECT password_hash, legacy_password_hash FROM users WHERE username = ?",
                [name.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        (
            row.try_get::<Option<String>>("", "password_hash").unwrap(),
            row.try_get::<Option<String>>("", "legacy_password_hash")
                .unwrap(),
        )
    };

    // The wrong password is refused, and changes nothing.
    let (status, _) = srv
        .http()
        .post(
            "/api/v1/auth/login",
            json!({"username": "user7_4", "password": "not-the-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Each user, two at a time (a first login checks up to 600,000 rounds of PBKDF2).
    let each = passwords().into_iter().map(|(name, password)| {
        let (srv, originals, hash_of) = (&srv, &originals, &hash_of);
        async move {
            let (before, legacy) = hash_of(&name).await;
            assert!(
                before.is_none(),
                "{name} has no native hash before logging in"
            );
            assert!(legacy.unwrap().starts_with("pbkdf2:sha256:"));
            // Typed as before, in any case: the werkzeug hash is checked and replaced.
            let http = srv.http();
            let user = http.login(&name.to_uppercase(), &password).await;
            let (after, legacy) = hash_of(&name).await;
            assert!(after.unwrap().starts_with("$argon2id$"), "{name} upgraded");
            assert_eq!(legacy, None, "{name}'s werkzeug hash is gone");
            srv.http().login(&name, &password).await;

            let (status, me) = http.get("/api/v1/me").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(me["username"], name.as_str());
            let (threads, seen) = everything(&http).await;
            let (order, messages, unread, unread_threads) = expected(originals, &name);
            let ids: Vec<Option<String>> = threads
                .iter()
                .map(|t| original_id(t["thread_id"].as_str().unwrap()))
                .collect();
            assert_eq!(ids, order, "{name}'s inbox order");
            // A word of their newest message finds it.
            if let Some(last) = threads.first().map(|t| &t["last_message"])
                && let Some(word) = last["body"].as_str().and_then(|b| {
                    b.split(|c: char| !c.is_alphanumeric())
                        .find(|w| !w.is_empty())
                })
            {
                let (status, found) = http
                    .get(&format!(
                        "/api/v1/search?q={word}&thread_id={}&limit=100",
                        last["thread_id"].as_str().unwrap()
                    ))
                    .await;
                assert_eq!(status, StatusCode::OK, "{found}");
                assert!(
                    found["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["message"]["url"] == last["url"]),
                    "{name}: {word:?} finds {}: {found}",
                    last["url"]
                );
            }
            assert_eq!(
                seen, messages,
                "{name}'s messages, read state and deletions"
            );
            let (_, counts) = http.get("/api/v1/unread").await;
            assert_eq!(
                counts,
                json!({"messages": unread, "threads": unread_threads}),
                "{name}'s unread counts"
            );
            let per_thread: i64 = threads.iter().map(|t| t["unread"].as_i64().unwrap()).sum();
            assert_eq!(per_thread, unread, "{name}'s threads add up");
            assert!(!user.websocket_id.is_empty());
        }
    });
    futures_util::future::join_all(each).await;

    // The original websocket_ids are kept.
    let sample_db = connect(&format!("sqlite://{}?mode=ro", sample.display())).await;
    let kept = sample_db
        .query_all_raw(Statement::from_string(
            sample_db.get_database_backend(),
            "SELECT username, websocket_id FROM users",
        ))
        .await
        .unwrap();
    for row in kept {
        let name: String = row.try_get("", "username").unwrap();
        let socket: String = row.try_get("", "websocket_id").unwrap();
        let user = srv.http().login(&name, &format!("password-{name}")).await;
        assert_eq!(user.websocket_id, socket, "{name}");
    }

    // The placeholder exists (messages name it) and cannot log in.
    let (status, _) = srv.http().get("/api/v1/users/someone_deleted_later").await;
    assert_ne!(status, StatusCode::NOT_FOUND);
    let (status, _) = srv
        .http()
        .post(
            "/api/v1/auth/login",
            json!({"username": "someone_deleted_later", "password": "password-someone_deleted_later"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Imported threads live on: a message read out of order in the original (unread below the
    // read mark) is read by reading its thread, and a new thread reaches a name that native
    // registration would refuse.
    let out_of_order = originals
        .iter()
        .find(|m| {
            !m.read
                && m.sender != m.recipient
                && !hidden_for(m, &m.recipient)
                && m.url.is_some()
                && originals.iter().any(|n| {
                    n.thread_id == m.thread_id
                        && n.recipient == m.recipient
                        && n.id > m.id
                        && n.read
                        && n.sender != n.recipient
                })
        })
        .expect("the sample has a message read out of order")
        .clone();
    let reader = srv
        .http()
        .login(
            &out_of_order.recipient,
            &format!("password-{}", out_of_order.recipient),
        )
        .await;
    let thread_id = out_of_order.thread_id.clone().unwrap();
    let (_, before) = reader.http.get("/api/v1/unread").await;
    let (status, after) = reader
        .http
        .post(&format!("/api/v1/threads/{thread_id}/read"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    let (_, page) = reader
        .http
        .get(&format!("/api/v1/threads/{thread_id}/messages?limit=100"))
        .await;
    assert!(
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["read"] == true),
        "reading the thread reads everything in it: {page}"
    );
    assert!(
        after["unread"]["messages"].as_i64() < before["messages"].as_i64(),
        "{before} -> {after}"
    );
    let (_, thread) = reader
        .http
        .get(&format!("/api/v1/threads/{thread_id}"))
        .await;
    assert_eq!(thread["thread"]["unread"], 0, "{thread}");

    let jose = srv.http().login("josé7", "password-josé7").await;
    let sent = jose
        .send_new(
            "jane.doe7@example.com",
            "after the move",
            "hello from Missive",
        )
        .await;
    assert_eq!(sent["recipient"], "jane.doe7@example.com");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_import_and_bad_inputs_change_nothing() {
    let sample = flask_sample();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missive.db?mode=rwc", dir.path().display());
    let source = sample.to_str().unwrap();

    // Bad inputs before anything was imported: clear messages, nothing written.
    let empty = dump(&url).await;
    let missing = dir.path().join("no-such.db");
    let text_file = dir.path().join("notes.txt");
    std::fs::write(
        &text_file,
        "these are not the messages you are looking for\n",
    )
    .unwrap();
    let other = dir.path().join("other.db");
    let other_url = format!("sqlite://{}?mode=rwc", other.display());
    let o = connect(&other_url).await;
    o.execute_unprepared("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        .await
        .unwrap();
    drop(o);
    for (path, says) in [
        (missing.to_str().unwrap(), "no such file"),
        (text_file.to_str().unwrap(), "is not an SQLite database"),
        (other.to_str().unwrap(), "is not a Flask-Messaging database"),
    ] {
        let output = run_import(&url, None, path).await;
        let said = text(&output);
        assert!(!output.status.success(), "{path}: {said}");
        assert!(said.contains(says), "{path}: {said}");
        assert!(said.contains("nothing was imported"), "{path}: {said}");
        assert_eq!(dump(&url).await, empty, "{path} changed nothing");
    }

    // A native account that took one of the names: refused, nothing written.
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.database_url = url.clone())
        .await
        .unwrap();
    srv.user("user7_4").await;
    srv.stop().await;
    let before = dump(&url).await;
    for args in [&[][..], &["--dry-run"]] {
        let output = run_import_with(&url, None, source, args).await;
        let said = text(&output);
        assert!(!output.status.success(), "{args:?}: {said}");
        assert!(
            said.contains("usernames have accounts in Missive already (user7_4)"),
            "{args:?}: {said}"
        );
        assert_eq!(dump(&url).await, before);
    }
    // An update with no earlier import to continue.
    let output = run_import_with(&url, None, source, &["--update"]).await;
    assert!(!output.status.success());
    assert!(
        text(&output).contains("nothing to update"),
        "{}",
        text(&output)
    );
    assert_eq!(dump(&url).await, before);

    // A rehearsal against a database that does not exist yet: the plan and its repairs, and
    // no file made.
    let fresh = dir.path().join("fresh.db");
    let url = format!("sqlite://{}?mode=rwc", fresh.display());
    let rehearsal = run_import_with(&url, None, source, &["--dry-run"]).await;
    let said = text(&rehearsal);
    assert!(rehearsal.status.success(), "{said}");
    assert!(
        said.contains("would import 12 users, 95 threads, 302 messages"),
        "{said}"
    );
    assert!(said.contains("url NULL: a fresh id given: 4"), "{said}");
    assert!(said.contains("dry run: nothing was written"), "{said}");
    assert!(!fresh.exists(), "a dry run makes no database");

    // Into a fresh database: imported once; again, nothing changes and it says so.
    let first = run_import(&url, None, source).await;
    assert!(first.status.success(), "{}", text(&first));
    let imported = dump(&url).await;
    // The same file again, named by URL this time.
    let again = run_import(&url, None, &format!("sqlite://{source}")).await;
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("was imported already: nothing changed"),
        "{}",
        text(&again)
    );
    assert_eq!(dump(&url).await, imported);

    // A newer copy of the original (one more message since): partly imported, refused.
    let newer = dir.path().join("newer.db");
    std::fs::copy(&sample, &newer).unwrap();
    let n = connect(&format!("sqlite://{}?mode=rw", newer.display())).await;
    n.execute_unprepared(
        "INSERT INTO messages (url, sender_id, recipient_id, subject, body, timestamp, \"read\", \
         thread_id, sender_del, recipient_del) SELECT 'zzzznewr', sender_id, recipient_id, subject, \
         'one more', '2024-01-01 00:00:00.000000', 0, thread_id, 0, 0 FROM messages WHERE id = 1",
    )
    .await
    .unwrap();
    drop(n);
    let output = run_import(&url, None, newer.to_str().unwrap()).await;
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("exist in Missive already"), "{said}");
    assert!(said.contains("earlier import"), "{said}");
    assert_eq!(dump(&url).await, imported);
}

/// The cut-over's delta: imported once, then both sides write (the original its users,
/// messages, read and deletion flags and passwords; Missive a native account, a login and a
/// reply), then `--update` (rehearsed with `--dry-run` first) takes what the original gained,
/// refuses what conflicts, and everything is compared through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_takes_what_the_original_gained_and_refuses_what_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("database.db");
    std::fs::copy(flask_sample(), &original).unwrap();
    let source = original.to_str().unwrap();
    let url = format!("sqlite://{}/missive.db?mode=rwc", dir.path().display());
    let first = run_import(&url, None, source).await;
    assert!(first.status.success(), "{}", text(&first));
    let before = originals(&original).await;

    // user7_5 and someone else share a thread; Missive writes in it.
    let shared = before
        .iter()
        .find(|m| {
            (m.sender == "user7_5") != (m.recipient == "user7_5")
                && m.thread_id.is_some()
                && ![&m.sender, &m.recipient]
                    .iter()
                    .any(|n| ["user7_4", "user7_7", "user7_9", "user7_10"].contains(&n.as_str()))
        })
        .expect("user7_5 writes with someone")
        .clone();
    let partner = if shared.sender == "user7_5" {
        shared.recipient.clone()
    } else {
        shared.sender.clone()
    };
    let shared_thread = shared.thread_id.clone().unwrap();
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.database_url = url.clone())
        .await
        .unwrap();
    srv.user("newbie").await;
    srv.http().login("user7_4", "password-user7_4").await;
    let five = srv.http().login("user7_5", "password-user7_5").await;
    five.reply(&shared_thread, "written in Missive").await;
    srv.stop().await;

    // The original goes on meanwhile.
    let special = |m: &&Original| {
        m.thread_id.as_deref() != Some(shared_thread.as_str())
            && m.sender != m.recipient
            && [&m.sender, &m.recipient]
                .iter()
                .all(|n| *n != "user7_5" && *n != &partner)
    };
    let to_read = before
        .iter()
        .filter(special)
        .find(|m| !m.read && !hidden_for(m, &m.recipient) && m.url.is_some())
        .expect("an unread message")
        .id;
    let to_delete = before
        .iter()
        .filter(special)
        .find(|m| m.id != to_read && !hidden_for(m, &m.recipient) && m.read)
        .expect("a visible message")
        .id;
    let to_unread = before
        .iter()
        .filter(special)
        .find(|m| m.id != to_read && m.id != to_delete && m.read)
        .expect("a read message")
        .id;
    let o = connect(&format!("sqlite://{}?mode=rw", original.display())).await;
    let hash = |of: &str| format!("(SELECT password FROM users WHERE username = '{of}')");
    for statement in [
        format!(
            "INSERT INTO users (username, password, websocket_id) VALUES \
             ('zoe', {}, '0123456789abcdef0123456789abcdef')",
            hash("user7_0")
        ),
        format!(
            "INSERT INTO users (username, password, websocket_id) VALUES \
             ('newbie', {}, 'fedcba9876543210fedcba9876543210')",
            hash("user7_0")
        ),
        format!(
            "INSERT INTO users (username, password, websocket_id) VALUES \
             ('someone_deleted_later', {}, 'aaaabbbbccccddddaaaabbbbccccdddd')",
            hash("user7_6")
        ),
        format!(
            "UPDATE users SET password = {} WHERE username = 'user7_9'",
            hash("user7_8")
        ),
        format!(
            "UPDATE users SET password = {} WHERE username = 'user7_4'",
            hash("user7_8")
        ),
        format!("UPDATE messages SET \"read\" = 1 WHERE id = {to_read}"),
        format!("UPDATE messages SET recipient_del = 1 WHERE id = {to_delete}"),
        format!("UPDATE messages SET \"read\" = 0 WHERE id = {to_unread}"),
    ] {
        o.execute_unprepared(&statement).await.unwrap();
    }
    let new = |url: &str, from: &str, to: &str, subject: &str, thread: &str, read: u8| {
        format!(
            "INSERT INTO messages (url, sender_id, recipient_id, subject, body, timestamp, \
             \"read\", thread_id, sender_del, recipient_del) VALUES ('{url}', '{from}', '{to}', \
             '{subject}', 'body of {url}', '2026-12-01 10:00:00.{}', {read}, '{thread}', 0, 0)",
            url.len() * 1000 + usize::from(url.as_bytes()[0])
        )
    };
    let bxw = before
        .iter()
        .find(|m| m.thread_id.as_deref() == Some("bxwjusvo"))
        .unwrap();
    for statement in [
        new("zoenewaa", "zoe", "user7_7", "hello zoe", "zzzzzzzz", 1),
        new("zoenewbb", "user7_7", "zoe", "hello zoe", "zzzzzzzz", 0),
        new("bxwnewcc", &bxw.recipient, &bxw.sender, "re", "bxwjusvo", 0),
        new("sharedxx", &partner, "user7_5", "re", &shared_thread, 0),
        new("tonewbie", "user7_10", "newbie", "hi", "nnnnnnnn", 0),
        new("toghostx", "user7_10", "ghost", "boo", "gggggggg", 0),
    ] {
        o.execute_unprepared(&statement).await.unwrap();
    }
    drop(o);

    // The rehearsal says what the update will do, and writes nothing.
    let untouched = dump(&url).await;
    let rehearsal = run_import_with(&url, None, source, &["--update", "--dry-run"]).await;
    let said = text(&rehearsal);
    assert_eq!(rehearsal.status.code(), Some(2), "refusals: {said}");
    assert!(
        said.contains(&format!(
            "would update from {source}: 2 new users (1 placeholder accounts), 4 new messages \
             (2 new threads), 2 read, 1 deleted for one side, 1 new password hashes"
        )),
        "{said}"
    );
    assert!(said.contains("dry run: nothing was written"), "{said}");
    assert_eq!(dump(&url).await, untouched, "a dry run writes nothing");

    let update = run_import_with(&url, None, source, &["--update"]).await;
    let said = text(&update);
    assert_eq!(update.status.code(), Some(2), "refusals: {said}");
    assert!(
        said.contains(&format!(
            "updated from {source}: 2 new users (1 placeholder accounts), 4 new messages \
             (2 new threads), 2 read, 1 deleted for one side, 1 new password hashes"
        )),
        "{said}"
    );
    for refusal in [
        "refused (5)".to_owned(),
        "user 14 (newbie): Missive has an account of that name".to_owned(),
        "user user7_4: the password changed in the original".to_owned(),
        format!("message {to_unread}: marked unread or undeleted"),
        "its thread got messages in Missive since the last import".to_owned(),
        "names newbie, whose user row was refused".to_owned(),
        "username with no user row: a placeholder account made (cannot log in): 1".to_owned(),
    ] {
        assert!(said.contains(&refusal), "{refusal:?} in {said}");
    }
    // Again: the same refusals, nothing taken twice.
    let imported = dump(&url).await;
    let again = run_import_with(&url, None, source, &["--update"]).await;
    let said = text(&again);
    assert_eq!(again.status.code(), Some(2), "{said}");
    assert!(said.contains("refused (5)"), "{said}");
    assert!(said.contains(": 0 new users"), "{said}");
    assert_eq!(dump(&url).await, imported, "an update applied once");

    // Through the API, each user sees the original as it is now, but for what was refused
    // (user7_5 and their partner also see the reply written in Missive).
    let mut now = originals(&original).await;
    now.retain(|m| !matches!(m.url.as_deref(), Some("sharedxx" | "tonewbie")));
    for m in &mut now {
        if m.id == to_unread {
            m.read = true;
        }
    }
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.database_url = url.clone())
        .await
        .unwrap();
    let mut logins = passwords();
    logins.insert("zoe".into(), "password-user7_0".into());
    logins.insert("someone_deleted_later".into(), "password-user7_6".into());
    logins.insert("user7_9".into(), "password-user7_8".into());
    // Each user at once (a first login checks up to 600,000 rounds of PBKDF2).
    let each = logins.iter().map(|(name, password)| {
        let (srv, now, partner) = (&srv, &now, &partner);
        async move {
            let user = srv.http().login(name, password).await;
            if name == "user7_5" || name == partner {
                return;
            }
            let (threads, seen) = everything(&user.http).await;
            let (order, messages, unread, unread_threads) = expected(now, name);
            let ids: Vec<Option<String>> = threads
                .iter()
                .map(|t| original_id(t["thread_id"].as_str().unwrap()))
                .collect();
            assert_eq!(ids, order, "{name}'s inbox order");
            assert_eq!(
                seen, messages,
                "{name}'s messages, read state and deletions"
            );
            let (_, counts) = user.http.get("/api/v1/unread").await;
            assert_eq!(
                counts,
                json!({"messages": unread, "threads": unread_threads}),
                "{name}'s unread counts"
            );
        }
    });
    futures_util::future::join_all(each).await;
    // The old password of user7_9 is gone; user7_4 keeps Missive's.
    for (name, password) in [
        ("user7_9", "password-user7_9"),
        ("user7_4", "password-user7_8"),
    ] {
        let (status, _) = srv
            .http()
            .post(
                "/api/v1/auth/login",
                json!({"username": name, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
    }
    // The thread Missive wrote in has its reply, not the refused original message.
    let five = srv.http().login("user7_5", "password-user7_5").await;
    let (_, page) = five
        .http
        .get(&format!(
            "/api/v1/threads/{shared_thread}/messages?limit=100"
        ))
        .await;
    let bodies: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert!(bodies.contains(&"written in Missive"), "{page}");
    assert!(!bodies.contains(&"body of sharedxx"), "{page}");
    // The name with no user row is a placeholder, which cannot log in.
    let (status, ghost) = five.http.get("/api/v1/users/ghost").await;
    assert_eq!(status, StatusCode::OK, "{ghost}");
    let (status, _) = srv
        .http()
        .post(
            "/api/v1/auth/login",
            json!({"username": "ghost", "password": ""}),
        )
        .await;
    assert_ne!(status, StatusCode::OK);
    srv.stop().await;
}

/// An original database of `messages` messages among 50 users, made by SQL.
async fn big_original(path: &Path, messages: u64) {
    let db = connect(&format!("sqlite://{}?mode=rwc", path.display())).await;
    for sql in [
        "CREATE TABLE users (id INTEGER NOT NULL, username VARCHAR(80), password VARCHAR(80), \
         websocket_id VARCHAR, PRIMARY KEY (id))"
            .to_owned(),
        "CREATE TABLE messages (id INTEGER NOT NULL, url VARCHAR, sender_id VARCHAR, \
         recipient_id VARCHAR, subject VARCHAR, body VARCHAR, timestamp DATETIME, \"read\" BOOLEAN, \
         thread_id VARCHAR, sender_del BOOLEAN, recipient_del BOOLEAN, PRIMARY KEY (id))"
            .to_owned(),
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 49) \
         INSERT INTO users (username, password, websocket_id) \
         SELECT 'big_' || i, 'pbkdf2:sha256:1$salt$' || printf('%064d', 0), printf('%032x', i) FROM n"
            .to_owned(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
             INSERT INTO messages (url, sender_id, recipient_id, subject, body, timestamp, \"read\", \
             thread_id, sender_del, recipient_del) \
             SELECT printf('m%07d', i), 'big_' || (i % 50), 'big_' || ((i + 1) % 50), 'subject', \
             'message ' || i, datetime(1600000000 + i, 'unixepoch') || '.000000', i % 3 = 0, \
             printf('t%07d', i % 5000), 0, 0 FROM n",
            messages - 1
        ),
    ] {
        db.execute_unprepared(&sql).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_half_way_leaves_nothing_and_can_run_again() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("big.db");
    big_original(&source, 100_000).await;
    let url = format!("sqlite://{}/missive.db?mode=rwc", dir.path().display());
    // Migrated first, so that the dump compares the same tables.
    let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .arg("migrate")
        .env("MISSIVE_DATABASE_URL", &url)
        .env("MISSIVE_LOG", "warn")
        .output()
        .unwrap();
    assert!(migrate.status.success());
    let before = dump(&url).await;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["import", "flask-messaging", source.to_str().unwrap()])
        .env("MISSIVE_DATABASE_URL", &url)
        .env("MISSIVE_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.starts_with("writing") {
            break;
        }
    }
    // The power goes out while the rows are being written.
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed before its commit");
    assert_eq!(dump(&url).await, before, "nothing of it is left");

    let output = run_import(&url, None, source.to_str().unwrap()).await;
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("imported 50 users, 5000 threads, 100000 messages"),
        "{}",
        text(&output)
    );
}

/// The original app on PostgreSQL, imported into Missive on PostgreSQL: the URL form of the
/// source, and names longer than the native 32 characters in PostgreSQL's `varchar`s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_original_on_postgresql_imports_into_missive_on_postgresql() {
    let Some(source_schema) = common::postgres_schema().await else {
        return;
    };
    let Some(target_schema) = common::postgres_schema().await else {
        return;
    };
    let pg = connect(common::POSTGRES_URL).await;
    let s = &source_schema;
    pg.execute_unprepared(&format!(
        "CREATE TABLE {s}.users (id SERIAL PRIMARY KEY, username VARCHAR(80), \
         password VARCHAR(200), websocket_id VARCHAR UNIQUE); \
         CREATE TABLE {s}.messages (id SERIAL PRIMARY KEY, url VARCHAR, sender_id VARCHAR, \
         recipient_id VARCHAR, subject VARCHAR, body VARCHAR, timestamp TIMESTAMP, \
         read BOOLEAN, thread_id VARCHAR, sender_del BOOLEAN, recipient_del BOOLEAN)"
    ))
    .await
    .unwrap();
    let sample = connect(&format!("sqlite://{}?mode=ro", flask_sample().display())).await;
    let users = sample
        .query_all_raw(Statement::from_string(
            sample.get_database_backend(),
            "SELECT id, username, password, websocket_id FROM users",
        ))
        .await
        .unwrap();
    for u in users {
        pg.execute_raw(Statement::from_sql_and_values(
            pg.get_database_backend(),
            format!("INSERT INTO {s}.users VALUES ($1, $2, $3, $4)"),
            [
                u.try_get::<i64>("", "id").unwrap().into(),
                u.try_get::<String>("", "username").unwrap().into(),
                u.try_get::<String>("", "password").unwrap().into(),
                u.try_get::<String>("", "websocket_id").unwrap().into(),
            ],
        ))
        .await
        .unwrap();
    }
    for m in originals(&flask_sample()).await {
        pg.execute_raw(Statement::from_sql_and_values(
            pg.get_database_backend(),
            format!(
                "INSERT INTO {s}.messages (id, url, sender_id, recipient_id, subject, body, \
                 timestamp, read, thread_id, sender_del, recipient_del) \
                 VALUES ($1, $2, $3, $4, 'subject', $5, $6::timestamp, $7, $8, $9, $10)"
            ),
            [
                m.id.into(),
                m.url.into(),
                m.sender.into(),
                m.recipient.into(),
                m.body.into(),
                m.timestamp.into(),
                m.read.into(),
                m.thread_id.into(),
                m.sender_del.into(),
                m.recipient_del.into(),
            ],
        ))
        .await
        .unwrap();
    }
    let source = format!("{}?options=-c%20search_path%3D{s}", common::POSTGRES_URL);
    let output = run_import(common::POSTGRES_URL, Some(&target_schema), &source).await;
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("imported 12 users, 95 threads, 302 messages"),
        "{said}"
    );
    // Every imported message is in the search index already.
    let target = connect(&format!(
        "{}?options=-c%20search_path%3D{target_schema}",
        common::POSTGRES_URL
    ))
    .await;
    let unindexed = target
        .query_one_raw(Statement::from_string(
            target.get_database_backend(),
            "SELECT COUNT(*) AS n FROM messages WHERE search IS NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unindexed.try_get::<i64>("", "n").unwrap(), 0);

    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.database_url = common::POSTGRES_URL.into();
        c.database_schema = Some(target_schema.clone());
    })
    .await
    .unwrap();
    let long = "a_very_long_username_from_the_old_days_7";
    let user = srv.http().login(long, &format!("password-{long}")).await;
    let (threads, seen) = everything(&user.http).await;
    let originals = originals(&flask_sample()).await;
    let (order, messages, _, _) = expected(&originals, long);
    assert_eq!(threads.len(), order.len());
    assert_eq!(seen, messages);
    // New ids after the import's come from the sequences, past the imported ones.
    let other = srv.http().login("user7_0", "password-user7_0").await;
    other
        .send_new(long, "after the move", "on PostgreSQL")
        .await;
    srv.stop().await;
    let again = run_import(common::POSTGRES_URL, Some(&target_schema), &source).await;
    assert!(text(&again).contains("nothing changed"), "{}", text(&again));

    // The original gains a user and a message: an update takes them, into PostgreSQL too,
    // and the sequences move past the rows it wrote.
    pg.execute_unprepared(&format!(
        "INSERT INTO {s}.users (id, username, password, websocket_id) SELECT 100, 'pgzoe', \
         password, '0123456789abcdef0123456789abcdef' FROM {s}.users WHERE username = 'user7_0'"
    ))
    .await
    .unwrap();
    pg.execute_unprepared(&format!(
        "INSERT INTO {s}.messages (id, url, sender_id, recipient_id, subject, body, timestamp, \
         read, thread_id, sender_del, recipient_del) VALUES (1000, 'pgnewmsg', 'pgzoe', '{long}', \
         'from zoe', 'hello on PostgreSQL', '2026-12-01 10:00:00', false, 'pgzzzzzz', false, \
         false)"
    ))
    .await
    .unwrap();
    let update = run_import_with(
        common::POSTGRES_URL,
        Some(&target_schema),
        &source,
        &["--update"],
    )
    .await;
    let said = text(&update);
    assert!(update.status.success(), "{said}");
    assert!(
        said.contains("1 new users (0 placeholder accounts), 1 new messages (1 new threads)"),
        "{said}"
    );
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.database_url = common::POSTGRES_URL.into();
        c.database_schema = Some(target_schema.clone());
    })
    .await
    .unwrap();
    let zoe = srv.http().login("pgzoe", "password-user7_0").await;
    let (status, got) = zoe.http.get("/api/v1/messages/pgnewmsg").await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["message"]["thread_id"], "pgzzzzzz");
    zoe.reply("pgzzzzzz", "and a native reply after the update")
        .await;
    let user = srv.http().login(long, &format!("password-{long}")).await;
    assert_eq!(
        user.unread().await["messages"],
        json!(unread_before(&originals, long) + 3)
    );
    srv.stop().await;
    common::drop_postgres_schema(&source_schema).await;
    common::drop_postgres_schema(&target_schema).await;
}
