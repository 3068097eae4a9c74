// Reads when a service-account token expires, to switch to mTLS renewal before the CA has to refuse
// it. Only the `exp` claim is read and the token is not verified here (the CA verifies it).

/** The JWT's exp in ms, or undefined when the token is not a JWT or has no numeric exp. */
export function tokenExpiryMs(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
