// infra/event-sources.json: the queues and the event source mappings that feed them to the
// functions. The local pump (`backline dev pump`) and the local stack read the same file, so a
// developer's machine delivers messages as AWS does.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Infra } from './deployment.ts';

export interface Mapping {
  /** `work` or `finalize`: the queue is `<stack>-<queue>`. */
  queue: 'work' | 'finalize';
  /** `worker` or `finalizer`. */
  function: 'worker' | 'finalizer';
  batch_size: number;
  max_batching_window_seconds: number;
  /** null: the deployment's worker_timeout_seconds. */
  timeout_seconds: number | null;
  /** null: the deployment's worker_max_concurrency. */
  max_concurrency: number | null;
}

export interface EventSources {
  visibility_factor: number;
  max_receive_count: number;
  retention_days: number;
  dlq_retention_days: number;
  mappings: Mapping[];
}

export const EVENT_SOURCES: EventSources = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../event-sources.json'), 'utf8'),
);

export function mapping(queue: Mapping['queue']): Mapping {
  const found = EVENT_SOURCES.mappings.find((m) => m.queue === queue);
  if (!found) throw new Error(`infra/event-sources.json has no mapping for the ${queue} queue`);
  return found;
}

export const timeoutSeconds = (m: Mapping, infra: Infra) => m.timeout_seconds ?? infra.worker_timeout_seconds;
export const maxConcurrency = (m: Mapping, infra: Infra) => m.max_concurrency ?? infra.worker_max_concurrency;
/** Queue names as the pump and the local stack use them: `<stack>-<queue>`, lower case. */
export const queueName = (stackName: string, m: Mapping) => `${stackName.toLowerCase()}-${m.queue}`;
