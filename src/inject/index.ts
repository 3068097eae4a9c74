// Public face of src/inject: putting the meshca agent next to a workload, from manifests on disk
// (`meshca inject -f`) or as a mutating admission webhook (`meshca serve --injector`). Knows no CA;
// it only describes the pod the agent runs in.
export {
  injectDecision,
  injectPod,
  agentContainer,
  AGENT_CONTAINER,
  AGENT_NODE_OPTIONS,
  INJECT_ANNOTATION,
  INJECTED_ANNOTATION,
  SDS_CONTAINERS_ANNOTATION,
  ROOT_CONFIGMAP,
  TOKEN_EXPIRATION_SECONDS,
  type InjectOptions,
  type InjectDecision,
  type ObjectMeta,
  type PodSpec,
} from './pod.ts';
export { podPatch, type JsonPatchOp } from './patch.ts';
export { injectManifests, type InjectReport } from './manifests.ts';
export { reviewAdmission, createInjectorServer, INJECT_PATH, MAX_REVIEW_BYTES, type AdmissionReviewAnswer, type InjectorServerOptions } from './webhook.ts';
