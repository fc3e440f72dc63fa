// The account security cards of the settings page: sessions, password, e-mail address,
// two-factor sign-in, the security log, the export of one's data and the deletion of the account.
// Every call that takes the password or a code shows a refusal beside the form: a wrong password
// never signs anyone out.

import { ApiError, api, type SecurityEvent, type SessionInfo, type User } from '../api';
import { field, showFieldErrors } from '../components';
import { type Scope, h, replaceChildren } from '../dom';
import type { Ctx } from '../state';
import { timeStamp } from '../time';

/** A settings card; `refresh` shows a new state of the account, `reload` fetches its list again. */
export interface Card {
  el: HTMLElement;
  refresh?(me: User): void;
  reload?(): void;
}

type StatusState = 'ok' | 'error' | 'working' | '';

/** The line under a form saying what happened: `data-state` is ok, error or working. */
function statusLine(testid: string) {
  const el = h('p', { class: 'status-line', testid, attrs: { role: 'status', 'aria-live': 'polite', 'data-state': '' } });
  return {
    el,
    set(state: StatusState, text: string): void {
      el.dataset.state = state;
      el.classList.toggle('form-error', state === 'error');
      el.textContent = text;
    },
  };
}

type Status = ReturnType<typeof statusLine>;

/** Shows why a call failed: beside the inputs the server named, or on the status line. */
function showFailure(form: HTMLElement, status: Status, err: unknown): void {
  if (err instanceof ApiError) {
    showFieldErrors(form, err.fields);
    status.set('error', err.message);
  } else {
    console.error(err);
    status.set('error', 'Something went wrong. Try again.');
  }
}

/** Runs `action` with `buttons` disabled, a "Working…" status and the field errors cleared. */
async function busy(form: HTMLElement, status: Status, buttons: HTMLButtonElement[], scope: Scope, action: () => Promise<void>): Promise<void> {
  showFieldErrors(form, {});
  status.set('working', 'Working…');
  for (const b of buttons) b.disabled = true;
  try {
    await action();
  } catch (err) {
    if (scope.alive) showFailure(form, status, err);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

const passwordInput = (autocomplete: 'current-password' | 'new-password') =>
  h('input', { attrs: { type: 'password', autocomplete, required: true, maxlength: 256, minlength: autocomplete === 'new-password' ? 8 : null } });

const codeInput = () =>
  h('input', { attrs: { type: 'text', inputmode: 'text', autocomplete: 'one-time-code', autocapitalize: 'none', spellcheck: 'false', maxlength: 32 } });

/** A code as typed: spaces dropped ("123 456"), recovery codes in lower case. */
const cleanCode = (input: HTMLInputElement) => input.value.replace(/\s+/g, '').toLowerCase();

const cardTitle = (id: string, text: string) => h('h2', { class: 'setting-name', attrs: { id } }, text);

const noPassword = (testid: string, what: string) =>
  h('p', { class: 'muted', testid, attrs: { hidden: true } }, `This account signs in with a Piratchat key and has no password, so ${what}.`);

// ---- sessions

/** Where this account is signed in, with a way to sign any other device out. */
export function sessionsCard(scope: Scope): Card {
  const list = h('ul', { class: 'session-list', testid: 'sessions-list', attrs: { 'aria-labelledby': 'sessions-title' } });
  const status = statusLine('sessions-status');
  const others = h('button', { class: 'small-button', testid: 'sessions-signout-others', attrs: { type: 'button' } }, 'Sign out everywhere else');
  let generation = 0;

  async function reload(): Promise<void> {
    const mine = ++generation;
    try {
      const { sessions } = await api.sessions();
      if (!scope.alive || mine !== generation) return;
      replaceChildren(list, ...sessions.map(row));
      others.disabled = !sessions.some((s) => !s.current);
    } catch (err) {
      if (scope.alive && mine === generation) status.set('error', err instanceof ApiError ? err.message : 'Could not load the sessions.');
    }
  }

  function row(s: SessionInfo): HTMLElement {
    const device = s.device || 'Unknown device';
    let action: HTMLElement;
    if (s.current) {
      action = h('span', { class: 'tag', testid: 'session-this' }, 'This browser');
    } else {
      const button = h(
        'button',
        { class: 'small-button', testid: 'session-signout', attrs: { type: 'button', 'aria-label': `Sign out ${device}, ${s.address}` } },
        'Sign out',
      );
      button.addEventListener('click', async () => {
        button.disabled = true;
        status.set('working', 'Signing out…');
        try {
          await api.endSession(s.id);
          if (scope.alive) status.set('ok', `${device} was signed out.`);
        } catch (err) {
          if (scope.alive) status.set('error', err instanceof ApiError ? err.message : 'Could not sign it out.');
        }
        await reload();
      });
      action = button;
    }
    return h(
      'li',
      { class: 'session', testid: 'session-row', attrs: { 'data-current': String(s.current), 'data-session-id': s.id } },
      h(
        'div',
        { class: 'session-text' },
        h('div', { class: 'session-device', testid: 'session-device' }, device),
        h(
          'div',
          { class: 'hint' },
          h('span', { testid: 'session-address' }, s.address || 'unknown address'),
          ' · signed in ',
          timeStamp(s.created_at, 'session-created'),
          ' · last seen ',
          timeStamp(s.last_seen_at, 'session-last-seen'),
        ),
      ),
      action,
    );
  }

  others.addEventListener('click', async () => {
    others.disabled = true;
    status.set('working', 'Signing out the other sessions…');
    try {
      await api.logoutOthers();
      if (scope.alive) status.set('ok', 'Every other session was signed out.');
    } catch (err) {
      if (scope.alive) status.set('error', err instanceof ApiError ? err.message : 'Could not sign them out.');
    }
    await reload();
  });

  void reload();
  const el = h(
    'div',
    { class: 'card', testid: 'sessions-card' },
    cardTitle('sessions-title', 'Where you are signed in'),
    h('p', { class: 'hint' }, 'Each browser or app signed in to your account. Sign out any you do not recognise, then change your password.'),
    list,
    status.el,
    h('div', { class: 'actions' }, others),
  );
  return { el, reload: () => void reload() };
}

// ---- password

export function passwordCard(ctx: Ctx, scope: Scope): Card {
  const current = passwordInput('current-password');
  const next = passwordInput('new-password');
  const status = statusLine('password-status');
  const submit = h('button', { class: 'primary small-button', testid: 'password-submit', attrs: { type: 'submit' } }, 'Change password');
  const form = h(
    'form',
    { class: 'card-form', testid: 'password-form', attrs: { novalidate: true } },
    field({ label: 'Current password', name: 'current_password', testid: 'password-current', input: current }),
    field({ label: 'New password', name: 'new_password', testid: 'password-new', input: next, hint: h('div', { class: 'hint' }, 'At least 8 characters.') }),
    status.el,
    h('div', { class: 'actions' }, submit),
  );
  const none = noPassword('password-none', 'there is none to change');

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const local: Record<string, string[]> = {};
    if (!current.value) local.current_password = ['Enter your current password.'];
    if (!next.value) local.new_password = ['Enter a new password.'];
    if (Object.keys(local).length) {
      showFieldErrors(form, local);
      return;
    }
    void busy(form, status, [submit], scope, async () => {
      await api.changePassword(current.value, next.value);
      if (!scope.alive) return;
      current.value = next.value = '';
      status.set('ok', 'Your password was changed. Your other sessions were signed out.');
      void ctx.refreshMe().catch(() => {});
    });
  });

  return {
    el: h('div', { class: 'card', testid: 'password-card' }, cardTitle('password-title', 'Password'), form, none),
    refresh(me) {
      form.hidden = me.has_password === false;
      none.hidden = !form.hidden;
    },
  };
}

// ---- e-mail address

export function emailCard(ctx: Ctx, scope: Scope): Card {
  const address = h('strong', { testid: 'email-address' });
  const verified = h('span', { class: 'tag', testid: 'email-verified' });
  const input = h('input', { attrs: { type: 'email', autocomplete: 'email', spellcheck: 'false', maxlength: 254 } });
  const password = passwordInput('current-password');
  const status = statusLine('email-status');
  const submit = h('button', { class: 'primary small-button', testid: 'email-submit', attrs: { type: 'submit' } }, 'Save address');
  const remove = h('button', { class: 'small-button', testid: 'email-remove', attrs: { type: 'button', hidden: true } }, 'Remove address');
  const form = h(
    'form',
    { class: 'card-form', testid: 'email-form', attrs: { novalidate: true } },
    field({ label: 'New e-mail address', name: 'email', testid: 'email-input', input }),
    field({ label: 'Your password', name: 'password', testid: 'email-password', input: password }),
    status.el,
    h('div', { class: 'actions' }, remove, submit),
  );
  const none = noPassword('email-none', 'an address cannot be set for it here');

  function save(email: string): void {
    if (!password.value) {
      showFieldErrors(form, { password: ['Enter your password.'] });
      return;
    }
    void busy(form, status, [submit, remove], scope, async () => {
      await api.setEmail(email, password.value);
      if (!scope.alive) return;
      password.value = '';
      input.value = '';
      status.set(
        'ok',
        email ? `A confirmation link was sent to ${email}. Open it to confirm the address; it works for 24 hours.` : 'The address was removed.',
      );
      void ctx.refreshMe().catch(() => {});
    });
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const email = input.value.trim();
    if (!email) {
      showFieldErrors(form, { email: ['Enter an e-mail address.'] });
      return;
    }
    save(email);
  });
  remove.addEventListener('click', () => save(''));

  return {
    el: h(
      'div',
      { class: 'card', testid: 'email-card' },
      cardTitle('email-title', 'E-mail address'),
      h('p', { class: 'hint' }, 'Used only to send you a link when you forget your password, once you confirm it.'),
      h('p', { class: 'email-now' }, 'Address: ', address, ' ', verified),
      form,
      none,
    ),
    refresh(me) {
      address.textContent = me.email ? me.email : 'none';
      address.dataset.empty = String(!me.email);
      verified.hidden = !me.email;
      verified.textContent = me.email_verified ? 'verified' : 'not verified';
      verified.dataset.verified = String(!!me.email_verified);
      remove.hidden = !me.email;
      form.hidden = me.has_password === false;
      none.hidden = !form.hidden;
    },
  };
}

// ---- two-factor sign-in

type TwoFactorPhase = 'idle' | 'setup' | 'codes';

export function twoFactorCard(ctx: Ctx, scope: Scope): Card {
  const state = h('strong', { testid: '2fa-status' });
  const message = statusLine('2fa-message');
  const body = h('div', { class: 'two-factor-body' });
  let phase: TwoFactorPhase = 'idle';
  /** The state the idle panel was drawn for (it keeps what is typed while that holds). */
  let drawnFor: boolean | null = null;
  let working = false;

  function run(form: HTMLElement, buttons: HTMLButtonElement[], action: () => Promise<void>): void {
    working = true;
    void busy(form, message, buttons, scope, action).finally(() => {
      working = false;
    });
  }

  /** Two-factor off: turning it on starts with the password. */
  function offPanel(): HTMLElement {
    const password = passwordInput('current-password');
    const start = h('button', { class: 'primary small-button', testid: '2fa-start', attrs: { type: 'submit' } }, 'Turn on');
    const form = h(
      'form',
      { class: 'card-form', testid: '2fa-start-form', attrs: { novalidate: true } },
      h('p', { class: 'hint' }, 'Logging in will also ask for a code from an authenticator app on your phone, so your password alone is not enough.'),
      field({ label: 'Your password', name: 'password', testid: '2fa-password', input: password }),
      h('div', { class: 'actions' }, start),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!password.value) {
        showFieldErrors(form, { password: ['Enter your password.'] });
        return;
      }
      run(form, [start], async () => {
        const setup = await api.startTwoFactor(password.value);
        if (!scope.alive) return;
        message.set('', '');
        show('setup', setupPanel(setup.secret, setup.otpauth_uri));
      });
    });
    return form;
  }

  /** The secret to add to the app (a QR code, or typed), then its first code turns it on. */
  function setupPanel(secret: string, uri: string): HTMLElement {
    const qr = h('img', { class: 'qr', testid: '2fa-qr', attrs: { alt: 'QR code of the secret, to scan with your authenticator app', width: 200, height: 200 } });
    const qrBox = h('div', { class: 'qr-box' }, qr);
    // The QR encoder is loaded only here, when someone turns two-factor on.
    void import('qrcode')
      .then((QR) => QR.toDataURL(uri, { margin: 1, width: 200, errorCorrectionLevel: 'M' }))
      .then((url) => {
        qr.src = url;
      })
      .catch((err) => {
        console.error(err);
        replaceChildren(qrBox, h('p', { class: 'form-error' }, 'The QR code could not be drawn: type the secret into the app instead.'));
      });
    const code = codeInput();
    code.setAttribute('inputmode', 'numeric');
    const confirm = h('button', { class: 'primary small-button', testid: '2fa-confirm', attrs: { type: 'submit' } }, 'Turn on');
    const cancel = h('button', { class: 'small-button', testid: '2fa-cancel', attrs: { type: 'button' } }, 'Cancel');
    const form = h(
      'form',
      { class: 'card-form', testid: '2fa-setup', attrs: { novalidate: true } },
      h('p', null, 'Scan this code with your authenticator app (for example FreeOTP, Aegis or Google Authenticator):'),
      qrBox,
      h('p', { class: 'hint' }, 'Or type this secret into the app: ', h('code', { class: 'secret', testid: '2fa-secret' }, secret)),
      h('p', { class: 'hint' }, h('a', { testid: '2fa-link', attrs: { href: uri } }, 'Open it in an authenticator app on this device')),
      field({ label: 'The 6-digit code the app shows', name: 'code', testid: '2fa-code', input: code }),
      h('div', { class: 'actions' }, cancel, confirm),
    );
    cancel.addEventListener('click', () => {
      message.set('', '');
      show('idle', null);
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const value = cleanCode(code);
      if (!value) {
        showFieldErrors(form, { code: ['Enter the code the app shows.'] });
        return;
      }
      run(form, [confirm, cancel], async () => {
        const { recovery_codes } = await api.confirmTwoFactor(value);
        if (!scope.alive) return;
        message.set('ok', 'Two-factor sign-in is on.');
        show('codes', codesPanel(recovery_codes));
        void ctx.refreshMe().catch(() => {});
      });
    });
    queueMicrotask(() => code.focus());
    return form;
  }

  /** Recovery codes are shown once: each signs in one time without the app. */
  function codesPanel(codes: string[]): HTMLElement {
    const done = h('button', { class: 'primary small-button', testid: '2fa-done', attrs: { type: 'button' } }, 'I have saved them');
    done.addEventListener('click', () => {
      message.set('', '');
      show('idle', null);
    });
    return h(
      'div',
      { class: 'card-form', testid: 'recovery-codes' },
      h('p', { class: 'setting-name' }, 'Your recovery codes'),
      h(
        'p',
        { class: 'hint', testid: 'recovery-hint' },
        'Keep these somewhere safe, such as a password manager or on paper: if you lose your phone, each code logs you in once in place of the app. They are not shown again.',
      ),
      h('ul', { class: 'recovery-list', attrs: { 'aria-label': 'Recovery codes' } }, ...codes.map((c) => h('li', null, h('code', { testid: 'recovery-code' }, c)))),
      h('div', { class: 'actions' }, done),
    );
  }

  /** Two-factor on: turning it off, or new recovery codes, each with the password and a code. */
  function onPanel(): HTMLElement {
    const password = passwordInput('current-password');
    const code = codeInput();
    const off = h('button', { class: 'small-button', testid: '2fa-off', attrs: { type: 'submit' } }, 'Turn off');
    const renew = h('button', { class: 'small-button', testid: '2fa-new-codes', attrs: { type: 'button' } }, 'New recovery codes');
    const form = h(
      'form',
      { class: 'card-form', testid: '2fa-manage', attrs: { novalidate: true } },
      h('p', { class: 'hint' }, 'Logging in asks for a code from your authenticator app. To turn it off or get new recovery codes (the old ones then stop working), enter your password and a code.'),
      field({ label: 'Your password', name: 'password', testid: '2fa-off-password', input: password }),
      field({ label: 'A code from the app, or a recovery code', name: 'code', testid: '2fa-off-code', input: code }),
      h('div', { class: 'actions' }, renew, off),
    );
    const check = (): boolean => {
      const local: Record<string, string[]> = {};
      if (!password.value) local.password = ['Enter your password.'];
      if (!cleanCode(code)) local.code = ['Enter a code.'];
      showFieldErrors(form, local);
      return Object.keys(local).length === 0;
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!check()) return;
      run(form, [off, renew], async () => {
        await api.disableTwoFactor(password.value, cleanCode(code));
        await ctx.refreshMe().catch(() => {});
        if (!scope.alive) return;
        message.set('ok', 'Two-factor sign-in is off.');
        ctx.me.two_factor = false;
        show('idle', null);
      });
    });
    renew.addEventListener('click', () => {
      if (!check()) return;
      run(form, [off, renew], async () => {
        const { recovery_codes } = await api.newRecoveryCodes(password.value, cleanCode(code));
        if (!scope.alive) return;
        message.set('ok', 'New recovery codes: the old ones no longer work.');
        show('codes', codesPanel(recovery_codes));
      });
    });
    return form;
  }

  /** Shows `panel` for `next` (the idle panel is drawn from the account's state when null). */
  function show(next: TwoFactorPhase, panel: HTMLElement | null): void {
    phase = next;
    if (next === 'idle') {
      drawnFor = ctx.me.two_factor === true;
      replaceChildren(body, drawnFor ? onPanel() : offPanel());
    } else {
      drawnFor = null;
      replaceChildren(body, panel);
    }
  }

  return {
    el: h(
      'div',
      { class: 'card', testid: 'two-factor-card' },
      cardTitle('2fa-title', 'Two-factor sign-in'),
      h('p', { class: 'two-factor-state' }, 'Two-factor sign-in is ', state, '.'),
      body,
      message.el,
    ),
    refresh(me) {
      const on = me.two_factor === true;
      state.textContent = on ? 'on' : 'off';
      state.dataset.on = String(on);
      body.hidden = me.has_password === false;
      if (working) return; // the answer being awaited redraws the panel
      // Drawn anew only when the state it shows changed (here or on another device).
      if ((phase === 'idle' && drawnFor !== on) || (phase === 'setup' && on)) show('idle', null);
    },
  };
}

// ---- security log

const KINDS: Record<string, string> = {
  login: 'Logged in',
  login_failed: 'Failed login attempt',
  password_changed: 'Password changed',
  password_reset: 'Password reset from an e-mailed link',
  session_ended: 'Session signed out',
  email_changed: 'E-mail address changed',
  two_factor_on: 'Two-factor sign-in turned on',
  two_factor_off: 'Two-factor sign-in turned off',
};

/** A security log's entries, newest first, 50 at a time ("More"). */
export function securityLog(load: (before: string | null) => Promise<{ events: SecurityEvent[]; next: string | null }>, scope: Scope) {
  const list = h('ul', { class: 'event-list', testid: 'security-events' });
  const empty = h('p', { class: 'muted', testid: 'security-empty', attrs: { hidden: true } }, 'Nothing recorded yet.');
  const error = h('div', { class: 'form-error', testid: 'security-error', attrs: { role: 'alert' } });
  const more = h('button', { class: 'more small-button', testid: 'security-more', attrs: { type: 'button', hidden: true } }, 'More');
  let next: string | null = null;
  let generation = 0;

  function row(e: SecurityEvent): HTMLElement {
    return h(
      'li',
      { class: 'event', testid: 'security-event', attrs: { 'data-kind': e.kind } },
      h('span', { class: 'event-kind', testid: 'security-event-kind' }, KINDS[e.kind] ?? e.kind.replace(/_/g, ' ')),
      h(
        'span',
        { class: 'hint' },
        timeStamp(e.at, 'security-event-time'),
        e.address ? ' · ' : null,
        e.address ? h('span', { testid: 'security-event-address' }, e.address) : null,
        e.device ? ' · ' : null,
        e.device ? h('span', { testid: 'security-event-device' }, e.device) : null,
      ),
    );
  }

  async function page(first: boolean): Promise<void> {
    const mine = first ? ++generation : generation;
    more.disabled = true;
    error.textContent = '';
    try {
      const res = await load(first ? null : next);
      if (!scope.alive || mine !== generation) return;
      if (first) replaceChildren(list, ...res.events.map(row));
      else list.append(...res.events.map(row));
      next = res.next;
      more.hidden = !next;
      empty.hidden = list.childElementCount > 0;
    } catch (err) {
      if (scope.alive && mine === generation) error.textContent = err instanceof ApiError ? err.message : 'Could not load the log.';
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', () => void page(false));
  void page(true);
  return { el: h('div', { class: 'security-log' }, list, empty, error, more), reload: () => void page(true) };
}

export function securityLogCard(scope: Scope): Card {
  const log = securityLog(api.securityEvents, scope);
  return {
    el: h(
      'div',
      { class: 'card', testid: 'security-log-card' },
      cardTitle('security-log-title', 'Security log'),
      h('p', { class: 'hint' }, 'Logins, failed attempts and changes to your account over the last 90 days, newest first.'),
      log.el,
    ),
    reload: log.reload,
  };
}

// ---- export

export function exportCard(ctx: Ctx, scope: Scope): Card {
  const password = passwordInput('current-password');
  const status = statusLine('export-status');
  const submit = h('button', { class: 'small-button', testid: 'export-submit', attrs: { type: 'submit' } }, 'Download my data');
  const form = h(
    'form',
    { class: 'card-form', testid: 'export-form', attrs: { novalidate: true } },
    field({ label: 'Your password', name: 'password', testid: 'export-password', input: password }),
    status.el,
    h('div', { class: 'actions' }, submit),
  );
  const none = noPassword('export-none', 'its data cannot be exported here');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!password.value) {
      showFieldErrors(form, { password: ['Enter your password.'] });
      return;
    }
    void busy(form, status, [submit], scope, async () => {
      const blob = await api.exportData(password.value);
      password.value = '';
      download(blob, `missive-${ctx.me.username}.json`);
      if (scope.alive) status.set('ok', 'Your data was downloaded.');
    });
  });
  return {
    el: h(
      'div',
      { class: 'card', testid: 'export-card' },
      cardTitle('export-title', 'Your data'),
      h('p', { class: 'hint' }, 'Download your account and every conversation you are in, with their messages, as one JSON file.'),
      form,
      none,
    ),
    refresh(me) {
      form.hidden = me.has_password === false;
      none.hidden = !form.hidden;
    },
  };
}

/** Saves `blob` as a file named `name` (through a temporary link). */
function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = h('a', { attrs: { href: url, download: name, hidden: true } });
  document.body.append(a);
  a.click();
  a.remove();
  // The download has started from the link; the object URL is not needed after that.
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---- deletion

export function deleteCard(ctx: Ctx, scope: Scope): Card {
  const password = passwordInput('current-password');
  const code = codeInput();
  const codeField = field({ label: 'A code from your authenticator app, or a recovery code', name: 'code', testid: 'delete-code', input: code });
  const status = statusLine('delete-status');
  const submit = h('button', { class: 'danger-button small-button', testid: 'delete-submit', attrs: { type: 'submit' } }, 'Delete my account');
  const form = h(
    'form',
    { class: 'card-form', testid: 'delete-form', attrs: { novalidate: true } },
    field({ label: 'Your password', name: 'password', testid: 'delete-password', input: password }),
    codeField,
    status.el,
    h('div', { class: 'actions' }, submit),
  );
  const none = noPassword('delete-none', 'it cannot be deleted here');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const local: Record<string, string[]> = {};
    if (!password.value) local.password = ['Enter your password.'];
    if (!codeField.hidden && !cleanCode(code)) local.code = ['Enter a code.'];
    if (Object.keys(local).length) {
      showFieldErrors(form, local);
      return;
    }
    void busy(form, status, [submit], scope, async () => {
      try {
        await api.deleteAccount(password.value, codeField.hidden ? undefined : cleanCode(code));
      } catch (err) {
        // Two-factor was turned on elsewhere since this page was drawn: ask for the code too.
        if (err instanceof ApiError && err.code === 'code_required') codeField.hidden = false;
        throw err;
      }
      ctx.endSession('Your account was deleted.');
    });
  });
  return {
    el: h(
      'div',
      { class: 'card danger-zone', testid: 'delete-card' },
      cardTitle('delete-title', 'Delete your account'),
      h(
        'p',
        { class: 'warning', testid: 'delete-warning' },
        'This cannot be undone. Your account, sessions, e-mail address and second factor are deleted at once, and you are signed out everywhere. The messages you sent stay in the others’ conversations, from “deleted user”. Your username stays reserved.',
      ),
      form,
      none,
    ),
    refresh(me) {
      if (me.two_factor === true) codeField.hidden = false;
      else if (!code.value) codeField.hidden = true;
      form.hidden = me.has_password === false;
      none.hidden = !form.hidden;
    },
  };
}
