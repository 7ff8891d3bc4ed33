// The JSON the console reads: proto3 JSON of admin.proto's messages (proto/fleetwave/v1/admin.proto) as the HTTP API's
// /api/v1/rpc/<method> answers it. ts-proto's toJSON leaves out fields at their default value, so every field is optional.

export type Role = 'viewer' | 'operator' | 'admin' | 'metrics' | string;

export interface Whoami {
  name: string;
  role: Role;
  insecure?: boolean;
}

export interface ListQuery {
  group?: string;
  status?: string;
  edition?: string;
  limit?: number;
  after?: string;
}

export interface SummaryCount {
  group?: string;
  batch?: number;
  status?: string;
  count?: number;
}

export interface ListSummary {
  total?: number;
  counts?: SummaryCount[];
}

export interface App {
  name?: string;
}

export interface AgentInfo {
  id?: string;
  host?: string;
  group?: string;
  status?: string;
  version?: string;
}

export interface Instance {
  app?: string;
  instance?: string;
  group?: string;
  edition?: string;
  status?: string;
  quiesced?: boolean;
  keptEditions?: string[];
}

export interface Edition {
  app?: string;
  name?: string;
  description?: string;
  createdUnixMs?: number;
  activeGroups?: string[];
  isDefault?: boolean;
  keptInstances?: number;
  size?: number;
}

export interface Release {
  id?: string;
  app?: string;
  edition?: string;
  group?: string;
  status?: string;
  message?: string;
  createdUnixMs?: number;
  updatedUnixMs?: number;
  finishedUnixMs?: number;
  createdBy?: string;
  batchCount?: number;
  currentBatch?: number;
  waitingFor?: string;
}

export interface Batch {
  number?: number;
  group?: string;
  status?: string;
  startedUnixMs?: number;
  finishedUnixMs?: number;
  checkpoint?: string;
  checkpointBy?: string;
  checkpointComment?: string;
  instanceCount?: number;
}

export interface StepRecord {
  step?: string;
  status?: string;
  startedUnixMs?: number;
  finishedUnixMs?: number;
  error?: string;
  phase?: string;
}

export interface InstanceProgress {
  instance?: string;
  group?: string;
  batch?: number;
  status?: string;
  step?: string;
  edition?: string;
  error?: string;
  steps?: StepRecord[];
}

export interface ChangeRecord {
  atUnixMs?: number;
  actor?: string;
  action?: string;
  app?: string;
  releaseId?: string;
  comment?: string;
  result?: string;
}

export interface ReleaseDetail {
  release?: Release;
  batches?: Batch[];
  instances?: InstanceProgress[];
  changes?: ChangeRecord[];
  summary?: ListSummary;
  nextAfter?: string;
}
