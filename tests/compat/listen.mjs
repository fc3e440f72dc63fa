// Connects one socket.io JavaScript client (of the major version given) to a Missive server the
// way the original Flask-Messaging page did, and reports what it hears, one JSON line per fact:
//   node listen.mjs <version 2|3|4> <base url> <namespace> <cookie> <transport websocket|polling> <event>...
// Prints {"connected": true} (or {"connect_error": ...}), then {"event", "data"} for each awaited
// event, then exits 0 once every awaited event arrived (exit 1 after 15 s).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const [version, base, namespace, cookie, transport, ...awaited] = process.argv.slice(2);
const io = require(`socket.io-client-${version}`);
const connect = io.io ?? io;

const say = (fact) => process.stdout.write(JSON.stringify(fact) + "\n");
const headers = cookie ? { cookie } : {};
const socket = connect(base + namespace, {
  transports: [transport],
  extraHeaders: headers,
  transportOptions: { polling: { extraHeaders: headers }, websocket: { extraHeaders: headers } },
  reconnection: false,
  forceNew: true,
});

const pending = new Set(awaited);
const done = () => {
  if (pending.size === 0) {
    socket.close();
    process.exit(0);
  }
};
socket.on("connect", () => {
  say({ connected: true, transport });
  done();
});
// 2.x reports a refused namespace as "error"; 3.x and 4.x as "connect_error".
socket.on("connect_error", (err) => {
  say({ connect_error: err?.message ?? String(err), data: err?.data ?? null });
  process.exit(2);
});
socket.on("error", (err) => {
  say({ connect_error: typeof err === "string" ? err : err?.message ?? String(err), data: err });
  process.exit(2);
});
for (const name of awaited) {
  socket.on(name, (data) => {
    say({ event: name, data });
    pending.delete(name);
    done();
  });
}
setTimeout(() => {
  say({ timeout: [...pending] });
  process.exit(1);
}, 15000);
