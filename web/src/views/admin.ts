// Live server statistics from the `/admin` namespace (admins only), as small SVG line charts,
// and the accounts: disable, enable, sign out, and each one's security log.

import { io } from 'socket.io-client';
import { ApiError, api, type AdminUser } from '../api';
import { Scope, h, replaceChildren, svg } from '../dom';
import type { Stats } from '../generated/events';
import type { View } from '../router';
import { timeStamp } from '../time';
import { securityLog } from './security';

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

/** The accounts, by name, 100 at a time: their state and what an operator can do to them. */
function usersCard(scope: Scope): HTMLElement {
  const body = h('tbody', { testid: 'admin-users' });
  const status = h('p', { class: 'status-line', testid: 'admin-users-status', attrs: { role: 'status', 'aria-live': 'polite' } }, 'Loading…');
  const more = h('button', { class: 'more small-button', testid: 'admin-users-more', attrs: { type: 'button', hidden: true } }, 'More');
  const card = h(
    'div',
    { class: 'card admin-users-card', testid: 'admin-users-card' },
    h('h2', { class: 'setting-name', attrs: { id: 'admin-users-title' } }, 'Accounts'),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'admin-users', attrs: { 'aria-labelledby': 'admin-users-title' } },
        h(
          'thead',
          null,
          h('tr', null, ...['Username', 'Role', 'State', 'Two-factor', 'Created', 'Actions'].map((t) => h('th', { attrs: { scope: 'col' } }, t))),
        ),
        body,
      ),
    ),
    status,
    more,
  );
  let after: string | null = null;

  function say(text: string, error = false): void {
    status.textContent = text;
    status.classList.toggle('form-error', error);
  }

  /** The account's row, and the row under it where its security log opens. */
  function rows(u: AdminUser): HTMLTableRowElement[] {
    const tr = h('tr', {
      class: 'admin-user',
      testid: 'admin-user-row',
      attrs: { 'data-username': u.username, 'data-admin': String(u.is_admin), 'data-disabled': String(u.disabled), 'data-two-factor': String(u.two_factor) },
    });
    const logRow = h('tr', { class: 'admin-log-row', testid: 'admin-security-log', attrs: { hidden: true, 'data-username': u.username } });
    let logScope: Scope | null = null;

    const act = (action: 'disable' | 'enable' | 'logout', testid: string, label: string) => {
      const button = h('button', { class: 'small-button', testid, attrs: { type: 'button', 'aria-label': `${label} ${u.username}` } }, label);
      button.addEventListener('click', async () => {
        button.disabled = true;
        say('Working…');
        try {
          await api.adminUserAction(u.username, action);
          if (!scope.alive) return;
          if (action === 'disable') u.disabled = true;
          if (action === 'enable') u.disabled = false;
          say(action === 'disable' ? `${u.username} is disabled and signed out.` : action === 'enable' ? `${u.username} can log in again.` : `${u.username} was signed out everywhere.`);
          draw();
        } catch (err) {
          if (scope.alive) say(err instanceof ApiError ? err.message : 'That did not work.', true);
          button.disabled = false;
        }
      });
      return button;
    };

    const logButton = h(
      'button',
      { class: 'small-button', testid: 'admin-events', attrs: { type: 'button', 'aria-expanded': 'false', 'aria-label': `Security log of ${u.username}` } },
      'Security log',
    );
    logButton.addEventListener('click', () => {
      const open = logRow.hidden;
      logRow.hidden = !open;
      logButton.setAttribute('aria-expanded', String(open));
      logScope?.dispose();
      logScope = null;
      if (open) {
        logScope = new Scope();
        scope.add(() => logScope?.dispose());
        const log = securityLog((before) => api.adminSecurityEvents(u.username, before), logScope);
        replaceChildren(logRow, h('td', { attrs: { colspan: 6 } }, h('div', { class: 'hint' }, `Security log of ${u.username}`), log.el));
      } else {
        replaceChildren(logRow);
      }
    });

    function draw(): void {
      tr.dataset.disabled = String(u.disabled);
      replaceChildren(
        tr,
        h('th', { attrs: { scope: 'row' } }, h('span', { testid: 'admin-user-name' }, u.username)),
        h('td', { testid: 'admin-user-role' }, u.is_admin ? h('span', { class: 'tag' }, 'admin') : 'user'),
        h('td', { testid: 'admin-user-state' }, u.disabled ? h('span', { class: 'tag danger-tag' }, 'disabled') : 'active'),
        h('td', { testid: 'admin-user-2fa' }, u.two_factor ? 'on' : 'off'),
        h('td', null, timeStamp(u.created_at)),
        h(
          'td',
          null,
          h(
            'div',
            { class: 'admin-actions' },
            u.disabled ? act('enable', 'admin-enable', 'Enable') : act('disable', 'admin-disable', 'Disable'),
            act('logout', 'admin-logout', 'Sign out'),
            logButton,
          ),
        ),
      );
    }
    draw();
    return [tr, logRow];
  }

  async function load(): Promise<void> {
    more.disabled = true;
    try {
      const res = await api.adminUsers(after);
      if (!scope.alive) return;
      body.append(...res.users.flatMap(rows));
      after = res.next;
      more.hidden = !after;
      say('');
    } catch (err) {
      if (!scope.alive) return;
      // Not an administrator: the page says so above; this card has nothing to show.
      if (err instanceof ApiError && err.status === 403) card.hidden = true;
      else say(err instanceof ApiError ? err.message : 'Could not load the accounts.', true);
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', () => void load());
  void load();
  return card;
}

export function adminView(): View {
  const scope = new Scope();
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
    usersCard(scope),
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
      scope.dispose();
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
