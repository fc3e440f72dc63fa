// Log in and register screens, and the pages the account mails link to: a forgotten password,
// a new password from a reset link, an e-mail address confirmed by its link.

import { ApiError, api, type User } from '../api';
import { field, showFieldErrors } from '../components';
import { h, replaceChildren } from '../dom';
import type { View } from '../router';

export function authView(mode: 'login' | 'register', onSignedIn: (me: User) => void): View {
  const isLogin = mode === 'login';
  const username = h('input', {
    attrs: { type: 'text', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, maxlength: 32 },
  });
  const password = h('input', {
    attrs: { type: 'password', autocomplete: isLogin ? 'current-password' : 'new-password', required: true, minlength: isLogin ? null : 8, maxlength: 256 },
  });
  // Shown once the server says this account needs a second factor (401 `code_required`).
  const code = h('input', {
    attrs: { type: 'text', inputmode: 'text', autocomplete: 'one-time-code', autocapitalize: 'none', spellcheck: 'false', maxlength: 32 },
  });
  const codeField = field({
    label: 'Two-factor code',
    name: 'code',
    testid: 'login-code',
    input: code,
    hint: h('div', { class: 'hint' }, 'The 6-digit code from your authenticator app, or one of your recovery codes.'),
  });
  codeField.hidden = true;
  const error = h('div', { class: 'form-error', testid: `${mode}-error`, attrs: { role: 'alert' } });
  const submit = h('button', { class: 'primary', testid: `${mode}-submit`, attrs: { type: 'submit' } }, isLogin ? 'Log in' : 'Create account');

  const form = h(
    'form',
    { class: 'card auth', testid: `${mode}-form`, attrs: { novalidate: true } },
    h('h1', null, isLogin ? 'Log in to Missive' : 'Create your account'),
    field({
      label: 'Username',
      name: 'username',
      testid: `${mode}-username`,
      input: username,
      hint: isLogin ? undefined : h('div', { class: 'hint' }, 'Up to 32 letters, digits or underscores.'),
    }),
    field({
      label: 'Password',
      name: 'password',
      testid: `${mode}-password`,
      input: password,
      hint: isLogin ? undefined : h('div', { class: 'hint' }, 'At least 8 characters.'),
    }),
    isLogin ? codeField : null,
    error,
    h('div', { class: 'actions' }, submit),
    isLogin ? h('p', { class: 'muted' }, h('a', { testid: 'go-forgot', attrs: { href: '#/forgot' } }, 'Forgot password?')) : null,
    h(
      'p',
      { class: 'muted' },
      isLogin ? 'New here? ' : 'Already have an account? ',
      h('a', { testid: isLogin ? 'go-register' : 'go-login', attrs: { href: isLogin ? '#/register' : '#/login' } }, isLogin ? 'Create an account' : 'Log in'),
    ),
  );

  function askForCode(message: string): void {
    const first = codeField.hidden;
    codeField.hidden = false;
    showFieldErrors(form, { code: [message] });
    if (first) code.value = '';
    code.focus();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    showFieldErrors(form, {});
    const name = username.value.trim().toLowerCase();
    const local: Record<string, string[]> = {};
    if (!name) local.username = ['Enter a username.'];
    if (!password.value) local.password = ['Enter a password.'];
    if (Object.keys(local).length) {
      showFieldErrors(form, local);
      return;
    }
    // Codes are typed with spaces ("123 456") or read aloud in groups: the server takes them without.
    const secondFactor = codeField.hidden ? undefined : code.value.replace(/\s+/g, '').toLowerCase();
    if (secondFactor === '') {
      askForCode('Enter the code from your authenticator app.');
      return;
    }
    submit.disabled = true;
    try {
      if (!isLogin) await api.register(name, password.value);
      await api.login(name, password.value, secondFactor);
      onSignedIn(await api.me());
    } catch (err) {
      if (err instanceof ApiError) {
        if (isLogin && err.code === 'code_required') {
          askForCode('This account uses two-factor sign-in: enter the code from your authenticator app.');
        } else if (isLogin && secondFactor && err.code === 'invalid_credentials') {
          // The password was right a moment ago: the code is what was refused (or the password changed).
          error.textContent = err.message;
          code.select();
        } else {
          const fields = err.code === 'username_taken' && !err.fields.username ? { ...err.fields, username: [err.message] } : err.fields;
          if (!showFieldErrors(form, fields)) error.textContent = err.message;
        }
      } else {
        error.textContent = 'Something went wrong. Try again.';
        console.error(err);
      }
    } finally {
      submit.disabled = false;
    }
  });

  queueMicrotask(() => username.focus());
  return { el: h('section', { class: 'auth-page' }, form) };
}

/** The message of a failed call, for a form's error line. */
function messageOf(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  console.error(err);
  return 'Something went wrong. Try again.';
}

const backToLogin = () => h('p', { class: 'muted' }, h('a', { testid: 'go-login', attrs: { href: '#/login' } }, 'Back to log in'));

/**
 * "Forgot password?": asks for a username or a verified address; the answer is the same whether
 * or not one matches, so that nobody learns which accounts exist.
 */
export function forgotView(): View {
  const login = h('input', { attrs: { type: 'text', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, maxlength: 256 } });
  const error = h('div', { class: 'form-error', testid: 'forgot-error', attrs: { role: 'alert' } });
  const submit = h('button', { class: 'primary', testid: 'forgot-submit', attrs: { type: 'submit' } }, 'Send a reset link');
  const form = h(
    'form',
    { class: 'card auth', testid: 'forgot-form', attrs: { novalidate: true } },
    h('h1', null, 'Forgot your password?'),
    h('p', { class: 'hint' }, 'If your account has a confirmed e-mail address, we mail it a link to choose a new password. The link works once, for 30 minutes.'),
    field({ label: 'Username or e-mail address', name: 'login', testid: 'forgot-login', input: login }),
    error,
    h('div', { class: 'actions' }, submit),
    backToLogin(),
  );
  const section = h('section', { class: 'auth-page' }, form);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    showFieldErrors(form, {});
    const value = login.value.trim();
    if (!value) {
      showFieldErrors(form, { login: ['Enter your username or e-mail address.'] });
      return;
    }
    submit.disabled = true;
    try {
      await api.requestPasswordReset(value);
      replaceChildren(
        section,
        h(
          'div',
          { class: 'card auth' },
          h('h1', null, 'Check your mail'),
          h('p', { testid: 'forgot-sent', attrs: { role: 'status' } }, 'If an account matches, a link is on its way. It works once, for 30 minutes.'),
          backToLogin(),
        ),
      );
    } catch (err) {
      if (!(err instanceof ApiError && showFieldErrors(form, err.fields))) error.textContent = messageOf(err);
    } finally {
      submit.disabled = false;
    }
  });

  queueMicrotask(() => login.focus());
  return { el: section };
}

/** The page a reset link opens: a new password for the account, then log in with it. */
export function resetPasswordView(token: string, done: (flash: string) => void): View {
  const password = h('input', { attrs: { type: 'password', autocomplete: 'new-password', required: true, minlength: 8, maxlength: 256 } });
  const error = h('div', { class: 'form-error', testid: 'reset-error', attrs: { role: 'alert' } });
  const submit = h('button', { class: 'primary', testid: 'reset-submit', attrs: { type: 'submit' } }, 'Set the new password');
  const form = h(
    'form',
    { class: 'card auth', testid: 'reset-form', attrs: { novalidate: true } },
    h('h1', null, 'Choose a new password'),
    h('p', { class: 'hint' }, 'Every device signed in to your account is signed out.'),
    field({ label: 'New password', name: 'new_password', testid: 'reset-password', input: password, hint: h('div', { class: 'hint' }, 'At least 8 characters.') }),
    error,
    h('div', { class: 'actions' }, submit),
    h('p', { class: 'muted' }, h('a', { testid: 'go-forgot', attrs: { href: '#/forgot' } }, 'Ask for a new link')),
  );

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    showFieldErrors(form, {});
    if (!password.value) {
      showFieldErrors(form, { new_password: ['Enter a new password.'] });
      return;
    }
    submit.disabled = true;
    try {
      await api.resetPassword(token, password.value);
      done('Your password was reset; log in with it.');
    } catch (err) {
      if (err instanceof ApiError && err.code === 'invalid_token') {
        error.textContent = 'This link is no longer valid: it was used already, or it expired. Ask for a new one.';
      } else if (!(err instanceof ApiError && showFieldErrors(form, err.fields))) {
        error.textContent = messageOf(err);
      }
    } finally {
      submit.disabled = false;
    }
  });

  if (!token) error.textContent = 'This link is incomplete. Open the link from the mail again, or ask for a new one.';
  queueMicrotask(() => password.focus());
  return { el: h('section', { class: 'auth-page' }, form) };
}

/** Each token is sent once per page load: going back to the page shows the same answer. */
const verifications = new Map<string, Promise<void>>();

/**
 * The page a confirmation link opens: the address is confirmed at once, signed in or not.
 * `signedIn` re-reads the account when this tab has a session.
 */
export function verifyEmailView(token: string, signedIn: (() => void) | null): View {
  const result = h('p', { testid: 'verify-result', attrs: { role: 'status', 'data-state': 'working' } }, 'Confirming your e-mail address…');
  const next = signedIn
    ? h('p', { class: 'muted' }, h('a', { testid: 'go-settings', attrs: { href: '#/settings' } }, 'Back to settings'))
    : backToLogin();
  const el = h('section', { class: 'auth-page' }, h('div', { class: 'card auth', testid: 'verify-view' }, h('h1', null, 'Confirm e-mail address'), result, next));

  let attempt = verifications.get(token);
  if (!attempt) {
    const sent = token ? api.verifyEmail(token) : Promise.reject(new ApiError(400, 'invalid_token', 'The link is incomplete.'));
    verifications.set(token, sent);
    // Only the server's verdict on the token is final: after a network failure, coming back retries.
    sent.catch((err) => !(err instanceof ApiError && err.status === 400) && verifications.delete(token));
    attempt = sent;
  }
  attempt.then(
    () => {
      result.dataset.state = 'ok';
      result.textContent = 'Your e-mail address is confirmed. Password reset links can be sent to it.';
      signedIn?.();
    },
    (err) => {
      result.dataset.state = 'error';
      result.classList.add('form-error');
      result.textContent =
        err instanceof ApiError && err.code === 'invalid_token'
          ? 'This link is no longer valid: it was used already, or it expired. Set the address again in the settings to get a new one.'
          : messageOf(err);
    },
  );
  return { el };
}
