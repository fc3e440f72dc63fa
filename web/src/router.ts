// Hash routing (#/inbox, #/thread/<id>, ...): the server serves index.html and knows no routes.

export interface View {
  el: HTMLElement;
  /** Called when the view is left: remove listeners, leave rooms, stop timers. */
  destroy?: () => void;
}

export interface Route {
  name: string;
  params: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const [path, qs = ''] = raw.split('?', 2);
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { name: parts[0] ?? '', params: parts.slice(1), query: new URLSearchParams(qs) };
}

export function threadHref(threadId: string): string {
  return `#/thread/${encodeURIComponent(threadId)}`;
}
