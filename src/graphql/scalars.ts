/** The contract's custom scalars, from graphql-scalars. */
export { DateTimeResolver as DateTimeScalar, JSONResolver as JSONScalar } from "graphql-scalars";
