/**
 * A tiny OpenAPI v3 (Kubernetes structural schema) builder whose values also carry a TypeScript
 * type, so the CRD schema and the operator's types come from ONE source (operator/src/api/).
 *
 * `Infer<S>` is the type of an object after the API server applied the schema's defaults: a
 * field with a default is not optional in the inferred type. `applyDefaults` applies the same
 * defaults in code, so the operator never depends on objects stored before a default existed.
 */

/** The subset of JSONSchemaProps (apiextensions.k8s.io/v1) the KeyVa CRDs use. */
export interface JsonSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JsonSchemaProps>;
  required?: string[];
  items?: JsonSchemaProps;
  additionalProperties?: JsonSchemaProps;
  enum?: (string | number)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
  nullable?: boolean;
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: CelRule[];
}

export interface CelRule {
  readonly rule: string;
  readonly message: string;
  readonly fieldPath?: string;
  readonly reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** A schema node: the JSON it renders to, plus phantom types (value type, whether the field may be absent). */
export interface Schema<T, Opt extends boolean = false> {
  readonly json: JsonSchemaProps;
  readonly optional: Opt;
  /** Phantom: never set at runtime. */
  readonly __type?: T;
}

export type Infer<S> = S extends Schema<infer T, boolean> ? T : never;

type AnySchema = Schema<unknown, boolean>;
type Shape = Record<string, AnySchema>;
type OptionalKeys<P extends Shape> = { [K in keyof P]: P[K]['optional'] extends true ? K : never }[keyof P];
type RequiredKeys<P extends Shape> = Exclude<keyof P, OptionalKeys<P>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type InferShape<P extends Shape> = Simplify<{ -readonly [K in RequiredKeys<P>]: Infer<P[K]> } & { -readonly [K in OptionalKeys<P>]?: Infer<P[K]> }>;

interface Common {
  readonly description?: string;
  readonly rules?: readonly CelRule[];
}

function node<T>(json: JsonSchemaProps, c: Common): Schema<T> {
  const out: JsonSchemaProps = { ...json };
  if (c.description) out.description = c.description;
  if (c.rules?.length) out['x-kubernetes-validations'] = [...c.rules];
  return { json: out, optional: false };
}

/** The field may be absent (no default). */
export function optional<T>(s: Schema<T, boolean>): Schema<T, true> {
  return { json: s.json, optional: true };
}

/**
 * The field gets `value` when absent; the inferred type keeps it required. The API server does
 * not default inside a default (and validates it as is), so nested defaults are filled in here.
 */
export function withDefault<T>(s: Schema<T, boolean>, value: T | Partial<T>): Schema<T> {
  return { json: { ...s.json, default: applyDefaults({ ...s.json, default: undefined }, value) }, optional: false };
}

export function str(o: Common & { minLength?: number; maxLength?: number; pattern?: string; format?: string } = {}): Schema<string> {
  const j: JsonSchemaProps = { type: 'string' };
  if (o.minLength !== undefined) j.minLength = o.minLength;
  if (o.maxLength !== undefined) j.maxLength = o.maxLength;
  if (o.pattern !== undefined) j.pattern = o.pattern;
  if (o.format !== undefined) j.format = o.format;
  return node(j, o);
}

export function int(o: Common & { minimum?: number; maximum?: number } = {}): Schema<number> {
  const j: JsonSchemaProps = { type: 'integer' };
  if (o.minimum !== undefined) j.minimum = o.minimum;
  if (o.maximum !== undefined) j.maximum = o.maximum;
  return node(j, o);
}

export function bool(o: Common = {}): Schema<boolean> {
  return node({ type: 'boolean' }, o);
}

export function oneOf<const V extends string>(values: readonly V[], o: Common = {}): Schema<V> {
  return node({ type: 'string', enum: [...values] }, o);
}

export function intOneOf<const V extends number>(values: readonly V[], o: Common = {}): Schema<V> {
  return node({ type: 'integer', enum: [...values] }, o);
}

/** A Kubernetes quantity ("10Gi", "500m", 2). */
export function quantity(o: Common = {}): Schema<string | number> {
  return node({ 'x-kubernetes-int-or-string': true, pattern: QUANTITY_PATTERN }, o);
}

export const QUANTITY_PATTERN = '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

export function arr<S extends AnySchema>(
  items: S,
  o: Common & { minItems?: number; maxItems?: number; listType?: 'atomic' | 'set' | 'map'; mapKeys?: string[] } = {},
): Schema<Infer<S>[]> {
  const j: JsonSchemaProps = { type: 'array', items: items.json };
  if (o.minItems !== undefined) j.minItems = o.minItems;
  if (o.maxItems !== undefined) j.maxItems = o.maxItems;
  if (o.listType) j['x-kubernetes-list-type'] = o.listType;
  if (o.mapKeys) j['x-kubernetes-list-map-keys'] = o.mapKeys;
  return node(j, o);
}

export function obj<P extends Shape>(props: P, o: Common = {}): Schema<InferShape<P>> {
  const properties: Record<string, JsonSchemaProps> = {};
  const required: string[] = [];
  for (const [k, s] of Object.entries(props)) {
    properties[k] = s.json;
    // Defaulted fields are filled by the API server, so they are never "required" from users.
    if (!s.optional && s.json.default === undefined) required.push(k);
  }
  const j: JsonSchemaProps = { type: 'object', properties };
  if (required.length) j.required = required;
  return node(j, o);
}

/** A string-keyed map (labels, annotations, node selectors). */
export function map<S extends AnySchema>(values: S, o: Common = {}): Schema<Record<string, Infer<S>>> {
  return node({ type: 'object', additionalProperties: values.json }, o);
}

/** An object whose content is not validated here (e.g. a core/v1 type embedded as is). */
export function freeform<T>(o: Common = {}): Schema<T> {
  return node({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, o);
}

/**
 * Fills absent fields with the schema's defaults, recursively, as the API server's structural
 * defaulting does (a defaulted object is itself defaulted). Never mutates `value`.
 */
export function applyDefaults(schema: JsonSchemaProps, value: unknown): unknown {
  let v = value === undefined ? structuredClone(schema.default) : value;
  if (v === undefined || v === null) return v;
  if (schema.type === 'object' && schema.properties && typeof v === 'object' && !Array.isArray(v)) {
    const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    for (const [k, s] of Object.entries(schema.properties)) {
      const d = applyDefaults(s, out[k]);
      if (d !== undefined) out[k] = d;
    }
    v = out;
  } else if (schema.type === 'array' && schema.items && Array.isArray(v)) {
    const items = schema.items;
    v = v.map((x) => applyDefaults(items, x));
  }
  return v;
}
