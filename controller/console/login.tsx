// The sign-in page: a token in, a session cookie (HttpOnly, set by POST /api/v1/session) out, then the console.
import { render } from 'preact';
import { useState } from 'preact/hooks';
import { signIn } from './api.js';

function Login() {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await signIn(token.trim());
      location.assign('/');
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <main id="main" class="login">
      <h1>fleetwave console</h1>
      <form onSubmit={(e) => void submit(e)} aria-describedby="login-help">
        <label for="token">Access token</label>
        <input id="token" name="token" type="password" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <p id="login-help" class="muted">
        A token from <code>fleetwave token create NAME --role viewer|operator|admin</code>. The session ends when the browser closes.
      </p>
      <p class="error" role="alert" aria-live="assertive">
        {error}
      </p>
    </main>
  );
}

render(<Login />, document.getElementById('app')!);
