import {parseConfig} from '../../../src/config/parse.js'

/** A project with every kind of SLI (availability, latency with a route, ratio with {{window}}): rules and their YAML. */
export const sloProject = () =>
  parseConfig(`
project: shop
registry: {url: 127.0.0.1:5000}
services:
  checkout:
    tier: revenue-critical
    slos:
      - {name: availability, objective: 99.9, window: 30d, sli: {type: availability}}
      - {name: latency, objective: 99, window: 28d, sli: {type: latency, thresholdMs: 300, route: /checkout}}
      - name: checkout-success
        objective: 99.5
        window: 7d
        sli: {type: ratio, good: 'sum(rate(checkout_success_total{service="checkout"}[{{window}}]))', total: 'checkout_attempts_total{service="checkout"}'}
  catalog:
    tier: operational
    slos:
      - {name: availability, objective: 99.5, window: 30d, sli: {type: availability}}
`)
