// Ledger URLs (--db): which backend a URL names, and the URL as it may be shown.

export function isPostgresUrl(url: string): boolean {
  return url.startsWith('postgres://') || url.startsWith('postgresql://');
}

/** The URL with any password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/, '$1:***@');
}
