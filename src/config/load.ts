// Turns flags, MESHCA_* variables and an optional YAML file (in that order of precedence) into one
// validated, frozen set of values for a command. Errors name the bad setting and where it came from.

import { readSettingFile } from './read_file.ts';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { describeError, MeshcaError } from '../errors/index.ts';
import { isKubernetesNamespace, parseSpiffeId, type SpiffeId } from '../spiffe/index.ts';
import { formatDuration, parseDuration } from '../time/index.ts';
import { listenUrl, parseListenAddress, type ListenAddress } from '../transport/settings/index.ts';
import { envNameOf, SETTINGS, type DefaultedSetting, type SettingName, type SettingSpec, type SettingValue } from './settings.ts';

export interface CommandOptions {
  /** Settings the command accepts (config and help are always accepted). */
  readonly settings: readonly SettingName[];
  /** Per-command defaults, already parsed: token mint's 10m --token-ttl, a ledger constant for serve. */
  readonly defaults?: { readonly [K in SettingName]?: SettingValue<K> };
  /** Settings that must be given. */
  readonly required?: readonly SettingName[];
  /** Whether bare positional arguments are allowed. */
  readonly positionals?: boolean;
}

type Accepted<O extends CommandOptions> = O['settings'][number] | 'config' | 'help';
/** Settings that always have a value for this command: defaulted by the table or the command, or required. */
type Given<O extends CommandOptions> =
  | DefaultedSetting
  | (O extends { readonly defaults: infer D } ? keyof D : never)
  | (O extends { readonly required: readonly (infer R)[] } ? R : never);

/**
 * A command's parsed settings, typed from the table: a setting with a default, or a required one,
 * is never undefined; one without either is optional.
 */
export type Settings<O extends CommandOptions> = {
  readonly [K in Accepted<O> as K extends Given<O> ? K : never]: SettingValue<K>;
} & {
  readonly [K in Accepted<O> as K extends Given<O> ? never : K]?: SettingValue<K>;
};

export interface Loaded<O extends CommandOptions> {
  values: Settings<O>;
  positionals: string[];
}

function bad(message: string): MeshcaError {
  return new MeshcaError('BAD_CONFIG', message);
}

function convert(spec: SettingSpec, raw: unknown, source: string): unknown {
  const where = `${source}`;
  switch (spec.type) {
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const text = String(raw).toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(text)) return true;
      if (['0', 'false', 'no', 'off'].includes(text)) return false;
      throw bad(`${where}: "${String(raw)}" is not a boolean; use true or false`);
    }
    case 'int':
    case 'number': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
      if (!Number.isFinite(n) || String(raw).trim() === '') throw bad(`${where}: "${String(raw)}" is not a number`);
      if (spec.type === 'int' && !Number.isInteger(n)) throw bad(`${where}: "${String(raw)}" is not a whole number`);
      if (n < 0) throw bad(`${where}: must not be negative`);
      return n;
    }
    case 'duration':
      // A bare YAML number is seconds; either way the value is whole milliseconds.
      return typeof raw === 'number' ? Math.round(raw * 1000) : parseDuration(String(raw), where);
    case 'list':
      return listItems(raw, where);
    case 'namespaces':
      return listItems(raw, where).map((ns) => {
        // A policy list naming something that cannot be a namespace would silently match nothing.
        if (!isKubernetesNamespace(ns)) throw bad(`${where}: "${ns.slice(0, 80)}" is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)`);
        return ns;
      });
    case 'address':
      return parseListenAddress(String(raw).trim(), where);
    case 'spiffe-ids':
      return listItems(raw, where).map((id) => spiffeIdOf(id, where));
    case 'enum': {
      const text = String(raw);
      if (!spec.choices?.includes(text)) throw bad(`${where}: "${text}" is not one of ${spec.choices?.join(', ')}`);
      return text;
    }
    case 'string': {
      if (typeof raw === 'object' && raw !== null) throw bad(`${where}: expected a string`);
      return String(raw);
    }
  }
}

/**
 * A list reads the same from a comma-separated flag, repeated flags, a MESHCA_* variable and a YAML
 * list or string: every item is split on commas. A wholly empty value is the empty list; an empty
 * element ("a,,b", a trailing comma) is refused, since it is almost always a typo.
 */
function listItems(raw: unknown, where: string): string[] {
  const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((item) => {
    if (typeof item === 'object' && item !== null) throw bad(`${where}: expected a list of strings`);
    return String(item).split(',');
  });
  const items = parts.map((x) => x.trim());
  if (items.length === 1 && items[0] === '') return [];
  if (items.includes('')) throw bad(`${where}: empty element in "${parts.join(',')}"; separate items with single commas`);
  return items;
}

function spiffeIdOf(text: string, where: string): SpiffeId {
  try {
    return parseSpiffeId(text);
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `${where}: ${describeError(err)}`, { cause: err });
  }
}

/** The YAML parser (~70 modules, ~13 MB) is loaded only when a --config file is read: most runs, every agent's included, have none. */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}

function readYaml(path: string): Record<string, unknown> {
  const text = readSettingFile(path, '--config');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `--config ${path}: not valid YAML (${describeError(err).split('\n')[0]})`, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw bad(`--config ${path}: expected a mapping of setting names to values`);
  return doc as Record<string, unknown>;
}

/**
 * One --config file serves every command: a setting another command reads is left to it, so a file
 * with `listen:` works for `root status` too. A key no command reads is a typo and an error, and so
 * is one that only the command line may give (a filter, --force).
 */
function checkFileKeys(yaml: Record<string, unknown>, path: string | undefined): void {
  for (const key of Object.keys(yaml)) {
    if (!Object.hasOwn(SETTINGS, key)) throw bad(`--config ${path}: unknown setting "${key}" (no meshca command has it; see "meshca <command> --help")`);
    const spec: SettingSpec = SETTINGS[key as SettingName];
    if (spec.flagOnly || key === 'config') throw bad(`--config ${path}: "${key}" is given on the command line only (--${key}), not in a settings file`);
  }
}

export function loadSettings<const O extends CommandOptions>(cmd: O, argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Loaded<O> {
  const names: SettingName[] = [...new Set<SettingName>(['config', 'help', ...cmd.settings])];
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const name of names) {
    const spec: SettingSpec = SETTINGS[name];
    options[name] = {
      type: spec.type === 'bool' ? 'boolean' : 'string',
      ...(spec.type === 'list' || spec.type === 'namespaces' || spec.type === 'spiffe-ids' ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  // Booleans also read as --flag=true|false and --no-flag, as operators expect from other tools.
  const args = argv.map((arg) => {
    const m = /^--([a-z][a-z0-9-]*)=(.*)$/.exec(arg);
    if (!m || !(names as string[]).includes(m[1]!) || SETTINGS[m[1] as SettingName].type !== 'bool') return arg;
    const on = convert(SETTINGS[m[1] as SettingName], m[2], `--${m[1]}`);
    return on ? `--${m[1]}` : `--no-${m[1]}`;
  });
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true, allowNegative: true });
  } catch (err) {
    const first = describeError(err).split('\n')[0]!;
    const unknown = /^Unknown option '([^']*)'/.exec(first);
    const msg = unknown ? `unknown option ${unknown[1]}; see --help` : first.replace(/\. To specify a positional.*$/, '');
    throw new MeshcaError('BAD_CONFIG', msg, { cause: err });
  }
  if (!cmd.positionals && parsed.positionals.length > 0) {
    throw bad(`unexpected argument "${parsed.positionals[0]}"`);
  }
  const flagValues = parsed.values as Record<string, unknown>;
  const configPath = (flagValues.config as string | undefined) ?? env[envNameOf('config')];
  const yaml = configPath ? readYaml(configPath) : {};
  checkFileKeys(yaml, configPath);

  const values: Record<string, unknown> = {};
  for (const name of names) {
    const spec: SettingSpec = SETTINGS[name];
    const envName = envNameOf(name);
    let value: unknown;
    if (flagValues[name] !== undefined) value = convert(spec, flagValues[name], `--${name}`);
    else if (env[envName] !== undefined && !spec.flagOnly) value = convert(spec, env[envName], envName);
    else if (yaml[name] !== undefined && !spec.flagOnly) value = convert(spec, yaml[name], `${name} in ${configPath}`);
    else value = cmd.defaults?.[name] ?? spec.default;
    if (value !== undefined) values[name] = value;
  }
  if (!values.help) {
    for (const name of cmd.required ?? []) {
      if (values[name] === undefined || values[name] === '') {
        throw bad((SETTINGS[name] as SettingSpec).flagOnly ? `--${name} is required` : `--${name} is required (or set ${envNameOf(name)})`);
      }
    }
  }
  return { values: Object.freeze(values) as Settings<O>, positionals: parsed.positionals };
}

function formatDefault(spec: SettingSpec, value: unknown): string {
  if (spec.type === 'duration') return formatDuration(value as number);
  if (spec.type === 'address') return listenUrl((value as ListenAddress).host, (value as ListenAddress).port);
  if (spec.type === 'spiffe-ids') return (value as readonly SpiffeId[]).map((id) => id.uri).join(',');
  return Array.isArray(value) ? value.join(',') : String(value);
}

export function formatHelp(usage: string, summary: string, cmd: CommandOptions): string {
  const lines = [`Usage: ${usage}`, '', summary, '', 'Options:'];
  for (const name of [...cmd.settings, 'config', 'help'] as SettingName[]) {
    const spec: SettingSpec = SETTINGS[name];
    const def = cmd.defaults?.[name] ?? spec.default;
    const shown = def === undefined || (Array.isArray(def) && def.length === 0) || def === false ? '' : ` (default ${formatDefault(spec, def)})`;
    const flag = `--${name}${spec.type === 'bool' ? '' : ` <${spec.type === 'enum' ? spec.choices?.join('|') : spec.type}>`}`;
    const env = spec.flagOnly ? '' : `  [${envNameOf(name)}]`;
    lines.push(`  ${flag.padEnd(34)} ${spec.help}${shown}${env}`);
  }
  return lines.join('\n');
}
