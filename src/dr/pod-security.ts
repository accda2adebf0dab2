/**
 * Pod Security Standards, `restricted` profile (which includes `baseline`), as the API server's
 * PodSecurity admission enforces it at version "latest": checked here before a drill restores a
 * workload, so a pod template that would be rejected is reported by name and reason instead of
 * leaving a Deployment that never gets a pod.
 */

type Json = Record<string, unknown>

interface SecurityContext {
  privileged?: boolean
  allowPrivilegeEscalation?: boolean
  runAsNonRoot?: boolean
  runAsUser?: number
  procMount?: string
  seccompProfile?: {type?: string}
  appArmorProfile?: {type?: string}
  seLinuxOptions?: {type?: string; user?: string; role?: string}
  capabilities?: {add?: string[]; drop?: string[]}
  windowsOptions?: {hostProcess?: boolean}
  sysctls?: {name: string}[]
}

interface Container {
  name: string
  ports?: {hostPort?: number}[]
  securityContext?: SecurityContext
}

export interface PodSpec {
  hostNetwork?: boolean
  hostPID?: boolean
  hostIPC?: boolean
  hostUsers?: boolean
  securityContext?: SecurityContext
  containers?: Container[]
  initContainers?: Container[]
  ephemeralContainers?: Container[]
  volumes?: ({name: string} & Json)[]
  automountServiceAccountToken?: boolean
}

const ALLOWED_VOLUMES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
])
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t'])
const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/'

export interface RestrictedResult {
  /** Explicit settings restricted forbids: the workload cannot run in a restricted namespace as it is. */
  violations: string[]
  /** Settings restricted requires that the template leaves unset, and the value the drill gives them. */
  fixes: string[]
  /** The template's spec with the fixes applied (and no service account token); only meaningful without violations. */
  spec: PodSpec
}

function allContainers(spec: PodSpec): {where: string; c: Container}[] {
  return [
    ...(spec.initContainers ?? []).map((c) => ({where: `initContainer ${c.name}`, c})),
    ...(spec.containers ?? []).map((c) => ({where: `container ${c.name}`, c})),
    ...(spec.ephemeralContainers ?? []).map((c) => ({where: `ephemeralContainer ${c.name}`, c})),
  ]
}

/**
 * Checks a pod template against restricted and fills in what it leaves unset: runAsNonRoot,
 * seccompProfile RuntimeDefault, allowPrivilegeEscalation false, capabilities drop ALL. Anything
 * set explicitly to a forbidden value is a violation, never changed: that would run a different
 * workload from the one backed up.
 */
export function checkRestricted(template: {
  metadata?: {annotations?: Record<string, string>}
  spec?: PodSpec
}): RestrictedResult {
  const spec = structuredClone<PodSpec>(template.spec ?? {})
  const violations: string[] = []
  const fixes: string[] = []
  for (const key of ['hostNetwork', 'hostPID', 'hostIPC'] as const) if (spec[key]) violations.push(`${key}: true`)
  if (spec.hostUsers === true) violations.push('hostUsers: true')
  for (const v of spec.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== 'name')
    if (type && !ALLOWED_VOLUMES.includes(type)) violations.push(`volume ${v.name} is ${type}`)
  }
  for (const [key, value] of Object.entries(template.metadata?.annotations ?? {})) {
    if (key.startsWith(APPARMOR_ANNOTATION) && value === 'unconfined')
      violations.push(`AppArmor unconfined for ${key.slice(APPARMOR_ANNOTATION.length)}`)
  }
  const pod = spec.securityContext ?? {}
  for (const s of pod.sysctls ?? []) if (!SAFE_SYSCTLS.has(s.name)) violations.push(`sysctl ${s.name}`)
  const contextViolations = (where: string, sc: SecurityContext) => {
    if (sc.runAsNonRoot === false) violations.push(`${where}: runAsNonRoot: false`)
    if (sc.runAsUser === 0) violations.push(`${where}: runAsUser: 0`)
    if (sc.seccompProfile?.type && !['RuntimeDefault', 'Localhost'].includes(sc.seccompProfile.type))
      violations.push(`${where}: seccompProfile ${sc.seccompProfile.type}`)
    if (sc.appArmorProfile?.type === 'Unconfined') violations.push(`${where}: appArmorProfile Unconfined`)
    if (
      sc.seLinuxOptions &&
      (!SELINUX_TYPES.has(sc.seLinuxOptions.type ?? '') || sc.seLinuxOptions.user || sc.seLinuxOptions.role)
    )
      violations.push(`${where}: custom seLinuxOptions`)
    if (sc.windowsOptions?.hostProcess) violations.push(`${where}: windowsOptions.hostProcess`)
  }
  contextViolations('pod', pod)
  const podNonRoot = pod.runAsNonRoot === true
  const podSeccomp = Boolean(pod.seccompProfile?.type)
  const containers = allContainers(spec)
  for (const {where, c} of containers) {
    const sc = c.securityContext ?? {}
    contextViolations(where, sc)
    if (sc.privileged) violations.push(`${where}: privileged: true`)
    if (sc.allowPrivilegeEscalation === true) violations.push(`${where}: allowPrivilegeEscalation: true`)
    if (sc.procMount && sc.procMount !== 'Default') violations.push(`${where}: procMount ${sc.procMount}`)
    const added = (sc.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE')
    if (added.length > 0) violations.push(`${where}: adds capabilities ${added.join(', ')}`)
    for (const port of c.ports ?? []) if (port.hostPort) violations.push(`${where}: hostPort ${port.hostPort}`)
  }
  // The fills: pod-level where a pod-level field exists, container-level otherwise.
  if (!podNonRoot && containers.some(({c}) => c.securityContext?.runAsNonRoot !== true)) {
    spec.securityContext = {...spec.securityContext, runAsNonRoot: true}
    fixes.push('runAsNonRoot: true')
  }
  if (!podSeccomp && containers.some(({c}) => !c.securityContext?.seccompProfile?.type)) {
    spec.securityContext = {...spec.securityContext, seccompProfile: {type: 'RuntimeDefault'}}
    fixes.push('seccompProfile: RuntimeDefault')
  }
  const unsetEscalation = new Set<string>()
  const noDropAll = new Set<string>()
  for (const {c} of allContainers(spec)) {
    const sc = (c.securityContext ??= {})
    if (sc.allowPrivilegeEscalation === undefined) {
      sc.allowPrivilegeEscalation = false
      unsetEscalation.add(c.name)
    }
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) {
      sc.capabilities = {...sc.capabilities, drop: [...(sc.capabilities?.drop ?? []), 'ALL']}
      noDropAll.add(c.name)
    }
  }
  if (unsetEscalation.size > 0) fixes.push(`allowPrivilegeEscalation: false (${[...unsetEscalation].join(', ')})`)
  if (noDropAll.size > 0) fixes.push(`capabilities drop ALL (${[...noDropAll].join(', ')})`)
  return {violations, fixes, spec}
}
