import { AjvCompiler } from '@fastify/ajv-compiler';

type BuildCompiler = ReturnType<typeof AjvCompiler>;
type CompilerOptions = NonNullable<Parameters<BuildCompiler>[1]>;
interface RouteSchema {
  readonly httpPart?: string;
}
type Compile = (route: RouteSchema) => unknown;
interface Validate {
  (data: unknown): boolean;
  errors?: unknown;
}

/** Ajv's options for every request part (Fastify's `ajv.customOptions`). */
export const ajvCustomOptions = { removeAdditional: false, allErrors: false } as const;

/** Ajv's options for bodies: checked as sent. The JSON parser thread compiles with the same. */
export const bodyAjvOptions = { ...ajvCustomOptions, coerceTypes: false } as const;

/**
 * Bodies the JSON parser thread already checked against their route's schema: `null` when valid,
 * else Ajv's errors. The body validator answers for them without checking 100,000 items again
 * on the event loop; any other body is checked here as usual.
 */
export const bodiesCheckedInThread = new WeakMap<object, readonly unknown[] | null>();

function answeringForThreadChecked(validate: Validate): Validate {
  const check: Validate = (data) => {
    const verdict = typeof data === 'object' && data !== null ? bodiesCheckedInThread.get(data) : undefined;
    if (verdict === undefined) {
      const valid = validate(data);
      check.errors = validate.errors;
      return valid;
    }
    check.errors = verdict;
    return verdict === null;
  };
  return check;
}

/**
 * Request validation: bodies are checked as sent (no type coercion: `null`, `" "` or `["x"]` are
 * not a number or a string), while query strings and path parameters, which are text on the
 * wire, may be coerced to the numbers their schemas ask for.
 */
export function buildValidator(): BuildCompiler {
  const pool = AjvCompiler();
  const build = (externalSchemas: Parameters<BuildCompiler>[0], options?: CompilerOptions) => {
    const base = options?.customOptions ?? {};
    const compilerFor = (coerceTypes: false | 'array') =>
      pool(externalSchemas, {
        ...options,
        customOptions: { ...base, coerceTypes },
      } as CompilerOptions) as unknown as Compile;
    const strict = compilerFor(false);
    const coercing = compilerFor('array');
    return ((route: RouteSchema) =>
      route.httpPart === 'body'
        ? answeringForThreadChecked(strict(route) as Validate)
        : coercing(route)) as unknown as ReturnType<BuildCompiler>;
  };
  return build;
}
