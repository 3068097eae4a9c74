// The peer address of a gRPC call, as logged and recorded in the ledger.

/** "ipv4:1.2.3.4:5" / "ipv6:[::1]:5" / "1.2.3.4:5" → "1.2.3.4:5" */
export function peerAddressOf(call: { getPeer(): string }): string {
  return call.getPeer().replace(/^ipv[46]:/, '');
}
