// WGSL of dynamic thresholding on the device: a radix select over the bits of |x| (non-negative
// float32 bits sort as their values) finds, per item of dimension 0, the two order statistics
// torch.quantile interpolates between, in four passes of 8 bits (a histogram, then a scan that
// fixes one digit); the apply kernel interpolates as torch.lerp does, clamps and divides.
//
// NaN: WGSL lets an implementation assume that no float is NaN during execution, and a constant
// expression that evaluates to NaN is a shader-creation error (Dawn rejects one, wgpu let it
// through). So no float here is ever made NaN: t0 and `out` are bound as u32 words, read as
// floats with a run-time bitcast, and an item holding a NaN gets the NaN's bits written as an
// integer (`select` of u32 words, from the flag the histogram raised).
//
// Bindings: t0 the tensor (read-write, as u32 words), hist (per row: 2 × 256 counters, then a NaN flag) and
// state (per row: prefix and remaining rank of both selections). info(3) is the item size,
// info(4) the round, info(5) and info(6) the two ranks, info(7) the row-major index of the first
// element of the dispatch's window (passes are split to fit the binding limit); coef 9, 10, 11
// are the interpolation weight, 1 − weight and sample_max_value (coef 0–8 are the update's, when
// fused with it).
import { preamble, WORKGROUP_SIZE } from "./_wgsl.ts";
import { updateBody } from "./linear_combination.ts";

/** Words of `hist` per row. */
export const HIST_STRIDE = 520;
/** Words of `state` per row. */
export const STATE_STRIDE = 4;

function bindings(flat: boolean): string {
  return `${preamble()}
@group(0) @binding(1) var<storage, read_write> t0: array<u32>;
@group(0) @binding(2) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> state: array<u32>;
fn at(k: u32, i: u32) -> u32 { return ${
    flat ? "at_flat" : "at_strided"
  }(k, i); }
`;
}

/** Histogram of the next 8 bits of |x| among the elements that match each selection's prefix. */
export function histogramShader(flat: boolean): string {
  return `${bindings(flat)}
var<workgroup> local: array<atomic<u32>, 512>;

@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
  // Rows of this dispatch's window; info(7) is the index of its first element.
  let perItem = info(3u);
  let row = w.y + info(7u) / perItem;
  let round = info(4u);
  atomicStore(&local[l.x], 0u);
  atomicStore(&local[l.x + 256u], 0u);
  workgroupBarrier();
  let shift = 24u - 8u * round;
  let mask = select(0xffffffffu << (32u - 8u * round), 0u, round == 0u);
  var p0 = 0u;
  var p1 = 0u;
  if (round > 0u) {
    p0 = state[row * ${STATE_STRIDE}u];
    p1 = state[row * ${STATE_STRIDE}u + 2u];
  }
  var nan = false;
  for (var j = w.x * ${WORKGROUP_SIZE}u + l.x; j < perItem; j += groups.x * ${WORKGROUP_SIZE}u) {
    let bits = t0[at(0u, w.y * perItem + j)] & 0x7fffffffu;
    let digit = (bits >> shift) & 255u;
    if ((bits & mask) == p0) { atomicAdd(&local[digit], 1u); }
    if ((bits & mask) == p1) { atomicAdd(&local[256u + digit], 1u); }
    if (bits > 0x7f800000u) { nan = true; }
  }
  if (nan) { atomicOr(&hist[row * ${HIST_STRIDE}u + 512u], 1u); }
  workgroupBarrier();
  let c0 = atomicLoad(&local[l.x]);
  if (c0 != 0u) { atomicAdd(&hist[row * ${HIST_STRIDE}u + l.x], c0); }
  let c1 = atomicLoad(&local[l.x + 256u]);
  if (c1 != 0u) { atomicAdd(&hist[row * ${HIST_STRIDE}u + 256u + l.x], c1); }
}
`;
}

/** Per row and selection: the digit holding the remaining rank; clears the histogram. */
export function scanShader(flat: boolean): string {
  return `${bindings(flat)}
@compute @workgroup_size(2)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
  let row = w.x;
  let which = l.x;
  let round = info(4u);
  let at_state = row * ${STATE_STRIDE}u + which * 2u;
  var prefix = 0u;
  var k = info(5u + which);
  if (round > 0u) {
    prefix = state[at_state];
    k = state[at_state + 1u];
  }
  let base = row * ${HIST_STRIDE}u + which * 256u;
  var digit = 0u;
  var found = false;
  for (var b = 0u; b < 256u; b++) {
    let c = atomicLoad(&hist[base + b]);
    if (!found) {
      if (k < c) { digit = b; found = true; } else { k -= c; }
    }
    atomicStore(&hist[base + b], 0u);
  }
  state[at_state] = prefix | (digit << (24u - 8u * round));
  state[at_state + 1u] = k;
}
`;
}

// torch.lerp between the two selected values of the item, clamp to [1, max], then
// m0 = clamp(v, −s, s) / s for the element `v` of t0 at i.
const thresholded = /* wgsl */ `let row = (i + info(7u)) / info(3u);
  let low = bitcast<f32>(state[row * ${STATE_STRIDE}u]);
  let high = bitcast<f32>(state[row * ${STATE_STRIDE}u + 2u]);
  let weight = coef(9u);
  let spread = sub(high, low);
  let level = select(high - mul(spread, coef(10u)), low + mul(weight, spread), weight < 0.5);
  // torch.clamp(s, min=1, max=sample_max_value), NaN propagating.
  var s = select(level, 1.0, level < 1.0);
  s = select(s, coef(11u), s > coef(11u));
  let v = bitcast<f32>(t0[at(0u, i)]);
  let m0 = select(select(v, s, v > s), -s, v < -s) / s;
  // NaN in the item makes the quantile NaN (torch.quantile), hence every element: written as
  // bits (see the top of this file).
  let nan_item = atomicLoad(&hist[row * ${HIST_STRIDE}u + 512u]) != 0u;`;

/** The bits of a NaN result: the quiet NaN torch produces. */
const NAN_BITS = "0x7fc00000u";

// The u32 word to store for the float `value` of the current element.
function stored(value: string): string {
  return `select(bitcast<u32>(${value}), ${NAN_BITS}, nan_item)`;
}

function applyEntry(body: string): string {
  return `@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = g.x + g.y * groups.x * ${WORKGROUP_SIZE}u;
  if (i >= info(0u)) { return; }
  ${thresholded}
  ${body}
}
`;
}

/**
 * torch.lerp between the two selected values, clamp to [1, max], then x = clamp(x, −s, s) / s
 * (coef 9, 10, 11: the interpolation weight, 1 − weight and sample_max_value).
 */
export function applyShader(flat: boolean): string {
  return `${bindings(flat)}
${applyEntry(`t0[at(0u, i)] = ${stored("m0")};`)}`;
}

/**
 * The apply pass fused with the multistep update: `x0` (t0) is thresholded in place as
 * {@link applyShader} does, and the update {@link updateBody} of `order` writes `out`. Operand
 * k ≥ 1 (out, read-write as u32 words; then x, m1, m2, and noise when `withNoise`, each
 * read-write or read-only as `access` says, one letter each) sits at binding k + 3, after the
 * scratch buffers; the update's coefficients are coef 0–8, the thresholding's coef 9–11.
 */
export function applyUpdateShader(
  flat: boolean,
  order: 1 | 2 | 3,
  withNoise: boolean,
  access: string,
): string {
  const operands = order + 1 + (withNoise ? 1 : 0);
  const extra = Array.from(
    { length: operands },
    (_, j) =>
      `@group(0) @binding(${j + 4}) var<storage, ${
        j === 0 || access[j - 1] === "w" ? "read_write" : "read"
      }> t${j + 1}: array<${j === 0 ? "u32" : "f32"}>;`,
  ).join("\n");
  return `${bindings(flat)}${extra}
${
    applyEntry(`let x = t2[at(2u, i)];
  ${updateBody(order, 3, withNoise ? order + 2 : null)}
  t0[at(0u, i)] = ${stored("m0")};
  t1[at(1u, i)] = ${stored("r")};`)
  }`;
}
