// `npm run build` in a package: transpiles src/**/*.ts to dist/**/*.js (CommonJS for Node 24), file by file, with
// source maps. Types are checked separately (`npm run typecheck`, tsc); isolatedModules makes per-file output safe.
// dist/ mirrors src/ so paths computed from __dirname (schemas, .local) are the same from either.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const packageDir = process.cwd();
const sources = readdirSync(join(packageDir, 'src'), { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
  .map((entry) => join(entry.parentPath, entry.name));

rmSync(join(packageDir, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: sources,
  outdir: join(packageDir, 'dist'),
  outbase: join(packageDir, 'src'),
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  sourcemap: 'linked',
  logLevel: 'warning',
});
console.log(`built ${sources.length} files into ${join(packageDir, 'dist')}`);
