// Dates in the viewer's own timezone: compact on screen, in full on hover, and day labels
// ("Today", "Yesterday") that stay current past midnight.

import { h } from './dom';

const verbose = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const dayThisYear = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const dayOtherYear = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });

/** For tooltips: the full date, seconds and time zone. */
export function verboseDateTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : verbose.format(d);
}

/** The time of day alone ("14:05"), for messages under a day separator. */
export function clockTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : timeOnly.format(d);
}

/** Short form for lists: the time today, the date otherwise. */
export function shortDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toDateString() === new Date().toDateString() ? timeOnly.format(d) : dateOnly.format(d);
}

/** The local calendar day of a time, as `YYYY-MM-DD` (the key of a day separator). */
export function dayKey(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return 'unknown';
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** "Today", "Yesterday", or the weekday and date (with the year when it is not this one). */
export function dayLabel(key: string, now = new Date()): string {
  const [y, m, d] = key.split('-').map(Number);
  if (!y || !m || !d) return '';
  const day = new Date(y, m - 1, d);
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  // Calendar days, not 24-hour spans: rounding absorbs a daylight-saving hour.
  const daysAgo = Math.round((today.getTime() - day.getTime()) / 86_400_000);
  if (daysAgo === 0) return 'Today';
  if (daysAgo === 1) return 'Yesterday';
  return (day.getFullYear() === now.getFullYear() ? dayThisYear : dayOtherYear).format(day);
}

/** A day's label that refreshDayLabels() keeps current. */
export function dayLabelSpan(key: string, testid?: string): HTMLSpanElement {
  return h('span', { testid, attrs: { 'data-day': key } }, dayLabel(key));
}

/** Relabels every day on the page: "Today" becomes "Yesterday" at midnight. */
export function refreshDayLabels(): void {
  const now = new Date();
  for (const el of document.querySelectorAll<HTMLElement>('[data-day]')) {
    const text = dayLabel(el.dataset.day ?? '', now);
    if (el.textContent !== text) el.textContent = text;
  }
}

const dateAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** A date and time for lists of events ("8 May 2026, 14:05"), in full on hover. */
export function timeStamp(iso: string, testid?: string): HTMLTimeElement {
  const d = new Date(iso);
  const text = Number.isNaN(d.getTime()) ? iso : dateAndTime.format(d);
  return h('time', { testid, attrs: { datetime: iso, title: verboseDateTime(iso) } }, text);
}
