// Generated from Missive's event declarations (src/domain/events, src/realtime/protocol.rs); do not edit.
// A test fails when this file is stale; MISSIVE_WRITE_TYPES=1 cargo nextest run -E 'test(reference)' rewrites it.

export type Message = { url: string, thread_id: string, sender: string, 
/**
 * The other person of a direct thread; null in a group.
 */
recipient: string | null, subject: string, 
/**
 * Null once its sender removed it for everyone.
 */
body: string | null, 
/**
 * RFC 3339, UTC, milliseconds.
 */
timestamp: string, 
/**
 * In a direct thread, whether the recipient has read it; in a group, whether the viewer
 * has (their own messages: true).
 */
read: boolean, 
/**
 * When its sender last edited it (RFC 3339); null if never.
 */
edited_at: string | null, 
/**
 * Whether its sender removed it for everyone (it stays in the history, without a body).
 */
removed: boolean, 
/**
 * Its reactions, in first-reacted order.
 */
reactions: Array<Reaction>, 
/**
 * The message it answers, if any.
 */
reply_to: ReplyTo | null, };

export type Reaction = { emoji: string, users: Array<string>, };

export type ReplyTo = { url: string, sender: string, 
/**
 * Its body's first 100 characters; null once it was removed for everyone.
 */
excerpt: string | null, };

export type Thread = { thread_id: string, subject: string, kind: ThreadKind, 
/**
 * The member who holds the right to remove others: the creator, or the longest-standing
 * member once the creator left.
 */
created_by: string, 
/**
 * The current members (one who left or was removed is not among them).
 */
participants: Array<string>, 
/**
 * Each other member's last read message (those with receipts on who read at least one);
 * empty when the viewer has receipts off.
 */
read_by: Array<ReadBy>, last_message: Message | null, 
/**
 * Unread messages for this participant.
 */
unread: number, 
/**
 * Time of the newest message (RFC 3339).
 */
updated_at: string, 
/**
 * Whether the viewer muted it: no pushes for its messages.
 */
muted: boolean, 
/**
 * Until when it is muted (RFC 3339); null when muted until unmuted, or not muted.
 */
muted_until: string | null, };

export type ThreadKind = "direct" | "group";

export type ReadBy = { username: string, 
/**
 * The url of the last message they read.
 */
up_to: string, };

export type Unread = { messages: number, threads: number, };

export type Change = { kind: ChangeKind, 
/**
 * Who made it.
 */
by: string, 
/**
 * Who was added, removed or left.
 */
username?: string, 
/**
 * The new subject (renamed).
 */
subject?: string, };

export type ChangeKind = "added" | "removed" | "left" | "renamed";

export type EndReason = "logout" | "password_changed" | "ended_elsewhere" | "disabled" | "deleted";

export type ChangeNotice = { 
/**
 * Always `"change"` (a message has no `kind`).
 */
kind: "change", change: Change, 
/**
 * When it happened (RFC 3339).
 */
at: string, };

export type HistoryItem = Message | ChangeNotice;

export type SearchResult = { message: Message, thread: SearchThread, 
/**
 * Ranges of `message.body` where a word of the query matched, in Unicode code points,
 * end excluded (empty when only the subject matched).
 */
highlights: Array<[number, number]>, };

export type SearchThread = { thread_id: string, subject: string, };

export type Refused = { status: false, 
/**
 * `invalid_payload`, `not_found`, `rate_limited`, `unavailable`, a validation code, ...
 */
code: string, message: string, };

export type SendMessage = { 
/**
 * A new direct thread: who to (with `subject`).
 */
recipient?: string, 
/**
 * A new thread to several people: two or more names make a group (one, a direct thread).
 */
recipients?: Array<string>, 
/**
 * A new thread's subject, 1 to 70 characters.
 */
subject?: string, 
/**
 * A reply: the thread.
 */
thread_id?: string, 
/**
 * 1 to MISSIVE_MAX_BODY characters after trimming.
 */
body: string, 
/**
 * Chosen by the sender: a repeat is answered with the first message, nothing stored.
 */
client_id?: string, 
/**
 * A reply may answer a message of its thread (its url).
 */
reply_to?: string, };

export type MessageAck = { message: Message, };

export type ThreadRef = { thread_id: string, };

export type ThreadAck = { thread_id: string, };

export type ReadRequest = { thread_id: string, up_to?: string, };

export type ThreadRead = { thread_id: string, unread: Unread, };

export type EditRequest = { url: string, body: string, };

export type ReactionRequest = { url: string, emoji: string, };

export type MessageRef = { url: string, };

export type MessageDeleted = { url: string, thread_id: string, 
/**
 * Messages left in the thread for the deleter.
 */
total_messages: number, };

export type ThreadDeleted = { thread_id: string, 
/**
 * Threads left in the deleter's inbox.
 */
total_threads: number, };

export type MemberRequest = { thread_id: string, username: string, };

export type ThreadBody = { thread: Thread, };

export type RenameRequest = { thread_id: string, subject: string, };

export type MuteRequest = { thread_id: string, 
/**
 * Until when (RFC 3339, in the future); absent: until unmuted.
 */
until?: string, };

export type TypingRequest = { thread_id: string, typing: boolean, };

export type Empty = object;

export type SyncRequest = { since?: string, };

export type SyncPage = { 
/**
 * The missed events, oldest first, each `[event, payload, offset]` as it was sent (empty
 * when `complete` is false).
 */
events: Array<[string, unknown, string]>, 
/**
 * Whether every event after `since` could be sent: false when some were pruned (older
 * than the recovery window), when `since` is not a position of the log, or with the log
 * off; the client then reloads what it shows.
 */
complete: boolean, 
/**
 * More events follow: ask again with the last event's offset.
 */
more: boolean, 
/**
 * The newest position of the log.
 */
head: string, };

export type NewMessage = { message: Message, thread: Thread, };

export type LegacyNewMessage = { message_url: string, thread_id: string, };

export type LegacyNotify = { type: "thread" | "mailbox", notify: "false", thread_id?: string, };

export type LegacyDeletion = { type: "message" | "thread", message_url?: string, thread_id: string, total_messages?: number, total_threads?: number, };

export type MessageEdited = { message: Message, };

export type MessageReactions = { url: string, thread_id: string, reactions: Array<Reaction>, };

export type MessageRemoved = { url: string, thread_id: string, };

export type ThreadUpdated = { thread: Thread, change: Change, };

export type ThreadMuted = { thread_id: string, muted: boolean, 
/**
 * Until when (RFC 3339); null when muted until unmuted, or not muted.
 */
muted_until: string | null, };

export type Receipt = { thread_id: string, username: string, 
/**
 * The url of the last message they read.
 */
up_to: string, 
/**
 * When (RFC 3339).
 */
at: string, };

export type Presence = { username: string, online: boolean, };

export type Typing = { thread_id: string, username: string, typing: boolean, };

export type Stats = { 
/**
 * Socket.IO and lobby connections on this node.
 */
connections: number, 
/**
 * Live sessions (all nodes).
 */
sessions: number, 
/**
 * Messages stored by this node during the last second.
 */
messages_per_second: number, 
/**
 * Round trip of `SELECT 1`.
 */
db_latency_ms: number, timestamp: string, };

export type AccountChanged = { 
/**
 * `password`, `email` or `two_factor`.
 */
what: 'password' | 'email' | 'two_factor', };

export type SessionEnded = { reason: EndReason, };

/** An event's ack: `{status: true}` and its fields, or a refusal. */
export type Ack<T> = ({ status: true } & T) | Refused;

/** Events the server emits on `/messages` (and `stats` on `/admin`). */
export interface ServerToClientEvents {
  /** A message was stored in one of the user's threads. */
  'message:new': (payload: NewMessage, offset?: string) => void;
  /** The user read a thread (from any tab or device). */
  'thread:read': (payload: ThreadRead, offset?: string) => void;
  /** The user deleted a message (for themself only). */
  'message:deleted': (payload: MessageDeleted, offset?: string) => void;
  /** The user deleted a thread (for themself only). */
  'thread:deleted': (payload: ThreadDeleted, offset?: string) => void;
  /** The user's unread totals changed. */
  'unread': (payload: Unread, offset?: string) => void;
  /** A message's sender edited it (a replay shows it as it is then). */
  'message:edited': (payload: MessageEdited, offset?: string) => void;
  /** A member added or removed a reaction to a message (its reactions after the change). */
  'message:reactions': (payload: MessageReactions, offset?: string) => void;
  /** A message's sender removed it for everyone. */
  'message:removed': (payload: MessageRemoved, offset?: string) => void;
  /** A group's membership or subject changed (told to every member, and to the one removed or leaving). */
  'thread:updated': (payload: ThreadUpdated, offset?: string) => void;
  /** The user muted or unmuted a thread: no pushes for it while muted (told to the user's own tabs only). */
  'thread:muted': (payload: ThreadMuted, offset?: string) => void;
  /** Another member read further in a thread (never sent by or to a user with receipts off). */
  'receipt': (payload: Receipt, offset?: string) => void;
  /** A user who shares a thread with this one came online or went offline (state, not history: a recovering socket is sent everyone's current presence instead). */
  'presence': (payload: Presence) => void;
  /** Someone in the thread started or stopped typing. */
  'typing': (payload: Typing) => void;
  /** The node's figures, every second (admin accounts only). */
  'stats': (payload: Stats) => void;
  /** The user's password, e-mail address or second factor changed. */
  'account:changed': (payload: AccountChanged, offset?: string) => void;
  /** The session ended (logout, a new password, ended from elsewhere, the account disabled or deleted): its sockets are disconnected right after. */
  'session:ended': (payload: SessionEnded) => void;
}

/** Events a client sends on `/messages`, each answered by its ack. */
export interface ClientToServerEvents {
  /** Send a message: a new thread (`recipient`, `subject`) or a reply (`thread_id`). */
  'message:send': (payload: SendMessage, ack: (answer: Ack<MessageAck>) => void) => void;
  /** Join the thread's room, to hear `typing` (participants only). */
  'thread:join': (payload: ThreadRef, ack: (answer: Ack<ThreadAck>) => void) => void;
  /** Leave the thread's room. */
  'thread:leave': (payload: ThreadRef, ack: (answer: Ack<ThreadAck>) => void) => void;
  /** Mark the thread read, up to `up_to` or to its newest message. */
  'thread:read': (payload: ReadRequest, ack: (answer: Ack<ThreadRead>) => void) => void;
  /** Edit one of your messages, within the edit window (see After sending). */
  'message:edit': (payload: EditRequest, ack: (answer: Ack<MessageAck>) => void) => void;
  /** React to a message with one emoji (any member; see After sending). */
  'reaction:add': (payload: ReactionRequest, ack: (answer: Ack<MessageAck>) => void) => void;
  /** Take back your reaction. */
  'reaction:remove': (payload: ReactionRequest, ack: (answer: Ack<MessageAck>) => void) => void;
  /** Delete a message for yourself. */
  'message:delete': (payload: MessageRef, ack: (answer: Ack<MessageDeleted>) => void) => void;
  /** Delete a thread for yourself. */
  'thread:delete': (payload: ThreadRef, ack: (answer: Ack<ThreadDeleted>) => void) => void;
  /** Add someone to a group (any member; see Conversations). */
  'thread:add': (payload: MemberRequest, ack: (answer: Ack<ThreadBody>) => void) => void;
  /** Remove someone from a group (its creator), or leave it (yourself). */
  'thread:remove': (payload: MemberRequest, ack: (answer: Ack<ThreadBody>) => void) => void;
  /** Rename a group (any member). */
  'thread:rename': (payload: RenameRequest, ack: (answer: Ack<ThreadBody>) => void) => void;
  /** Mute a thread for yourself: no pushes for it (until `until`, or until unmuted). */
  'thread:mute': (payload: MuteRequest, ack: (answer: Ack<ThreadBody>) => void) => void;
  /** Unmute a thread for yourself. */
  'thread:unmute': (payload: ThreadRef, ack: (answer: Ack<ThreadBody>) => void) => void;
  /** Tell the thread's room you are typing (from a socket that joined it). */
  'typing': (payload: TypingRequest, ack: (answer: Ack<Empty>) => void) => void;
  /** The events after `since`, a page at a time (see Recovery). */
  'sync': (payload: SyncRequest, ack: (answer: Ack<SyncPage>) => void) => void;
}

/**
 * The original Flask-Messaging events, named after the user's `websocket_id` (W), sent
 * to sockets that did not connect with `legacy: false`.
 */
export interface LegacyServerToClientEvents {
  [event: `${string}_newmsg`]: (payload: LegacyNewMessage) => void;
  // `<thread_id>` carries a LegacyNewMessage too.
  [event: `${string}_notify`]: (payload: LegacyNotify) => void;
  [event: `${string}_notify_deletion`]: (payload: LegacyDeletion) => void;
}
