#!/usr/bin/env bash
# Prints the sandbox's simulated nodes as a YAML list of v1 Node objects for kwok to manage.
# Three pools across three zones; capacity and allocatable follow the EC2 instance types
# (allocatable = capacity less kube-reserved/system-reserved/eviction as EKS computes it).
#
#   pool              instance type  per zone  cpu  memory  pods  notes
#   general           m6i.xlarge     2         4    16Gi    58    on-demand
#   memory-optimised  r6i.2xlarge    1         8    64Gi    58    on-demand
#   spot              m6i.2xlarge    1         8    32Gi    58    tainted retailops.dev/spot=true:NoSchedule
#
# Addresses are fake: node InternalIPs are loopback addresses 127.0.1.N (so a stray
# connection, e.g. `kubectl logs` through the apiserver, stays on this machine and is refused),
# and each node's podCIDR 10.244.N.0/24 is only where kwok draws pod IPs from. Nothing may
# connect to a pod IP: no such network exists.
set -euo pipefail

REGION="${RETAILOPS_SANDBOX_REGION:-eu-west-1}"
: "${K8S_VERSION:=v1.36.3}" "${KWOK_VERSION:=v0.8.0}"
ZONES=("${REGION}a" "${REGION}b" "${REGION}c")

# pool|instance-type|per-zone|capacity cpu|capacity memory|alloc cpu|alloc memory|pods|capacity-type
POOLS=(
  "general|m6i.xlarge|2|4|16005660Ki|3920m|15186460Ki|58|on-demand"
  "memory-optimised|r6i.2xlarge|1|8|65019460Ki|7910m|63285316Ki|58|on-demand"
  "spot|m6i.2xlarge|1|8|32387452Ki|7910m|31202428Ki|58|spot"
)

# `nodes.sh --fingerprint`: changes only when what a node can only get at creation (its status:
# capacity, allocatable, addresses) changes; sandbox.sh then recreates the nodes. Labels, taints
# and the rest are updated in place by `kubectl apply`.
if [ "${1:-}" = "--fingerprint" ]; then
  printf '%s\n' "${POOLS[@]}" "$REGION" "$K8S_VERSION" "$KWOK_VERSION" "addresses:127.0.1.N" | sha256sum | cut -c1-16
  exit 0
fi

echo "apiVersion: v1"
echo "kind: List"
echo "items:"
n=0
for spec in "${POOLS[@]}"; do
  IFS='|' read -r pool itype perzone cpu mem acpu amem pods ctype <<<"$spec"
  for zi in "${!ZONES[@]}"; do
    zone="${ZONES[$zi]}"
    for ((i = 0; i < perzone; i++)); do
      name="kwok-${pool}-${zone: -1}-${i}"
      taints=""
      if [ "$ctype" = spot ]; then
        taints=$'\n    taints:\n    - key: retailops.dev/spot\n      value: "true"\n      effect: NoSchedule'
      fi
      cat <<EOF
- apiVersion: v1
  kind: Node
  metadata:
    name: ${name}
    annotations:
      kwok.x-k8s.io/node: fake
      node.alpha.kubernetes.io/ttl: "0"
    labels:
      type: kwok
      retailops.dev/sandbox-node: "true"
      kubernetes.io/arch: amd64
      kubernetes.io/os: linux
      kubernetes.io/hostname: ${name}
      node.kubernetes.io/instance-type: ${itype}
      topology.kubernetes.io/region: ${REGION}
      topology.kubernetes.io/zone: ${zone}
      retailops.dev/pool: ${pool}
      retailops.dev/capacity-type: ${ctype}
  spec:
    podCIDR: 10.244.${n}.0/24
    podCIDRs:
    - 10.244.${n}.0/24${taints}
  status:
    addresses:
    - type: InternalIP
      address: 127.0.1.$((n + 1))
    - type: Hostname
      address: ${name}
    capacity:
      cpu: "${cpu}"
      memory: ${mem}
      pods: "${pods}"
      ephemeral-storage: 104845292Ki
    allocatable:
      cpu: ${acpu}
      memory: ${amem}
      pods: "${pods}"
      ephemeral-storage: 96625420169
    nodeInfo:
      architecture: amd64
      operatingSystem: linux
      osImage: simulated by kwok ${KWOK_VERSION}
      kernelVersion: kwok-${KWOK_VERSION}
      containerRuntimeVersion: kwok://${KWOK_VERSION}
      kubeletVersion: ${K8S_VERSION}
      kubeProxyVersion: ${K8S_VERSION}
      machineID: "${name}"
      systemUUID: "${name}"
      bootID: "${name}"
EOF
      n=$((n + 1))
    done
  done
done
