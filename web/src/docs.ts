// The API reference page (/api/v1/docs): renders the OpenAPI document the server generates
// from its handlers (/api/v1/openapi.json). Everything comes from this origin.

import './docs.css';

type Json = Record<string, unknown>;
interface Schema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
  additionalProperties?: Schema | boolean;
  description?: string;
  format?: string;
}

const root = document.getElementById('docs')!;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

/** A schema as one short type expression: `Thread[]`, `string | null`, `{ code, message }`. */
function typeOf(s: Schema | undefined): string {
  if (!s) return 'any';
  if (s.$ref) return s.$ref.split('/').pop() ?? s.$ref;
  const alts = s.oneOf ?? s.anyOf;
  if (alts) return alts.map(typeOf).join(' | ');
  if (s.allOf) return s.allOf.map(typeOf).join(' & ');
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  return types
    .map((t) => {
      if (t === 'array') return `${typeOf(s.items)}[]`;
      if (t === 'object' && s.properties) return `{ ${Object.keys(s.properties).join(', ')} }`;
      if (t === 'object' && typeof s.additionalProperties === 'object') return `{ [name]: ${typeOf(s.additionalProperties)} }`;
      return t;
    })
    .join(' | ') || 'any';
}

function fields(s: Schema): HTMLTableElement | null {
  if (!s.properties) return null;
  const table = el('table');
  const head = table.insertRow();
  for (const title of ['field', 'type', '']) head.appendChild(el('th', title));
  for (const [name, prop] of Object.entries(s.properties)) {
    const row = table.insertRow();
    row.insertCell().appendChild(el('code', name + (s.required?.includes(name) ? '' : '?')));
    row.insertCell().appendChild(el('code', typeOf(prop)));
    row.insertCell().textContent = prop.description ?? '';
  }
  return table;
}

function body(content: Json | undefined): HTMLElement | null {
  if (!content) return null;
  const [[mime, media]] = Object.entries(content) as [string, { schema?: Schema }][];
  return el('p', `${mime}: ${typeOf(media.schema)}`);
}

function operation(path: string, method: string, op: Json): HTMLElement {
  const box = el('details', undefined, 'op');
  const summary = el('summary');
  summary.append(el('span', method, `method ${method}`), el('span', path, 'path'));
  const line = (op.summary ?? op.description ?? '') as string;
  summary.append(el('span', line.split('\n')[0], 'summary'));
  box.appendChild(summary);
  const inner = el('div');
  if (op.description && op.description !== line) inner.appendChild(el('p', op.description as string));
  const params = (op.parameters ?? []) as { name: string; in: string; required?: boolean; schema?: Schema; description?: string }[];
  if (params.length) {
    inner.appendChild(el('h3', 'Parameters'));
    const table = el('table');
    for (const p of params) {
      const row = table.insertRow();
      row.insertCell().appendChild(el('code', p.name + (p.required ? '' : '?')));
      row.insertCell().textContent = p.in;
      row.insertCell().appendChild(el('code', typeOf(p.schema)));
      row.insertCell().textContent = p.description ?? '';
    }
    inner.appendChild(table);
  }
  const request = op.requestBody as { content?: Json } | undefined;
  if (request) {
    inner.appendChild(el('h3', 'Request body'));
    const b = body(request.content);
    if (b) inner.appendChild(b);
  }
  inner.appendChild(el('h3', 'Responses'));
  const table = el('table');
  for (const [status, r] of Object.entries((op.responses ?? {}) as Record<string, { description?: string; content?: Json }>)) {
    const row = table.insertRow();
    row.insertCell().appendChild(el('code', status));
    row.insertCell().textContent = r.description ?? '';
    const b = r.content ? body(r.content)?.textContent ?? '' : '';
    row.insertCell().appendChild(el('code', b));
  }
  inner.appendChild(table);
  const security = op.security as Json[] | undefined;
  if (security?.length) {
    const ways = security.map((s) => Object.keys(s)[0] ?? 'none').join(', ');
    inner.appendChild(el('p', `Credentials: ${ways}`, 'muted'));
  }
  box.appendChild(inner);
  return box;
}

async function render(): Promise<void> {
  const response = await fetch('/api/v1/openapi.json', { credentials: 'same-origin' });
  const doc = (await response.json()) as Json;
  const info = doc.info as { title: string; version: string; description?: string };
  root.replaceChildren();
  root.append(el('h1', `${info.title} ${info.version}`));
  const lead = el('p', info.description ?? '', 'lead');
  root.append(lead);
  const raw = el('p');
  const link = el('a', 'openapi.json');
  link.href = '/api/v1/openapi.json';
  raw.append('OpenAPI ', (doc.openapi as string) ?? '', ' document: ', link);
  root.append(raw);

  const byTag = new Map<string, HTMLElement[]>();
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const method of ['get', 'post', 'put', 'delete', 'patch']) {
      const op = item[method] as Json | undefined;
      if (!op) continue;
      const tag = ((op.tags as string[] | undefined) ?? ['other'])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push(operation(path, method, op));
    }
  }
  for (const [tag, ops] of byTag) {
    root.append(el('h2', tag));
    root.append(...ops);
  }
  const schemas = ((doc.components as Json | undefined)?.schemas ?? {}) as Record<string, Schema>;
  root.append(el('h2', 'Schemas'));
  for (const [name, schema] of Object.entries(schemas)) {
    const box = el('section', undefined, 'schema');
    box.id = `schema-${name}`;
    box.append(el('h3', name));
    if (schema.description) box.append(el('p', schema.description, 'muted'));
    box.append(fields(schema) ?? el('p', typeOf(schema)));
    root.append(box);
  }
  root.removeAttribute('aria-busy');
}

render().catch((e: unknown) => {
  root.textContent = `The API description could not be loaded: ${String(e)}`;
});
