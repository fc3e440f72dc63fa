// The Socket.IO connection to the `/messages` namespace: cookie-authenticated, reconnecting by
// itself. A reconnect normally recovers: the server replays every event the tab missed (socket.io's
// connection state recovery, from Missive's durable event log), so nothing needs refetching. Only
// a reconnect that did not recover (the gap was too old, the session changed) is announced, so
// that views reload what they show.

import { io, type Socket } from 'socket.io-client';
import type { Ack, ClientToServerEvents, EndReason, ServerToClientEvents, SessionEnded } from './generated/events';

/** Why the server ended this tab's session, just before it disconnects the tab. */
export type SessionEndReason = EndReason;

/** Server -> client events of the native protocol (generated from the server's Rust types). */
export type ServerEvents = ServerToClientEvents;
export type { Ack };

/** What the ack of client event `E` carries when it succeeds. */
type AckOf<E extends keyof ClientToServerEvents> =
  Parameters<Parameters<ClientToServerEvents[E]>[1]>[0] extends Ack<infer T> ? T : never;

export type ConnectionState = 'connecting' | 'online' | 'offline';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...args: any[]) => void;

export class Realtime {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private connectedBefore = false;
  /** Reconnects that recovered every missed event, and those that made the views reload. */
  recoveries = 0;
  resyncs = 0;
  private stateListeners = new Set<(s: ConnectionState) => void>();
  private resyncListeners = new Set<() => void>();
  private connectListeners = new Set<() => void>();
  state: ConnectionState = 'connecting';

  /** Set once the server said this session is over: nothing reconnects after that. */
  private ended = false;

  constructor(handlers: { unauthorized: () => void; kicked: () => void; ended: (reason: SessionEndReason | string) => void }) {
    this.socket = io('/messages', {
      forceNew: true,
      withCredentials: true,
      // A native client: no legacy Flask-Messaging events (W_newmsg, <thread_id>, ...).
      auth: { legacy: false },
      transports: ['websocket', 'polling'],
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      // An attempt that neither opens nor fails (e.g. closed by a proxy before the handshake)
      // would otherwise hang for the default 20 s before the next try.
      timeout: 8000,
    });
    this.socket.on('connect', () => {
      this.setState('online');
      for (const fn of this.connectListeners) fn();
      if (this.connectedBefore) {
        if (this.socket.recovered) {
          this.recoveries++;
        } else {
          this.resyncs++;
          for (const fn of this.resyncListeners) fn();
        }
      }
      this.connectedBefore = true;
      document.documentElement.dataset.recoveries = String(this.recoveries);
      document.documentElement.dataset.resyncs = String(this.resyncs);
    });
    // The session is over (logged out, ended from another device, password changed, account
    // disabled or deleted): stop reconnecting with it before the server disconnects us.
    this.socket.on('session:ended', (p: Partial<SessionEnded> | null) => {
      if (this.ended) return;
      this.ended = true;
      this.socket.io.reconnection(false);
      handlers.ended(typeof p?.reason === 'string' ? p.reason : '');
    });
    this.socket.on('disconnect', (reason) => {
      this.setState('offline');
      // The server closed us on purpose (e.g. the session was revoked): it won't come back by itself.
      if (reason === 'io server disconnect' && !this.ended) handlers.kicked();
    });
    this.socket.on('connect_error', (err) => {
      this.setState('offline');
      if (this.ended) return;
      if (err.message === 'unauthorized') handlers.unauthorized();
      // The server could not check the credentials (its database is away): not a logout.
      // socket.io-client does not retry a refused CONNECT by itself.
      if (err.message === 'unavailable') {
        setTimeout(() => this.socket.connect(), 1000 + Math.random() * 2000);
      }
    });
    this.socket.io.on('reconnect_attempt', () => this.setState('connecting'));
  }

  private setState(s: ConnectionState): void {
    this.state = s;
    for (const fn of this.stateListeners) fn(s);
  }

  /** Subscribes to a server event; returns the unsubscribe function. */
  on<E extends keyof ServerEvents>(event: E, fn: ServerEvents[E]): () => void {
    const socket = this.socket as unknown as Socket;
    socket.on(event as string, fn as Fn);
    return () => socket.off(event as string, fn as Fn);
  }

  onState(fn: (s: ConnectionState) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  /** Runs after a reconnect that did not recover the missed events: refetch what is shown. */
  onResync(fn: () => void): () => void {
    this.resyncListeners.add(fn);
    return () => this.resyncListeners.delete(fn);
  }

  /** Runs on every connect, including the first: (re)join rooms here, the server forgets them. */
  onConnect(fn: () => void): () => void {
    this.connectListeners.add(fn);
    if (this.socket.connected) fn();
    return () => this.connectListeners.delete(fn);
  }

  /** Resolves once connected, or false after `ms`. */
  waitConnected(ms: number): Promise<boolean> {
    if (this.socket.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        window.clearTimeout(timer);
        this.socket.off('connect', onConnect);
        resolve(ok);
      };
      const onConnect = () => done(true);
      const timer = window.setTimeout(() => done(false), ms);
      this.socket.on('connect', onConnect);
    });
  }

  /**
   * Emits an event that takes an ack and resolves with the ack. Waits briefly for a connection
   * rather than buffering: a request is either answered or reported as failed, never sent later.
   */
  async request<E extends keyof ClientToServerEvents>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
    timeoutMs = 10_000,
  ): Promise<Ack<AckOf<E>>> {
    if (!(await this.waitConnected(5_000))) {
      return { status: false, code: 'offline', message: 'Not connected to the server. Reconnecting; try again in a moment.' };
    }
    try {
      const socket = this.socket as unknown as Socket;
      const ack = (await socket.timeout(timeoutMs).emitWithAck(event, payload)) as Ack<AckOf<E>> | null;
      if (ack && typeof ack === 'object' && 'status' in ack) return ack;
      return { status: false, code: 'invalid_ack', message: 'Unexpected answer from the server.' };
    } catch {
      return { status: false, code: 'timeout', message: 'The server did not answer. Try again.' };
    }
  }

  /** Fire-and-forget (used for typing notifications, which are volatile anyway). */
  emit<E extends keyof ClientToServerEvents>(event: E, payload: Parameters<ClientToServerEvents[E]>[0]): void {
    const socket = this.socket as unknown as Socket;
    if (socket.connected) socket.volatile.emit(event, payload);
  }

  close(): void {
    this.socket.removeAllListeners();
    this.socket.io.removeAllListeners();
    this.socket.disconnect();
    this.stateListeners.clear();
    this.resyncListeners.clear();
    this.connectListeners.clear();
  }
}
