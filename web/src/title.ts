// The tab title: the current page's name, prefixed with the unread count when there is one.

let page = 'Missive';
let unread = 0;

function apply(): void {
  document.title = unread > 0 ? `(${unread}) ${page}` : page;
}

export function setPageTitle(name: string | null): void {
  page = name ? `${name} · Missive` : 'Missive';
  apply();
}

export function setUnreadInTitle(count: number): void {
  unread = count;
  apply();
}
