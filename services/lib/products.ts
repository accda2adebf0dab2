// The product range every service is seeded with: catalog serves it, cart and checkout price
// from it, inventory stocks it. In production this would be a pricing snapshot fed by the
// catalog's events; here it is one module, so the services agree without a database.

export interface Product {
  sku: string
  name: string
  description: string
  category: string
  priceCents: number
  currency: 'USD'
  tags: readonly string[]
}

export const PRODUCTS: readonly Product[] = [
  {
    sku: 'SKU-1001',
    name: 'Trail Running Shoes',
    description: 'Lightweight shoes with a grippy outsole for muddy trails.',
    category: 'footwear',
    priceCents: 12_900,
    currency: 'USD',
    tags: ['running', 'outdoor'],
  },
  {
    sku: 'SKU-1002',
    name: 'Merino Wool Socks',
    description: 'Three pairs of cushioned merino socks.',
    category: 'apparel',
    priceCents: 2_400,
    currency: 'USD',
    tags: ['wool', 'running'],
  },
  {
    sku: 'SKU-1003',
    name: 'Waterproof Shell Jacket',
    description: 'Breathable three-layer jacket that packs into its pocket.',
    category: 'apparel',
    priceCents: 24_900,
    currency: 'USD',
    tags: ['rain', 'outdoor'],
  },
  {
    sku: 'SKU-1004',
    name: 'Insulated Water Bottle',
    description: 'Keeps drinks cold for 24 hours; 750 ml.',
    category: 'accessories',
    priceCents: 3_500,
    currency: 'USD',
    tags: ['hydration'],
  },
  {
    sku: 'SKU-1005',
    name: 'Hiking Daypack 22L',
    description: 'A 22 litre pack with a ventilated back panel.',
    category: 'bags',
    priceCents: 8_900,
    currency: 'USD',
    tags: ['hiking', 'outdoor'],
  },
  {
    sku: 'SKU-1006',
    name: 'Headlamp 400',
    description: 'Rechargeable 400 lumen headlamp with red light mode.',
    category: 'accessories',
    priceCents: 4_500,
    currency: 'USD',
    tags: ['camping', 'running'],
  },
  {
    sku: 'SKU-1007',
    name: 'Camping Stove',
    description: 'Compact canister stove that boils a litre in four minutes.',
    category: 'camping',
    priceCents: 6_900,
    currency: 'USD',
    tags: ['camping', 'cooking'],
  },
  {
    sku: 'SKU-1008',
    name: 'Down Sleeping Bag',
    description: 'Rated to -5 °C, 800-fill responsibly sourced down.',
    category: 'camping',
    priceCents: 32_900,
    currency: 'USD',
    tags: ['camping', 'sleep'],
  },
  {
    sku: 'SKU-1009',
    name: 'Running Cap',
    description: 'Quick-drying cap with a reflective trim.',
    category: 'apparel',
    priceCents: 1_900,
    currency: 'USD',
    tags: ['running'],
  },
  {
    sku: 'SKU-1010',
    name: 'Trekking Poles',
    description: 'Pair of collapsible carbon trekking poles.',
    category: 'accessories',
    priceCents: 11_900,
    currency: 'USD',
    tags: ['hiking'],
  },
  {
    sku: 'SKU-1011',
    name: 'Limited Edition Ultra Vest',
    description: 'Race hydration vest, limited run.',
    category: 'bags',
    priceCents: 17_900,
    currency: 'USD',
    tags: ['running', 'limited'],
  },
  {
    sku: 'SKU-1012',
    name: 'Gift Card',
    description: 'A digital gift card worth fifty dollars.',
    category: 'gift',
    priceCents: 5_000,
    currency: 'USD',
    tags: ['gift'],
  },
]

/** Units inventory starts with per SKU; the limited edition is scarce so "out of stock" is real. */
export const SEED_STOCK: Readonly<Record<string, number>> = Object.fromEntries(
  PRODUCTS.map((product) => [product.sku, product.tags.includes('limited') ? 5 : 1_000_000]),
)

const BY_SKU = new Map(PRODUCTS.map((product) => [product.sku, product]))

export function findProduct(sku: string): Product | undefined {
  return BY_SKU.get(sku)
}
