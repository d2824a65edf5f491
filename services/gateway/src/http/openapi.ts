import { z } from 'zod';
import type { AccessConfig, LimitsConfig } from '../config.js';
import {
  errorJson,
  feedbackBody,
  feedbackResponseJson,
  healthJson,
  recommendBody,
  recommendQuery,
  recommendResponseJson,
  similarQuery,
  similarResponseJson,
} from './rest-schemas.js';

type JsonObject = Record<string, unknown>;

/** A zod schema as a JSON Schema (2020-12, as OpenAPI 3.1 uses); the input side, since requests are what clients write. */
function jsonSchema(schema: z.ZodType): JsonObject {
  const generated = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonObject;
  // The document's dialect is OpenAPI 3.1's own; a per-schema $schema is noise.
  delete generated.$schema;
  return generated;
}

function queryParameters(shape: Record<string, z.ZodType>): JsonObject[] {
  return Object.entries(shape).map(([name, schema]) => {
    const { description, ...rest } = jsonSchema(schema);
    return { name, in: 'query', required: !schema.safeParse(undefined).success, ...(description ? { description } : {}), schema: rest };
  });
}

const ref = (kind: string, name: string) => ({ $ref: `#/components/${kind}/${name}` });
const json = (schemaName: string) => ({ 'application/json': { schema: ref('schemas', schemaName) } });
const requestIdHeader = { 'x-request-id': ref('headers', 'RequestId') };
const ok = (description: string, schemaName: string) => ({ description, headers: requestIdHeader, content: json(schemaName) });

const ERROR_RESPONSE_NAMES: Record<string, string> = {
  '404': 'NotFound',
  '408': 'RequestTimeout',
  '413': 'PayloadTooLarge',
  '415': 'UnsupportedMediaType',
};

const errorResponses = (...extra: string[]) => ({
  '400': ref('responses', 'BadRequest'),
  '401': ref('responses', 'Unauthorized'),
  ...Object.fromEntries(extra.map((code) => [code, ref('responses', ERROR_RESPONSE_NAMES[code]!)])),
  '429': ref('responses', 'TooManyRequests'),
  '500': ref('responses', 'Internal'),
  '503': ref('responses', 'Unavailable'),
});

const errorResponse = (description: string, headers?: JsonObject) => ({
  description,
  headers: { ...requestIdHeader, ...headers },
  content: json('Error'),
});

/** The OpenAPI 3.1 description of the REST API, served at `GET /openapi.json`. */
export function openApiDocument(config: { limits: LimitsConfig; access: AccessConfig }): JsonObject {
  const { limits, access } = config;
  const limitsText =
    `Limits: k <= ${limits.maxK} (0 or absent: ${limits.defaultK}); ids 1..${limits.maxIdLength} characters without control characters; ` +
    `at most ${limits.maxContextItems} recent items, ${limits.maxFilterValues} values per filter list, ${limits.maxAttributes} attributes, ` +
    `${limits.maxFeedbackEvents} feedback events; bodies up to ${access.maxBodyBytes} bytes.`;
  const recommendResponses = { '200': ok('The recommended items', 'RecommendResponse'), ...errorResponses() };
  return {
    openapi: '3.1.0',
    info: {
      title: 'recsys gateway',
      version: '1.0.0',
      description:
        'Recommendations, feedback and similar items. JSON field names are snake_case. Enums are answered by their full proto ' +
        'names ("STAGE_RANKING", "DEGRADATION_CAUSE_DEADLINE_EXCEEDED"); event types are accepted as "view", "click", ... or ' +
        `"EVENT_TYPE_VIEW". int64 values may be sent as numbers or decimal strings. ${limitsText} Every answer carries ` +
        'x-request-id (the one sent, when well-formed, or a new one). Errors: {"error": {"code", "field"?, "message"}}.',
    },
    security: [{ bearer: [] }, { apiKey: [] }],
    paths: {
      '/v1/recommendations': {
        post: {
          operationId: 'recommend',
          summary: 'Recommend items for a user',
          parameters: [ref('parameters', 'RequestId')],
          requestBody: { required: true, content: json('RecommendRequest') },
          responses: { ...recommendResponses, ...errorResponses('408', '413', '415') },
        },
        get: {
          operationId: 'recommendByQuery',
          summary: 'Recommend items for a user (the request in the query string; unknown parameters are an error)',
          parameters: [...queryParameters(recommendQuery.shape), ref('parameters', 'RequestId')],
          responses: recommendResponses,
        },
      },
      '/v1/feedback': {
        post: {
          operationId: 'sendFeedback',
          summary: 'Report what users did with items (stored for features and training)',
          parameters: [ref('parameters', 'RequestId')],
          requestBody: { required: true, content: json('FeedbackRequest') },
          responses: {
            '200': ok('How many events were stored, and how many were repeats of stored event ids', 'FeedbackResponse'),
            ...errorResponses('408', '413', '415'),
          },
        },
      },
      '/v1/items/{id}/similar': {
        get: {
          operationId: 'similarItems',
          summary: 'Items similar to an item',
          parameters: [
            { name: 'id', in: 'path', required: true, description: 'The item id', schema: { type: 'string' } },
            ...queryParameters(similarQuery.shape),
            ref('parameters', 'RequestId'),
          ],
          responses: { '200': ok('The similar items', 'SimilarItemsResponse'), ...errorResponses('404') },
        },
      },
      '/healthz': {
        get: {
          operationId: 'health',
          summary: 'Liveness of the REST server',
          security: [],
          responses: { '200': ok('Serving', 'Health') },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document',
          security: [],
          responses: { '200': { description: 'The OpenAPI document', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <API key>' },
        apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
      },
      parameters: {
        RequestId: {
          name: 'x-request-id',
          in: 'header',
          required: false,
          description: 'Your id for the request (1-128 of [A-Za-z0-9_.:-]); propagated downstream and echoed',
          schema: { type: 'string', pattern: '^[\\w.:-]{1,128}$' },
        },
      },
      headers: {
        RequestId: { description: 'The request id (yours when well-formed, else a new UUID)', schema: { type: 'string' } },
        RetryAfter: { description: 'Whole seconds to wait before retrying', schema: { type: 'integer', minimum: 1 } },
      },
      schemas: {
        RecommendRequest: jsonSchema(recommendBody),
        FeedbackRequest: jsonSchema(feedbackBody),
        RecommendResponse: jsonSchema(recommendResponseJson),
        FeedbackResponse: jsonSchema(feedbackResponseJson),
        SimilarItemsResponse: jsonSchema(similarResponseJson),
        Health: jsonSchema(healthJson),
        Error: jsonSchema(errorJson),
      },
      responses: {
        BadRequest: errorResponse(
          'INVALID_ARGUMENT: malformed JSON, a wrong type, an unknown field or a value out of range; field names it',
        ),
        Unauthorized: errorResponse('UNAUTHENTICATED: no API key, or an unknown one', {
          'WWW-Authenticate': { description: 'Bearer', schema: { type: 'string' } },
        }),
        NotFound: errorResponse('NOT_FOUND: the item is not known'),
        RequestTimeout: errorResponse('REQUEST_TIMEOUT: the body did not arrive within HTTP_REQUEST_TIMEOUT_MS (field: body)'),
        PayloadTooLarge: errorResponse(`The body is larger than ${access.maxBodyBytes} bytes`),
        UnsupportedMediaType: errorResponse('The body is not Content-Type: application/json'),
        TooManyRequests: errorResponse("RESOURCE_EXHAUSTED: the API key's rate limit is spent, or the gateway sheds load", {
          'Retry-After': ref('headers', 'RetryAfter'),
        }),
        Unavailable: errorResponse('UNAVAILABLE: a dependency the answer cannot do without is down; retry'),
        Internal: errorResponse('INTERNAL: a bug; the log has the details under the request id'),
      },
    },
  };
}
