// The message of the BAD_CONFIG error `fn` throws; fails the test if it throws nothing or another error.
import { expect } from 'vitest';
import { isMeshcaError } from '../../src/errors/index.ts';

export function badConfigMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isMeshcaError(err, 'BAD_CONFIG')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected a BAD_CONFIG error');
}
