// Public face of src/audit: the auditor gRPC service and the filter logic `meshca audit` shares.
export { createAuditService, auditServiceClient, type AuditServiceDeps, type AuditCall } from './service.ts';
export { buildLedgerQuery, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT, type AuditFilterInput } from './filter.ts';
