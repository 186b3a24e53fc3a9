// Helm's `--set` parser (pkg/strvals/parser.go, Helm 3.17-4.2) rebuilt rune for rune, so the model reads
// `--set` as Helm does: `a.b=v` nests, `a[1]=v` indexes a list (filling the gap with nulls), `{x,y}`
// is a list, `,` separates assignments (`\,` escapes it), and values are typed: true/false, null, and
// anything all-digit that does not start with 0 becomes an integer (`--set-string` keeps strings).
// Errors carry Helm's wording.

type Values = Record<string, unknown>;

export class StrvalsError extends Error {}

const MAX_INDEX = 65536;
const MAX_NESTED_NAME_LEVEL = 30;

/** A rune reader over a string (Go's bytes.Buffer with ReadRune / UnreadRune). */
class Scanner {
  private pos = 0;
  private readonly runes: string[];
  constructor(text: string) {
    this.runes = [...text];
  }
  read(): string | undefined {
    return this.pos < this.runes.length ? this.runes[this.pos++] : undefined;
  }
  unread(): void {
    this.pos--;
  }
}

/** Reads up to (not including) a stop rune; a backslash takes the next rune literally. `last` is undefined at the end. */
function runesUntil(sc: Scanner, stop: string): { text: string; last: string | undefined } {
  let text = '';
  for (;;) {
    const r = sc.read();
    if (r === undefined) return { text, last: undefined };
    if (stop.includes(r)) return { text, last: r };
    if (r === '\\') {
      const next = sc.read();
      if (next === undefined) return { text, last: undefined };
      text += next;
    } else {
      text += r;
    }
  }
}

/** typedVal: what `--set` makes of a value (`--set-string` keeps the text). */
export function typedValue(text: string, asString: boolean): unknown {
  if (asString) return text;
  const lower = text.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  if (lower === 'null') return null;
  if (text === '0') return 0;
  // strconv.ParseInt(val, 10, 64): an optional sign, then decimal digits, within int64.
  if (text.length > 0 && text[0] !== '0' && /^[+-]?\d+$/.test(text)) {
    const n = BigInt(text);
    if (n >= -(2n ** 63n) && n < 2n ** 63n) return Number(n);
  }
  return text;
}

const NOT_A_LIST = Symbol('not a list');
const EOF = Symbol('EOF');

class Parser {
  constructor(
    private readonly sc: Scanner,
    private readonly data: Values,
    private readonly asString: boolean,
  ) {}

  parse(): void {
    for (;;) {
      const end = this.key(this.data, 0);
      if (end === EOF) return;
    }
  }

  private reader(text: string): unknown {
    return typedValue(text, this.asString);
  }

  /** One assignment; returns EOF when the input ended with it. */
  private key(data: Values, nestedLevel: number): typeof EOF | undefined {
    const { text: k, last } = runesUntil(this.sc, '=[,.');
    if (last === undefined) {
      if (k.length === 0) return EOF;
      throw new StrvalsError(`key "${k}" has no value`);
    }
    switch (last) {
      case '[': {
        const i = this.keyIndex();
        let list: unknown[] = [];
        if (k in data) {
          if (!Array.isArray(data[k]))
            throw new StrvalsError(
              `unable to parse key: interface conversion: interface {} is ${goType(data[k])}, not []interface {}`,
            );
          list = data[k] as unknown[];
        }
        const result = this.listItem(list, i, nestedLevel);
        set(data, k, result.list);
        return result.end;
      }
      case '=': {
        const list = this.valList();
        if (list === EOF) {
          set(data, k, '');
          return EOF;
        }
        if (list !== NOT_A_LIST) {
          set(data, k, list);
          return undefined;
        }
        // Helm returns no error here even at the end of the input: the next key() call finds the end.
        set(data, k, this.reader(runesUntil(this.sc, ',').text));
        return undefined;
      }
      case ',':
        set(data, k, '');
        throw new StrvalsError(`key "${k}" has no value (cannot end with ,)`);
      default: {
        // '.': a nested map
        if (nestedLevel + 1 > MAX_NESTED_NAME_LEVEL) {
          throw new StrvalsError(
            `value name nested level is greater than maximum supported nested level of ${MAX_NESTED_NAME_LEVEL}`,
          );
        }
        let inner: Values = {};
        if (k in data) {
          const existing = data[k];
          if (existing === null || typeof existing !== 'object' || Array.isArray(existing)) {
            throw new StrvalsError(
              `unable to parse key: interface conversion: interface {} is ${goType(existing)}, not map[string]interface {}`,
            );
          }
          inner = existing as Values;
        }
        const end = this.key(inner, nestedLevel + 1);
        if (end === undefined && Object.keys(inner).length === 0)
          throw new StrvalsError(`key map "${k}" has no value`);
        if (Object.keys(inner).length !== 0) set(data, k, inner);
        return end;
      }
    }
  }

  private keyIndex(): number {
    const { text, last } = runesUntil(this.sc, ']');
    if (last === undefined) throw new StrvalsError('error parsing index: EOF');
    if (!/^[+-]?\d+$/.test(text))
      throw new StrvalsError(
        `error parsing index: strconv.Atoi: parsing "${text}": invalid syntax`,
      );
    return Number(text);
  }

  private listItem(
    list: unknown[],
    i: number,
    nestedLevel: number,
  ): { list: unknown[]; end: typeof EOF | undefined } {
    if (i < 0) throw new StrvalsError(`negative ${i} index not allowed`);
    const { text: k, last } = runesUntil(this.sc, '[.=');
    if (k.length > 0) throw new StrvalsError(`unexpected data at end of array index: "${k}"`);
    if (last === undefined) return { list, end: EOF };
    switch (last) {
      case '=': {
        const values = this.valList();
        if (values === EOF) return { list: setIndex(list, i, ''), end: EOF };
        if (values !== NOT_A_LIST) return { list: setIndex(list, i, values), end: undefined };
        return {
          list: setIndex(list, i, this.reader(runesUntil(this.sc, ',').text)),
          end: undefined,
        };
      }
      case '[': {
        const next = this.keyIndex();
        const current =
          list.length > i && list[i] !== null && list[i] !== undefined
            ? (list[i] as unknown[])
            : [];
        const inner = this.listItem(current, next, nestedLevel);
        return { list: setIndex(list, i, inner.list), end: inner.end };
      }
      default: {
        // '.': a map inside the list
        let inner: Values = {};
        if (list.length > i) {
          const existing = list[i];
          if (existing === null || typeof existing !== 'object' || Array.isArray(existing))
            list[i] = {};
          inner = list[i] as Values;
        }
        const end = this.key(inner, nestedLevel);
        return { list: setIndex(list, i, inner), end };
      }
    }
  }

  /** `{a,b}` as a list; NOT_A_LIST when the value does not start with `{`; EOF when there is no value at all. */
  private valList(): unknown[] | typeof NOT_A_LIST | typeof EOF {
    const r = this.sc.read();
    if (r === undefined) return EOF;
    if (r !== '{') {
      this.sc.unread();
      return NOT_A_LIST;
    }
    const list: unknown[] = [];
    for (;;) {
      const { text, last } = runesUntil(this.sc, ',}');
      if (last === undefined) throw new StrvalsError("list must terminate with '}'");
      list.push(this.reader(text));
      if (last === '}') {
        const after = this.sc.read();
        if (after !== undefined && after !== ',') this.sc.unread();
        return list;
      }
    }
  }
}

function set(data: Values, key: string, value: unknown): void {
  if (key.length === 0) return;
  data[key] = value;
}

function setIndex(list: unknown[], index: number, value: unknown): unknown[] {
  if (index < 0) throw new StrvalsError(`negative ${index} index not allowed`);
  if (index > MAX_INDEX)
    throw new StrvalsError(
      `index of ${index} is greater than maximum supported index of ${MAX_INDEX}`,
    );
  while (list.length <= index) list.push(null);
  list[index] = value;
  return list;
}

function goType(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'int64';
  if (v === null || v === undefined) return 'nil';
  return Array.isArray(v) ? '[]interface {}' : 'map[string]interface {}';
}

/** strvals.ParseInto (`--set`) or ParseIntoString (`--set-string`): applies one flag's text to `dest`. */
export function parseInto(text: string, dest: Values, options: { asString?: boolean } = {}): void {
  new Parser(new Scanner(text), dest, options.asString ?? false).parse();
}

/**
 * pkg/cli/values MergeValues: -f files merged in order (maps deeply, anything else replaced), then every
 * --set, then every --set-string, whatever order they had on the command line.
 */
export function mergeValues(files: Values[], sets: string[], setStrings: string[] = []): Values {
  let base: Values = {};
  for (const file of files) base = mergeMaps(base, file);
  for (const s of sets) {
    try {
      parseInto(s, base);
    } catch (err) {
      throw new StrvalsError(`failed parsing --set data: ${(err as Error).message}`);
    }
  }
  for (const s of setStrings) {
    try {
      parseInto(s, base, { asString: true });
    } catch (err) {
      throw new StrvalsError(`failed parsing --set-string data: ${(err as Error).message}`);
    }
  }
  return base;
}

const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);

/** pkg/cli/values mergeMaps: maps merge deeply, anything else from `b` replaces. */
export function mergeMaps(a: Values, b: Values): Values {
  const out: Values = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const current = out[k];
    out[k] = isMap(v) && isMap(current) ? mergeMaps(current, v) : v;
  }
  return out;
}
