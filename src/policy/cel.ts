// Pieces of CEL the policy is written with. CEL in the API server has no functions of our own and no
// local names, so each piece is a function that writes the expression for its argument (itself an
// expression). Pure string building; src/policy/policy.ts puts them together.
import { VOLUME_PREFIX } from '../config/defaults.js';

/** A CEL string literal: JSON's escaping is valid CEL for the values used here (paths, names, words). */
export function str(value: string): string {
  return JSON.stringify(value);
}

export function list(values: readonly string[]): string {
  return `[${values.map(str).join(', ')}]`;
}

/** The value of the annotation named by expression `key`, trimmed and lower-cased, or '' when absent (the webhook's yes/no reading). */
export function word(key: string): string {
  return `variables.annotations[?${key}].orValue('').trim().lowerAscii()`;
}

/**
 * The paths in field `field` of a list of objects (expression `objects`: volumeMounts, hostPaths) as the
 * kubelet mounts them: `/` in front (a relative mountPath is made absolute), repeated slashes and a
 * trailing slash gone. A path with a `.` or `..` segment becomes '', which conflicts with every file: CEL
 * cannot resolve such segments, so the policy leaves those files alone where the webhook resolves them.
 */
export function normalisedPaths(objects: string, field: string): string {
  return (
    `${objects}.map(m, ('/' + m.${field}).replace('//', '/').replace('//', '/').replace('//', '/'))` +
    `.map(p, p.size() > 1 && p.endsWith('/') ? p.substring(0, p.size() - 1) : p)` +
    `.map(p, p.contains('/./') || p.contains('/../') || p.endsWith('/.') || p.endsWith('/..') ? '' : p)`
  );
}

/** The volume name of file `f` (an expression): `/proc/meminfo` → `lxcfs-proc-meminfo`, as volumeName() does. */
export function volumeName(f: string): string {
  return `${str(VOLUME_PREFIX)} + ${f}.substring(1).replace('/', '-')`;
}

/** A mount at path `p` (normalised) provides file `f`: the same path, or a directory above it other than `/`. */
export function shadows(p: string, f: string): string {
  return `(${p} != '/' && (${p} == ${f} || ${f}.startsWith(${p} + '/')))`;
}

/** A mount at `p` cannot live beside ours at `f`: it provides the file, or sits below it. */
export function conflicts(p: string, f: string): string {
  return `(${shadows(p, f)} || ${p}.startsWith(${f} + '/'))`;
}

/** Volume `v` is exactly the one we add for file `f` (a valid pod's volume has one source, so name, path and type say it). */
export function isOurVolume(v: string, f: string): string {
  return (
    `(${v}.name == ${volumeName(f)} && has(${v}.hostPath) && ${v}.hostPath.path == variables.lxcfsRoot + ${f}` +
    ` && ${v}.hostPath.?type.orValue('') == 'File')`
  );
}
