//! What client authors read, generated from the declarations: `web/src/generated/events.ts`
//! (socket.io's `ServerToClientEvents` / `ClientToServerEvents`, for socket.io-client) and the
//! event tables and types of `docs/protocol.md`. Tests fail when either committed file is
//! stale; `MISSIVE_WRITE_TYPES=1 cargo nextest run -E 'test(reference)'` rewrites both.

use ts_rs::TS;

use super::protocol::{CLIENT_EVENTS, ClientEvent, Refused};
use crate::service::events::{Declared, EndReason, Logged, SERVER_EVENTS};
use crate::service::{
    Change, ChangeKind, ChangeNotice, HistoryItem, MessageView, Reaction, ReadBy, ReplyTo,
    SearchResult, SearchThread, ThreadKind, ThreadView, UnreadCounts,
};

/// The TypeScript declarations every event refers to, each once, in a stable order.
fn declarations(server: &[Declared], client: &[ClientEvent]) -> Vec<String> {
    let mut decls = vec![
        MessageView::decl(),
        Reaction::decl(),
        ReplyTo::decl(),
        ThreadView::<MessageView>::decl(),
        ThreadKind::decl(),
        ReadBy::decl(),
        UnreadCounts::decl(),
        Change::decl(),
        ChangeKind::decl(),
        // Why a session ended (`session:ended`).
        EndReason::decl(),
        // A thread's history over HTTP: its messages and, in place, its changes.
        ChangeNotice::decl(),
        HistoryItem::decl(),
        // A search's results over HTTP.
        SearchResult::decl(),
        SearchThread::decl(),
        Refused::decl(),
    ];
    decls.extend(client.iter().flat_map(|c| c.decls.iter().map(|d| d())));
    for d in server {
        decls.push((d.decl)());
        decls.extend(d.legacy.iter().map(|l| (l.decl)()));
    }
    let mut out: Vec<String> = Vec::with_capacity(decls.len());
    for decl in decls {
        // `Record<string, never>`, as ts-rs writes an empty struct, would make `Ack<Empty>`'s
        // `status` never.
        let decl = decl.replace(
            "type Empty = Record<string, never>;",
            "type Empty = object;",
        );
        if !out.contains(&decl) {
            out.push(decl);
        }
    }
    out
}

/// `web/src/generated/events.ts` for these events.
pub fn typescript_of(server: &[Declared], client: &[ClientEvent]) -> String {
    let mut out = String::from(
        "// Generated from Missive's event declarations (src/domain/events, \
         src/realtime/protocol.rs); do not edit.\n\
         // A test fails when this file is stale; MISSIVE_WRITE_TYPES=1 cargo nextest run -E \
         'test(reference)' rewrites it.\n\n",
    );
    for decl in declarations(server, client) {
        out.push_str("export ");
        out.push_str(&decl);
        out.push_str("\n\n");
    }
    out.push_str(
        "/** An event's ack: `{status: true}` and its fields, or a refusal. */\n\
         export type Ack<T> = ({ status: true } & T) | Refused;\n\n",
    );
    out.push_str("/** Events the server emits on `/messages` (and `stats` on `/admin`). */\n");
    out.push_str("export interface ServerToClientEvents {\n");
    for d in server {
        // A logged event carries its offset as a last argument.
        let offset = if d.logged == Logged::No {
            ""
        } else {
            ", offset?: string"
        };
        out.push_str(&format!(
            "  /** {} */\n  '{}': (payload: {}{offset}) => void;\n",
            d.doc,
            d.name,
            (d.payload)()
        ));
    }
    out.push_str("}\n\n");
    out.push_str("/** Events a client sends on `/messages`, each answered by its ack. */\n");
    out.push_str("export interface ClientToServerEvents {\n");
    for c in client {
        out.push_str(&format!(
            "  /** {} */\n  '{}': (payload: {}, ack: (answer: Ack<{}>) => void) => void;\n",
            c.doc,
            c.name,
            (c.payload)(),
            (c.ack)()
        ));
    }
    out.push_str("}\n\n");
    out.push_str(
        "/**\n * The original Flask-Messaging events, named after the user's `websocket_id` (W), \
         sent\n * to sockets that did not connect with `legacy: false`.\n */\n\
         export interface LegacyServerToClientEvents {\n",
    );
    let mut keys: Vec<String> = Vec::new();
    for l in server.iter().flat_map(|d| d.legacy) {
        let line = match l.ts_key {
            Some(key) => format!("  [event: {key}]: (payload: {}) => void;\n", (l.payload)()),
            None => format!("  // `{}` carries a {} too.\n", l.name, (l.payload)()),
        };
        if !keys.contains(&line) {
            keys.push(line);
        }
    }
    out.push_str(&keys.concat());
    out.push_str("}\n");
    out
}

/// The generated sections of `docs/protocol.md`, by marker name.
pub fn sections_of(server: &[Declared], client: &[ClientEvent]) -> Vec<(&'static str, String)> {
    let mut clients = String::from("| event | payload | ack | what it does |\n|---|---|---|---|\n");
    for c in client {
        clients.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} |\n",
            c.name,
            (c.payload)(),
            (c.ack)(),
            c.doc
        ));
    }
    let mut servers = String::from(
        "| event | payload | who hears it | logged | what it says |\n|---|---|---|---|---|\n",
    );
    for d in server {
        let logged = match d.logged {
            Logged::No => "no",
            Logged::AsSent => "yes, replayed as sent",
            Logged::Current(_) => "yes, replayed as it is at replay time",
        };
        servers.push_str(&format!(
            "| `{}` | `{}` | {} | {logged} | {} |\n",
            d.name,
            (d.payload)(),
            d.audience.describe(),
            d.doc
        ));
    }
    let mut legacy = String::from("| event | payload | sent with | when |\n|---|---|---|---|\n");
    for d in server {
        for l in d.legacy {
            legacy.push_str(&format!(
                "| `{}` | `{}` | `{}` | {} |\n",
                l.name,
                (l.payload)(),
                d.name,
                l.when
            ));
        }
    }
    let types = format!(
        "```ts\n{}```\n",
        declarations(server, client)
            .iter()
            .map(|d| format!("{d}\n\n"))
            .collect::<String>()
            .trim_end()
            .to_owned()
            + "\n"
    );
    vec![
        ("client-events", clients),
        ("server-events", servers),
        ("legacy-events", legacy),
        ("types", types),
    ]
}

/// `document` with each generated section replaced by `sections`; `None` if a marker is
/// missing.
pub fn fill(document: &str, sections: &[(&str, String)]) -> Option<String> {
    let mut out = document.to_owned();
    for (name, body) in sections {
        let begin = format!("<!-- BEGIN GENERATED {name} -->\n");
        let end = format!("<!-- END GENERATED {name} -->");
        let start = out.find(&begin)? + begin.len();
        let stop = start + out[start..].find(&end)?;
        out.replace_range(start..stop, body);
    }
    Some(out)
}

/// `web/src/generated/events.ts`.
pub fn typescript() -> String {
    typescript_of(SERVER_EVENTS, CLIENT_EVENTS)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde::Serialize;
    use ts_rs::TS;

    use super::*;
    use crate::service::events::{Audience, ServerEvent, declare};

    fn check(relative: &str, current: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        if std::env::var("MISSIVE_WRITE_TYPES").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, current).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == current,
            "{relative} is stale: run MISSIVE_WRITE_TYPES=1 cargo nextest run -E 'test(reference)'"
        );
    }

    fn protocol_md() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/protocol.md");
        std::fs::read_to_string(path).unwrap()
    }

    /// The committed TypeScript matches the declarations.
    #[test]
    fn the_committed_typescript_is_current() {
        check("web/src/generated/events.ts", &typescript());
    }

    /// The protocol reference's tables and types match the declarations.
    #[test]
    fn the_protocol_reference_is_current() {
        let sections = sections_of(SERVER_EVENTS, CLIENT_EVENTS);
        let filled = fill(&protocol_md(), &sections).expect("docs/protocol.md has every marker");
        check("docs/protocol.md", &filled);
    }

    /// A throwaway event, declared in this test only.
    #[derive(Serialize, TS)]
    struct Throwaway {
        thread_id: String,
    }

    impl ServerEvent for Throwaway {
        const NAME: &'static str = "throwaway:changed";
        const DOC: &'static str = "A throwaway changed.";
        const AUDIENCE: Audience = Audience::Participants;
        const LOGGED: Logged = Logged::AsSent;
    }

    /// Declaring an event is all the typings and the reference need: it appears in both, with
    /// its offset argument and its logged column.
    #[test]
    fn a_declared_event_reaches_the_typings_and_the_reference() {
        let mut server = SERVER_EVENTS.to_vec();
        server.push(declare::<Throwaway>());
        let ts = typescript_of(&server, CLIENT_EVENTS);
        assert!(
            ts.contains("export type Throwaway = { thread_id: string, };"),
            "{ts}"
        );
        assert!(
            ts.contains("'throwaway:changed': (payload: Throwaway, offset?: string) => void;"),
            "{ts}"
        );
        let sections = sections_of(&server, CLIENT_EVENTS);
        let filled = fill(&protocol_md(), &sections).unwrap();
        assert!(filled.contains(
            "| `throwaway:changed` | `Throwaway` | every participant's tabs (`user:<id>`) | \
             yes, replayed as sent | A throwaway changed. |"
        ));
        assert!(!protocol_md().contains("throwaway:changed"));
    }
}
