// The test page's script (bundled by tests/browser/parity_test.ts): the reference-case parity
// run, the kernel conformance cases and README's plain loop, each exposed on globalThis.
import "./memory_page.ts";
import "./parity_page.ts";
import "./conformance_page.ts";
