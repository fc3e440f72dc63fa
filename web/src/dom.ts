// Tiny DOM helpers. User data only ever reaches the page as text nodes or attribute
// values: nothing here (or anywhere in the client) assigns innerHTML.

export type Child = Node | string | number | null | undefined | false;

type Handler = (ev: Event) => void;

export interface Props {
  class?: string;
  testid?: string;
  attrs?: Record<string, string | number | boolean | null | undefined>;
  on?: Record<string, Handler>;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    if (props.class) el.className = props.class;
    if (props.testid) el.dataset.testid = props.testid;
    if (props.attrs) setAttrs(el, props.attrs);
    if (props.on) for (const [name, fn] of Object.entries(props.on)) el.addEventListener(name, fn);
  }
  append(el, ...children);
  return el;
}

export function setAttrs(el: Element, attrs: NonNullable<Props['attrs']>): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) el.removeAttribute(name);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces all children of `parent`. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: Element[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag) as SVGElement;
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.appendChild(c);
  return el;
}

/**
 * Puts the elements for `keys` into `list` in that order, moving only what is out of
 * place (moving a node blurs it) and removing every other child.
 */
export function reconcile(list: Element, keys: readonly string[], elementFor: (key: string) => Element): void {
  const focused = document.activeElement;
  let next = list.firstElementChild;
  for (const key of keys) {
    const el = elementFor(key);
    if (el === next) next = next.nextElementSibling;
    else list.insertBefore(el, next);
  }
  while (next) {
    const after = next.nextElementSibling;
    next.remove();
    next = after;
  }
  // Moving a node blurs it; a keyboard user should not lose their place when a row moves.
  if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) focused.focus({ preventScroll: true });
}

/** Collects clean-up work for a view so leaving it removes every listener and timer. */
export class Scope {
  private disposers: (() => void)[] = [];
  private closed = false;

  add(dispose: () => void): void {
    if (this.closed) dispose();
    else this.disposers.push(dispose);
  }

  listen<E extends Event = Event>(target: EventTarget, type: string, fn: (ev: E) => void, opts?: AddEventListenerOptions): void {
    target.addEventListener(type, fn as EventListener, opts);
    this.add(() => target.removeEventListener(type, fn as EventListener, opts));
  }

  interval(fn: () => void, ms: number): void {
    const id = window.setInterval(fn, ms);
    this.add(() => window.clearInterval(id));
  }

  get alive(): boolean {
    return !this.closed;
  }

  dispose(): void {
    this.closed = true;
    const ds = this.disposers.splice(0).reverse();
    for (const d of ds) {
      try {
        d();
      } catch (e) {
        console.error(e);
      }
    }
  }
}

/** A function that runs `fn` once calls have paused for `ms`. */
export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): ((...args: A) => void) & { cancel(): void } {
  let timer: number | undefined;
  const wrapped = (...args: A) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => window.clearTimeout(timer);
  return wrapped;
}
