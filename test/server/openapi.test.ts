import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/backends.js';
import { call, startTestServer } from '../helpers/server.js';

interface OpenApiDocument {
  components: { schemas?: Record<string, unknown> };
  paths: Record<string, Record<string, { responses: Record<string, { content?: unknown }> }>>;
}

// The document describes the routes, not the state store: one backend is enough.
describe('OpenAPI document', () => {
  const dir = tempDir();

  it('describes every API route’s error answers with the one registered ErrorBody schema', async () => {
    const server = await startTestServer('sqlite', dir);
    const spec = (await call(server.url, undefined, 'GET', '/openapi.json')).body as OpenApiDocument;
    expect(spec.components.schemas?.ErrorBody).toMatchObject({
      type: 'object',
      properties: { error: { properties: { code: { type: 'string' }, message: { type: 'string' } } } },
    });
    const operations = Object.entries(spec.paths)
      .filter(([path]) => path.startsWith('/v1/') || path.startsWith('/compute/v1/'))
      .flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, operation]) => ({ route: `${method} ${path}`, operation })),
      );
    expect(operations.length).toBeGreaterThan(30);
    for (const { route, operation } of operations) {
      for (const status of ['4XX', '5XX']) {
        expect(JSON.stringify(operation.responses[status]?.content), `${route} ${status}`).toContain(
          '#/components/schemas/ErrorBody',
        );
      }
    }
  });

  it('answers an error in the documented shape', async () => {
    const server = await startTestServer('sqlite', dir);
    const refused = await call(server.url, 'not-a-token', 'GET', '/v1/networks');
    expect(refused.status).toBe(401);
    expect(Object.keys(refused.body as object)).toEqual(['error']);
    expect(Object.keys((refused.body as { error: object }).error).sort()).toEqual(['code', 'message']);
  });
});
