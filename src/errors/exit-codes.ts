/**
 * The exit-code policy. Every outcome a CI pipeline may branch on has its own code, and the
 * table is the single source for `--help`, the README and the JSON envelope.
 */
export const ExitCode = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  CONFIG: 3,
  NOT_FOUND: 4,
  UNAVAILABLE: 5,
  PERMISSION: 6,
  BUILD_FAILED: 7,
  PUSH_FAILED: 8,
  SIGNATURE: 9,
  POLICY: 10,
  DEPLOY_FAILED: 11,
  REFUSED: 12,
  ROLLOUT_HELD: 13,
  ROLLOUT_ORPHANED: 14,
  SUPPLY_CHAIN_REFUSED: 15,
  ATTESTATION: 16,
  PROMOTION_REFUSED: 18,
  PROMOTION_OUT_OF_ORDER: 19,
  ROLLOUT_ABORTED: 20,
  ROLLOUT_PAUSED: 21,
  ROLLOUT_INCONCLUSIVE: 22,
  ROLLOUT_TIMED_OUT: 23,
  TRAFFIC_NOT_RETURNED: 24,
  STATE_UNTRUSTED: 25,
  VULNERABILITIES_FOUND: 26,
  VULNERABILITY_DATABASE_INVALID: 27,
  NOTIFICATION_FAILED: 28,
  WARMUP_THRESHOLD: 30,
  CAPACITY_NOT_READY: 31,
  WARMUP_ABORTED: 32,
  PRODUCTION_REFUSED: 33,
  WAKE_INCOMPLETE: 34,
  PREVIEW_EXISTS: 35,
  JOB_FAILED: 36,
  JOB_TIMED_OUT: 37,
  DR_TARGET_MISSED: 40,
  DR_VALIDATION_FAILED: 41,
  SLO_GATE: 50,
  INTERRUPTED: 130,
} as const

export type ExitCodeName = keyof typeof ExitCode
export type ExitCodeValue = (typeof ExitCode)[ExitCodeName]

export const EXIT_CODE_MEANINGS: Record<ExitCodeName, string> = {
  OK: 'Success (a rollout was promoted, a drill met its targets, a gate passed).',
  INTERNAL: 'Unexpected error inside retailops: a bug. Run again with --verbose and report it.',
  USAGE: 'Bad flags or arguments, or a value is missing and the command may not prompt (no TTY, CI set, or --json).',
  CONFIG: 'retailops.yaml is missing or invalid; the message names the file, line and key.',
  NOT_FOUND: 'A named service, campaign, tenant, datastore, rollout or artifact does not exist.',
  UNAVAILABLE: 'A system could not be reached: Docker Engine, registry, cluster, Prometheus, PostgreSQL, k6 or AWS.',
  PERMISSION: 'Credentials were refused: registry login, Kubernetes RBAC, AWS, or a wrong key passphrase.',
  BUILD_FAILED: "An image build failed; the failing step's output is shown.",
  PUSH_FAILED: 'An image push failed; nothing unfinished was written to the artifacts lock.',
  SIGNATURE:
    'Signature verification failed: unsigned, wrong key, tampered payload, another digest, or a signature made for another repository.',
  POLICY: 'Policy checks found errors; nothing was applied.',
  DEPLOY_FAILED:
    'Apply failed, or a workload did not become available; the reason is explained from pod status and events.',
  REFUSED: 'Refused by a safety gate: freeze window, exhausted error budget, ended campaign, plan beyond quota.',
  ROLLOUT_HELD:
    "Another CLI drives this rollout (it holds the rollout's lease), or took it over from this one; the message names it (host, pid, run id, CI job, since) and how to take over safely.",
  ROLLOUT_ORPHANED:
    'The rollout is in progress but nothing drives it any more: the CLI or the detached Job (`deploy --detach`) that drove it stopped (the Job failed or was deleted, or its lease expired). `retailops rollout resume` continues it from where its state says; `rollout abort` rolls it back.',
  SUPPLY_CHAIN_REFUSED:
    'The supply-chain policy (supplyChain.policy) refused an image the deploy would run: no signature, SBOM or SLSA provenance attestation that verifies with the project key, or a vulnerability at or above supplyChain.policy.failOn that no current waiver covers, or --skip-verify without --force-release --reason. Each refusal names the image, the rule and the fix; nothing was applied.',
  ATTESTATION:
    'Attestation verification failed: an image has no attestation of a required type (SBOM, SLSA provenance), or its attestations are signed by another key, were changed after signing, or were made for another digest or repository; details.check and details.predicateType say which.',
  PROMOTION_REFUSED:
    "`retailops promote` refused the source environment's digests: not held for the soak time (promotion.soak) or not fully rolled out, an SLO of the service burning in the source (exhausted budget or page-level burn), or a signature or an attestation supplyChain.policy requires that does not verify. The refusal is recorded in the target's promotion history; nothing was applied.",
  PROMOTION_OUT_OF_ORDER:
    '`retailops promote` would skip a stage of promotion.order (or promote backwards): refused, nothing applied. Promote through each stage, or pass --force with --reason (recorded).',
  ROLLOUT_ABORTED: 'The rollout was aborted (by analysis, by unready pods or by hand); traffic is back on stable.',
  ROLLOUT_PAUSED: 'The rollout is paused and waits for `retailops rollout promote`.',
  ROLLOUT_INCONCLUSIVE: 'Analysis was inconclusive; the rollout is paused for a human decision.',
  ROLLOUT_TIMED_OUT: 'The rollout did not finish within its deadline.',
  TRAFFIC_NOT_RETURNED:
    'Abort could not send all traffic back to stable (route weight, blue-green active Service, or stable scale-up failed): the canary was kept and traffic may still reach it. The state records it; fix the cause and run `rollout abort` again.',
  STATE_UNTRUSTED:
    'Rollout state read back from the cluster failed the checks of a fresh deploy (image signature, policy, a route backup or selector that points elsewhere, or another namespace or service): nothing was applied.',
  VULNERABILITIES_FOUND:
    '`retailops scan --fail-on SEVERITY` found vulnerabilities at or above that severity (findings whose severity is unknown count as critical unless --unknown-as rates them otherwise); the findings are still printed.',
  VULNERABILITY_DATABASE_INVALID:
    'The OSV vulnerability database could not be read or holds bad records (the message names each file or zip entry and what is wrong); nothing was scanned, so no result is reported as clean.',
  NOTIFICATION_FAILED:
    '`retailops notify test`: a notification destination did not accept the test message within notifications.delivery (refused, unreachable or no answer in time); each destination is listed with its HTTP status and attempts. Release commands never end with it: a failed delivery there is a warning.',
  WARMUP_THRESHOLD: 'The k6 warm-up ran but failed an SLO threshold.',
  CAPACITY_NOT_READY: 'Pre-scaled capacity did not become Ready in time.',
  WARMUP_ABORTED:
    'The k6 warm-up was stopped early: a service crossed its error-rate or latency abort limit (warmup.abort) under the load; the result names the limit and the values.',
  PRODUCTION_REFUSED:
    'The environment is production (environments.<name>.production is not false): sleep, wake and their schedules are refused there, and nothing was changed.',
  WAKE_INCOMPLETE:
    'Wake could not put every Deployment and HPA back exactly as saved (something else changed them, or they kept changing); the saved state is kept: run `retailops wake` again.',
  PREVIEW_EXISTS:
    'A preview environment of that name already exists, or its namespace belongs to something else; nothing was changed (`retailops env extend` or `env destroy` it, or pick another name).',
  JOB_FAILED:
    'A job run failed (its pods failed past backoffLimit, or it passed activeDeadlineSeconds, e.g. never scheduled): the result names the reason and the pods; `jobs status` exits with it when the newest finished run failed.',
  JOB_TIMED_OUT: '`jobs run --timeout` passed before the run finished; the Job keeps running (see `jobs status NAME`).',
  DR_TARGET_MISSED: 'A restore drill missed its RTO or RPO target.',
  DR_VALIDATION_FAILED: 'A restored copy failed its validation.',
  SLO_GATE: 'An error budget is exhausted or a page-level burn rate is on (slo --gate).',
  INTERRUPTED: 'Interrupted (Ctrl-C or SIGTERM); cleanup ran and what it did is reported.',
}
