// What needs Deno's file system says so outside Deno, and fromPretrained reads a model repository
// over http(s): tested against a local server on 127.0.0.1 serving reference/models/digits.
import assert from "node:assert/strict";
import {
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  Tensor,
} from "../mod.ts";
import { readNpy, writeNpy } from "../npy.ts";

const DIGITS = new URL("../reference/models/digits/", import.meta.url);

/** Serves `root` on 127.0.0.1 (any free port) for the duration of `fn`. */
async function withServer(
  root: URL,
  fn: (base: string) => Promise<void>,
): Promise<void> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      if (path.includes("..")) return new Response("bad path", { status: 400 });
      try {
        const body = await Deno.readFile(new URL(`.${path}`, root));
        return new Response(body, {
          headers: { "content-type": "application/json" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

Deno.test("fromPretrained() fetches a model repository's scheduler_config.json over http", async () => {
  const local = await DPMSolverMultistepInverseScheduler.fromPretrained(
    DIGITS.pathname,
    { subfolder: "scheduler" },
  );
  await withServer(DIGITS, async (base) => {
    for (const url of [base, `${base}/`]) {
      const inverse = await DPMSolverMultistepInverseScheduler.fromPretrained(
        url,
        { subfolder: "scheduler" },
      );
      assert.deepEqual(inverse.config, local.config);
      assert.equal(inverse.config.beta_end, 0.02);
      const forward = await DPMSolverMultistepScheduler.fromPretrained(url, {
        subfolder: "scheduler",
      });
      assert.equal(forward.config.solver_order, 2);
    }
    // Without the subfolder: <url>/scheduler_config.json.
    const direct = await DPMSolverMultistepInverseScheduler.fromPretrained(
      `${base}/scheduler`,
    );
    assert.deepEqual(direct.config, local.config);
    await assert.rejects(
      () => DPMSolverMultistepInverseScheduler.fromPretrained(base),
      {
        message:
          `Cannot fetch the scheduler config '${base}/scheduler_config.json': HTTP 404 Not Found`,
      },
    );
  });
  const bad = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${bad}/scheduler_config.json`, "{ not json");
    await withServer(new URL(`file://${bad}/`), async (base) => {
      await assert.rejects(
        () => DPMSolverMultistepInverseScheduler.fromPretrained(base),
        (error: Error) =>
          error instanceof SyntaxError &&
          error.message.startsWith(
            `Cannot read '${base}/scheduler_config.json' as it is not valid JSON`,
          ),
      );
    });
  } finally {
    await Deno.remove(bad, { recursive: true });
  }
});

Deno.test("fromPretrained() refuses a dir that is not a string", async () => {
  await assert.rejects(
    () =>
      DPMSolverMultistepInverseScheduler.fromPretrained(
        null as unknown as string,
      ),
    new TypeError(
      "Cannot read a pretrained config as 'dir' must be a folder path or an http(s) URL string: current value is null",
    ),
  );
});

/** Calls `fn` with `globalThis.Deno` removed (as in a browser), then puts it back. */
function withoutDeno<T>(fn: () => T): T {
  const deno = globalThis.Deno;
  // deno-lint-ignore no-explicit-any
  delete (globalThis as any).Deno;
  try {
    return fn();
  } finally {
    globalThis.Deno = deno;
  }
}

Deno.test("file functions outside Deno throw errors that name the alternative", async () => {
  // Each starts its guard before its first await, so the rejection is settled without Deno.
  const scheduler = new DPMSolverMultistepInverseScheduler();
  const pending = withoutDeno(() => ({
    read: readNpy("x.npy"),
    write: writeNpy("x.npy", Tensor.zeros([1])),
    save: scheduler.saveConfig("out"),
    pretrained: DPMSolverMultistepInverseScheduler.fromPretrained("models/x"),
  }));
  const tail = "as it needs Deno's file system, which this runtime lacks: ";
  await assert.rejects(pending.read, {
    message:
      `Cannot read 'x.npy' ${tail}fetch the bytes and decode them with decodeNpy()`,
  });
  await assert.rejects(pending.write, {
    message:
      `Cannot write 'x.npy' ${tail}encode the bytes with encodeNpy() and save them yourself (e.g. as a Blob download)`,
  });
  await assert.rejects(pending.save, {
    message:
      `Cannot save the config to 'out' ${tail}store scheduler.toJSON() as JSON yourself`,
  });
  await assert.rejects(pending.pretrained, {
    message:
      `Cannot read the scheduler config in 'models/x' ${tail}pass fromPretrained an http(s) URL of the model's folder, or the parsed JSON to fromConfig`,
  });
});
