// The test page's script (bundled by tests/browser/parity_test.ts): the reference-case parity
// run and the kernel conformance cases, each exposed on globalThis.
import "./parity_page.ts";
import "./conformance_page.ts";
