// Pure batch planning: a release spec and the target instances in, the ordered batches out.
import { BadInputError, ConflictError, NotFoundError } from '../../common/errors.js';

export interface PlanInput {
  /** A group name or "all" (every group, sorted by name). */
  group: string;
  /** atomic: the whole target (every group of it together) in two halves, for the routers' switch between them. */
  strategy: 'rolling' | 'grouped' | 'atomic';
  /** rolling: batches per group. */
  batches: number;
  /** grouped: instances per batch. */
  groupSize: number;
}

export interface PlanInstance {
  id: string;
  group: string;
}

export interface PlannedBatch {
  /** 1-based, in the order the batches run. */
  number: number;
  /** The group of its instances; an atomic half over several groups: the target ("all"). */
  group: string;
  /** Instance ids, sorted. */
  instances: string[];
}

export function planBatches(spec: PlanInput, instances: readonly PlanInstance[]): PlannedBatch[] {
  const byGroup = groupInstances(instances);
  const groups = spec.group === 'all' ? [...byGroup.keys()].sort() : [spec.group];
  // No instance at all is the fleet's state (rc 1); a named group nobody is in is a bad name (rc 2).
  if (groups.length === 0) throw new ConflictError('no instance is known for this app yet');
  if (spec.strategy === 'atomic') return planHalves(spec.group, groups, byGroup);
  const chunks: Array<{ group: string; instances: string[] }> = [];
  for (const group of groups) {
    const members = byGroup.get(group);
    if (!members || members.length === 0) throw new NotFoundError(`group '${group}' has no instance of this app`);
    const sorted = [...members].sort();
    const split = spec.strategy === 'grouped' ? chunkBySize(sorted, spec.groupSize, group) : splitEvenly(sorted, spec.batches, group);
    for (const part of split) chunks.push({ group, instances: part });
  }
  return chunks.map((chunk, index) => ({ number: index + 1, ...chunk }));
}

/**
 * Atomic: every instance of the target, sorted by id, in two halves (the first one larger when the count is odd); one
 * instance is one batch (nothing serves beside it: the gate's hold covers its restart).
 */
function planHalves(target: string, groups: string[], byGroup: Map<string, string[]>): PlannedBatch[] {
  const groupOf = new Map<string, string>();
  for (const group of groups) {
    const members = byGroup.get(group);
    if (!members || members.length === 0) throw new NotFoundError(`group '${group}' has no instance of this app`);
    for (const id of members) groupOf.set(id, group);
  }
  const sorted = [...groupOf.keys()].sort();
  const halves = sorted.length === 1 ? [sorted] : splitEvenly(sorted, 2);
  return halves.map((instances, index) => {
    const inHalf = new Set(instances.map((id) => groupOf.get(id)!));
    return { number: index + 1, group: inHalf.size === 1 ? [...inHalf][0]! : target, instances };
  });
}

function groupInstances(instances: readonly PlanInstance[]): Map<string, string[]> {
  const byGroup = new Map<string, string[]>();
  for (const instance of instances) {
    const list = byGroup.get(instance.group) ?? [];
    list.push(instance.id);
    byGroup.set(instance.group, list);
  }
  return byGroup;
}

/** Splits into `count` parts whose sizes differ by at most one, larger parts first. */
export function splitEvenly(ids: string[], count: number, group = ''): string[][] {
  if (!Number.isInteger(count) || count < 1) throw new BadInputError('batches must be at least 1');
  if (count > ids.length) {
    throw new BadInputError(`${count} batches for ${group ? `group '${group}'` : 'the instances'} but it has only ${ids.length} instance(s)`);
  }
  const base = Math.floor(ids.length / count);
  const extra = ids.length % count;
  const parts: string[][] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const size = base + (i < extra ? 1 : 0);
    parts.push(ids.slice(at, at + size));
    at += size;
  }
  return parts;
}

function chunkBySize(ids: string[], size: number, group: string): string[][] {
  if (!Number.isInteger(size) || size < 1) throw new BadInputError('group size must be at least 1');
  if (size > ids.length) throw new BadInputError(`group size ${size} but group '${group}' has only ${ids.length} instance(s)`);
  const parts: string[][] = [];
  for (let at = 0; at < ids.length; at += size) parts.push(ids.slice(at, at + size));
  return parts;
}
