// Headless Chromium for the browser tests: Debian's /usr/bin/chromium (or $CHROMIUM) driven by
// puppeteer-core, which downloads no browser. A fresh user-data-dir per launch; WebGPU enabled
// (Dawn on SwiftShader where there is no GPU).
import puppeteer, { type Browser, type Page } from "puppeteer-core";

/** The Chromium binary the tests run. */
export const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Skip the browser tests only when Chromium is missing and CI is not set (CI must fail). */
export const ignore = !exists(CHROMIUM) && !Deno.env.get("CI");

/** A launched browser and how to close it (and remove its profile). */
export interface Launched {
  browser: Browser;
  close(): Promise<void>;
}

/** Launches headless Chromium with WebGPU enabled and a fresh profile. */
export async function launchChromium(): Promise<Launched> {
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    userDataDir: profile,
    headless: true,
    args: [
      "--headless=new",
      "--no-sandbox",
      "--enable-unsafe-webgpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** Collects a page's console messages and errors, to print when a test fails. */
export function recordConsole(page: Page): string[] {
  const lines: string[] = [];
  page.on("console", (m) => lines.push(`[console.${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => lines.push(`[pageerror] ${String(e)}`));
  page.on(
    "requestfailed",
    (r) => lines.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText}`),
  );
  return lines;
}
