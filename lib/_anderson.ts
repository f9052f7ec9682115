// Anderson mixing (Walker & Ni 2011, "type II") of a fixed-point map g per item of a batch: the
// iterates and residuals f = g(x) − x are lists of whole-batch tensors (one step's sample, or a
// whole trajectory), the mixing coefficients are solved
// per item (dimension 0) from the Gram matrix of its last `depth` residual differences. Only the
// kernel interface touches tensor data; the host solves a depth × depth system per item.
import type { Kernels, TensorView } from "./kernels.ts";

/** Per-item Anderson mixing of depth `depth` on tensors of one shape. */
export class AndersonMixer<T extends TensorView<T>> {
  readonly #kernels: Kernels<T>;
  readonly #depth: number;
  readonly #batch: number;
  readonly #dx: T[][] = [];
  readonly #df: T[][] = [];
  readonly #xPrev: T[];
  readonly #fPrev: T[];
  // Ring position of the next column; columns are pushed for every item at once.
  #head = 0;
  #hasPrev = false;
  // Per item: how many of the newest columns are valid (reset by `restart` and `forget`).
  readonly #count: Int32Array;
  // Per item: forgotten since the last `next`, so the column `next` records (from the iterate
  // before) is not the item's either.
  readonly #forgotten: Uint8Array;
  // Per item: Gram matrix of the dF columns by ring slot, depth × depth.
  readonly #gram: Float64Array[];

  constructor(
    kernels: Kernels<T>,
    shape: readonly number[],
    length: number,
    depth: number,
  ) {
    this.#kernels = kernels;
    this.#depth = depth;
    this.#batch = shape[0]!;
    const list = () => Array.from({ length }, () => kernels.empty(shape));
    for (let j = 0; j < depth; j++) {
      this.#dx.push(list());
      this.#df.push(list());
    }
    this.#xPrev = list();
    this.#fPrev = list();
    this.#count = new Int32Array(this.#batch);
    this.#forgotten = new Uint8Array(this.#batch);
    this.#gram = Array.from(
      { length: this.#batch },
      () => new Float64Array(depth * depth),
    );
  }

  /**
   * Forgets item `b`'s history but the difference the next call records (from the last iterate
   * to the one it is given): its next update mixes with that one difference only.
   */
  restart(b: number): void {
    this.#count[b] = 0;
  }

  /**
   * Forgets all of item `b`'s history, the difference the next call would record included (for
   * a map that changed): its next update is the plain fixed-point step.
   */
  forget(b: number): void {
    this.#count[b] = 0;
    this.#forgotten[b] = 1;
  }

  /**
   * Writes the next iterate of the items where `active[b]` into `out` (other items: `x` copied):
   * `x + f − Σ γ_j·(Δx_j + Δf_j)` with γ the least-squares fit of `f` by the Δf columns.
   * Records `(x, f)` for the next call. `out` must not alias `x` or `f`.
   */
  async next(x: T[], f: T[], out: T[], active: Uint8Array): Promise<void> {
    const k = this.#kernels;
    const depth = this.#depth;
    // Every step's dot is queued before any is awaited (a device reads them back together); the
    // sum runs in step order, as a loop would.
    const dot = async (u: T[], v: T[], b: number) => {
      const parts = await Promise.all(
        u.map((uj, j) =>
          k.dot!(uj.slice(0, b, b + 1), v[j]!.slice(0, b, b + 1))
        ),
      );
      return parts.reduce((sum, part) => sum + part, 0);
    };
    // out_b += g·v_b over the list.
    const addItem = (o: T[], g: number, v: T[], b: number) => {
      for (let j = 0; j < o.length; j++) {
        const ob = o[j]!.slice(0, b, b + 1);
        k.axpbyDiv(ob, 1, ob, g, v[j]!.slice(0, b, b + 1), 1);
      }
    };
    if (this.#hasPrev && depth > 0) {
      const slot = this.#head;
      for (let j = 0; j < x.length; j++) {
        k.axpbyDiv(this.#dx[slot]![j]!, 1, x[j]!, -1, this.#xPrev[j]!, 1);
        k.axpbyDiv(this.#df[slot]![j]!, 1, f[j]!, -1, this.#fPrev[j]!, 1);
      }
      this.#head = (slot + 1) % depth;
      for (let b = 0; b < this.#batch; b++) {
        // After `forget`, the difference spans the two maps: not used.
        if (!active[b] || this.#forgotten[b]) continue;
        this.#count[b] = Math.min(this.#count[b]! + 1, depth);
        const gram = this.#gram[b]!;
        for (let c = 0; c < this.#count[b]!; c++) {
          const q = (slot - c + depth) % depth;
          const value = await dot(this.#df[slot]!, this.#df[q]!, b);
          gram[slot * depth + q] = value;
          gram[q * depth + slot] = value;
        }
      }
    }
    for (let j = 0; j < x.length; j++) k.copy(out[j]!, x[j]!);
    for (let b = 0; b < this.#batch; b++) {
      if (!active[b]) continue;
      addItem(out, 1, f, b);
      const m = this.#count[b]!;
      if (m === 0) continue;
      const slots = Array.from(
        { length: m },
        (_, c) => (this.#head - 1 - c + 2 * depth) % depth,
      );
      const rhs = new Float64Array(m);
      for (let c = 0; c < m; c++) {
        rhs[c] = await dot(this.#df[slots[c]!]!, f, b);
      }
      const gamma = solveRegularized(this.#gram[b]!, depth, slots, rhs);
      if (gamma === null) continue;
      for (let c = 0; c < m; c++) {
        const g = gamma[c]!;
        if (g === 0) continue;
        addItem(out, -g, this.#dx[slots[c]!]!, b);
        addItem(out, -g, this.#df[slots[c]!]!, b);
      }
    }
    for (let j = 0; j < x.length; j++) {
      k.copy(this.#xPrev[j]!, x[j]!);
      k.copy(this.#fPrev[j]!, f[j]!);
    }
    this.#hasPrev = true;
    this.#forgotten.fill(0);
  }
}

// Solves (G + δ·diag(G))·γ = rhs on the rows/columns `slots` of the depth × depth matrix `gram`
// by Gaussian elimination with partial pivoting, in float64; `null` if singular or not finite.
function solveRegularized(
  gram: Float64Array,
  depth: number,
  slots: readonly number[],
  rhs: Float64Array,
): Float64Array | null {
  const m = slots.length;
  const a = new Float64Array(m * (m + 1));
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < m; c++) {
      a[r * (m + 1) + c] = gram[slots[r]! * depth + slots[c]!]!;
    }
    a[r * (m + 1) + r]! *= 1 + 1e-10;
    a[r * (m + 1) + m] = rhs[r]!;
  }
  for (let col = 0; col < m; col++) {
    let pivot = col;
    for (let r = col + 1; r < m; r++) {
      if (
        Math.abs(a[r * (m + 1) + col]!) > Math.abs(a[pivot * (m + 1) + col]!)
      ) {
        pivot = r;
      }
    }
    const p = a[pivot * (m + 1) + col]!;
    if (!(Math.abs(p) > 0) || !Number.isFinite(p)) return null;
    if (pivot !== col) {
      for (let c = 0; c <= m; c++) {
        const t = a[col * (m + 1) + c]!;
        a[col * (m + 1) + c] = a[pivot * (m + 1) + c]!;
        a[pivot * (m + 1) + c] = t;
      }
    }
    for (let r = col + 1; r < m; r++) {
      const factor = a[r * (m + 1) + col]! / p;
      for (let c = col; c <= m; c++) {
        a[r * (m + 1) + c]! -= factor * a[col * (m + 1) + c]!;
      }
    }
  }
  const gamma = new Float64Array(m);
  for (let r = m - 1; r >= 0; r--) {
    let sum = a[r * (m + 1) + m]!;
    for (let c = r + 1; c < m; c++) sum -= a[r * (m + 1) + c]! * gamma[c]!;
    gamma[r] = sum / a[r * (m + 1) + r]!;
  }
  return gamma.every(Number.isFinite) ? gamma : null;
}
