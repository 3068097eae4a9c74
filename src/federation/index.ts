// Public face of src/federation: SPIFFE federation — meshca's bundle endpoint over TLS
// (https_spiffe) and the bundles of other trust domains it trusts (--federate-with).
export { startBundleEndpoint, type BundleEndpoint, type BundleEndpointOptions, type EndpointCredential } from './endpoint.ts';
export { Federation, fetchBundle, FEDERATION_RETRY_MS, type BundleFetcher, type FederationOptions } from './client.ts';
export { parseFederationPeer, parseBundleDocument, readBootstrapBundle, FederatedBundleStore, FEDERATION_DIR, type FederationPeer, type PeerBundle, type BundleProfile } from './peers.ts';
