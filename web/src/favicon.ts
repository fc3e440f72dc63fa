// The tab's icon: the app's icon, with a red badge carrying the unread count when there is one
// (drawn on a canvas and set as a data: URL, which the CSP's img-src allows).

const PLAIN = '/favicon.svg';
const SIZE = 64;

/** The page's <link rel=icon> (index.html has one; made if a page lacks it). */
function iconLink(): HTMLLinkElement {
  let link = document.querySelector<HTMLLinkElement>('link[data-testid="favicon"]');
  if (!link) {
    link = document.createElement('link');
    link.rel = 'icon';
    link.dataset.testid = 'favicon';
    document.head.append(link);
  }
  return link;
}

let base: Promise<HTMLImageElement | null> | null = null;
/** The plain icon as an image to draw the badge on (null if it cannot load: a glyph stands in). */
function baseImage(): Promise<HTMLImageElement | null> {
  base ??= new Promise((resolve) => {
    const img = new Image(SIZE, SIZE);
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);
    img.src = PLAIN;
  });
  return base;
}

/** "1".."9", then "9+": more does not fit in a 16-pixel icon. */
const badgeText = (count: number) => (count > 9 ? '9+' : String(count));

function draw(img: HTMLImageElement | null, count: number): string | null {
  const canvas = document.createElement('canvas');
  canvas.width = SIZE;
  canvas.height = SIZE;
  const g = canvas.getContext('2d');
  if (!g) return null;
  if (img) {
    g.drawImage(img, 0, 0, SIZE, SIZE);
  } else {
    g.fillStyle = '#2f6fde';
    g.beginPath();
    g.roundRect(2, 2, 60, 60, 14);
    g.fill();
  }
  // The badge: a red disc with a white rim at the top right, the count in it.
  const r = 19;
  const cx = SIZE - r;
  const cy = r;
  g.beginPath();
  g.arc(cx, cy, r, 0, Math.PI * 2);
  g.fillStyle = '#ffffff';
  g.fill();
  g.beginPath();
  g.arc(cx, cy, r - 3, 0, Math.PI * 2);
  g.fillStyle = '#d93025';
  g.fill();
  const text = badgeText(count);
  g.fillStyle = '#ffffff';
  g.font = `bold ${text.length > 1 ? 20 : 26}px system-ui, sans-serif`;
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillText(text, cx, cy + 1);
  try {
    return canvas.toDataURL('image/png');
  } catch {
    return null;
  }
}

let generation = 0;

/** Shows `count` unread messages on the tab's icon (0: the plain icon). */
export function setUnreadOnFavicon(count: number): void {
  const link = iconLink();
  const mine = ++generation;
  link.dataset.unread = String(Math.max(0, count));
  if (count <= 0) {
    link.type = 'image/svg+xml';
    link.href = PLAIN;
    link.dataset.badge = 'false';
    return;
  }
  void baseImage().then((img) => {
    // A later count may have been set while the image loaded: only the latest is drawn.
    if (mine !== generation) return;
    const url = draw(img, count);
    if (!url) return;
    link.type = 'image/png';
    link.href = url;
    link.dataset.badge = 'true';
  });
}
