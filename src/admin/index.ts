// Public face of src/admin: the gRPC admin API (meshca.admin.v1) over root rotation, for --admins only.
export { createAdminService, adminServiceClient, type AdminServiceDeps, type AdminCall } from './service.ts';
