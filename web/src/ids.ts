/**
 * A `client_id`: a UUIDv7, the time in milliseconds followed by 74 random bits. The server
 * indexes every message by client_id, then sender; ids that grow with time all land at that
 * index's end, so each commit writes a page or two of it instead of a page per message
 * (docs/performance.md).
 */
export function newClientId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  const ms = Date.now();
  for (let i = 0; i < 6; i++) b[i] = Math.floor(ms / 2 ** (8 * (5 - i))) % 256;
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
