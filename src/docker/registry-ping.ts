/** A reachability check for doctor: does the registry speak the OCI distribution API here, and can we log in? */
export async function pingRegistry(
  registry: string,
  insecure: boolean,
): Promise<{status: 'ok' | 'warn' | 'fail'; detail: string; fix?: string}> {
  const base = `${insecure ? 'http' : 'https'}://${registry}`
  try {
    const res = await fetch(`${base}/v2/`, {signal: AbortSignal.timeout(5000)})
    if (res.ok) return {status: 'ok', detail: `${base}/v2/ answered ${res.status}`}
    if (res.status === 401) {
      // The same lookup push uses (REGISTRY_USERNAME/PASSWORD, `retailops registry login`, the Docker config), so doctor and push agree.
      const {locateRegistryCredentials} = await import('./credentials.js')
      const found = await locateRegistryCredentials(registry).catch(() => undefined)
      const from = {
        environment: 'REGISTRY_USERNAME/REGISTRY_PASSWORD',
        retailops: '`retailops registry login`',
        docker: 'the Docker config',
      }
      if (found)
        return {
          status: 'ok',
          detail: `${base}/v2/ needs a login; credentials for ${registry} come from ${from[found.source]}${found.auth.username ? ` (user ${found.auth.username})` : ''}`,
        }
      return {
        status: 'warn',
        detail: `${registry} needs credentials (${res.headers.get('www-authenticate') ?? 'no challenge'}) and none are configured`,
        fix: `Run \`retailops registry login ${registry}\`, set REGISTRY_USERNAME and REGISTRY_PASSWORD, or \`docker login ${registry}\`.`,
      }
    }
    return {status: 'fail', detail: `${base}/v2/ answered ${res.status}`, fix: 'Check registry.url in retailops.yaml.'}
  } catch (error) {
    const code = (error as {cause?: {code?: string}}).cause?.code ?? (error as Error).message
    return {
      status: 'fail',
      detail: `${base}/v2/: ${code}`,
      fix: insecure
        ? 'Start the registry (`bash scripts/sandbox.sh up` for the sandbox).'
        : 'Check the URL; for a plain-HTTP loopback registry set registry.insecure: true.',
    }
  }
}
