// Seeding through the HTTP API (Bearer token), for stories that need more data than is pleasant to type.

import { spawn } from 'node:child_process';
import { BIN } from './harness.js';
import { PASSWORD } from './app.js';

async function call(base, method, path, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${base}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status} ${text}`);
  return data;
}

/** Any request, whatever it answers: `{status, body}` (for the refusals a story expects). */
export async function apiRequest(base, method, path, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${base}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { status: res.status, body: data };
}

/** Registers a user without logging in (so no session of theirs exists yet). */
export async function apiRegister(base, username, password = PASSWORD) {
  await call(base, 'POST', '/auth/register', { body: { username, password } });
}

/** Registers a user and returns a Bearer token for it. */
export async function apiUser(base, username, password = PASSWORD) {
  await call(base, 'POST', '/auth/register', { body: { username, password } });
  const { token } = await call(base, 'POST', '/auth/login', { body: { username, password } });
  return token;
}

export async function apiSend(base, token, payload) {
  const { message } = await call(base, 'POST', '/messages', { token, body: payload });
  return message;
}

/** `missive user promote <name>` against the test database. */
export function promote(server, username) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ['user', 'promote', username], {
      env: { ...process.env, MISSIVE_DATABASE_URL: `sqlite://${server.db}?mode=rwc` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (c) => (out += c));
    proc.stderr.on('data', (c) => (out += c));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`promote exited ${code}: ${out}`))));
  });
}
