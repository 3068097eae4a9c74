// Names and defaults of the Kubernetes bundle distribution, importable without loading the
// Kubernetes client (which costs most of a CLI start-up).

import { SECOND_MS } from '../time/index.ts';

export const BUNDLE_CONFIGMAP_NAME = 'meshca-root-cert';
export const BUNDLE_CONFIGMAP_KEY = 'root-cert.pem';
export const DISTRIBUTOR_LEASE_NAME = 'meshca-bundle-distributor';
/** The Lease whose holder runs serve's singleton duties (intermediate auto-rotation, the webhook's caBundle). */
export const LEADER_LEASE_NAME = 'meshca-leader';
export const DEFAULT_LEASE_DURATION_MS = 15 * SECOND_MS;
export const DEFAULT_RESYNC_MS = 60 * SECOND_MS;
/** Present in every pod that mounts its service-account token: `--distribute-bundle auto` means "in a pod". */
export const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
