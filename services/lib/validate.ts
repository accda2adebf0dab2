// Small request-body validators that answer 400 with the field at fault.

import {HttpError} from './errors.ts'

export type Json = Record<string, unknown>

export function invalid(field: string, expected: string): HttpError {
  return new HttpError(400, 'invalid_request', `${field}: expected ${expected}`, {field})
}

export function object(value: unknown, field = 'body'): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(field, 'a JSON object')
  return value as Json
}

export function string(body: Json, field: string, options: {optional?: boolean; max?: number} = {}): string {
  const value = body[field]
  if (value === undefined && options.optional) return ''
  const max = options.max ?? 200
  if (typeof value !== 'string' || value.trim() === '' || value.length > max) {
    throw invalid(field, `a non-empty string of at most ${max} characters`)
  }
  return value
}

export function positiveInt(body: Json, field: string, max = 1_000_000_000): number {
  const value = body[field]
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalid(field, `an integer from 1 to ${max}`)
  }
  return value
}

export interface LineItem {
  sku: string
  quantity: number
}

/** A non-empty list of {sku, quantity}; the same SKU twice is merged. */
export function lineItems(body: Json, field = 'items', maxItems = 100): LineItem[] {
  const value = body[field]
  if (!Array.isArray(value) || value.length === 0 || value.length > maxItems) {
    throw invalid(field, `a list of 1 to ${maxItems} items`)
  }
  const merged = new Map<string, number>()
  value.forEach((entry, index) => {
    const item = object(entry, `${field}[${index}]`)
    const sku = string(item, 'sku', {max: 64})
    const quantity = positiveInt(item, 'quantity', 1_000)
    merged.set(sku, (merged.get(sku) ?? 0) + quantity)
  })
  return [...merged].map(([sku, quantity]) => ({sku, quantity}))
}
