// The store's own error classes (the rest are common/errors.ts), mapped to gRPC codes by admin-service.ts.
import { ConflictError } from '../../common/errors.js';

/** A duplicate name (app, edition, token, a rule matching what another does): mapped to ALREADY_EXISTS at the gRPC boundary. */
export class AlreadyExistsError extends ConflictError {}
