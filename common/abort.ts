// A signal that aborts with its parent or after `ms`, whichever comes first.
//
// Not AbortSignal.any([parent, AbortSignal.timeout(ms)]): Node 20 may garbage-collect the timeout signal inside such a
// composite before it fires, and the wait then runs on past its limit (seen as a start-first probe that ran to the
// command's deadline). Here the timer holds the controller, so it fires.
export function timeoutSignal(parent: AbortSignal, ms: number): AbortSignal {
  const controller = new AbortController();
  const abort = (): void => controller.abort(parent.aborted ? parent.reason : new DOMException(`timed out after ${ms} ms`, 'TimeoutError'));
  const timer = setTimeout(abort, Math.max(0, ms));
  timer.unref();
  if (parent.aborted) abort();
  parent.addEventListener('abort', abort, { once: true });
  controller.signal.addEventListener(
    'abort',
    () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', abort);
    },
    { once: true },
  );
  return controller.signal;
}
