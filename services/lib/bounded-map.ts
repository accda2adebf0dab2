// A Map that forgets its oldest entries past a size, so in-memory stores can't grow without
// bound under load tests.

export class BoundedMap<K, V> extends Map<K, V> {
  readonly limit: number

  constructor(limit: number) {
    super()
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError('limit must be an integer >= 1')
    this.limit = limit
  }

  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.limit) {
      const oldest = this.keys().next()
      if (!oldest.done) this.delete(oldest.value)
    }
    return super.set(key, value)
  }
}
