/**
 * What operations are validated against beyond graphql-js's own rules, the same over HTTP (Apollo runs
 * them) and on the WebSocket: without introspection, the rule that refuses __schema and __type.
 */
import { NoSchemaIntrospectionCustomRule, type ValidationRule } from "graphql";

export function serviceValidationRules(introspection: boolean): ValidationRule[] {
  return introspection ? [] : [NoSchemaIntrospectionCustomRule];
}

/**
 * A graphql-js message without its hint at the schema (" Did you mean "trial"?"): a service that does not
 * show its schema does not spell out its field, type and enum value names in errors either.
 */
export function withoutSchemaHint(message: string): string {
  return message.replace(/ Did you mean .+\?$/s, "");
}
