import fc from 'fast-check';

/** Runs per route inside `npm test`; `FUZZ_RUNS=2000` from outside for the full campaign. */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 150);
/** Reproduce a failure with FUZZ_SEED=<seed printed by fast-check>. */
export const fuzzParams = (): fc.Parameters<unknown> => ({
  numRuns: FUZZ_RUNS,
  ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
  endOnFailure: true,
});

/** Strings that have hurt before: NUL, lone surrogates, values longer than a column, SQL-ish text, huge digits. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', '\u0000', 'a\u0000b', '\ud800', 'x\udc00y', '🙂', "'; drop table orders; --", '%00', '../../etc/passwd', '-1', '1e309', '99999999999999999999999999'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.integer({ min: 250, max: 70_000 }).map((n) => 'x'.repeat(n)),
  fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom('\u0000', '\ud83d', '\udfff'), fc.string({ maxLength: 10 })).map((p) => p.join('')),
);

export const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: nastyString },
  fc.integer(),
  fc.constantFrom(0, -1, 1.5, 1e300, -1e300, 2 ** 53 + 1, 2 ** 64, Number.MAX_SAFE_INTEGER),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
  fc.constant({}),
  fc.constant([]),
);

type Path = Array<string | number>;

function paths(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

function setAt(root: unknown, path: Path, op: { kind: 'set'; value: unknown } | { kind: 'delete' } | { kind: 'addKey'; key: string; value: unknown }): unknown {
  const copy = structuredClone(root);
  if (path.length === 0) {
    if (op.kind === 'set') return op.value;
    if (op.kind === 'addKey' && copy !== null && typeof copy === 'object') (copy as Record<string, unknown>)[op.key] = op.value;
    return copy;
  }
  let parent = copy as Record<string | number, unknown>;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (op.kind === 'set') parent[last] = op.value;
  else if (op.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (target !== null && typeof target === 'object' && !Array.isArray(target)) (target as Record<string, unknown>)[op.key] = op.value;
    else parent[last] = { [op.key]: op.value };
  }
  return copy;
}

/** A valid body with one to three of its values replaced, removed or given nasty siblings; sometimes any JSON at all. */
export function mutated<T>(base: T): fc.Arbitrary<unknown> {
  const all = paths(base);
  const op = fc.oneof(
    { weight: 5, arbitrary: nastyValue.map((value) => ({ kind: 'set' as const, value })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'delete' as const }) },
    { weight: 1, arbitrary: fc.tuple(nastyString, nastyValue).map(([key, value]) => ({ kind: 'addKey' as const, key, value })) },
  );
  const edit = fc.tuple(fc.nat({ max: all.length - 1 }), op);
  return fc.oneof(
    { weight: 8, arbitrary: fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => edits.reduce<unknown>((acc, [i, o]) => {
      const p = paths(acc);
      return setAt(acc, p[i % p.length]!, o);
    }, base)) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.constant(base) },
  );
}

/** Raw request bodies that are not what a JSON parser hopes for: invalid UTF-8, escapes of NUL, deep nesting. */
export const nastyRawBody: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.constantFrom(
    Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), // {"a":"\xc3("} invalid UTF-8
    Buffer.from('{"resource":"/orders/1\\u0000","user_id":1,"topic":"orders_v2"}'),
    Buffer.from('{"a":"\\ud800"}'),
    Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`),
    Buffer.from(`{"a":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}`),
    Buffer.from('null'),
    Buffer.from('"just a string"'),
  ),
);
