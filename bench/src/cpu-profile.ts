import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** A V8 .cpuprofile (what `node --cpu-prof` writes when the process exits). */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  function: string;
  /** file (package-relative where it is in node_modules) and 1-based line */
  where: string;
  selfMs: number;
  /** of the process's sampled time, idle included */
  sharePct: number;
}

/**
 * Where each service spent its CPU (--cpu-profile): self time per function, summed over the process's whole life
 * (start, warm-up and measurement), most first; "(idle)" is time waiting. Read the shares, not the milliseconds, when
 * comparing runs of different lengths.
 */
export function hottestFunctions(dir: string, services: readonly string[], top = 20): Record<string, HotFunction[] | string> {
  return Object.fromEntries(services.map((service) => {
    let files: string[];
    try {
      files = readdirSync(join(dir, service)).filter((f) => f.endsWith('.cpuprofile'));
    } catch {
      return [service, 'no profile written (the process did not exit normally)'];
    }
    if (files.length === 0) return [service, 'no profile written (the process did not exit normally)'];
    const selfUs = new Map<string, number>();
    let totalUs = 0;
    for (const file of files) {
      const profile = JSON.parse(readFileSync(join(dir, service, file), 'utf8')) as CpuProfile;
      const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
      profile.samples.forEach((id, i) => {
        const frame = byId.get(id)!;
        const delta = profile.timeDeltas[i] ?? 0;
        const key = `${frame.functionName || '(anonymous)'}\t${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
        selfUs.set(key, (selfUs.get(key) ?? 0) + delta);
        totalUs += delta;
      });
    }
    const hottest = [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([key, us]) => {
      const [fn, where] = key.split('\t') as [string, string];
      return { function: fn, where, selfMs: Math.round(us / 1000), sharePct: Number(((us / totalUs) * 100).toFixed(1)) };
    });
    return [service, hottest];
  }));
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const inModules = url.lastIndexOf('node_modules/');
  if (inModules >= 0) return url.slice(inModules + 'node_modules/'.length);
  const inRepo = url.search(/\/(services|packages)\//);
  return inRepo >= 0 ? url.slice(inRepo + 1) : basename(url);
}
