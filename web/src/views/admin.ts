// Live server statistics from the `/admin` namespace (admins only), as small SVG line charts.

import { io } from 'socket.io-client';
import { h, replaceChildren, svg } from '../dom';
import type { Stats } from '../generated/events';
import type { View } from '../router';

const WINDOW_MS = 60_000;
const W = 300;
const H = 100;

type Sample = { t: number; v: number };

function toMillis(ts: Stats['timestamp']): number {
  const t = Date.parse(ts);
  return Number.isNaN(t) ? Date.now() : t;
}

function format(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function chart(label: string, key: string, unit: string) {
  const value = h('span', { class: 'stat-value', testid: `admin-stat-${key}` }, '–');
  const plot = h('div', { class: 'chart', testid: `admin-chart-${key}` });
  const el = h('figure', { class: 'card chart-card' }, h('figcaption', null, h('span', null, label), value), plot);

  function update(samples: Sample[], now: number): void {
    const last = samples[samples.length - 1];
    value.textContent = last ? `${format(last.v)}${unit}` : '–';
    const max = Math.max(1, ...samples.map((s) => s.v));
    const x = (t: number) => (((t - (now - WINDOW_MS)) / WINDOW_MS) * W).toFixed(1);
    const y = (v: number) => (H - 4 - (v / max) * (H - 8)).toFixed(1);
    const line = svg('polyline', { points: samples.map((s) => `${x(s.t)},${y(s.v)}`).join(' '), fill: 'none', class: 'line', 'vector-effect': 'non-scaling-stroke' });
    const graphic = svg(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `${label}, last 60 seconds, peak ${format(max)}${unit}` },
      svg('line', { x1: 0, y1: H - 4, x2: W, y2: H - 4, class: 'axis', 'vector-effect': 'non-scaling-stroke' }),
      svg('line', { x1: 0, y1: 4, x2: W, y2: 4, class: 'grid', 'vector-effect': 'non-scaling-stroke' }),
      line,
    );
    replaceChildren(plot, graphic, h('div', { class: 'chart-scale muted small' }, h('span', null, '60 s ago'), h('span', null, `max ${format(max)}${unit}`), h('span', null, 'now')));
  }
  return { el, update };
}

export function adminView(): View {
  const status = h('p', { class: 'muted', testid: 'admin-status', attrs: { 'aria-live': 'polite' } }, 'Connecting…');
  const denied = h('p', { class: 'form-error', testid: 'admin-denied', attrs: { hidden: true, role: 'alert' } }, 'Not authorised: this page is for administrators.');
  const sessions = h('span', { testid: 'admin-stat-sessions' }, '–');
  const charts = {
    connections: chart('Connections', 'connections', ''),
    messages_per_second: chart('Messages per second', 'messages_per_second', '/s'),
    db_latency_ms: chart('Database latency', 'db_latency_ms', ' ms'),
  };
  const grid = h('div', { class: 'charts' }, charts.connections.el, charts.messages_per_second.el, charts.db_latency_ms.el);
  const el = h(
    'section',
    { class: 'admin', testid: 'admin-view' },
    h('div', { class: 'page-head' }, h('h1', null, 'Server'), h('p', { class: 'muted' }, 'Sessions: ', sessions)),
    status,
    denied,
    grid,
  );

  const series: Record<keyof typeof charts, Sample[]> = { connections: [], messages_per_second: [], db_latency_ms: [] };
  const socket = io('/admin', { forceNew: true, withCredentials: true, transports: ['websocket', 'polling'] });
  socket.on('connect', () => {
    status.textContent = 'Live: updated every second.';
    denied.hidden = true;
    grid.hidden = false;
  });
  socket.on('disconnect', () => {
    status.textContent = 'Disconnected; reconnecting…';
  });
  socket.on('connect_error', () => {
    // A refusal by the server is final (the client stops); a transport failure is retried.
    if (socket.active) {
      status.textContent = 'Cannot reach the server; retrying…';
      return;
    }
    status.textContent = '';
    denied.hidden = false;
    grid.hidden = true;
  });
  socket.on('stats', (s: Stats) => {
    const t = toMillis(s.timestamp);
    for (const key of Object.keys(series) as (keyof typeof charts)[]) {
      const list = series[key];
      // A negative latency means the database did not answer; plot it at zero.
      list.push({ t, v: Math.max(0, Number(s[key]) || 0) });
      while (list.length && list[0].t < t - WINDOW_MS) list.shift();
      charts[key].update(list, t);
    }
    sessions.textContent = String(s.sessions);
  });

  return {
    el,
    destroy: () => {
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
