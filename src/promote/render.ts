import type {PromotionRecord} from './records.js'

/** One promotion: where from and to, the freight, each check, the outcome. */
export function renderPromotion(r: PromotionRecord): string {
  const lines = [
    `Promotion ${r.id}: ${r.from.environment} (${r.from.namespace}) → ${r.to.environment} (${r.to.namespace}): ${r.outcome}`,
    `  by ${r.by} at ${r.at}${r.order.forced ? `; forced past promotion.order: ${r.order.forced.reason}` : ''}`,
  ]
  for (const s of r.services) {
    const c = r.checks[s]
    lines.push(`  ${s}  ${r.images[s]}`)
    if (!c) continue
    lines.push(
      `    soak ${c.soak.ok ? 'ok' : 'NOT MET'} (held ${c.soak.heldFor ?? 'n/a'} of ${c.soak.required})` +
        `  slo ${c.slo.ok ? 'ok' : 'BURNING'}  signatures ${c.signatures.ok ? 'verified' : 'NOT VERIFIED'}` +
        (c.attestations.required.length
          ? `  attestations (${c.attestations.required.join(', ')}) ${c.attestations.ok ? 'verified' : 'NOT VERIFIED'}`
          : ''),
    )
    for (const p of c.problems) lines.push(`    - ${p}`)
  }
  for (const rel of r.release ?? []) lines.push(`  released ${rel.services.join(', ')} (${rel.strategy}): ${rel.exit}`)
  return lines.join('\n')
}

/** The history: one line per promotion, newest first. */
export function renderPromotionHistory(records: PromotionRecord[], namespace: string): string {
  if (records.length === 0) return `No promotions recorded in ${namespace}.`
  const rows = records.map(
    (r) =>
      `${r.id}  ${r.from.environment} → ${r.to.environment}  ${r.outcome.padEnd(11)}  ${r.services.join(',')}  by ${r.by}${r.order.forced ? '  (forced)' : ''}`,
  )
  return [`Promotions recorded in ${namespace}, newest first:`, ...rows].join('\n')
}
