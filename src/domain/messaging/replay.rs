//! Replaying a user's event log (`domain::event_log`): its entries made ready to send again,
//! each as its declaration says (`domain::events`): as it was sent, or as what it refers to
//! is now.

use std::collections::HashMap;

use entity::{event_log, message};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::value::RawValue;

use super::{queries, unread_counts};
use crate::domain::events::{self, Declared, Logged, Now, Refers};
use crate::domain::views::Rendered;
use crate::domain::{DomainError, DomainResult};

/// An entry made ready to send again: `[event, payload, offset]`.
pub struct Replayed {
    pub seq: i64,
    pub event: &'static str,
    pub payload: Box<RawValue>,
}

/// Renders `entries` of `user_id` for sending again. An entry of an event no longer declared,
/// or whose message no longer exists, is skipped.
pub async fn render(
    db: &impl ConnectionTrait,
    user_id: i64,
    entries: Vec<event_log::Model>,
) -> DomainResult<Vec<Replayed>> {
    render_with(events::SERVER_EVENTS, db, user_id, entries).await
}

/// [`render`] with the declarations of `declared`.
pub async fn render_with(
    declared: &'static [Declared],
    db: &impl ConnectionTrait,
    user_id: i64,
    entries: Vec<event_log::Model>,
) -> DomainResult<Vec<Replayed>> {
    let of = |e: &event_log::Model| events::find(declared, &e.event);
    let refers = |e: &event_log::Model, kind: Refers| {
        of(e).is_some_and(|d| d.logged == Logged::Current(kind))
    };
    let messages: Vec<i64> = entries
        .iter()
        .filter(|e| refers(e, Refers::Message))
        .filter_map(|e| e.ref_id)
        .collect();
    let mut now = Now {
        messages: messages_now(db, user_id, messages).await?,
        totals: None,
    };
    if entries.iter().any(|e| refers(e, Refers::Totals)) {
        now.totals = Some(unread_counts(db, user_id).await?);
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let Some(declared) = of(&e) else { continue };
        let payload = match (declared.logged, e.payload) {
            (Logged::Current(_), _) => declared.replay_current(&now, e.ref_id),
            (_, Some(json)) => RawValue::from_string(json).ok(),
            (_, None) => None,
        };
        if let Some(payload) = payload {
            out.push(Replayed {
                seq: e.seq,
                event: declared.name,
                payload,
            });
        }
    }
    Ok(out)
}

/// The messages `ids`, rendered for `user_id`, each with its thread as the user sees it now.
async fn messages_now(
    db: &impl ConnectionTrait,
    user_id: i64,
    ids: Vec<i64>,
) -> DomainResult<HashMap<i64, (Rendered, crate::domain::views::ThreadView<Rendered>)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut messages = message::Entity::find()
        .filter(message::Column::Id.is_in(ids))
        .all(db)
        .await?;
    messages.sort_unstable_by_key(|m| m.id);
    let (contexts, views) = queries::views_in_context(db, user_id, &messages).await?;
    let mut out = HashMap::with_capacity(views.len());
    for (m, view) in &views {
        let r = Rendered::of(view).map_err(|e| DomainError::Internal(e.to_string()))?;
        let ctx = &contexts[&m.thread_id];
        out.insert(m.id, (r.clone(), ctx.thread_view_with(user_id, Some(r))));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde::Serialize;
    use ts_rs::TS;

    use super::*;
    use crate::domain::accounts;
    use crate::domain::event_log;
    use crate::domain::events::{Audience, ServerEvent, declare};
    use crate::domain::messaging::queries::find_message;
    use crate::domain::messaging::{
        Directory, GroupCommit, SendLimits, SendMessage, SendOutcome, send,
    };
    use crate::domain::outbox::Outbox;
    use crate::domain::views::UserRef;

    /// A throwaway event logged as sent, declared in this test only.
    #[derive(Serialize, TS)]
    struct NoteChanged {
        note: String,
    }

    impl ServerEvent for NoteChanged {
        const NAME: &'static str = "note:changed";
        const DOC: &'static str = "A note changed.";
        const AUDIENCE: Audience = Audience::Own;
        const LOGGED: Logged = Logged::AsSent;
    }

    /// A throwaway event that refers to a message, replayed as the message is now.
    #[derive(Serialize, TS)]
    struct MessagePinned {
        #[ts(type = "unknown")]
        message: Rendered,
        #[serde(skip)]
        #[ts(skip)]
        message_id: i64,
    }

    impl ServerEvent for MessagePinned {
        const NAME: &'static str = "message:pinned";
        const DOC: &'static str = "A message was pinned.";
        const AUDIENCE: Audience = Audience::Participants;
        const LOGGED: Logged = Logged::Current(Refers::Message);

        fn log_ref(&self) -> Option<i64> {
            Some(self.message_id)
        }

        fn replay(now: &Now, ref_id: Option<i64>) -> Option<MessagePinned> {
            let (message, _) = now.messages.get(&ref_id?)?;
            Some(MessagePinned {
                message: message.clone(),
                message_id: ref_id?,
            })
        }
    }

    /// Declaring an event and telling it in a write is all the log and the replay need: each
    /// kind replays as its declaration says (a second message-referencing event does not
    /// replay as a `message:new`), and an entry of an event no longer declared is skipped.
    #[tokio::test]
    async fn a_declared_event_is_logged_and_replayed_as_declared() {
        let (_dir, db) = crate::db::fresh_sqlite().await;
        db.migrate().await.unwrap();
        let user = |name: &str| accounts::insert_user(&db.conn, name.into(), None, None, false);
        let (ann, _bob) = (user("ann").await.unwrap(), user("bob").await.unwrap());
        let ann = UserRef::from(&ann);
        let (outbox, mut announced) = Outbox::new();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = heard.clone();
        tokio::spawn(async move {
            while let Some(a) = announced.recv().await {
                for n in &a.notices {
                    log.lock().unwrap().push((n.event.name(), n.offset));
                }
                a.finish();
            }
        });
        let directory = Arc::new(Directory::default());
        let replies = GroupCommit::start(
            db.clone(),
            outbox.clone(),
            directory.clone(),
            Arc::default(),
        );
        let first = SendMessage {
            recipient: Some("bob".into()),
            recipients: None,
            subject: Some("s".into()),
            thread_id: None,
            body: "pin me".into(),
            client_id: None,
            reply_to: None,
        };
        let outcome = send(
            &db,
            &outbox,
            &Directory::default(),
            &replies,
            &ann,
            first,
            SendLimits::TEST,
        )
        .await
        .unwrap();
        let SendOutcome::Created { message, rendered } = outcome else {
            panic!("a new thread's first message is created");
        };
        let message_id = find_message(&db.conn, &message.url)
            .await
            .unwrap()
            .unwrap()
            .id;

        let mut write = outbox.begin(&db).await.unwrap();
        write.tell(
            &ann,
            NoteChanged {
                note: "hello".into(),
            },
        );
        write.tell(
            &ann,
            MessagePinned {
                message: rendered,
                message_id,
            },
        );
        write.commit().await.unwrap();
        let heard = heard.lock().unwrap().clone();
        assert_eq!(
            heard[heard.len() - 2..],
            [("note:changed", Some(2)), ("message:pinned", Some(3))],
            "told after ann's message:new at 1, with their positions: {heard:?}"
        );

        let entries = event_log::entries_after(&db.conn, ann.id, 0, 10)
            .await
            .unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["message:new", "note:changed", "message:pinned"]);

        let mut declared = events::SERVER_EVENTS.to_vec();
        declared.extend([declare::<NoteChanged>(), declare::<MessagePinned>()]);
        let declared: &'static [Declared] = declared.leak();
        let replayed = render_with(declared, &db.conn, ann.id, entries.clone())
            .await
            .unwrap();
        let got: Vec<(&str, serde_json::Value)> = replayed
            .iter()
            .map(|r| (r.event, serde_json::from_str(r.payload.get()).unwrap()))
            .collect();
        assert_eq!(got[0].0, "message:new");
        assert_eq!(
            got[1],
            ("note:changed", serde_json::json!({"note": "hello"}))
        );
        assert_eq!(got[2].0, "message:pinned");
        assert_eq!(got[2].1["message"]["body"], "pin me");
        assert!(got[2].1.get("thread").is_none(), "{:?}", got[2]);

        // Without their declarations, the two entries are not sent again.
        let shipped = render(&db.conn, ann.id, entries).await.unwrap();
        let names: Vec<&str> = shipped.iter().map(|r| r.event).collect();
        assert_eq!(names, ["message:new"]);
    }
}
