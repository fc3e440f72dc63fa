// Dates in the viewer's own timezone, plus relative times ("3 minutes ago") that stay current.

import { h } from './dom';

const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const verbose = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

export function localDateTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : full.format(d);
}

/** For tooltips: the full date, seconds and time zone. */
export function verboseDateTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : verbose.format(d);
}

/** Short form for lists: the time today, the date otherwise. */
export function shortDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toDateString() === new Date().toDateString() ? timeOnly.format(d) : dateOnly.format(d);
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];

export function relative(iso: string, now = Date.now()): string {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '';
  const secs = Math.round((t - now) / 1000);
  if (Math.abs(secs) < 45) return 'just now';
  for (const [unit, size] of UNITS) {
    if (Math.abs(secs) >= size || unit === 'minute') return rtf.format(Math.round(secs / size), unit);
  }
  return '';
}

/** A <span> showing the relative time; refreshRelativeTimes() keeps every one current. */
export function relativeSpan(iso: string, testid?: string): HTMLSpanElement {
  const el = h('span', { class: 'rel', testid, attrs: { 'data-rel-ts': iso } }, relative(iso));
  return el;
}

export function refreshRelativeTimes(): void {
  const now = Date.now();
  for (const el of document.querySelectorAll<HTMLElement>('[data-rel-ts]')) {
    const text = relative(el.dataset.relTs ?? '', now);
    if (el.textContent !== text) el.textContent = text;
  }
}
