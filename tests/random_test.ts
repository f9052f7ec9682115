// TorchGenerator against torch 1.13's CPU torch.randn (reference/randn/*.npy, drawn by
// reference/generate.py from torch.Generator().manual_seed(seed)): within 1e-6 per value.
import assert from "node:assert/strict";
import { TorchGenerator } from "../mod.ts";
import { readNpyTensor } from "../lib/npy.ts";
import { randnCases, REFERENCE_DIR } from "./_reference.ts";

const TOLERANCE = 1e-6;

for (const c of randnCases) {
  Deno.test(`randn() matches torch.randn: ${c.name} (seed ${c.seed}, shapes ${JSON.stringify(c.shapes)})`, async () => {
    const expected = (await readNpyTensor(
      new URL(`randn/${c.name}.npy`, REFERENCE_DIR),
    )).toFloat32Array();
    const generator = new TorchGenerator(c.seed);
    const draws = c.shapes.flatMap((shape) => {
      const t = generator.randn(shape);
      assert.deepEqual(t.shape, shape);
      return Array.from(t.toFloat32Array());
    });
    assert.equal(draws.length, expected.length);
    let worst = 0;
    let exact = 0;
    draws.forEach((x, i) => {
      const d = Math.abs(x - expected[i]!);
      worst = Math.max(worst, d);
      if (d === 0) exact++;
    });
    console.log(
      `${c.name}: worst |diff| ${
        worst.toExponential(2)
      }, bit-exact ${exact}/${draws.length}`,
    );
    assert.ok(worst <= TOLERANCE, `worst difference ${worst}`);
  });
}

Deno.test("manualSeed() restarts the stream and drops the cached normal", () => {
  const generator = new TorchGenerator(5);
  const first = generator.randn([3]).toFloat32Array();
  generator.randn([20]);
  generator.manualSeed(5);
  assert.deepEqual(generator.randn([3]).toFloat32Array(), first);
  assert.equal(generator.initialSeed, 5);
});

Deno.test("the first mt19937 outputs of seed 5489 are the reference ones", () => {
  const generator = new TorchGenerator(5489);
  assert.equal(generator.nextUint32(), 3499211612);
  assert.equal(generator.nextUint32(), 581869302);
});

Deno.test("TorchGenerator() rejects negative and fractional seeds", () => {
  assert.throws(() => new TorchGenerator(-1), RangeError);
  assert.throws(() => new TorchGenerator(0.5), RangeError);
});
