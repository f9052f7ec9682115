/**
 * ONNX Runtime adapters (`@dpmsolver/scheduler/onnx`): an `InferenceSession` of a noise-prediction
 * model as the async model function that `invert` and `generate` call, with classifier-free
 * guidance in one batched call. This entry imports `npm:onnxruntime-node@1.30.0`, a native addon,
 * by its full specifier (so it loads however it is imported), and is separate from the main entry
 * so that the main entry never loads it; Deno needs `--allow-read --allow-env --allow-ffi`.
 *
 * @example Invert a digit and edit it to another class
 * ```ts ignore
 * import * as ort from "npm:onnxruntime-node@1.30.0";
 * import { onnxDiffusionModel } from "@dpmsolver/scheduler/onnx";
 * import {
 *   DPMSolverMultistepInverseScheduler,
 *   DPMSolverMultistepScheduler,
 *   generate,
 *   invert,
 *   readNpyTensor,
 * } from "@dpmsolver/scheduler";
 *
 * // A model folder holding unet.onnx and scheduler/scheduler_config.json, and a [1, 1, 8, 8] image.
 * const [dir, imageFile] = Deno.args as [string, string];
 * const model = onnxDiffusionModel(await ort.InferenceSession.create(`${dir}/unet.onnx`), { nullClassLabel: 10 });
 * const inverse = await DPMSolverMultistepInverseScheduler.fromPretrained(dir, { subfolder: "scheduler" });
 * const forward = await DPMSolverMultistepScheduler.fromPretrained(dir, { subfolder: "scheduler" });
 * const digit = await readNpyTensor(imageFile);
 * const inverted = await invert(model, digit, inverse, { numInferenceSteps: 50, classLabels: [3] });
 * const edited = await generate(model, inverted.sample, forward, {
 *   numInferenceSteps: 50,
 *   startSigma: inverted.sigma,
 *   classLabels: [8],
 *   guidanceScale: 3,
 * });
 * ```
 *
 * @module
 */
export * from "./lib/onnx/onnx_model.ts";
