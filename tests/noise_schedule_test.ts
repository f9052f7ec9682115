// The training schedule against the betas and alphas_cumprod diffusers saved
// (reference/inverse/<case>/betas.npy, alphas_cumprod.npy), bit for bit.
import assert from "node:assert/strict";
import { resolveConfig } from "../lib/config.ts";
import { alphasCumprodFrom, betasFor } from "../lib/noise_schedule.ts";
import { caseFile, cases, float32, savedConfig } from "./_reference.ts";

for (const c of cases) {
  const exists = await Deno.stat(caseFile(c, "betas.npy")).then(
    () => true,
    () => false,
  );
  if (!exists) continue;
  Deno.test(`${c.name}: betas and alphas_cumprod equal diffusers' float32 values`, async () => {
    const config = resolveConfig(await savedConfig(c), { ignoreUnknown: true });
    const betas = betasFor(config);
    assert.deepEqual(betas, (await float32(c, "betas.npy")).toFloat32Array());
    assert.deepEqual(
      alphasCumprodFrom(betas),
      (await float32(c, "alphas_cumprod.npy")).toFloat32Array(),
    );
  });
}
