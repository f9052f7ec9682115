// The WGSL preamble every WebGPU kernel shares: the uniform block (coefficients, shape, strides,
// offsets), the storage bindings, the strided index function and float32 helpers that keep the
// CPU backend's rounding order. Kernel files return only their bodies.

/** Workgroup size of every kernel (threads along x). */
export const WORKGROUP_SIZE = 256;
/** Highest tensor rank a kernel addresses after merging dimensions. */
export const MAX_RANK = 8;
/**
 * Most strided tensor operands of one kernel (the fused order-3 conversion and update with noise:
 * out, converted, x, model output, m1, m2, noise; one spare).
 */
export const MAX_OPERANDS = 8;
/** Bytes of one uniform block; blocks sit at multiples of this in the uniform buffer. */
export const PARAMS_BYTES = 512;

/**
 * Layout of the uniform block, in 32-bit words: `coef` (12 f32: a, b, c, d, e, k0, k1, q, k2,
 * and kernel-specific scalars), `meta` (8 u32: count, rank, guard, perItem, pass, …), `shape`
 * (8 u32), `strides` (8 operands × 8 i32), `offsets` (8 u32).
 */
export const PARAMS = {
  coef: 0,
  meta: 12,
  shape: 20,
  strides: 28,
  offsets: 28 + MAX_OPERANDS * MAX_RANK,
} as const;

const struct = /* wgsl */ `
struct Params {
  coef: array<vec4<f32>, 3>,
  info: array<vec4<u32>, 2>,
  shape: array<vec4<u32>, 2>,
  strides: array<vec4<i32>, ${(MAX_OPERANDS * MAX_RANK) / 4}>,
  offsets: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> P: Params;

fn coef(k: u32) -> f32 { return P.coef[k / 4u][k % 4u]; }
fn info(k: u32) -> u32 { return P.info[k / 4u][k % 4u]; }
fn dim(d: u32) -> u32 { return P.shape[d / 4u][d % 4u]; }
fn stride(k: u32, d: u32) -> i32 { let w = k * ${MAX_RANK}u + d; return P.strides[w / 4u][w % 4u]; }
fn offset(k: u32) -> u32 { return P.offsets[k / 4u][k % 4u]; }

// Element index of operand k for the i-th element in row-major order of the (merged) shape:
// offset + sum of stride * index, as Tensor.index() computes it.
fn at_strided(k: u32, i: u32) -> u32 {
  var rest = i;
  var index = i32(offset(k));
  for (var d = i32(info(1u)) - 1; d >= 0; d--) {
    let n = dim(u32(d));
    let q = rest / n;
    index += i32(rest - q * n) * stride(k, u32(d));
    rest = q;
  }
  return u32(index);
}
fn at_flat(k: u32, i: u32) -> u32 { return offset(k) + i; }

// The guard word is always 0, but the compiler cannot know it: passing each product through it
// keeps a*b + c from being contracted into one fused multiply-add, so every operation rounds to
// float32 on its own, in the CPU backend's order.
fn mul(a: f32, b: f32) -> f32 { return select(a * b, 0.0, info(2u) != 0u); }
fn sub(a: f32, b: f32) -> f32 { return select(a - b, 0.0, info(2u) != 0u); }
`;

/**
 * A whole element-wise shader: the preamble, one storage binding per operand `t0…` (read-write
 * or read-only as `plan.access` says), and `body` run once per element `i` (bounds already
 * checked), with `at(k, i)` the element index of operand k (flat for contiguous operands,
 * strided otherwise). An operand k with `plan.shared[k] = j` is read through `tj`: the uniform
 * block still gives it its own offset and strides, relative to the shared window. Bindings are
 * numbered from 1 in operand order, skipping shared operands ({@link bindingLayout}).
 */
export function elementwiseShader(
  operands: number,
  flat: boolean,
  body: string,
  plan: { access: string; shared: readonly number[] },
): string {
  let binding = 0;
  const bindings: string[] = [];
  for (let k = 0; k < operands; k++) {
    if (plan.shared[k]! >= 0) continue;
    const access = plan.access[k] === "w" ? "read_write" : "read";
    bindings.push(
      `@group(0) @binding(${++binding}) var<storage, ${access}> t${k}: array<f32>;`,
    );
  }
  let code = body;
  plan.shared.forEach((j, k) => {
    if (j >= 0) code = code.replaceAll(`t${k}[`, `t${j}[`);
  });
  return `${struct}
${bindings.join("\n")}
fn at(k: u32, i: u32) -> u32 { return ${
    flat ? "at_flat" : "at_strided"
  }(k, i); }

@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = g.x + g.y * groups.x * ${WORKGROUP_SIZE}u;
  if (i >= info(0u)) { return; }
  ${code}
}
`;
}

/**
 * The storage bindings' access of {@link elementwiseShader}, one letter per binding (`w`
 * read-write, `r` read-only): the pipeline cache's layout key.
 */
export function bindingLayout(
  plan: { access: string; shared: readonly number[] },
): string {
  let layout = "";
  for (let k = 0; k < plan.access.length; k++) {
    if (plan.shared[k]! < 0) layout += plan.access[k];
  }
  return layout;
}

/** The preamble alone, for kernels with their own bindings and entry points. */
export function preamble(): string {
  return struct;
}
