/**
 * ONNX Runtime adapters: an `InferenceSession` of a noise-prediction model as the async
 * `DiffusionModel` that `invert` and `generate` call (with classifier-free guidance), and any
 * one-input session as a tensor function. Imported from the `./onnx` entry only, so that users of
 * the main entry never load ONNX Runtime's native addon.
 *
 * @module
 */
import * as ort from "npm:onnxruntime-node@1.30.0";
import type { DiffusionModel } from "../model.ts";
import { Tensor } from "../tensor.ts";

/**
 * What the adapters use of ONNX Runtime's `InferenceSession` (which satisfies it): input and
 * output names, input metadata and `run`.
 */
export interface OnnxSession {
  /** Names of the model's inputs. */
  readonly inputNames: readonly string[];
  /** Names of the model's outputs. */
  readonly outputNames: readonly string[];
  /** Per input: its name, whether it is a tensor and its element type. */
  readonly inputMetadata?: readonly {
    readonly name: string;
    readonly isTensor: boolean;
    readonly type?: unknown;
  }[];
  /** Runs the model on named input tensors. */
  run(
    feeds: Record<string, unknown>,
  ): Promise<
    Record<string, { readonly data: unknown; readonly dims: readonly number[] }>
  >;
}

/** Options of {@link onnxDiffusionModel}. */
export interface OnnxDiffusionModelOptions {
  /** Name of the sample input. @default {"sample"} */
  sampleInput?: string;
  /** Name of the timestep input (float32, int32 or int64, one per batch item). @default {"timestep"} */
  timestepInput?: string;
  /**
   * Name of the class-label input (int32 or int64, one per batch item); `null` for an
   * unconditional model. @default {"class_labels"}
   */
  classLabelsInput?: string | null;
  /** Name of the output; the session's first output by default. */
  output?: string;
  /**
   * The label of the "no class" embedding the model was trained with (classifier-free guidance);
   * used for the unconditional half of a guided call and when no labels are given.
   */
  nullClassLabel?: number;
}

/**
 * Wraps a session of a noise-prediction model as a {@link DiffusionModel}. A contiguous sample is
 * handed to ONNX Runtime without a copy, and the result wraps ONNX Runtime's output buffer. With a
 * guidance scale other than 1, conditional and unconditional predictions come from one batched
 * call of twice the batch: `uncond + scale · (cond − uncond)`.
 *
 * @param session An ONNX Runtime `InferenceSession`.
 * @param options Input and output names and the null class label.
 * @returns The model function.
 * @throws {TypeError} (when called) labels for a model without a label input, or no labels and no
 *   `nullClassLabel` for a model with one; guidance without `nullClassLabel`.
 *
 * @example Load the digits model (needs `--allow-read --allow-env --allow-ffi`)
 * ```ts ignore
 * import * as ort from "npm:onnxruntime-node@1.30.0";
 * import { onnxDiffusionModel } from "@dpmsolver/scheduler/onnx";
 * import { Tensor } from "@dpmsolver/scheduler";
 *
 * const session = await ort.InferenceSession.create("path/to/unet.onnx");
 * const model = onnxDiffusionModel(session, { nullClassLabel: 10 });
 * const eps = await model(Tensor.zeros([2, 1, 8, 8]), 500, Int32Array.of(3, 7), 3);
 * ```
 */
export function onnxDiffusionModel(
  session: OnnxSession,
  options: OnnxDiffusionModelOptions = {},
): DiffusionModel {
  const sampleName = options.sampleInput ?? "sample";
  const timestepName = options.timestepInput ?? "timestep";
  const labelsName = options.classLabelsInput === undefined
    ? "class_labels"
    : options.classLabelsInput;
  const outputName = options.output ?? session.outputNames[0]!;
  const { nullClassLabel } = options;
  for (const name of [sampleName, timestepName, labelsName]) {
    if (name !== null && !session.inputNames.includes(name)) {
      throw new TypeError(
        `Cannot wrap the ONNX session as it has no input '${name}': its inputs are ${
          session.inputNames.join(", ")
        }`,
      );
    }
  }
  const timestepType = inputType(session, timestepName, "float32");
  const labelsType = labelsName === null
    ? "int32"
    : inputType(session, labelsName, "int32");

  async function run(
    sample: Tensor,
    timestep: number,
    labels: Int32Array | null,
  ): Promise<Tensor> {
    const batch = sample.shape[0]!;
    const feeds: Record<string, ort.Tensor> = {
      [sampleName]: new ort.Tensor("float32", float32View(sample), [
        ...sample.shape,
      ]),
      [timestepName]: integerOrFloat(
        timestepType,
        new Array(batch).fill(timestep),
      ),
    };
    if (labelsName !== null && labels !== null) {
      feeds[labelsName] = integerOrFloat(labelsType, labels);
    }
    const result = (await session.run(feeds))[outputName]!;
    return new Tensor(result.data as Float32Array, result.dims);
  }

  return async (sample, timestep, classLabels, guidanceScale = 1) => {
    const batch = sample.shape[0]!;
    if (labelsName === null) {
      if (classLabels !== undefined || guidanceScale !== 1) {
        throw new TypeError(
          "Cannot run the ONNX model with class labels or guidance as it has no class-label input",
        );
      }
      return await run(sample, timestep, null);
    }
    const nullLabels = () => {
      if (nullClassLabel === undefined) {
        throw new TypeError(
          "Cannot run the ONNX model unconditionally as 'nullClassLabel' is not set",
        );
      }
      return new Int32Array(batch).fill(nullClassLabel);
    };
    if (classLabels === undefined) {
      return await run(sample, timestep, nullLabels());
    }
    if (guidanceScale === 1) return await run(sample, timestep, classLabels);
    // One call on [sample; sample] with [labels; null labels].
    const size = sample.size;
    const doubled = new Float32Array(2 * size);
    doubled.set(float32View(sample));
    doubled.copyWithin(size, 0, size);
    const labels = new Int32Array(2 * batch);
    labels.set(classLabels);
    labels.set(nullLabels(), batch);
    const both = await run(
      new Tensor(doubled, [2 * batch, ...sample.shape.slice(1)]),
      timestep,
      labels,
    );
    const eps = both.toFloat32Array();
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const uncond = eps[size + i]!;
      out[i] = uncond + guidanceScale * (eps[i]! - uncond);
    }
    return new Tensor(out, sample.shape);
  };
}

/**
 * Wraps a one-input, one-output session (a classifier, a decoder) as a tensor function; a
 * contiguous input is passed without a copy.
 *
 * @example
 * ```ts ignore
 * import * as ort from "npm:onnxruntime-node@1.30.0";
 * import { onnxFunction } from "@dpmsolver/scheduler/onnx";
 *
 * const classify = onnxFunction(await ort.InferenceSession.create("path/to/classifier.onnx"));
 * const logits = await classify(images); // [B, 10]
 * ```
 */
export function onnxFunction(
  session: OnnxSession,
): (input: Tensor) => Promise<Tensor> {
  const inputName = session.inputNames[0]!;
  const outputName = session.outputNames[0]!;
  return async (input) => {
    const feeds = {
      [inputName]: new ort.Tensor("float32", float32View(input), [
        ...input.shape,
      ]),
    };
    const result = (await session.run(feeds))[outputName]!;
    return new Tensor(result.data as Float32Array, result.dims);
  };
}

/** The tensor's elements as a row-major `Float32Array`, without a copy when contiguous. */
function float32View(tensor: Tensor): Float32Array {
  if (!tensor.isContiguous()) return tensor.toFloat32Array();
  return tensor.offset === 0 && tensor.data.length === tensor.size
    ? tensor.data
    : tensor.data.subarray(tensor.offset, tensor.offset + tensor.size);
}

type NumericType = "float32" | "int32" | "int64";

function inputType(
  session: OnnxSession,
  name: string,
  fallback: NumericType,
): NumericType {
  const metadata = session.inputMetadata?.find((m) => m.name === name);
  if (metadata === undefined || !metadata.isTensor) return fallback;
  const type = metadata.type;
  if (type === "float32" || type === "int32" || type === "int64") return type;
  throw new TypeError(
    `Cannot wrap the ONNX session as input '${name}' must be float32, int32 or int64: current type is ${type}`,
  );
}

function integerOrFloat(type: NumericType, values: ArrayLike<number>) {
  const n = values.length;
  switch (type) {
    case "float32":
      return new ort.Tensor("float32", Float32Array.from(values), [n]);
    case "int32":
      return new ort.Tensor("int32", Int32Array.from(values), [n]);
    case "int64":
      return new ort.Tensor(
        "int64",
        BigInt64Array.from(Array.from(values), (v) => BigInt(v)),
        [n],
      );
  }
}
