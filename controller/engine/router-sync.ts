// The engine's side of the routers: after a commit it asks them to apply the routing, and hands their ack back to the
// engine as an input (router-gates.ts decides, in the pass, when a release waits for them).
//
//   pass committed ─routers.changed─▶ sync now            ─ack─▶ (nothing waits)
//                  ─routers.wait───▶ sync, unless one of the same phase is in flight ─ack─▶ input 'routed' ─▶ pass
//
// Only the ack of a release's newest sync counts: an older one may predate what the routers must apply now.
import { ConflictError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { RouterGate } from '../domain/ports.js';
import type { ReleaseRecord, RoutePhase } from '../domain/records.js';
import type { EngineInput } from './engine.js';
import type { PassOutput } from './pass.js';

export class RouterSync {
  /** Releases held at a router gate whose routers were asked, not answered yet: the newest sync's phase and token. */
  private readonly inFlight = new Map<string, { phase: RoutePhase; token: object }>();

  /** `router` absent: this controller has no routing; `submit` hands an input to the engine (its inbox, when attached). */
  constructor(
    private readonly router: RouterGate | undefined,
    private readonly log: Logger,
    private readonly submit: (input: EngineInput) => void,
  ) {}

  /** Atomic switches the default edition at the routers: without one fronting the app it would switch nothing. */
  requireRouters(app: string): void {
    if ((this.router?.routersFor(app) ?? 0) > 0) return;
    throw new ConflictError(`atomic needs a router fronting '${app}'; none is connected`);
  }

  /**
   * Tells the routers what a pass committed. RouterGate answers by its own deadline when a router lags, so no release
   * waits forever; without a RouterGate nothing could apply a route phase, and a held release passes at once.
   */
  afterCommit(release: ReleaseRecord, routers: NonNullable<PassOutput['routers']>): void {
    const { id, app, routePhase: phase } = release;
    if (!routers.changed && this.inFlight.get(id)?.phase === phase) return;
    const token = {};
    if (routers.wait) this.inFlight.set(id, { phase, token });
    else this.inFlight.delete(id);
    const applied = () => {
      if (this.inFlight.get(id)?.token !== token) return;
      this.inFlight.delete(id);
      this.submit({ kind: 'routed', releaseId: id, phase });
    };
    if (!this.router) {
      if (routers.wait) this.log.warn({ release: id, app, phase }, 'no router gate in this controller: route phase passed unsynced');
      return applied();
    }
    this.log.debug({ release: id, app, phase, wait: routers.wait }, 'routers asked to apply the routing');
    try {
      this.router.sync(app, applied);
    } catch (err) {
      // The commit stands; a later pass over the held release asks again.
      if (this.inFlight.get(id)?.token === token) this.inFlight.delete(id);
      this.log.error({ err, release: id, app }, 'routers could not be asked to apply the routing');
    }
  }

  /** The engine stopped: acks that come later are dropped, and the next start asks again. */
  forget(): void {
    this.inFlight.clear();
  }
}
