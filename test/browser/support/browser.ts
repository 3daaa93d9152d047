import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', '..');

/** Debian's Chromium; `.ci/run` installs it (`apt-get install -y chromium`). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where each screen's screenshot goes. */
export const SCREENSHOTS = join(root, '.local', 'test', 'screenshots');

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) to run the browser tests`,
    );
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The closed network refuses Chromium's own background connections; these flags stop it making them.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

export interface Focused {
  tag: string;
  type: string;
  /** The visible text of the element, or of the label naming it. */
  name: string;
}

/** Presses Tab until the focused element answers `matches`; keyboard only, as a person would. */
export async function tabTo(page: Page, matches: (el: Focused) => boolean, what: string, max = 80): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      // biome-ignore lint/suspicious/noExplicitAny: runs in the page, where the DOM types this project does not load apply
      const el = (globalThis as any).document.activeElement;
      if (!el) return { tag: '', type: '', name: '' };
      const label = el.labels?.[0]?.textContent ?? el.getAttribute('aria-label') ?? el.textContent ?? '';
      return { tag: el.tagName.toLowerCase(), type: el.type ?? '', name: label.trim() };
    });
    if (matches(focused)) return;
  }
  throw new Error(`Tab never reached ${what}`);
}
