// WGSL of the reductions for iterative solvers (exact inversion): `maxAbs(x)` and `dot(x, y)`,
// each ending in one scalar the host reads back.
//
// maxAbs works on the bits: non-negative float32 bits sort as their values, so max |x| is the
// u32 maximum of `bits & 0x7fffffff`, an atomicMax over the whole tensor. Integer arithmetic is
// exact and order-free, so the result is the CPU kernel's bit for bit, subnormals included, and a
// NaN (bits above 0x7f800000, the infinity) wins the maximum as it sticks on the CPU.
//
// dot sums float32 products in float32: each thread strides through its chunk, the workgroup adds
// its threads' sums as a tree into one partial per workgroup, and a finishing pass of one
// workgroup adds the partials the same way. It is not the CPU's float64 sum, but within the
// float32 bound of any summation order (see docs/webgpu.md). Non-finite operands never reach
// float arithmetic (WGSL lets an implementation assume floats are finite, see threshold.ts):
// each product is classified on its bits first, and flags (1: NaN, 2: +∞, 4: −∞) tell the host
// the IEEE result, as the CPU computes it: NaN for a NaN operand, ∞·0 or +∞ and −∞ together,
// else the infinity's sign.
//
// Bindings after the uniform block: maxAbs t0 (read, u32 words) and `result` (word 0 the
// maximum's bits); dot t0, t1 (read, u32 words), `partial` (one float per workgroup, from
// info(3) on for the dispatch's chunk) and `result` (word 0 the flags); the finishing pass
// `partial` (info(0) floats) and `result` (word 1 the sum's bits).
import { preamble, WORKGROUP_SIZE } from "./_wgsl.ts";

/** Workgroups one chunk of a reduction dispatches at most (each thread strides further). */
export const REDUCTION_GROUPS = 256;

function bindings(flat: boolean, operands: 1 | 2, extra: string): string {
  const inputs = Array.from(
    { length: operands },
    (_, k) =>
      `@group(0) @binding(${k + 1}) var<storage, read> t${k}: array<u32>;`,
  ).join("\n");
  return `${preamble()}
${inputs}
${extra}
fn at(k: u32, i: u32) -> u32 { return ${
    flat ? "at_flat" : "at_strided"
  }(k, i); }
`;
}

const entry = `@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>)`;

// Adds `sums` (one float per thread, own value in `s`) as a tree into sums[0].
const treeSum = /* wgsl */ `sums[l.x] = s;
  workgroupBarrier();
  for (var width = ${WORKGROUP_SIZE / 2}u; width > 0u; width >>= 1u) {
    if (l.x < width) { sums[l.x] = sums[l.x] + sums[l.x + width]; }
    workgroupBarrier();
  }`;

/** max |x| over the chunk's `info(0)` elements, atomicMax'ed as bits into `result[0]`. */
export function maxAbsShader(flat: boolean): string {
  return `${
    bindings(
      flat,
      1,
      "@group(0) @binding(2) var<storage, read_write> result: array<atomic<u32>>;",
    )
  }
var<workgroup> best: atomic<u32>;

${entry} {
  var m = 0u;
  for (var i = w.x * ${WORKGROUP_SIZE}u + l.x; i < info(0u); i += groups.x * ${WORKGROUP_SIZE}u) {
    m = max(m, t0[at(0u, i)] & 0x7fffffffu);
  }
  atomicMax(&best, m);
  workgroupBarrier();
  if (l.x == 0u) { atomicMax(&result[0], atomicLoad(&best)); }
}
`;
}

/**
 * Σ x·y over the chunk's `info(0)` elements: one float32 partial per workgroup into
 * `partial[info(3) + workgroup]`, the flags of non-finite products or-ed into `result[0]`.
 */
export function dotShader(flat: boolean): string {
  return `${
    bindings(
      flat,
      2,
      `@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<storage, read_write> result: array<atomic<u32>>;`,
    )
  }
var<workgroup> sums: array<f32, ${WORKGROUP_SIZE}>;
var<workgroup> seen: atomic<u32>;

${entry} {
  var s = 0.0;
  var flags = 0u;
  for (var i = w.x * ${WORKGROUP_SIZE}u + l.x; i < info(0u); i += groups.x * ${WORKGROUP_SIZE}u) {
    let a = t0[at(0u, i)];
    let b = t1[at(1u, i)];
    let ma = a & 0x7fffffffu;
    let mb = b & 0x7fffffffu;
    if (ma > 0x7f800000u || mb > 0x7f800000u) {
      flags |= 1u;
    } else if (ma == 0x7f800000u || mb == 0x7f800000u) {
      // ∞·0 is NaN; otherwise an infinity of the product's sign.
      flags |= select(select(2u, 4u, ((a ^ b) & 0x80000000u) != 0u), 1u, ma == 0u || mb == 0u);
    } else {
      s = s + mul(bitcast<f32>(a), bitcast<f32>(b));
    }
  }
  atomicOr(&seen, flags);
  ${treeSum}
  if (l.x == 0u) {
    partial[info(3u) + w.x] = sums[0];
    let raised = atomicLoad(&seen);
    if (raised != 0u) { atomicOr(&result[0], raised); }
  }
}
`;
}

/** The `info(0)` partials of {@link dotShader} added by one workgroup; the sum's bits into `result[1]`. */
export function dotFinishShader(): string {
  return `${preamble()}
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<atomic<u32>>;
var<workgroup> sums: array<f32, ${WORKGROUP_SIZE}>;

${entry} {
  var s = 0.0;
  for (var j = l.x; j < info(0u); j += ${WORKGROUP_SIZE}u) { s = s + partial[j]; }
  ${treeSum}
  if (l.x == 0u) { atomicStore(&result[1], bitcast<u32>(sums[0])); }
}
`;
}

/**
 * The host's value of a maxAbs result word: the float32 of those bits, or NaN for NaN bits
 * (any payload, as the CPU returns any NaN).
 */
export function maxAbsValue(bits: number): number {
  return bits > 0x7f800000 ? NaN : bitsToFloat(bits);
}

/**
 * The host's value of a dot result: NaN, ±∞ from the flags as IEEE arithmetic would give them,
 * else the float32 sum of `sumBits`.
 */
export function dotValue(flags: number, sumBits: number): number {
  if ((flags & 1) !== 0 || (flags & 6) === 6) return NaN;
  if ((flags & 2) !== 0) return Infinity;
  if ((flags & 4) !== 0) return -Infinity;
  return bitsToFloat(sumBits);
}

function bitsToFloat(bits: number): number {
  return new Float32Array(Uint32Array.of(bits).buffer)[0]!;
}
