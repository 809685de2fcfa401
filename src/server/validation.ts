import { AjvCompiler } from '@fastify/ajv-compiler';

type BuildCompiler = ReturnType<typeof AjvCompiler>;
type CompilerOptions = NonNullable<Parameters<BuildCompiler>[1]>;
interface RouteSchema {
  readonly httpPart?: string;
}
type Compile = (route: RouteSchema) => unknown;

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
      route.httpPart === 'body' ? strict(route) : coercing(route)) as unknown as ReturnType<BuildCompiler>;
  };
  return build;
}
