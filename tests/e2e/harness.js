// Test harness: starts the real Missive server on a free port and drives Chromium with playwright-core.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { simpleParser } from 'mailparser';
import { chromium } from 'playwright-core';
import { SMTPServer } from 'smtp-server';

const here = path.dirname(fileURLToPath(import.meta.url));

export const BIN = process.env.MISSIVE_BIN ?? path.resolve(here, '../../target/debug/missive');
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(here, 'screenshots');
/** Generous: the machine running these may be slow. */
export const WAIT = Number(process.env.E2E_WAIT_MS ?? 30_000);

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The real server binary, on a fixed port and database file so it can be restarted in place.
 * `env`: more settings for it, or a function of the server giving them once its port is chosen
 * (e.g. `(s) => ({ MISSIVE_PUBLIC_URL: s.url })`).
 */
export class MissiveServer {
  constructor({ env = {} } = {}) {
    this.extraEnv = env;
    this.dir = mkdtempSync(path.join(tmpdir(), 'missive-e2e-'));
    this.db = path.join(this.dir, 'e2e.db');
    this.port = 0;
    this.proc = null;
    this.log = [];
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    if (!existsSync(BIN)) throw new Error(`server binary not found at ${BIN} (build it, or set MISSIVE_BIN)`);
    if (!this.port) this.port = await freePort();
    const env = {
      ...process.env,
      MISSIVE_BIND: `127.0.0.1:${this.port}`,
      MISSIVE_DATABASE_URL: `sqlite://${this.db}?mode=rwc`,
      // The tests seed long threads and many accounts from one address in a few seconds: faster
      // than the default send and login limits allow a person (those limits have their own tests).
      MISSIVE_SEND_RATE: '0',
      MISSIVE_LOGIN_RATE: '10000',
      ...(typeof this.extraEnv === 'function' ? this.extraEnv(this) : this.extraEnv),
    };
    const proc = spawn(BIN, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const keep = (chunk) => {
      for (const line of String(chunk).split('\n')) if (line) this.log.push(line);
      if (this.log.length > 400) this.log.splice(0, this.log.length - 400);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    let exited = null;
    proc.once('exit', (code, signal) => {
      exited = { code, signal };
    });

    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`server exited during start-up (${JSON.stringify(exited)}):\n${this.tail()}`);
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await delay(100);
    }
    throw new Error(`server did not become healthy within 60 s:\n${this.tail()}`);
  }

  /** SIGTERM, then wait for the process to go (SIGKILL if it will not). */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(timer);
    this.proc = null;
  }

  tail(n = 60) {
    return this.log.slice(-n).join('\n');
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * An SMTP server on a free local port that keeps every mail it is sent, parsed: `{to, subject,
 * text}` (`to`: the envelope's recipients, in lower case). Plain SMTP, no TLS, no authentication.
 */
export class MailSink {
  constructor() {
    this.port = 0;
    this.messages = [];
    this.server = null;
  }

  get url() {
    return `smtp://127.0.0.1:${this.port}`;
  }

  async start() {
    this.port = await freePort();
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      size: 1024 * 1024,
      logger: false,
      onData: (stream, session, callback) => {
        simpleParser(stream).then(
          (mail) => {
            if (stream.sizeExceeded) {
              callback(Object.assign(new Error('message too big'), { responseCode: 552 }));
              return;
            }
            this.messages.push({
              to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
              subject: mail.subject ?? '',
              text: mail.text ?? '',
            });
            callback();
          },
          (err) => callback(err),
        );
      },
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** The first mail for which `predicate` holds, waiting for it. */
  waitFor(predicate, what = 'a mail') {
    return eventually(() => this.messages.find(predicate) ?? false, { what });
  }

  stop() {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/**
 * A browser context (one "device": its own cookies) whose pages record dialogs and page errors,
 * so a test can assert that nothing ever ran `alert` and no script crashed.
 */
export async function newDevice(browser, baseURL, options = {}) {
  const context = await browser.newContext({ baseURL, viewport: { width: 1100, height: 800 }, ...options });
  context.setDefaultTimeout(WAIT);
  const device = { context, dialogs: [], errors: [] };
  context.on('page', (page) => watch(device, page));
  device.newPage = async () => context.newPage();
  return device;
}

function watch(device, page) {
  page.on('dialog', (d) => {
    device.dialogs.push(d.message());
    void d.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => device.errors.push(String(err)));
}

export function delay(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Retries `check` (which throws or returns false) until it passes or `timeout` runs out. */
export async function eventually(check, { timeout = WAIT, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const ok = await check();
      if (ok !== false) return ok;
      last = new Error(`${what}: not yet`);
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const e = new Error(`timed out after ${timeout} ms waiting for ${what}: ${last?.message ?? last}`);
      e.cause = last;
      throw e;
    }
    await delay(interval);
  }
}

export function ensureScreenshotDir() {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return SCREENSHOTS;
}

let counter = 0;
/** A fresh, valid username per call (usernames are [a-z0-9_]{1,32}). */
export function uniqueName(base) {
  counter += 1;
  return `${base}_${Date.now().toString(36).slice(-5)}${counter}`;
}
