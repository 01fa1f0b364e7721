import { Field, Float, ID, Int, ObjectType } from "type-graphql";
import type { Trial as DomainTrial } from "../../trials/trial.js";
import type { TensorData } from "../../format/tensor.js";
import type { CollectionInfo } from "../../format/collections-file.js";
import { Mode } from "../enums.js";
import { JSONScalar } from "../scalars.js";

@ObjectType({ description: "An smdebug trial: the tensors one training job saved" })
export class Trial {
  constructor(readonly trial: DomainTrial) {
    this.path = trial.path;
    this.id = `trial:${trial.path}`;
  }

  @Field(() => ID, { description: "Derived from the path" })
  id: string;

  @Field(() => String, { description: 's3://bucket/prefix, or a path relative to the data directory' })
  path: string;
}

@ObjectType({ description: "A named group of tensors, as the hook's collections file defines it" })
export class Collection {
  constructor(readonly trial: DomainTrial, readonly info: CollectionInfo) {
    this.id = `collection:${trial.path}#${info.name}`;
    this.name = info.name;
    this.includeRegex = info.includeRegex;
    this.saveConfig = info.saveConfig;
  }

  @Field(() => ID)
  id: string;

  @Field(() => String)
  name: string;

  @Field(() => [String], { description: "Python regexes (search semantics) whose matches belong to the collection" })
  includeRegex: string[];

  @Field(() => JSONScalar, { nullable: true, description: "Save config per mode, as written by the hook" })
  saveConfig: unknown;
}

@ObjectType({ description: "One tensor of a trial, across its steps" })
export class Tensor {
  constructor(readonly trial: DomainTrial, name: string) {
    this.id = `tensor:${trial.path}#${name}`;
    this.name = name;
  }

  @Field(() => ID)
  id: string;

  @Field(() => String)
  name: string;
}

@ObjectType({ description: "A NaN or infinite element of data or values, by its index there" })
export class NonFiniteElement {
  constructor(index: number, value: number) {
    this.index = index;
    this.value = Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
  }

  @Field(() => Int)
  index: number;

  @Field(() => String, { description: '"NaN", "Infinity" or "-Infinity"' })
  value: string;
}

/** GraphQL's Float has no NaN or ±Infinity: such elements travel as null plus a NonFiniteElement. */
export function splitNonFinite(values: ArrayLike<number>): { finite: (number | null)[]; nonFinite: NonFiniteElement[] } {
  const finite = new Array<number | null>(values.length);
  const nonFinite: NonFiniteElement[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) finite[i] = v;
    else {
      finite[i] = null;
      nonFinite.push(new NonFiniteElement(i, v));
    }
  }
  return { finite, nonFinite };
}

@ObjectType({ description: "A tensor's value at one step" })
export class TensorValue {
  /** Fields are computed when asked for: bulk queries often want only step and data. */
  constructor(
    private readonly trial: DomainTrial,
    private readonly tensorName: string,
    private readonly globalStep: number,
    private readonly requestedWorker: string | null,
    private readonly value: TensorData,
  ) {}

  @Field(() => Int, { description: "Global step" })
  get step(): number {
    return this.globalStep;
  }

  @Field(() => Mode)
  get mode(): string {
    return this.trial.modeOfStep(this.step)?.mode ?? "GLOBAL";
  }

  @Field(() => Int)
  get modeStep(): number {
    return this.trial.modeOfStep(this.step)?.modeStep ?? this.step;
  }

  @Field(() => String)
  get worker(): string {
    return this.requestedWorker ?? this.trial.tensorWorkers(this.tensorName, this.step)[0] ?? "";
  }

  @Field(() => String, { description: "float32, float64, int32, int64, bool, string, ..." })
  get dtype(): string {
    return this.value.dtype;
  }

  @Field(() => [Int])
  get shape(): number[] {
    return this.value.shape;
  }

  @Field(() => [Float], { nullable: "itemsAndList", description: "Every element, flattened row-major; null for string tensors. NaN and ±Infinity are null here and listed in nonFinite" })
  get data(): (number | null)[] | null {
    const v = this.value.values;
    if (!v) return null;
    if (v.length === 1) return Number.isFinite(v[0]) ? [v[0]] : [null];
    return splitNonFinite(v).finite;
  }

  @Field(() => [NonFiniteElement])
  get nonFinite(): NonFiniteElement[] {
    return this.value.values ? splitNonFinite(this.value.values).nonFinite : [];
  }

  @Field(() => [String], { nullable: true })
  get strings(): string[] | null {
    return this.value.strings;
  }

  @Field(() => Float, { nullable: true, description: "When the tensor has exactly one finite numeric element" })
  get scalar(): number | null {
    const v = this.value.values;
    return v && v.length === 1 && Number.isFinite(v[0]) ? v[0] : null;
  }

  @Field(() => Int, { description: "Number of elements" })
  get size(): number {
    return this.value.values?.length ?? this.value.strings?.length ?? 0;
  }
}

@ObjectType({ description: "A scalar tensor over steps: parallel arrays, ready to plot" })
export class Series {
  @Field(() => String)
  tensorName!: string;

  @Field(() => Mode)
  mode!: string;

  @Field(() => [Int])
  steps!: number[];

  @Field(() => [Float], { nullable: "items", description: "null where the value is NaN or infinite (see nonFinite)" })
  values!: (number | null)[];

  @Field(() => [NonFiniteElement])
  nonFinite!: NonFiniteElement[];

  @Field(() => Boolean, { description: "Whether maxPoints dropped points" })
  sampled!: boolean;

  @Field(() => Int, { description: "Points in the full series before sampling" })
  totalPoints!: number;
}

@ObjectType({ description: "New complete steps of a growing trial" })
export class StepsAdded {
  @Field(() => String)
  path!: string;

  @Field(() => [Int])
  steps!: number[];

  @Field(() => Int, { nullable: true })
  lastCompleteStep!: number | null;

  @Field(() => Boolean)
  trainingEnded!: boolean;
}
