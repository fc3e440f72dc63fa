// A socket.io 4.x page with no recovery code of its own, driven line by line from stdin:
//   node recover.mjs <base url> <cookie>
// Prints {"connected": true, "recovered": <socket.recovered>} at every connect, {"event", "args"}
// for every event (the offset is the last argument), {"disconnected": reason}. Commands:
// "drop" closes the transport (as a network drop does) and stays away; "reconnect" comes back
// the way socket.io's reconnection does; "quit" exits.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(import.meta.url);
const { io } = require("socket.io-client-4");
const [base, cookie] = process.argv.slice(2);

const say = (fact) => process.stdout.write(JSON.stringify(fact) + "\n");
const headers = { cookie };
const socket = io(base + "/messages", {
  transports: ["websocket"],
  extraHeaders: headers,
  transportOptions: { websocket: { extraHeaders: headers } },
  auth: { legacy: false },
  forceNew: true,
  reconnectionDelay: 100,
});

socket.on("connect", () => say({ connected: true, recovered: socket.recovered }));
socket.on("disconnect", (reason) => say({ disconnected: reason }));
socket.on("connect_error", (err) => say({ connect_error: err?.message ?? String(err) }));
socket.onAny((event, ...args) => say({ event, args }));

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "drop") {
    socket.io.reconnection(false);
    socket.io.engine.close();
  } else if (line === "reconnect") {
    socket.io.reconnection(true);
    socket.connect();
  } else if (line === "quit") {
    socket.close();
    process.exit(0);
  }
});
setTimeout(() => process.exit(3), 60000);
