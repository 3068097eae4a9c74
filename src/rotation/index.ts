// Public face of src/rotation: key slots, the rotation schedule, the key store and the steps that
// rotate roots and intermediates, and the runtime that keeps a serve following its key store.
export { type SlotState, type Slot, type SlotCertificate, prepareSlot } from './slots.ts';
export { type RotationState, type RootSlot, type IntermediateSlot, type RootCertificate, type IntermediateCertificate } from './state.ts';
export {
  type RotationPolicy,
  rotationPolicy,
  activationAllowedAtMs,
  nextRootStep,
  nextIntermediateStep,
  intermediateScheduleAtMs,
  type RootStep,
  type IntermediateStep,
} from './schedule.ts';
export { DirectoryKeyStore, type KeyStore, type KeyStoreSnapshot, type SlotMaterial, type Transition } from './key_store.ts';
export { activeCertificatesOf, authorityFromSnapshot, type LoadedAuthority } from './authority.ts';
export { prepareRoot, activateRoot, retireRoot, rotateIntermediate, rootStepPolicy, type RotationContext, type PrepareResult, type ActivateResult, type RetireResult, type IntermediateResult, type ExternalRoot } from './operations.ts';
export { factualPolicy, runningMaxTtl, issuedFacts, type LedgerReader, type IssuedFacts, type IssuedExpiry, type RunningMaxTtl } from './facts.ts';
export { rotationStatus, formatRotationStatus, type RotationStatus, type SlotView } from './status.ts';
export {
  startRotationRuntime,
  DEFAULT_KEYS_POLL_MS,
  DEFAULT_ROOT_EXPIRY_WARNING_MS,
  DEFAULT_CA_EXPIRY_WARNING_MS,
  type RotationRuntime,
  type RotationRuntimeOptions,
  type SwappableCaState,
} from './runtime.ts';
export {
  addDenyEntry,
  removeDenyEntry,
  denyListRows,
  formatDenyListRows,
  DirectoryDenyListStore,
  DENY_LIST_FILE,
  type DenyListStore,
  type DenyListDocument,
  type DenyChangeContext,
  type DenyAddResult,
  type DenyRemoveResult,
  type DenyListRow,
  type StaticDenials,
} from './deny_store.ts';
