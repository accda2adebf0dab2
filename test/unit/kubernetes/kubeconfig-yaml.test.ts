import {describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {parseSimpleYaml} from '../../../src/kubernetes/kubeconfig-yaml.js'

// As kubectl writes one (`kubectl config view --raw`): sequences at their key's indentation.
const KUBECTL = `apiVersion: v1
clusters:
- cluster:
    certificate-authority: /root/.cache/retailops-sandbox/state/kwok/clusters/retailops/pki/ca.crt
    server: https://127.0.0.1:6443
  name: kwok-retailops
contexts:
- context:
    cluster: kwok-retailops
    namespace: shop-staging
    user: kwok-retailops
  name: kwok-retailops
current-context: kwok-retailops
kind: Config
preferences: {}
users:
- name: kwok-retailops
  user:
    client-certificate: /root/.cache/retailops-sandbox/state/kwok/clusters/retailops/pki/admin.crt
    client-key: /root/.cache/retailops-sandbox/state/kwok/clusters/retailops/pki/admin.key
`

// kind's and the cloud CLIs' shapes: data fields, an exec plugin with args and env, quotes, comments, CRLF.
const OTHERS = [
  `apiVersion: v1
clusters:
  - cluster:
      certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUMvakNDQWVhZ0F3SUJBZ0lCQURBTkJna3Foa2lHOXcwQkFRc0ZBREFWTVJNd0VRWURWUVFERXdwcmRXSmwKY201bGRHVnpNQjRYRFRJeE1EZ3hNREV5TkRVMU1sb1hEVE14TURnd09ERXlORFUxTWxvd0ZURVRNQkVHQTFVRQo=
      server: https://127.0.0.1:38135
      insecure-skip-tls-verify: false
    name: kind-kind
contexts:
  - context:
      cluster: kind-kind
      user: kind-kind
    name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
  - name: kind-kind
    user:
      token: "abc.def-ghi_jkl"
`,
  `# written by gcloud
apiVersion: v1
kind: Config
current-context: 'gke_shop_europe-west1_prod'
users:
- name: gke_shop_europe-west1_prod
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args: null
      command: gke-gcloud-auth-plugin
      env: []
      installHint: Install gke-gcloud-auth-plugin for use with kubectl by following https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin
      interactiveMode: IfAvailable
      provideClusterInfo: true
`,
  'apiVersion: v1\r\nkind: Config\r\ncurrent-context: a\r\ncontexts:\r\n- name: a\r\n  context:\r\n    cluster: c\r\n    user: "u"\r\n',
  `apiVersion: v1
kind: Config
users:
- name: it's
  user:
    token: 'it''s a token'
    username: admin#1
`,
  `clusters: &shared
- name: a
contexts: *shared
`,
  `kind: Config
preferences:
  colors: true
  extensions:
  - name: x
    extension:
      retries: 3
      ratio: .5
      negative: -1
      hex: 0x1f
`,
  `users:
- name: u
  user:
    client-key-data: |
      LS0tLS1CRUdJTi
    password: >-
      folded
      text
`,
  `kind: Config
kind: Config
`,
  '---\nkind: Config\n',
  'kind: Config\n---\nkind: Other\n',
  '- a\n- b\n-\n  - c\n',
  'a:\n  b: 1\n c: 2\n',
  'a: "x\\ty"\nb: "q\\"q"\n',
  'null: 1\n~: 2\ntrue: 3\n',
  'a: plain\n  continued\n',
  'a: x\n\tb: y\n',
  'name: café\n',
  'list:\n- - nested\n',
  'a: [1, 2]\nb: {c: d}\n',
  'a: !!str 5\n',
  'a: yes\nb: no\nc: on\nd: NULL\ne: ~\nf: True\ng: FALSE\nh:\n',
  'a: x # a comment after the value\n',
  'a: {b: c}\n',
]

describe('parseSimpleYaml', () => {
  it('reads the kubeconfig kubectl writes, as the yaml library does (without loading it)', () => {
    expect(parseSimpleYaml(KUBECTL)).toEqual(parse(KUBECTL))
    expect(parseSimpleYaml(KUBECTL)).not.toBeUndefined()
  })

  it('answers what the yaml library answers, or undefined (the library then reads it)', () => {
    for (const text of OTHERS) {
      const simple = parseSimpleYaml(text)
      if (simple !== undefined) expect(simple, text).toEqual(parse(text))
    }
    // The usual shapes are read here: kind's, gcloud's, CRLF, quoting, the plain scalars.
    for (const read of [OTHERS[0], OTHERS[1], OTHERS[2], OTHERS[3], OTHERS.at(-3)!])
      expect(parseSimpleYaml(read), read).toEqual(parse(read))
    for (const outside of [
      OTHERS[4], // anchors and aliases
      OTHERS[5], // numbers
      OTHERS[6], // block scalars
      OTHERS[7], // a duplicate key
      OTHERS[8], // a document marker
      OTHERS[10], // an empty item with a nested sequence
      OTHERS[11], // a key indented less than its siblings
      OTHERS[12], // escapes
      OTHERS[13], // keys the library reads as null and booleans
      OTHERS[14], // a plain scalar over two lines
      OTHERS[15], // a tab
      OTHERS[16], // not ASCII
      OTHERS[17], // a sequence in a sequence
      OTHERS[18], // flow collections with content
      OTHERS[19], // a tag
      OTHERS.at(-2)!, // a comment after a value
      OTHERS.at(-1)!, // a flow mapping
    ])
      expect(parseSimpleYaml(outside), outside).toBeUndefined()
  })

  it('agrees with the library on 5,000 generated kubeconfig-shaped documents', () => {
    let seed = 7
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
      return seed / 2_147_483_648
    }
    const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]
    const alphabet = 'abcXYZ019 -_:#./\'"\\@&*!|>{}[],?%`~'
    const word = () =>
      Array.from({length: 1 + Math.floor(random() * 12)}, () => pick([...alphabet, 'a', 'b', 'c', 'x'])).join('')
    const scalar = (): unknown =>
      pick([word, word, word, () => pick([true, false, null]), () => Math.floor(random() * 100), () => ''])()
    const key = () => pick(['name', 'server', 'user', 'cluster', 'token', 'client-key', 'a.b/c', word()])
    const value = (depth: number): unknown => {
      if (depth > 3 || random() < 0.5) return scalar()
      if (random() < 0.5)
        return Object.fromEntries(Array.from({length: Math.floor(random() * 4)}, () => [key(), value(depth + 1)]))
      return Array.from({length: Math.floor(random() * 4)}, () => value(depth + 1))
    }
    let read = 0
    for (let i = 0; i < 5000; i++) {
      const doc = Object.fromEntries(Array.from({length: 1 + Math.floor(random() * 5)}, () => [key(), value(0)]))
      const text = stringify(doc, {indentSeq: random() < 0.5, lineWidth: 0})
      const simple = parseSimpleYaml(text)
      if (simple === undefined) continue
      read++
      expect(simple, text).toEqual(parse(text))
    }
    expect(read).toBeGreaterThan(1000)
  })
})
