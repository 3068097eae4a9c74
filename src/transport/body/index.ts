// Reading a network body whole with a size cap: one helper for every HTTP peer meshca reads
// (the Kubernetes API, admission reviews, federated bundles). Dependency-free, so that the lean
// Kubernetes client can use it without loading gRPC through src/transport/index.ts.

import type { Readable } from 'node:stream';

/**
 * The whole body, or `tooLarge()` thrown as soon as more than `maxBytes` arrived (the stream is
 * destroyed then, so the peer cannot keep us reading).
 */
export async function readBounded(body: Readable, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      const err = tooLarge();
      body.destroy();
      throw err;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
