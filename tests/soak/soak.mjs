// The soak test's client, started by scripts/soak (which runs the nodes, PostgreSQL and Redis and
// breaks them while this runs). Stock socket.io-client 4.8 users send, read, delete and reconnect
// against two nodes, and check what they hear:
//
// - every socket hears its user's logged events (the offset is their last argument) at
//   consecutive offsets: a position heard twice is `repeated`, a position heard after a later one
//   is `reordered`, a position skipped and never heard is `missed`; at the end each socket's last
//   offset must be its user's head (`sync {}`), the difference is missed too;
// - a reconnect that socket.io did not recover (`socket.recovered` false), other than the
//   deliberate ones, is counted `unrecovered`; every reconnect not recovered is caught up with
//   `sync {since}`, whose events are checked the same way;
// - every acknowledged `message:send` is stored: its sender finds it in the thread's history over
//   HTTP (unless the sender asked to delete it), else it is `lost`; a client_id stored twice
//   counts as `repeated`.
//
// Configuration comes from the environment (scripts/soak sets it):
//   SOAK_NODES       base URLs of the nodes, comma separated (http://127.0.0.1:PORT)
//   SOAK_SEED        seed of the traffic's choices
//   SOAK_USERS       users (default 12), each with one socket on every node
//   SOAK_RATE        client operations per second over all users (default 200)
//   SOAK_READY_FILE  written once every socket is connected and traffic starts
//   SOAK_RESULT_FILE the result fields are written there (`sends=.. acked=.. ...`), else stdout
//   SOAK_MAX_SECONDS traffic stops by itself after this long (scripts/soak stops it with SIGUSR2)
//   SOAK_SETTLE      seconds the sockets get to catch up at the end (default 10)
//   SOAK_VERBOSE     1: every finding (not only the first 40 of each kind), gap and reconnect
// Diagnostics go to standard error. Exit status: 0 when nothing was lost, missed, repeated or
// reordered, 1 when something was, 2 when the soak could not check everything.
import { writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { io } from "socket.io-client";

const env = process.env;
const nodes = (env.SOAK_NODES ?? "").split(",").filter(Boolean);
const seed = Number(env.SOAK_SEED ?? 1) >>> 0;
const userCount = Number(env.SOAK_USERS ?? 12);
const rate = Number(env.SOAK_RATE ?? 200);
const maxSeconds = Number(env.SOAK_MAX_SECONDS ?? 3600);
const settleSeconds = Number(env.SOAK_SETTLE ?? 10);
const verbose = env.SOAK_VERBOSE === "1";
const ACK_MS = 10_000;
// Detailed lines per kind of finding; the rest are only counted.
const DETAIL_LIMIT = verbose ? Infinity : 40;

if (nodes.length === 0 || !(userCount >= 2) || !(rate > 0)) {
  console.error("soak.mjs: SOAK_NODES, SOAK_USERS (>= 2) and SOAK_RATE (> 0) are required");
  process.exit(2);
}

// --- utilities -------------------------------------------------------------------------------

const t0 = Date.now();
const now = () => new Date().toISOString().slice(11, 23);
const log = (...parts) => console.error(`${now()} client:`, ...parts);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// mulberry32: the traffic's choices follow the seed (their timing does not).
let prng = (seed ^ 0x9e3779b9) >>> 0;
function random() {
  prng = (prng + 0x6d2b79f5) >>> 0;
  let t = prng;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];

const detailCount = new Map();
function finding(kind, text) {
  const n = (detailCount.get(kind) ?? 0) + 1;
  detailCount.set(kind, n);
  if (n <= DETAIL_LIMIT) log(`${kind}: ${text}`);
  else if (n === DETAIL_LIMIT + 1) log(`${kind}: more of these, counted only`);
}

async function http(base, method, path, { token, body } = {}) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(ACK_MS),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: kept as text for the message below
  }
  return { status: res.status, json, text };
}

// An HTTP call retried while the service heals (a node restarting, the database away).
async function httpRetry(what, method, path, opts, ok = (r) => r.status < 300) {
  let last;
  for (let attempt = 0; attempt < 30; attempt++) {
    const base = nodes[attempt % nodes.length];
    try {
      last = await http(base, method, path, opts);
      if (ok(last)) return last;
      last = `${last.status} ${last.text.slice(0, 200)}`;
    } catch (e) {
      last = e?.message ?? String(e);
    }
    await sleep(500);
  }
  throw new Error(`${what}: ${last}`);
}

// --- state and counters ---------------------------------------------------------------------

const totals = { sends: 0, acked: 0, failed: 0, lost: 0, missed: 0, repeated: 0, reordered: 0, unrecovered: 0 };
const ops = { send: 0, retry: 0, read: 0, readOk: 0, del: 0, delOk: 0, drop: 0, fresh: 0, newSocket: 0, caughtUp: 0, resentAfterSync: 0, overlapAfterSync: 0 };
const refusals = new Map(); // "event code" -> count
let unchecked = 0; // sockets whose final position could not be learned
let stopping = false;

/** client_id -> {user, url, thread_id} for every acknowledged send. */
const acked = new Map();
/** Every client_id sent: {user, payload, attempts, acked}. */
const sent = new Map();

// A refused or unanswered event, counted; with `about` (what it was about, and which socket),
// also told, so that a change made but not acknowledged can be set beside what went missing.
function countRefusal(event, code, about) {
  const key = `${event} ${code}`;
  refusals.set(key, (refusals.get(key) ?? 0) + 1);
  if (about && code !== "not_found") finding("unanswered", `${event} ${about}: ${code}`);
}

// --- sockets ---------------------------------------------------------------------------------

// "N positions (ranges), skipped between T1 and T2; first skipped by ..." of [offset, gap] pairs.
function describe(gaps, full = true) {
  const ranges = [];
  for (const [p] of gaps) {
    const r = ranges[ranges.length - 1];
    if (r && r[1] === p - 1) r[1] = p;
    else ranges.push([p, p]);
  }
  const text = ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
  const shown = text.length > 12 ? [...text.slice(0, 12), "..."] : text;
  if (!full) return shown.join(", ");
  const first = gaps[0][1];
  const last = gaps[gaps.length - 1][1];
  return `${gaps.length} positions (${shown.join(", ")}), skipped between ${first.at} and ` +
    `${last.at}; first skipped by ${first.event} at ${first.after} (${first.how})`;
}

class Tab {
  constructor(user, nodeIndex) {
    this.user = user;
    this.node = nodeIndex;
    this.name = `${user.name}@node${nodeIndex + 1}`;
    this.last = 0; // the last offset checked; a fresh user's log starts at 1
    this.catchingUp = false; // live events are held while `sync` pages are checked
    this.catchupRun = 0; // a reconnect during a catch-up starts it again
    this.held = [];
    this.connects = 0;
    this.recoveredCount = 0;
    this.unrecoveredCount = 0;
    this.freshReconnect = false; // the next connect follows a deliberate disconnect()
    this.pending = new Map(); // positions skipped by a later one: offset -> when, after what
    this.missed = 0;
    this.repeated = 0;
    this.reordered = 0;
    this.heard = 0;
    this.reconnectedAt = 0;
    this.recoveredFrom = null;
    this.syncedTo = 0; // the newest offset caught up with `sync`
    this.liveLast = 0; // the newest offset this socket heard from socket.io (what it recovers from)
    this.resendUpTo = 0; // a replay may send again what `sync` gave, up to this offset
    this.open();
  }

  // A new socket (as a page loaded again would open): it has no pid, so it is not recovered
  // and catches up with `sync`.
  open() {
    this.liveLast = 0;
    this.socket = io(nodes[this.node] + "/messages", {
      transports: ["websocket"],
      auth: { token: this.user.token, legacy: false },
      forceNew: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 2000,
      timeout: 5000,
    });
    const s = this.socket;
    s.on("connect", () => this.onConnect());
    s.on("disconnect", (reason) => {
      if (reason === "io server disconnect") {
        finding("server-disconnect", `${this.name} was disconnected by the server; connecting again`);
        setTimeout(() => s.connect(), 500);
      }
    });
    s.on("connect_error", (err) => {
      // A CONNECT the server refused is not retried by socket.io itself.
      if (!s.active && s === this.socket) {
        finding("connect-refused", `${this.name}: ${err?.message ?? err}; connecting again`);
        setTimeout(() => s.connect(), 500);
      }
    });
    s.onAny((event, ...args) => {
      if (s === this.socket) this.onEvent(event, args);
    });
  }

  get connected() {
    return this.socket.connected;
  }

  onConnect() {
    this.connects++;
    // What this connection heard live: a connection that was not recovered hears its user's
    // events from the position its CONNECT answer was made at (the server fills them from its
    // log), so the first live copy of an event the catch-up `sync` gave is expected, once.
    this.liveHeard = new Set();
    this.freshConnection = !this.socket.recovered;
    if (this.connects === 1) return;
    if (verbose) {
      log(`${this.name} reconnected: recovered ${this.socket.recovered}, asked after ${this.socket._lastOffset}`);
    }
    if (this.socket.recovered) {
      this.recoveredCount++;
      // socket.io-client sent its last offset heard in the CONNECT (a private field, read for the
      // diagnostics only).
      this.reconnectedAt = Date.now();
      this.recoveredFrom = this.socket._lastOffset;
      // Positions still awaited at or below that offset will not be replayed: socket.io-client
      // asked for the events after the last one it heard, and it heard them out of order.
      const from = Number(this.recoveredFrom);
      // socket.io-client does not know of the events `sync` gave: its replay sends them again.
      // It asked after the last offset it heard live, and whatever `sync` gave past that comes
      // again. Without an offset (socket.io-client sends none when it kept none) the server
      // recovers from the position its pid was made at: anything heard since comes again.
      const asked = Number(this.recoveredFrom);
      if (Number.isNaN(asked)) this.resendUpTo = Math.max(this.last, this.syncedTo);
      else if (this.syncedTo > asked) this.resendUpTo = this.syncedTo;
      for (const [p, gap] of this.pending) {
        if (p <= from && gap.passedMs === undefined) gap.passedMs = Date.now() - gap.ms;
      }
    } else if (this.freshReconnect) {
      // disconnect() then connect(), or a new socket: not a connection state recovery by
      // socket.io's rules; caught up with `sync` below.
      ops.caughtUp++;
    } else {
      this.unrecoveredCount++;
      totals.unrecovered++;
      finding("unrecovered", `${this.name} reconnected without recovery (last offset ${this.last})`);
    }
    this.freshReconnect = false;
    if (!this.socket.recovered || this.catchingUp) this.catchUp();
  }

  onEvent(event, args) {
    const offset = args.length >= 2 ? args[args.length - 1] : undefined;
    if (typeof offset !== "string" || !/^\d+$/.test(offset)) return; // not logged
    this.heard++;
    const at = Number(offset);
    const again = this.liveHeard?.has(at) ?? false;
    if (this.liveHeard) {
      if (this.liveHeard.size > 20_000) this.liveHeard.clear();
      this.liveHeard.add(at);
    }
    if (!again && this.freshConnection && !this.catchingUp && at <= this.syncedTo && at <= this.last) {
      ops.overlapAfterSync++; // expected: see onConnect
      return;
    }
    this.liveLast = Math.max(this.liveLast, Number(offset));
    if (event === "message:new") this.user.learn(args[0]);
    if (this.catchingUp) this.held.push([event, Number(offset)]);
    else this.check(event, Number(offset), "live");
  }

  check(event, offset, how) {
    if (offset > this.resendUpTo) this.resendUpTo = 0;
    if (offset === this.last + 1) {
      this.last = offset;
    } else if (offset > this.last + 1) {
      // A gap: its positions are missed unless they come later (then they are reordered).
      const gap = offset - this.last - 1;
      if (gap > 100_000) {
        this.missed += gap;
        finding("missed", `${this.name} heard ${event} at ${offset} (${how}) after ${this.last}`);
      } else {
        for (let p = this.last + 1; p < offset; p++) this.pending.set(p, { at: now(), ms: Date.now(), event, how, after: offset });
        if (verbose) log(`gap: ${this.name} heard ${event} at ${offset} (${how}) after ${this.last}`);
      }
      this.last = offset;
    } else if (offset <= this.resendUpTo && how === "live") {
      ops.resentAfterSync++; // expected: see resendUpTo
    } else if (how === "sync") {
      // A catch-up from before an awaited position fills it, and gives again what was heard.
      this.pending.delete(offset);
    } else if (this.pending.has(offset)) {
      const gap = this.pending.get(offset);
      this.pending.delete(offset);
      this.reordered++;
      finding(
        "reordered",
        `${this.name} heard ${event} at ${offset} (${how}) ${Date.now() - gap.ms} ms after ` +
          `${gap.event} at ${gap.after} (${gap.how}); last offset ${this.last}`,
      );
    } else {
      this.repeated++;
      const since = Date.now() - this.reconnectedAt;
      const context = since < 5000
        ? `, ${since} ms after a recovered reconnect that asked for the events after ${this.recoveredFrom}`
        : "";
      finding("repeated", `${this.name} heard ${event} at ${offset} (${how}) again${context}; last offset ${this.last}`);
    }
  }

  // Positions skipped and never heard are missed (called at the end): one line per socket,
  // with when they were skipped.
  closeGaps() {
    const gaps = [...this.pending.entries()].sort((a, b) => a[0] - b[0]);
    this.pending.clear();
    this.missed += gaps.length;
    if (verbose && gaps.length) log(`${this.name} never heard ${describe(gaps)}`);
    return gaps.map(([offset, gap]) => ({ tab: this, offset, ...gap }));
  }

  // Pages `sync {since: last}` and checks what it answers, then the live events held meanwhile
  // (those the pages already covered are skipped).
  // Where a catch-up starts: the last offset heard, or before the oldest position still
  // awaited (a new connection may hear a live event before its "connect" handler runs, and so
  // before its catch-up starts: the gap behind that event is the catch-up's to fill).
  since() {
    let since = this.last;
    for (const p of this.pending.keys()) since = Math.min(since, p - 1);
    return since;
  }

  async catchUp() {
    const run = ++this.catchupRun;
    this.catchingUp = true;
    for (;;) {
      // Disconnected: the next connect starts again.
      if (run !== this.catchupRun || !this.socket.connected) return;
      let page;
      try {
        page = await this.socket.timeout(ACK_MS).emitWithAck("sync", { since: String(this.since()) });
      } catch (e) {
        await sleep(300);
        continue;
      }
      if (run !== this.catchupRun) return;
      if (!page?.status) {
        countRefusal("sync", page?.code);
        await sleep(300);
        continue;
      }
      if (page.complete === false) {
        const head = Number(page.head);
        this.missed += Math.max(0, head - this.last);
        finding("missed", `${this.name}: sync since ${this.last} is not complete (head ${head})`);
        this.last = Math.max(this.last, head);
        break;
      }
      for (const [event, payload, offset] of page.events) {
        if (event === "message:new") this.user.learn(payload);
        this.check(event, Number(offset), "sync");
        this.syncedTo = Math.max(this.syncedTo, Number(offset));
      }
      if (!page.more) break;
    }
    // A recovered connection's replay may come after this catch-up's answers (the server sends
    // them side by side): what it carries up to the offsets `sync` gave comes again, expected.
    if (this.socket.recovered) this.resendUpTo = Math.max(this.resendUpTo, this.syncedTo);
    const held = this.held;
    this.held = [];
    this.catchingUp = false;
    for (const [event, offset] of held) {
      // Those at or below the last offset were in the sync pages too.
      if (offset > this.last || this.pending.has(offset)) this.check(event, offset, "live, held during sync");
    }
  }

  // `sync {}`: the user's head, or null when the socket cannot answer now.
  async head() {
    if (!this.socket.connected || this.catchingUp) return null;
    try {
      const page = await this.socket.timeout(ACK_MS).emitWithAck("sync", {});
      return page?.status ? Number(page.head) : null;
    } catch {
      return null;
    }
  }
}

// --- users -----------------------------------------------------------------------------------

class User {
  constructor(index) {
    this.index = index;
    this.name = `soak${index}`;
    this.password = "soak-password-" + index;
    this.token = null;
    this.tabs = [];
    this.threads = new Map(); // correspondent -> thread_id
    this.mine = []; // {url, thread_id} of own acked messages, not deleted
    this.deleted = new Set(); // urls this user asked to delete (acked or not)
    this.retries = []; // client_ids to send again
  }

  learn(payload) {
    const thread = payload?.thread;
    if (!thread?.thread_id || !Array.isArray(thread.participants)) return;
    for (const p of thread.participants) {
      if (p !== this.name && !this.threads.has(p)) this.threads.set(p, thread.thread_id);
    }
  }

  tab() {
    const up = this.tabs.filter((t) => t.connected);
    return up.length ? pick(up) : null;
  }

  async run(peers) {
    const interval = (1000 * userCount) / rate;
    let next = Date.now() + random() * interval;
    while (!stopping) {
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      next = Math.max(next + interval, Date.now());
      if (stopping) break;
      const tab = this.tab();
      if (!tab) {
        await sleep(200);
        continue;
      }
      const r = random();
      try {
        if (r < 0.62) await this.send(tab, peers);
        else if (r < 0.82) await this.read(tab);
        else if (r < 0.94) await this.remove(tab);
        else this.reconnect();
      } catch (e) {
        log(`${this.name}: operation threw: ${e?.stack ?? e}`);
      }
    }
  }

  async send(tab, peers) {
    let clientId;
    if (this.retries.length && random() < 0.5) {
      clientId = this.retries.shift();
      ops.retry++;
    } else {
      const to = pick(peers.filter((p) => p !== this));
      clientId = `${this.name}-${randomBytes(6).toString("hex")}`;
      const thread = this.threads.get(to.name);
      const body = `soak ${clientId}`;
      const payload = thread
        ? { thread_id: thread, body, client_id: clientId }
        : { recipient: to.name, subject: `soak ${this.name} to ${to.name}`, body, client_id: clientId };
      sent.set(clientId, { user: this, payload, attempts: 0, acked: false });
      totals.sends++;
    }
    ops.send++;
    const entry = sent.get(clientId);
    entry.attempts++;
    let ack;
    try {
      ack = await tab.socket.timeout(ACK_MS).emitWithAck("message:send", entry.payload);
    } catch (e) {
      countRefusal("message:send", `no ack (${e?.message ?? e})`, `${clientId} on ${tab.name}`);
      this.retryLater(clientId, entry);
      return;
    }
    if (!ack?.status) {
      countRefusal("message:send", ack?.code, `${clientId} on ${tab.name}`);
      if (!["unavailable", "internal", "rate_limited"].includes(ack?.code)) {
        finding("refused", `${tab.name}: message:send ${clientId} refused: ${JSON.stringify(ack)}`);
      }
      this.retryLater(clientId, entry);
      return;
    }
    const m = ack.message;
    const before = acked.get(clientId);
    if (before && before.url !== m.url) {
      totals.repeated++;
      finding("repeated", `${clientId} acked twice as different messages ${before.url}, ${m.url}`);
    }
    if (!before) {
      acked.set(clientId, { user: this, url: m.url, thread_id: m.thread_id });
      entry.acked = true;
      this.mine.push({ url: m.url, thread_id: m.thread_id });
      if (m.recipient && !this.threads.has(m.recipient)) this.threads.set(m.recipient, m.thread_id);
    }
  }

  retryLater(clientId, entry) {
    if (entry.attempts < 3 && !entry.acked) this.retries.push(clientId);
  }

  async read(tab) {
    const threads = [...this.threads.values()];
    if (!threads.length) return;
    ops.read++;
    const thread = pick(threads);
    const about = `${thread} on ${tab.name}`;
    try {
      const ack = await tab.socket.timeout(ACK_MS).emitWithAck("thread:read", { thread_id: thread });
      if (ack?.status) ops.readOk++;
      else countRefusal("thread:read", ack?.code, about);
    } catch (e) {
      countRefusal("thread:read", `no ack (${e?.message ?? e})`, about);
    }
  }

  async remove(tab) {
    if (this.mine.length < 5) return;
    const i = Math.floor(random() * this.mine.length);
    const [m] = this.mine.splice(i, 1);
    this.deleted.add(m.url); // whatever the answer: an unanswered delete may have happened
    ops.del++;
    try {
      const ack = await tab.socket.timeout(ACK_MS).emitWithAck("message:delete", { url: m.url });
      if (ack?.status) ops.delOk++;
      else countRefusal("message:delete", ack?.code, `${m.url} on ${tab.name}`);
    } catch (e) {
      countRefusal("message:delete", `no ack (${e?.message ?? e})`, `${m.url} on ${tab.name}`);
    }
  }

  reconnect() {
    const tab = pick(this.tabs);
    if (!tab.connected) return;
    const r = random();
    if (r < 0.7) {
      // A network drop: socket.io reconnects by itself and recovers.
      ops.drop++;
      tab.socket.io.engine.close();
    } else if (r < 0.85) {
      // A deliberate disconnect and connect: caught up with `sync` if not recovered.
      ops.fresh++;
      tab.freshReconnect = true;
      tab.socket.disconnect();
      setTimeout(() => tab.socket.connect(), 50 + random() * 500);
    } else {
      // The page loaded again: a new socket, caught up with `sync`.
      ops.newSocket++;
      tab.freshReconnect = true;
      tab.socket.close();
      setTimeout(() => tab.open(), 50 + random() * 500);
    }
  }
}

// --- the run ---------------------------------------------------------------------------------

const users = Array.from({ length: userCount }, (_, i) => new User(i));
const tabs = () => users.flatMap((u) => u.tabs);

async function setUp() {
  for (const u of users) {
    const creds = { username: u.name, password: u.password };
    await httpRetry(`register ${u.name}`, "POST", "/api/v1/auth/register", { body: creds }, (r) =>
      [201, 409].includes(r.status),
    );
    const login = await httpRetry(`login ${u.name}`, "POST", "/api/v1/auth/login", { body: creds });
    u.token = login.json.token;
  }
  for (const u of users) u.tabs = nodes.map((_, i) => new Tab(u, i));
  const deadline = Date.now() + 30_000;
  while (!tabs().every((t) => t.connected)) {
    if (Date.now() > deadline) {
      const down = tabs().filter((t) => !t.connected).map((t) => t.name);
      throw new Error(`sockets did not connect: ${down.join(", ")}`);
    }
    await sleep(100);
  }
  for (const t of tabs()) {
    const head = await t.head();
    if (head !== 0) log(`${t.name}: a fresh user's head is ${head}, not 0`);
    if (head !== null) t.last = head;
  }
}

// At the end: every socket connected, caught up, and at its user's head; a socket still behind
// after the settle time has missed the difference.
async function settle() {
  const deadline = Date.now() + settleSeconds * 1000;
  let behind = [];
  for (;;) {
    behind = [];
    for (const u of users) {
      const heads = await Promise.all(u.tabs.map((t) => t.head()));
      const known = heads.filter((h) => h !== null);
      const head = known.length ? Math.max(...known) : null;
      u.tabs.forEach((t, i) => {
        if (heads[i] === null || head === null || t.last !== head) behind.push({ t, head });
      });
    }
    if (!behind.length || Date.now() > deadline) break;
    await sleep(500);
  }
  for (const { t, head } of behind) {
    if (head === null) {
      unchecked++;
      log(`${t.name}: not connected at the end (last offset ${t.last}): its head is unknown`);
    } else if (t.last < head) {
      const gap = head - t.last;
      t.missed += gap;
      finding("missed", `${t.name} ended at ${t.last}, its user's head is ${head}: ${gap} never heard`);
    } else if (t.last > head) {
      unchecked++;
      log(`${t.name} heard offset ${t.last}, beyond its user's head ${head}`);
    } else if (!t.connected) {
      unchecked++;
      log(`${t.name}: not connected at the end`);
    }
  }
}

// Every acked message is in its sender's view of the thread, unless the sender deleted it; no
// client_id is stored twice.
async function checkStored() {
  const wanted = new Map(); // "user thread" -> [{clientId, url}]
  for (const [clientId, m] of acked) {
    const key = `${m.user.index} ${m.thread_id}`;
    if (!wanted.has(key)) wanted.set(key, []);
    wanted.get(key).push({ clientId, url: m.url });
  }
  const jobs = [...wanted.entries()];
  let checked = 0;
  let excused = 0;
  const worker = async () => {
    for (;;) {
      const job = jobs.shift();
      if (!job) return;
      const [key, messages] = job;
      const user = users[Number(key.split(" ")[0])];
      const threadId = key.split(" ")[1];
      const mustBe = messages.filter((m) => !user.deleted.has(m.url));
      excused += messages.length - mustBe.length;
      if (!mustBe.length) continue;
      const stored = new Set();
      const bodies = new Map();
      let before = null;
      for (;;) {
        const q = `?limit=100${before ? `&before=${encodeURIComponent(before)}` : ""}`;
        const page = await httpRetry(`history of ${threadId}`, "GET",
          `/api/v1/threads/${encodeURIComponent(threadId)}/messages${q}`, { token: user.token },
          (r) => r.status === 200 || r.status === 404);
        if (page.status === 404) {
          finding("lost", `thread ${threadId} is not found for ${user.name}, who sent ${mustBe.length} ` +
            `acked messages there and did not delete them`);
          break;
        }
        const list = page.json.messages;
        for (const m of list) {
          stored.add(m.url);
          bodies.set(m.body, (bodies.get(m.body) ?? 0) + 1);
        }
        if (!page.json.has_more || !list.length) break;
        before = list[0].url;
      }
      for (const [body, n] of bodies) {
        if (n > 1 && body.startsWith("soak ")) {
          totals.repeated += n - 1;
          finding("repeated", `${body.slice(5)} is stored ${n} times in thread ${threadId}`);
        }
      }
      for (const { clientId, url } of mustBe) {
        checked++;
        if (!stored.has(url)) {
          totals.lost++;
          finding("lost", `${clientId} (message ${url}, thread ${threadId}) was acked but is not stored`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  log(`stored: ${checked} acked messages checked, ${excused} deleted by their sender not checked`);
}

// Positions never heard, in bursts (skipped less than 3 s apart): one line per burst, to set
// beside the faults' times.
async function reportMissed(gaps) {
  gaps.sort((a, b) => a.ms - b.ms);
  const bursts = [];
  for (const g of gaps) {
    const b = bursts[bursts.length - 1];
    if (b && g.ms - b[b.length - 1].ms < 3000) b.push(g);
    else bursts.push([g]);
  }
  for (const b of bursts) {
    const sockets = new Set(b.map((g) => g.tab.name));
    const perNode = nodes.map((_, i) => `node${i + 1} ${b.filter((g) => g.tab.node === i).length}`);
    const inFlight = b.filter((g) => g.passedMs !== undefined && g.passedMs < 1000).length;
    const first = b[0];
    finding(
      "missed",
      `${b.length} positions never heard, skipped between ${first.at} and ${b[b.length - 1].at} on ` +
        `${sockets.size} sockets (${perNode.join(", ")}); first: ${first.tab.name} position ` +
        `${first.offset}, skipped by ${first.event} at ${first.after} (${first.how})` +
        (inFlight
          ? `; ${inFlight} of them were still awaited less than 1 s later when the socket dropped and ` +
            `its recovered reconnect asked for the events after a later offset`
          : "") +
        `; it was ${await whatWas(first.tab, first.offset)}`,
    );
  }
}

// The logged event at `offset` of the tab's user, as `sync` gives it now.
async function whatWas(tab, offset) {
  try {
    const page = await tab.socket.timeout(ACK_MS).emitWithAck("sync", { since: String(offset - 1) });
    const entry = page?.events?.find((e) => Number(e[2]) === offset);
    if (!entry) return `not in the log (sync: ${JSON.stringify(page).slice(0, 200)})`;
    return `${entry[0]} ${JSON.stringify(entry[1]).slice(0, 300)}`;
  } catch (e) {
    return `unknown (sync: ${e?.message ?? e})`;
  }
}

async function report() {
  const gaps = [];
  for (const t of tabs()) {
    gaps.push(...t.closeGaps());
    totals.missed += t.missed;
    totals.repeated += t.repeated;
    totals.reordered += t.reordered;
  }
  await reportMissed(gaps);
  totals.acked = acked.size;
  totals.failed = totals.sends - totals.acked;
  const fields = ["sends", "acked", "failed", "lost", "missed", "repeated", "reordered", "unrecovered"]
    .map((k) => `${k}=${totals[k]}`)
    .join(" ");
  const perTab = tabs()
    .map((t) => `${t.name} connects=${t.connects} recovered=${t.recoveredCount} ` +
      `unrecovered=${t.unrecoveredCount} heard=${t.heard} last=${t.last} missed=${t.missed} ` +
      `repeated=${t.repeated} reordered=${t.reordered}`)
    .join("\n  ");
  log(`sockets:\n  ${perTab}`);
  log(`operations: ${JSON.stringify(ops)}`);

  if (refusals.size) log(`refused or unanswered: ${JSON.stringify(Object.fromEntries(refusals))}`);
  if (env.SOAK_RESULT_FILE) writeFileSync(env.SOAK_RESULT_FILE, fields + "\n");
  else process.stdout.write(fields + "\n");
  const bad = totals.lost + totals.missed + totals.repeated + totals.reordered > 0;
  return bad ? 1 : unchecked ? 2 : 0;
}

async function main() {
  await setUp();
  log(`${users.length} users, ${tabs().length} sockets on ${nodes.length} nodes; traffic at ${rate} operations/s`);
  if (env.SOAK_READY_FILE) writeFileSync(env.SOAK_READY_FILE, "ready\n");
  const started = Date.now();
  let stopNow;
  const stopSignal = new Promise((r) => (stopNow = r));
  process.on("SIGUSR2", () => {
    stopNow();
  });
  const timer = setTimeout(() => {
    log(`no stop signal after ${maxSeconds} s: stopping`);
    stopNow();
  }, maxSeconds * 1000);
  const loops = users.map((u) => u.run(users));
  await stopSignal;
  clearTimeout(timer);
  stopping = true;
  log(`stopping traffic after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await Promise.all(loops);
  await settle();
  await checkStored();
  const code = await report();
  for (const t of tabs()) t.socket.close();
  process.exit(code);
}

process.on("SIGTERM", () => process.exit(130));
process.on("SIGINT", () => process.exit(130));
main().catch((e) => {
  log(`failed: ${e?.stack ?? e}`);
  process.exit(2);
});
