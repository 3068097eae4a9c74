// The agent injector as a mutating admission webhook: admission.k8s.io/v1 AdmissionReview in,
// AdmissionReview out with a base64 JSONPatch. It never refuses a pod: an opted-out, already
// injected or non-Pod object is allowed unchanged; only a malformed review gets an HTTP 400.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeError, isMeshcaError, MeshcaError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { readBounded } from '../transport/body/index.ts';
import { podPatch } from './patch.ts';
import { injectDecision, injectPod, type InjectOptions, type ObjectMeta, type PodSpec } from './pod.ts';

export const INJECT_PATH = '/inject';
/** The API server sends one pod; a review larger than this is not one we should parse. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  operation?: string;
  namespace?: string;
  object?: { metadata?: ObjectMeta; spec?: PodSpec };
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: true;
  readonly patchType?: 'JSONPatch';
  readonly patch?: string;
  readonly warnings?: string[];
}

export interface AdmissionReviewAnswer {
  readonly apiVersion: 'admission.k8s.io/v1';
  readonly kind: 'AdmissionReview';
  readonly response: AdmissionResponse;
}

function parseReview(body: unknown): AdmissionRequest {
  const review = body as { apiVersion?: unknown; kind?: unknown; request?: AdmissionRequest } | undefined;
  if (!review || typeof review !== 'object') throw new MeshcaError('BAD_REQUEST', 'the body is not an AdmissionReview object');
  if (review.kind !== 'AdmissionReview' || review.apiVersion !== 'admission.k8s.io/v1') {
    throw new MeshcaError('BAD_REQUEST', `expected kind AdmissionReview, apiVersion admission.k8s.io/v1; got kind ${JSON.stringify(review.kind)}, apiVersion ${JSON.stringify(review.apiVersion)}`);
  }
  const req = review.request;
  if (!req || typeof req.uid !== 'string' || req.uid === '') throw new MeshcaError('BAD_REQUEST', 'the AdmissionReview has no request.uid');
  return req;
}

/** Answers one review: the patch that adds the agent, or an unchanged allow. */
export function reviewAdmission(body: unknown, o: InjectOptions): AdmissionReviewAnswer {
  const req = parseReview(body);
  const answer = (response: Omit<AdmissionResponse, 'uid' | 'allowed'>): AdmissionReviewAnswer => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: req.uid, allowed: true, ...response },
  });
  const isPod = req.kind?.kind === 'Pod' && (req.kind.group ?? '') === '' && req.object?.spec !== undefined;
  if (!isPod || (req.operation !== undefined && req.operation !== 'CREATE')) return answer({});
  const meta = req.object!.metadata;
  const spec = req.object!.spec!;
  if (!Array.isArray(spec.containers)) throw new MeshcaError('BAD_REQUEST', 'request.object.spec.containers is not a list');
  if (!injectDecision(meta, spec).inject) return answer({});
  try {
    const injected = injectPod(meta, spec, o);
    return answer({ patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(podPatch({ meta, spec }, injected))).toString('base64') });
  } catch (err) {
    // The pod itself is at fault (a name clash, an annotation naming no container): let it be
    // created without the agent and tell whoever applied it why.
    if (isMeshcaError(err, 'BAD_REQUEST')) return answer({ warnings: [`meshca: the agent was not injected: ${err.message}`] });
    throw err;
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const tooLarge = () => new MeshcaError('REQUEST_TOO_LARGE', `the review is larger than ${MAX_REVIEW_BYTES} bytes`);
  // A declared length over the cap is answered (413) before a byte is read; a body that grows past it is cut off.
  if (Number(req.headers['content-length']) > MAX_REVIEW_BYTES) throw tooLarge();
  const body = await readBounded(req, MAX_REVIEW_BYTES, tooLarge);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new MeshcaError('BAD_REQUEST', 'the body is not JSON');
  }
}

export interface InjectorServerOptions {
  readonly inject: InjectOptions;
  /** The serving certificate chain and key (PEM); replace them later with `server.setSecureContext`. */
  readonly certPem: string;
  readonly keyPem: string;
  readonly log: Logger;
  /** Counts each review by outcome (injected, skipped, error). */
  readonly onReview?: (outcome: 'injected' | 'skipped' | 'error') => void;
}

function send(res: ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/** The webhook's HTTPS server (not yet listening): POST /inject. */
export function createInjectorServer(o: InjectorServerOptions): Server {
  return createServer({ cert: o.certPem, key: o.keyPem, minVersion: 'TLSv1.2' }, async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== INJECT_PATH) return send(res, 404, 'not found\n', 'text/plain; charset=utf-8');
    if (req.method !== 'POST') return send(res, 405, 'method not allowed; POST an AdmissionReview\n', 'text/plain; charset=utf-8');
    try {
      const answer = reviewAdmission(await readBody(req), o.inject);
      o.onReview?.(answer.response.patch ? 'injected' : 'skipped');
      send(res, 200, JSON.stringify(answer), 'application/json');
    } catch (err) {
      o.onReview?.('error');
      const known = isMeshcaError(err);
      if (!known) o.log.error({ err }, 'the injector failed on a review');
      else o.log.warn({ reason: describeError(err) }, 'refused a malformed AdmissionReview');
      const tooLarge = isMeshcaError(err, 'REQUEST_TOO_LARGE');
      if (tooLarge) res.setHeader('connection', 'close');
      send(res, tooLarge ? 413 : known ? 400 : 500, `${known ? err.message : 'internal error; the meshca log has the details'}\n`, 'text/plain; charset=utf-8');
    }
  });
}
