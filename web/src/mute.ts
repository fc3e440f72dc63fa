// Muting a thread (no pushes for it): the choices the thread menu offers, and the bell-slash
// mark the inbox row and the thread's heading show while it lasts.

import type { Thread } from './api';
import { h, svg } from './dom';
import type { Ctx } from './state';

export const MUTE_CHOICES: readonly { label: string; testid: string; ms: number | null }[] = [
  { label: 'Mute for 1 hour', testid: 'thread-mute-1h', ms: 3_600_000 },
  { label: 'Mute for 8 hours', testid: 'thread-mute-8h', ms: 8 * 3_600_000 },
  { label: 'Mute for 1 week', testid: 'thread-mute-1w', ms: 7 * 24 * 3_600_000 },
  { label: 'Mute until I unmute', testid: 'thread-mute-forever', ms: null },
];

type MuteFields = Pick<Thread, 'muted' | 'muted_until'>;

/** Whether the mute holds now (one whose end has passed no longer does). */
export function isMuted(t: MuteFields, now = Date.now()): boolean {
  if (!t.muted) return false;
  const until = t.muted_until ? Date.parse(t.muted_until) : NaN;
  return Number.isNaN(until) || until > now;
}

const untilFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** "Muted until 3 Mar 2026, 14:05" or "Muted until you unmute it". */
export function muteLabel(t: MuteFields): string {
  const until = t.muted_until ? new Date(t.muted_until) : null;
  if (!until) return 'Muted until you unmute it';
  return `Muted until ${Number.isNaN(until.getTime()) ? t.muted_until : untilFormat.format(until)}`;
}

/** A bell struck through, drawn in the text's colour (an emoji needs a font that may be missing). */
function bellSlash(): SVGElement {
  const stroke = { fill: 'none', stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' };
  return svg(
    'svg',
    { viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false' },
    svg('path', { ...stroke, d: 'M6 16v-5a6 6 0 0 1 12 0v5l1.5 2h-15z' }),
    svg('path', { ...stroke, d: 'M10 21a2 2 0 0 0 4 0' }),
    svg('path', { ...stroke, d: 'M3.5 3.5l17 17' }),
  );
}

/** The bell-slash mark, or null when the thread is not muted. */
export function muteMark(t: MuteFields): HTMLElement | null {
  if (!isMuted(t)) return null;
  const label = muteLabel(t);
  return h(
    'span',
    { class: 'mute-mark', testid: 'thread-muted', attrs: { role: 'img', 'aria-label': label, title: label, 'data-until': t.muted_until ?? '' } },
    bellSlash(),
  );
}

/** Milliseconds until a timed mute ends (to redraw then), or null. */
export function muteEndsIn(t: MuteFields, now = Date.now()): number | null {
  if (!isMuted(t, now) || !t.muted_until) return null;
  return Date.parse(t.muted_until) - now;
}

/** Mutes (`ms` from now, or until unmuted: null) or unmutes; resolves to the thread, or throws the refusal. */
export async function setMute(ctx: Ctx, threadId: string, mute: boolean, ms: number | null = null): Promise<Thread> {
  const ack = mute
    ? await ctx.rt.request('thread:mute', ms === null ? { thread_id: threadId } : { thread_id: threadId, until: new Date(Date.now() + ms).toISOString() })
    : await ctx.rt.request('thread:unmute', { thread_id: threadId });
  if (!ack.status) throw new Error(ack.message);
  return ack.thread;
}
