import { SafeshiftError } from '../core/errors.ts';

/**
 * How one argument of a Task is read from the JSON its Parameters hand the step: checked, never
 * cast. `optional` marks an argument a Task may leave out.
 */
export interface ArgReader<T, Optional extends boolean = boolean> {
  readonly read: (value: unknown, at: ArgPlace) => T;
  readonly optional: Optional;
}

/** Where an argument is read: the step, and the argument's path in its args (`clone.role`). */
export interface ArgPlace {
  readonly step: string;
  readonly path: string;
}

/** The readers of an object's arguments, by name. */
export type ArgShape = Readonly<Record<string, ArgReader<unknown>>>;

type ValueOf<R> = R extends ArgReader<infer T> ? T : never;
type Flat<T> = { readonly [K in keyof T]: T[K] };

/** The arguments a shape reads: its optional readers' keys may be left out. */
export type ArgsOf<S extends ArgShape> = Flat<
  { readonly [K in keyof S as S[K]['optional'] extends true ? never : K]: ValueOf<S[K]> } & {
    readonly [K in keyof S as S[K]['optional'] extends true ? K : never]?: ValueOf<S[K]>;
  }
>;

function refuse(at: ArgPlace, problem: string): never {
  // A Task's args are constants of the definition, so a mismatch is a definition that drifted from its step.
  throw new SafeshiftError(
    'INTERNAL',
    `the Task calling step ${at.step} has a bad argument: ${problem}; ` +
      "the state machine's definition does not fit the step's spec (src/steps/step-specs.ts): " +
      'regenerate state-machines/ with scripts/generate-asl.ts and deploy it with the steps',
    { details: { step: at.step, arg: at.path } },
  );
}

const named = (at: ArgPlace): string => (at.path ? `args.${at.path}` : 'args');
const shown = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));
const within = (at: ArgPlace, key: string): ArgPlace => ({ ...at, path: at.path ? `${at.path}.${key}` : key });
const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> => value !== null && typeof value === 'object' && !Array.isArray(value);

function objectOf<S extends ArgShape>(shape: S): ArgReader<ArgsOf<S>, false> {
  const keys = Object.keys(shape);
  return {
    optional: false,
    read: (value, at) => {
      if (!isRecord(value)) refuse(at, `${named(at)} must be an object, not ${shown(value)}`);
      const extra = Object.keys(value).find((key) => !Object.hasOwn(shape, key));
      if (extra !== undefined) refuse(within(at, extra), `${named(within(at, extra))} is not an argument of the step (it takes ${keys.join(', ') || 'none'})`);
      const read: Record<string, unknown> = {};
      for (const [key, reader] of Object.entries(shape)) {
        const given = value[key];
        // Left out is left out: the step sees no key, as the Task wrote none.
        if (given === undefined && reader.optional) continue;
        read[key] = reader.read(given, within(at, key));
      }
      // Sound: every key of the shape was read by its reader above, and no other key is there.
      return read as ArgsOf<S>;
    },
  };
}

/**
 * The small vocabulary step specs are written in: each builds a reader whose type is the argument's.
 *
 * @example
 * ```ts
 * const target = arg.object({ target: arg.oneOf(['production', 'new']) });
 * target.read({ target: 'new' }, { step: 'verify', path: '' }) // { target: 'new' }
 * ```
 */
export const arg = {
  /** One of a list of strings. */
  oneOf<const V extends string>(values: readonly V[]): ArgReader<V, false> {
    return {
      optional: false,
      read: (value, at) =>
        values.find((v) => v === value) ?? refuse(at, `${named(at)} must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}, not ${shown(value)}`),
    };
  },
  /** An object of named arguments; a key it does not name is refused, so a misspelt argument is not ignored. */
  object: objectOf,
  /** An argument a Task may leave out. */
  optional<T>(reader: ArgReader<T>): ArgReader<T, true> {
    return { optional: true, read: reader.read };
  },
};
