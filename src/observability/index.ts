// Logging and metrics plumbing: one pino logger per process (JSON lines, no secrets; redaction as
// a second line of defence) and one prom-client registry per server, injected where needed.

import pino, { type DestinationStream, type Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';

export type { Logger } from 'pino';

/** Field names that must never reach a log line; redacted if code slips. */
const REDACT = ['token', 'bearerToken', 'authorization', 'privateKey', 'key', 'csr', '*.token', '*.privateKey', '*.authorization'];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'meshca' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

export function createRegistry(withDefaults = true): Registry {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry });
  return registry;
}

export { Registry } from 'prom-client';
