// Public face of src/admin: the gRPC admin API (meshca.admin.v1) over root rotation, for --admins only.
export { createAdminService, adminServiceClient, ADMIN_SERVICE_NAME, type AdminServiceDeps, type AdminCall } from './service.ts';
