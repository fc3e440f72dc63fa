// Log in and register screens.

import { ApiError, api, type User } from '../api';
import { field, showFieldErrors } from '../components';
import { h } from '../dom';
import type { View } from '../router';

export function authView(mode: 'login' | 'register', onSignedIn: (me: User) => void): View {
  const isLogin = mode === 'login';
  const username = h('input', {
    attrs: { type: 'text', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, maxlength: 32 },
  });
  const password = h('input', {
    attrs: { type: 'password', autocomplete: isLogin ? 'current-password' : 'new-password', required: true, minlength: isLogin ? null : 8, maxlength: 256 },
  });
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
    error,
    h('div', { class: 'actions' }, submit),
    h(
      'p',
      { class: 'muted' },
      isLogin ? 'New here? ' : 'Already have an account? ',
      h('a', { testid: isLogin ? 'go-register' : 'go-login', attrs: { href: isLogin ? '#/register' : '#/login' } }, isLogin ? 'Create an account' : 'Log in'),
    ),
  );

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
    submit.disabled = true;
    try {
      if (!isLogin) await api.register(name, password.value);
      await api.login(name, password.value);
      onSignedIn(await api.me());
    } catch (err) {
      if (err instanceof ApiError) {
        const fields = err.code === 'username_taken' && !err.fields.username ? { ...err.fields, username: [err.message] } : err.fields;
        if (!showFieldErrors(form, fields)) error.textContent = err.message;
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
