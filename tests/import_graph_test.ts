// The module graph of lib/ (and the entries) has no import circle, type-only imports included:
// each file can be read and tested after the files it imports (CONTRIBUTING.md, issue 14).
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const IMPORT = /^(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)"/gms;

async function sources(dir: URL, into: Map<string, string[]>): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) await sources(url, into);
    else if (entry.name.endsWith(".ts")) {
      const text = await Deno.readTextFile(url);
      into.set(
        url.href,
        [...text.matchAll(IMPORT)].map((m) => new URL(m[1]!, url).href),
      );
    }
  }
}

/** The first import circle found by a depth-first walk, as a list of files, or null. */
function findCircle(graph: Map<string, string[]>): string[] | null {
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (file: string): string[] | null => {
    const at = path.indexOf(file);
    if (at >= 0) return [...path.slice(at), file];
    if (done.has(file) || !graph.has(file)) return null;
    path.push(file);
    for (const next of graph.get(file)!) {
      const circle = visit(next);
      if (circle) return circle;
    }
    path.pop();
    done.add(file);
    return null;
  };
  for (const file of graph.keys()) {
    const circle = visit(file);
    if (circle) return circle;
  }
  return null;
}

Deno.test("findCircle() finds a circle of type-only imports and none in a tree", () => {
  assert.deepEqual(
    findCircle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]])),
    ["a", "b", "c", "a"],
  );
  assert.equal(
    findCircle(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]])),
    null,
  );
});

Deno.test("lib/ and the entries import each other without a circle", async () => {
  const graph = new Map<string, string[]>();
  await sources(new URL("lib/", ROOT), graph);
  for (
    const entry of [
      "mod.ts",
      "wasm.ts",
      "webgpu.ts",
      "analytic.ts",
      "npy.ts",
      "onnx.ts",
    ]
  ) {
    const url = new URL(entry, ROOT);
    graph.set(
      url.href,
      [...(await Deno.readTextFile(url)).matchAll(IMPORT)].map((m) =>
        new URL(m[1]!, url).href
      ),
    );
  }
  assert.ok(graph.size > 50, `${graph.size} files read`);
  const circle = findCircle(graph);
  assert.equal(
    circle,
    null,
    `import circle: ${
      circle?.map((f) => f.slice(ROOT.href.length)).join(" → ")
    }`,
  );
});
