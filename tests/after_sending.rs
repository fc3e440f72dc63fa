//! What people do with messages after sending them (DESIGN.md, "After sending"): editing,
//! reactions, removal for everyone, replies and search, over HTTP and Socket.IO, on SQLite and
//! PostgreSQL.

mod common;

use std::time::Duration;

use common::{Backend, QUIET, TestServer, User, WAIT, expect_all, names};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    a_sender_edits_and_every_member_hears_it,
    an_edit_is_refused_to_others_outside_the_window_and_for_bad_bodies,
    every_member_sees_the_reactions_of_the_others,
    a_sender_removes_a_message_for_everyone,
    a_reply_quotes_the_message_it_answers,
    search_finds_the_words_of_what_the_caller_can_see,
    messages_from_before_the_index_are_indexed_at_the_next_start,
);

fn code((status, body): (StatusCode, Value)) -> (u16, Option<String>) {
    (
        status.as_u16(),
        body["error"]["code"].as_str().map(str::to_owned),
    )
}

async fn react(user: &User, url: &str, emoji: &str) -> (StatusCode, Value) {
    user.http
        .put(&format!("/api/v1/messages/{url}/reactions/{emoji}"))
        .await
}

async fn unreact(user: &User, url: &str, emoji: &str) -> (StatusCode, Value) {
    user.http
        .delete(&format!("/api/v1/messages/{url}/reactions/{emoji}"))
        .await
}

const THUMBS: &str = "\u{1f44d}";
const HEART: &str = "\u{2764}\u{fe0f}";
/// A thumbs up with a medium skin tone: one emoji of two code points.
const THUMBS_TONE: &str = "\u{1f44d}\u{1f3fd}";

async fn every_member_sees_the_reactions_of_the_others(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let dave = srv.user("dave").await;
    let first = alice
        .send_group(&["bob", "carol"], "Plans", "picnic?")
        .await;
    let url = first["url"].as_str().unwrap();
    let tabs = [
        alice.native_tab().await,
        bob.native_tab().await,
        carol.native_tab().await,
    ];
    let before = bob.unread().await;

    let (status, body) = react(&bob, url, THUMBS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["message"]["reactions"],
        json!([{"emoji": THUMBS, "users": ["bob"]}])
    );
    for tab in &tabs {
        let got = expect_all(tab, &["message:reactions"], WAIT).await;
        assert_eq!(
            got["message:reactions"],
            json!({"url": url, "thread_id": first["thread_id"],
                "reactions": [{"emoji": THUMBS, "users": ["bob"]}]})
        );
    }
    // Over a socket; then the same again changes nothing and tells no one.
    let ack = tabs[2]
        .emit_with_ack("reaction:add", &json!({"url": url, "emoji": THUMBS}), WAIT)
        .await
        .unwrap();
    assert_eq!(ack["status"], true, "{ack}");
    assert_eq!(
        ack["message"]["reactions"][0]["users"],
        json!(["bob", "carol"])
    );
    for tab in &tabs {
        expect_all(tab, &["message:reactions"], WAIT).await;
    }
    let (status, body) = react(&bob, url, THUMBS).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["message"]["reactions"][0]["users"],
        json!(["bob", "carol"])
    );
    // Emoji are kept as sent; the order is that of the first reaction of each.
    for emoji in [HEART, THUMBS_TONE] {
        let (status, body) = react(&alice, url, emoji).await;
        assert_eq!(status, StatusCode::OK, "{emoji}: {body}");
    }
    for tab in &tabs {
        let heard = tab.drain(QUIET).await;
        let n = names(&heard)
            .iter()
            .filter(|n| **n == "message:reactions")
            .count();
        assert_eq!(n, 2, "one event per change, none for a repeat");
    }
    let (_, page) = carol
        .http
        .get(&format!(
            "/api/v1/threads/{}/messages",
            first["thread_id"].as_str().unwrap()
        ))
        .await;
    let emoji: Vec<&str> = page["messages"][0]["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["emoji"].as_str().unwrap())
        .collect();
    assert_eq!(emoji, [THUMBS, HEART, THUMBS_TONE]);
    assert_eq!(
        bob.unread().await,
        before,
        "reactions leave unread counts alone"
    );

    // Taking one back: the emoji leaves the list with its last user.
    let (_, body) = unreact(&bob, url, THUMBS).await;
    assert_eq!(body["message"]["reactions"][0]["users"], json!(["carol"]));
    let ack = tabs[2]
        .emit_with_ack(
            "reaction:remove",
            &json!({"url": url, "emoji": THUMBS}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(ack["message"]["reactions"][0]["emoji"], HEART, "{ack}");

    // Not emoji, several, or not a member's message.
    for bad in ["a", "ab", ":)", "\u{1f44d}\u{1f44d}", "\u{1f1e6}"] {
        assert_eq!(
            code(react(&bob, url, bad).await),
            (422, Some("invalid_emoji".into())),
            "{bad:?}"
        );
    }
    assert_eq!(
        code(react(&dave, url, THUMBS).await),
        (404, Some("not_found".into()))
    );
    let ack = tabs[0]
        .emit_with_ack("reaction:add", &json!({"url": url}), WAIT)
        .await
        .unwrap();
    assert_eq!(ack["code"], "invalid_payload", "{ack}");

    // At most 20 different ones.
    let many = [
        "\u{1f600}",
        "\u{1f601}",
        "\u{1f602}",
        "\u{1f603}",
        "\u{1f604}",
        "\u{1f605}",
        "\u{1f606}",
        "\u{1f607}",
        "\u{1f608}",
        "\u{1f609}",
        "\u{1f60a}",
        "\u{1f60b}",
        "\u{1f60c}",
        "\u{1f60d}",
        "\u{1f60e}",
        "\u{1f60f}",
        "\u{1f610}",
        "\u{1f611}",
    ];
    for emoji in many {
        let (status, body) = react(&carol, url, emoji).await;
        assert_eq!(status, StatusCode::OK, "{emoji}: {body}");
    }
    assert_eq!(
        code(react(&carol, url, "\u{1f612}").await),
        (409, Some("too_many_reactions".into()))
    );
    let (status, body) = react(&bob, url, HEART).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "one of the 20 takes more users: {body}"
    );
    assert_eq!(body["message"]["reactions"].as_array().unwrap().len(), 20);
    srv.stop().await;
}

async fn a_sender_removes_a_message_for_everyone(backend: Backend) {
    let Some(srv) =
        TestServer::start_with(backend, |c| c.edit_window = Duration::from_secs(4)).await
    else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let first = alice
        .send_new("bob", "Oops", "my password is hunter2")
        .await;
    let (url, thread) = (
        first["url"].as_str().unwrap(),
        first["thread_id"].as_str().unwrap(),
    );
    let quoting = bob
        .http
        .post(
            "/api/v1/messages",
            json!({"thread_id": thread, "body": "you sent that here", "reply_to": url}),
        )
        .await
        .1["message"]
        .clone();
    assert_eq!(quoting["reply_to"]["excerpt"], "my password is hunter2");
    let (status, _) = react(&bob, url, THUMBS).await;
    assert_eq!(status, StatusCode::OK);
    let tabs = [alice.native_tab().await, bob.native_tab().await];

    let everyone = format!("/api/v1/messages/{url}?for=everyone");
    assert_eq!(
        code(bob.http.delete(&everyone).await),
        (404, Some("not_found".into()))
    );
    assert_eq!(
        code(
            alice
                .http
                .delete(&format!("/api/v1/messages/{url}?for=someone"))
                .await
        )
        .0,
        422
    );
    let (status, _) = alice.http.delete(&everyone).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for tab in &tabs {
        let got = expect_all(tab, &["message:removed"], WAIT).await;
        assert_eq!(
            got["message:removed"],
            json!({"url": url, "thread_id": thread})
        );
    }
    for user in [&alice, &bob] {
        let (_, page) = user
            .http
            .get(&format!("/api/v1/threads/{thread}/messages"))
            .await;
        let removed = &page["messages"][0];
        assert_eq!(
            (
                &removed["url"],
                &removed["removed"],
                &removed["body"],
                &removed["reactions"]
            ),
            (&json!(url), &json!(true), &Value::Null, &json!([])),
        );
        assert_eq!(
            page["messages"][1]["reply_to"],
            json!({"url": url, "sender": "alice", "excerpt": null})
        );
    }
    let (_, found) = bob.http.get("/api/v1/search?q=hunter2").await;
    assert_eq!(found["results"], json!([]), "the body left the index");
    // Gone for good: no second removal, no edit, no reaction, no reply to it.
    assert_eq!(code(alice.http.delete(&everyone).await).0, 404);
    assert_eq!(code(edit(&alice, url, "x").await).0, 404);
    assert_eq!(code(react(&bob, url, THUMBS).await).0, 404);
    let later = alice.reply(thread, "never mind").await;
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(
        code(
            alice
                .http
                .delete(&format!(
                    "/api/v1/messages/{}?for=everyone",
                    later["url"].as_str().unwrap()
                ))
                .await
        ),
        (409, Some("edit_window_closed".into()))
    );
    // Deleting for oneself still works as before.
    let (status, _) = alice
        .http
        .delete(&format!(
            "/api/v1/messages/{}",
            later["url"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    srv.stop().await;
}

async fn a_reply_quotes_the_message_it_answers(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let long = format!("{} and more", "\u{e9}".repeat(99));
    let first = alice.send_new("bob", "Quotes", &long).await;
    let (url, thread) = (
        first["url"].as_str().unwrap(),
        first["thread_id"].as_str().unwrap(),
    );
    assert_eq!(first["reply_to"], Value::Null);
    let tab = alice.native_tab().await;
    let ack = bob
        .native_tab()
        .await
        .emit_with_ack(
            "message:send",
            &json!({"thread_id": thread, "body": "indeed", "reply_to": url}),
            WAIT,
        )
        .await
        .unwrap();
    let quote =
        json!({"url": url, "sender": "alice", "excerpt": format!("{} ", "\u{e9}".repeat(99))});
    assert_eq!(ack["message"]["reply_to"], quote, "{ack}");
    let got = expect_all(&tab, &["message:new"], WAIT).await;
    assert_eq!(got["message:new"]["message"]["reply_to"], quote);
    // The quote follows an edit of what it quotes.
    let (status, _) = edit(&alice, url, "short now").await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = alice
        .http
        .get(&format!("/api/v1/threads/{thread}/messages"))
        .await;
    assert_eq!(page["messages"][1]["reply_to"]["excerpt"], "short now");

    // Only a message of the same thread; never on a new thread.
    let other = bob.send_new("alice", "Elsewhere", "hi").await;
    let bad = bob
        .http
        .post(
            "/api/v1/messages",
            json!({"thread_id": thread, "body": "x", "reply_to": other["url"]}),
        )
        .await;
    assert_eq!(code(bad), (422, Some("invalid_reply_to".into())));
    let bad = bob
        .http
        .post(
            "/api/v1/messages",
            json!({"thread_id": thread, "body": "x", "reply_to": "no-such-url"}),
        )
        .await;
    assert_eq!(code(bad), (422, Some("invalid_reply_to".into())));
    let bad = bob
        .http
        .post(
            "/api/v1/messages",
            json!({"recipient": "alice", "subject": "s", "body": "x", "reply_to": url}),
        )
        .await;
    assert_eq!(code(bad).0, 422);
    srv.stop().await;
}

/// One corpus, the same answers on both backends: words of other scripts, accents, hyphens
/// and numbers; the last word as a prefix; subjects; only what the caller sees; pages.
async fn search_finds_the_words_of_what_the_caller_can_see(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let dave = srv.user("dave").await;
    let direct = alice
        .send_new("bob", "Crème brûlée recipe", "Do you have it?")
        .await;
    let thread = direct["thread_id"].as_str().unwrap().to_owned();
    let corpus = [
        (&bob, "Yes: caramelise the CRÈME, then chill it"),
        (&alice, "Merci! Привет из Москвы, see you at the café"),
        (
            &bob,
            "My e-mail is bob@example.org; call 555-0123 after 3.14 pm",
        ),
        (&alice, "東京タワー trip photos are up"),
        (&bob, "Straße names are fun; naïve résumé"),
    ];
    let mut urls = vec![direct["url"].as_str().unwrap().to_owned()];
    for (who, body) in corpus {
        urls.push(
            who.reply(&thread, body).await["url"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // A group alice is not in, and one dave joined late.
    carol
        .send_group(&["bob", "dave"], "Secret", "the cafe password is creme")
        .await;
    let group = bob
        .send_group(&["alice", "carol"], "Board games", "chess tonight?")
        .await;
    let group_id = group["thread_id"].as_str().unwrap().to_owned();
    let early = alice.reply(&group_id, "chess or crème?").await;
    let (status, _) = bob
        .http
        .post(
            &format!("/api/v1/threads/{group_id}/participants"),
            json!({"username": "dave"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let late = carol.reply(&group_id, "creme brulee after chess").await;

    let search = async |user: &User, q: &str| -> Value {
        let q: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
        let (status, body) = user.http.get(&format!("/api/v1/search?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    let found = async |user: &User, q: &str| -> Vec<String> {
        search(user, q).await["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["message"]["body"].as_str().unwrap().to_owned())
            .collect()
    };
    // Accents and case ignored, in bodies and subjects (a subject matches all of its thread's
    // messages), newest first.
    assert_eq!(
        found(&alice, "creme").await,
        [
            "creme brulee after chess",
            "chess or crème?",
            "Straße names are fun; naïve résumé",
            "東京タワー trip photos are up",
            "My e-mail is bob@example.org; call 555-0123 after 3.14 pm",
            "Merci! Привет из Москвы, see you at the café",
            "Yes: caramelise the CRÈME, then chill it",
            "Do you have it?",
        ]
    );
    assert_eq!(
        found(&alice, "CRÈME chill").await,
        ["Yes: caramelise the CRÈME, then chill it"]
    );
    assert_eq!(
        found(&alice, "chess cr").await,
        ["creme brulee after chess", "chess or crème?"]
    );
    // The last word is a prefix; the others are whole words.
    assert_eq!(
        found(&alice, "caf").await,
        ["Merci! Привет из Москвы, see you at the café"]
    );
    assert_eq!(found(&alice, "caf see").await, Vec::<String>::new());
    assert_eq!(
        found(&alice, "привет моск").await,
        ["Merci! Привет из Москвы, see you at the café"]
    );
    assert_eq!(
        found(&alice, "東京タ").await,
        ["東京タワー trip photos are up"]
    );
    assert_eq!(
        found(&alice, "resume naive").await,
        ["Straße names are fun; naïve résumé"]
    );
    assert_eq!(found(&alice, "STRASSE").await, Vec::<String>::new());
    assert_eq!(
        found(&alice, "straße").await,
        ["Straße names are fun; naïve résumé"]
    );
    for q in [
        "e-mail",
        "mail 555",
        "0123",
        "3.14",
        "example org",
        "bob@example",
    ] {
        assert_eq!(
            found(&alice, q).await,
            ["My e-mail is bob@example.org; call 555-0123 after 3.14 pm"],
            "{q}"
        );
    }
    // Highlights: code point ranges of the matched words in the body.
    let body = search(&alice, "paris caramelise crè").await;
    assert_eq!(body["results"], json!([]));
    let body = search(&alice, "caramelise crè").await;
    assert_eq!(body["results"][0]["highlights"], json!([[5, 15], [20, 25]]));
    assert_eq!(
        body["results"][0]["thread"],
        json!({"thread_id": thread, "subject": "Crème brûlée recipe"})
    );
    let body = search(&alice, "tokyo photos").await;
    assert_eq!(body["results"], json!([]));
    let body = search(&alice, "photos").await;
    assert_eq!(body["results"][0]["highlights"], json!([[11, 17]]));
    let body = search(&alice, "recipe").await;
    assert_eq!(body["results"].as_array().unwrap().len(), 6);
    assert_eq!(
        body["results"][5]["highlights"],
        json!([]),
        "only the subject matched"
    );

    // Only what each sees: not others' threads, not before one joined, not what one hid.
    assert_eq!(found(&alice, "password").await, Vec::<String>::new());
    assert_eq!(
        found(&dave, "password").await,
        ["the cafe password is creme"]
    );
    assert_eq!(found(&dave, "chess").await, ["creme brulee after chess"]);
    let (status, _) = alice
        .http
        .delete(&format!(
            "/api/v1/messages/{}",
            early["url"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        found(&alice, "chess").await,
        ["creme brulee after chess", "chess tonight?"]
    );
    let _ = late;

    // An edit is found by its new words only.
    let (status, _) = edit(&alice, &urls[4], "東京 skyline pictures").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found(&alice, "photos").await, Vec::<String>::new());
    assert_eq!(found(&bob, "skyline").await, ["東京 skyline pictures"]);

    // Pages, one thread, and bad queries.
    let (_, page) = alice.http.get("/api/v1/search?q=creme&limit=3").await;
    assert_eq!(page["results"].as_array().unwrap().len(), 3);
    let next = page["next"].as_str().unwrap();
    let (_, rest) = alice
        .http
        .get(&format!("/api/v1/search?q=creme&limit=10&before={next}"))
        .await;
    assert_eq!(rest["results"].as_array().unwrap().len(), 4);
    assert_eq!(rest["next"], Value::Null);
    let (_, only) = alice
        .http
        .get(&format!("/api/v1/search?q=creme&thread_id={group_id}"))
        .await;
    assert_eq!(only["results"].as_array().unwrap().len(), 1);
    for q in ["", "%20%20", "%3F%21", &"a".repeat(201)] {
        assert_eq!(
            code(alice.http.get(&format!("/api/v1/search?q={q}")).await),
            (400, Some("invalid_query".into())),
            "{q}"
        );
    }
    srv.stop().await;
}

async fn edit(user: &User, url: &str, body: &str) -> (StatusCode, Value) {
    user.http
        .patch(&format!("/api/v1/messages/{url}"), json!({"body": body}))
        .await
}

async fn a_sender_edits_and_every_member_hears_it(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let first = alice
        .send_group(&["bob", "carol"], "Typos", "teh plan")
        .await;
    assert_eq!(first["edited_at"], Value::Null);
    let (url, thread) = (
        first["url"].as_str().unwrap(),
        first["thread_id"].as_str().unwrap(),
    );
    bob.reply(thread, "what plan?").await;
    let tabs = [
        alice.native_tab().await,
        alice.native_tab().await,
        bob.native_tab().await,
        carol.native_tab().await,
    ];
    // carol deleted it for herself: she hears nothing of its edits.
    let (status, _) = carol.http.delete(&format!("/api/v1/messages/{url}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tabs[3].drain(QUIET).await;

    let (status, body) = edit(&alice, url, "  the plan  ").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let edited = &body["message"];
    assert_eq!(
        (edited["body"].as_str(), edited["url"].as_str()),
        (Some("the plan"), Some(url))
    );
    let at = edited["edited_at"].as_str().expect("edited_at is set");
    assert!(at.ends_with('Z') && at >= first["timestamp"].as_str().unwrap());
    for tab in &tabs[..3] {
        let got = expect_all(tab, &["message:edited"], WAIT).await;
        assert_eq!(got["message:edited"]["message"]["body"], "the plan");
        assert_eq!(got["message:edited"]["message"]["edited_at"], at);
    }
    assert!(!names(&tabs[3].drain(QUIET).await).contains(&"message:edited"));
    // Listings show the new body; the old one is gone; nothing became unread.
    let (_, page) = bob
        .http
        .get(&format!("/api/v1/threads/{thread}/messages"))
        .await;
    assert_eq!(page["messages"][0]["body"], "the plan");
    assert_eq!(bob.unread().await, json!({"messages": 1, "threads": 1}));

    // The thread's last message, edited over a socket.
    let last = bob.reply(thread, "sorry, typo").await;
    let ack = tabs[2]
        .emit_with_ack(
            "message:edit",
            &json!({"url": last["url"], "body": "sorry, a typo"}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        (ack["status"].as_bool(), ack["message"]["body"].as_str()),
        (Some(true), Some("sorry, a typo")),
        "{ack}"
    );
    let (_, inbox) = alice.http.get("/api/v1/threads").await;
    assert_eq!(inbox["threads"][0]["last_message"]["body"], "sorry, a typo");
    assert!(inbox["threads"][0]["last_message"]["edited_at"].is_string());
    srv.stop().await;
}

async fn an_edit_is_refused_to_others_outside_the_window_and_for_bad_bodies(backend: Backend) {
    let Some(srv) = TestServer::start_with(backend, |c| {
        c.edit_window = Duration::from_millis(1500);
        c.max_body = 20;
    })
    .await
    else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let sent = alice.send_new("bob", "Hi", "hello").await;
    let url = sent["url"].as_str().unwrap();
    let code = |(status, body): (StatusCode, Value)| {
        (
            status.as_u16(),
            body["error"]["code"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(
        code(edit(&bob, url, "mine now").await),
        (404, Some("not_found".into())),
        "someone else's"
    );
    assert_eq!(
        code(edit(&alice, "no-such-message-url", "x").await),
        (404, Some("not_found".into()))
    );
    assert_eq!(
        code(edit(&alice, url, "   ").await),
        (422, Some("empty_body".into()))
    );
    assert_eq!(
        code(edit(&alice, url, &"x".repeat(21)).await),
        (422, Some("message_too_long".into()))
    );
    let (status, _) = edit(&alice, url, "hello!").await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        code(edit(&alice, url, "too late").await),
        (409, Some("edit_window_closed".into()))
    );
    let (_, page) = bob
        .http
        .get(&format!(
            "/api/v1/threads/{}/messages",
            sent["thread_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        page["messages"][0]["body"], "hello!",
        "a refused edit changes nothing"
    );
    srv.stop().await;

    // A window of 0 turns editing off.
    let Some(srv) = TestServer::start_with(backend, |c| c.edit_window = Duration::ZERO).await
    else {
        return;
    };
    let alice = srv.user("alice").await;
    let _bob = srv.user("bob").await;
    let sent = alice.send_new("bob", "Hi", "hello").await;
    assert_eq!(
        code(edit(&alice, sent["url"].as_str().unwrap(), "x").await),
        (409, Some("edit_window_closed".into()))
    );
    srv.stop().await;
}

/// A database whose messages predate the search index (as one upgraded from before it): the
/// next server to start on it indexes them, once.
async fn messages_from_before_the_index_are_indexed_at_the_next_start(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let _bob = srv.user("bob").await;
    let first = alice
        .send_new("bob", "Old times", "an archived kumquat")
        .await;
    alice
        .reply(first["thread_id"].as_str().unwrap(), "another kumquat")
        .await;
    let db = sea_orm::Database::connect(&srv.database_url).await.unwrap();
    let wipe = match backend {
        Backend::Sqlite => "INSERT INTO message_search (message_search) VALUES ('delete-all')",
        Backend::Postgres => "UPDATE messages SET search = NULL",
    };
    db.execute_unprepared(wipe).await.unwrap();
    // As the migration that made the index leaves a database that had messages.
    db.execute_unprepared(
        "INSERT INTO settings (key, value) \
         SELECT 'search_index_backlog', '0 ' || CAST(MAX(id) AS TEXT) FROM messages",
    )
    .await
    .unwrap();
    let (_, found) = alice.http.get("/api/v1/search?q=kumquat").await;
    assert_eq!(found["results"], json!([]), "the index was emptied");

    let (url, schema) = (srv.database_url.clone(), srv.schema().map(str::to_owned));
    let next = TestServer::start_with(backend, |c| {
        if let Some(schema) = schema {
            c.database_schema = Some(schema);
        } else {
            c.database_url = url;
        }
    })
    .await
    .unwrap();
    let alice = next.http().login("alice", "correct horse").await;
    let (_, found) = alice.http.get("/api/v1/search?q=kumquat").await;
    let bodies: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["another kumquat", "an archived kumquat"]);
    let backlog = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM settings WHERE key = 'search_index_backlog'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backlog.try_get::<i64>("", "n").unwrap(), 0, "done once");
    next.stop().await;
    srv.stop().await;
}
