// The console's shell: who is signed in, the hash routes, the live event stream, sign-out.
//
//   #/fleet                 groups with counts by status; a group opened shows its instance tiles
//   #/releases              every release, newest first
//   #/releases/<id>         one release: batch timeline, instances with steps, change records, actions
//   #/editions/<app>        an app's editions and where each is active
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { signOut, whoami } from './api.js';
import { publish } from './components.js';
import { eventsUrl, openEvents, type LiveState } from './live.js';
import { streamFor } from './streams.js';
import type { Whoami } from './types.js';
import { EditionsView } from './views/editions.js';
import { FleetView } from './views/fleet.js';
import { ReleaseView } from './views/release.js';
import { ReleasesView } from './views/releases.js';

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/fleet');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/fleet');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  const [me, setMe] = useState<Whoami | undefined>(undefined);
  const [error, setError] = useState('');
  const [live, setLive] = useState<LiveState>('connecting');
  const hash = useHash();
  useEffect(() => {
    whoami().then(setMe, (err: Error) => setError(err.message));
  }, []);
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  // One stream for the view on screen, reopened when the route changes: the server filters, so a view never
  // receives (and parses) the events it ignores.
  const stream = streamFor(parts);
  const streamKey = eventsUrl(stream);
  useEffect(() => openEvents(stream, publish, setLive), [streamKey]);
  useEffect(() => {
    // Focus the new view's heading so keyboard and screen-reader users land on it after a route change.
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [hash]);

  let view;
  if (parts[0] === 'releases' && parts[1]) view = <ReleaseView id={parts[1]} me={me} />;
  else if (parts[0] === 'releases') view = <ReleasesView />;
  else if (parts[0] === 'editions') view = <EditionsView app={parts[1] ?? ''} />;
  else view = <FleetView />;
  const tab = (href: string, label: string, on: boolean) => (
    <a href={href} aria-current={on ? 'page' : undefined}>{label}</a>
  );

  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header>
        <span class="brand">fleetwave</span>
        <nav aria-label="Views">
          {tab('#/fleet', 'Fleet', parts[0] === 'fleet' || !parts[0])}
          {tab('#/releases', 'Releases', parts[0] === 'releases')}
          {tab('#/editions', 'Editions', parts[0] === 'editions')}
        </nav>
        <span class={`live live-${live}`} role="status" aria-label="event stream">
          {live === 'live' ? 'live' : live === 'connecting' ? 'connecting…' : 'reconnecting…'}
        </span>
        {me && (
          <span class="who">
            {me.name} <span class="role">({me.role}{me.insecure ? ', insecure mode' : ''})</span>
          </span>
        )}
        {me && !me.insecure && (
          <button type="button" onClick={() => void signOut().finally(() => location.assign('/login'))}>
            Sign out
          </button>
        )}
      </header>
      {error && <p class="error" role="alert">{error}</p>}
      <main id="main">{view}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
