// Public face of src/admin: the gRPC admin APIs (meshca.admin.v1) over root rotation and the runtime deny list, for --admins only.
export { createAdminService, adminServiceClient, type AdminServiceDeps } from './service.ts';
export { type AdminCall } from './admission.ts';
export { createDenyListService, denyListServiceClient, parseUntil, type DenyListServiceDeps } from './deny_service.ts';
