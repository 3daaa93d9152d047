import { defineConfig } from 'vite';

// Built into dist/console, which the `console` HTTP trigger serves under /api/admin/ (relative asset paths).
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: '../dist/console', emptyOutDir: true, sourcemap: true },
});
