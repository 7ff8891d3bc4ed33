// Error classes shared by the controller, the agent and the CLI.
// Each says whether retrying may help; gRPC codes are mapped at the boundary.

export class FleetwaveError extends Error {
  readonly recoverable: boolean;
  constructor(message: string, options: { cause?: unknown; recoverable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.recoverable = options.recoverable ?? false;
  }
}

/** The operator asked for something malformed (flag, duration, spec). */
export class BadInputError extends FleetwaveError {}

/** A named app, edition, group, release or agent does not exist. */
export class NotFoundError extends FleetwaveError {}

/** The request conflicts with current state (a release already active, an action that does not fit). */
export class ConflictError extends FleetwaveError {}

/** A state machine was asked for a move its transition table does not allow. */
export class IllegalTransitionError extends ConflictError {
  constructor(
    readonly machine: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`${machine}: cannot move from '${from}' to '${to}'`);
  }
}

/** A peer (controller, NATS, package URL) could not be reached. */
export class UnavailableError extends FleetwaveError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, recoverable: true });
  }
}

/** A package failed verification or unpacking (checksum, size, unsafe entry). */
export class PackageError extends FleetwaveError {}
