// Policy mode: a MutatingAdmissionPolicy (CEL, run inside the API server: no webhook process, no
// certificate, no outage window) and its bindings, applying the webhook's rules as far as CEL can. Pure:
// options in, Kubernetes objects out; `lxcfs-webhook policy` prints them, the chart and the kustomize
// component ship the same objects (tests keep them equal).
//
// What CEL cannot do here, and so differs from the webhook (the README's table lists it): no status
// annotation, no warnings, no naming of another injector (its pods are still left alone), no `.`/`..`
// in mountPaths resolved (such a container is left without files), and only the plain spellings of a
// file in the files annotation (`meminfo`, `/proc/meminfo`, `proc/meminfo`).
import {
  ALLOWED_FILES,
  ANNOTATIONS,
  BOOLEAN_WORDS,
  HOSTPATH_REJECTING_LEVELS,
  INSTALL,
  MIRROR_POD_ANNOTATION,
  MOUNT_LXCFS_LABEL,
  NAMESPACE_LABEL,
  NAMESPACE_LABEL_REQUIRED,
  NAMESPACE_NAME_LABEL,
  OPT_OUT_ANNOTATIONS,
  POD_LABEL,
  POD_LABEL_DISABLED,
  POD_LABEL_ENABLED,
  POD_SECURITY_ENFORCE_LABEL,
  SYSTEM_NAMESPACES,
} from '../config/defaults.js';
import type { InjectionSettings } from '../inject/settings.js';
import {
  conflicts,
  isOurVolume,
  list,
  normalisedPaths,
  shadows,
  str,
  volumeName,
  word,
} from './cel.js';

/** v1: GA in Kubernetes 1.36. v1beta1: 1.34 and 1.35, with the feature gate and the API turned on. */
export const POLICY_API_VERSIONS = [
  'admissionregistration.k8s.io/v1',
  'admissionregistration.k8s.io/v1beta1',
] as const;
export type PolicyApiVersion = (typeof POLICY_API_VERSIONS)[number];

export const POLICY_NAME = 'lxcfs-webhook.io';

export interface PolicyOptions {
  settings: InjectionSettings;
  /** The install's own namespace: never selected, as the webhook's. */
  namespace: string;
  /** Further namespaces never selected (the system ones by default). */
  excludedNamespaces: readonly string[];
  namespaceLabel: string;
  podLabel: string;
  /** Also select namespaces labelled mount-lxcfs=enabled (the webhook's optional entry). */
  mountLxcfsLabel: boolean;
  apiVersion: PolicyApiVersion;
}

export const defaultPolicyOptions = (settings: InjectionSettings): PolicyOptions => ({
  settings,
  namespace: INSTALL.namespace,
  excludedNamespaces: SYSTEM_NAMESPACES,
  namespaceLabel: NAMESPACE_LABEL.key,
  podLabel: POD_LABEL,
  mountLxcfsLabel: false,
  apiVersion: POLICY_API_VERSIONS[0],
});

type ListName = 'initContainers' | 'containers' | 'ephemeralContainers';

/** The object list of one container list of the pod (`[]` when absent). */
const containersOf = (name: ListName) =>
  name === 'containers' ? 'object.spec.containers' : `object.spec.?${name}.orValue([])`;

/**
 * Per container of `listName`, the files to mount in it (a list of lists, by container index): the
 * configured files less those it skips (excluded, a plain init container, a mount in the way, a pod
 * volume of our name with another source, no volume to reuse for an ephemeral container).
 */
function filesToMount(listName: ListName): string {
  const skipContainer =
    listName === 'initContainers'
      ? `c.name in variables.excludedContainers || (c.?restartPolicy.orValue('') != 'Always' && !variables.includeInitContainers)`
      : listName === 'ephemeralContainers'
        ? `c.name in variables.excludedContainers || c.name in variables.oldEphemeralNames`
        : `c.name in variables.excludedContainers`;
  const noVolume = listName === 'ephemeralContainers' ? ` && !(f in variables.absentFiles)` : '';
  return (
    `${containersOf(listName)}.map(c, ${skipContainer} ? [] : variables.files.filter(f,` +
    ` !${normalisedPaths('c.?volumeMounts.orValue([])', 'mountPath')}.exists(p, ${conflicts('p', 'f')})` +
    ` && !(f in variables.conflictingFiles)${noVolume}))`
  );
}

/**
 * JSON Patch operations adding `items` (a list expression, `f` each) at `path`: an empty list first where
 * the pod has none (an append to a missing list fails), then one append each. Not the whole list in one
 * operation: a list of typed objects as a JSONPatch value panics the API server's CEL conversion
 * (k8s.io/apiserver 0.36.4, json_patch.go), which the admission harness ran into.
 */
function appendOps(present: string, path: string, items: string, item: string): string {
  return (
    `(${items}.size() == 0 ? [] : (${present} ? [] : [JSONPatch{op: 'add', path: ${path}, value: []}])` +
    ` + ${items}.map(f, JSONPatch{op: 'add', path: ${path} + '/-', value: ${item}}))`
  );
}

/** JSON Patch operations adding each container's mounts. */
function mountOps(listName: ListName, plan: string): string {
  const mount = `Object.spec.${listName}.volumeMounts{name: ${volumeName('f')}, mountPath: f, readOnly: true}`;
  const path = `'/spec/${listName}/' + string(i) + '/volumeMounts'`;
  return `variables.${plan}.transformList(i, files, ${appendOps(`has(${containersOf(listName)}[i].volumeMounts)`, path, 'files', mount)}).flatten()`;
}

const volumeOf = (f: string) =>
  `Object.spec.volumes{name: ${volumeName(f)}, hostPath: Object.spec.volumes.hostPath{path: variables.lxcfsRoot + ${f}, type: 'File'}}`;

function variables(settings: InjectionSettings): Array<{ name: string; expression: string }> {
  const optOuts = OPT_OUT_ANNOTATIONS;
  const booleans = [...OPT_OUT_ANNOTATIONS, ANNOTATIONS.includeInitContainers];
  const words = [...BOOLEAN_WORDS.true, ...BOOLEAN_WORDS.false];
  // A name of the files annotation matches file f: by path with or without the leading slash, or by short name.
  const fileMatches = `(f == n || f == '/' + n || f.substring(f.lastIndexOf('/') + 1) == n)`;
  const filesKey = str(ANNOTATIONS.files);
  return [
    // The operator's settings.
    { name: 'lxcfsRoot', expression: str(settings.lxcfsRoot) },
    { name: 'configuredFiles', expression: list(settings.files) },
    { name: 'sandboxRuntimeClasses', expression: list(settings.sandboxRuntimeClasses) },
    // The pod's annotations and what they ask for.
    { name: 'annotations', expression: 'object.metadata.?annotations.orValue({})' },
    {
      name: 'optedOut',
      expression: `${list(optOuts)}.exists(k, ${word('k')} in ${list(BOOLEAN_WORDS.false)})`,
    },
    {
      name: 'badWord',
      expression: `${list(booleans)}.exists(k, k in variables.annotations && !(variables.annotations[k].trim().lowerAscii() in ${list(words)}))`,
    },
    {
      name: 'includeInitContainers',
      expression: `${word(str(ANNOTATIONS.includeInitContainers))} in ${list(BOOLEAN_WORDS.true)}`,
    },
    {
      name: 'excludedContainers',
      expression: `variables.annotations[?${str(ANNOTATIONS.excludeContainers)}].orValue('').split(',').map(n, n.trim()).filter(n, n != '')`,
    },
    {
      name: 'fileNames',
      expression: `variables.annotations[?${filesKey}].orValue('').split(',').map(n, n.trim()).filter(n, n != '')`,
    },
    {
      name: 'badFiles',
      expression:
        `${filesKey} in variables.annotations && (variables.fileNames.size() == 0` +
        ` || variables.fileNames.exists(n, !variables.configuredFiles.exists(f, ${fileMatches})))`,
    },
    {
      name: 'files',
      expression: `${filesKey} in variables.annotations ? variables.configuredFiles.filter(f, variables.fileNames.exists(n, ${fileMatches})) : variables.configuredFiles`,
    },
    // Another injector's lxcfs tree (a hostPath ending with the path it is mounted at, over a file lxcfs
    // serves, that is not our volume) in any container: the pod gets none of ours. The host's own tree
    // (hostPath == mountPath: cAdvisor's /sys) is no such tree.
    { name: 'volumes', expression: 'object.spec.?volumes.orValue([])' },
    {
      name: 'foreignLxcfs',
      // dyn(): the three lists' items are of three schema types, and CEL list literals must be of one.
      expression:
        `[${(['initContainers', 'containers', 'ephemeralContainers'] as const).map((l) => `dyn(${containersOf(l)})`).join(', ')}]` +
        `.exists(l, l.exists(c, c.?volumeMounts.orValue([]).exists(m, variables.volumes.exists(v, v.name == m.name && has(v.hostPath)` +
        ` && ${normalisedPaths('[m]', 'mountPath')}.exists(p, ${normalisedPaths('[v.hostPath]', 'path')}` +
        `.exists(h, h.endsWith(p) && h != p && ${list(ALLOWED_FILES)}.exists(f, ${shadows('p', 'f')} && !${isOurVolume('v', 'f')})))))))`,
    },
    {
      name: 'skipPod',
      expression: [
        `${str(MIRROR_POD_ANNOTATION)} in variables.annotations`,
        `object.spec.?os.?name.orValue('') == 'windows'`,
        `object.spec.?nodeSelector[?'kubernetes.io/os'].orValue('') == 'windows'`,
        `object.spec.?hostPID.orValue(false)`,
        'variables.optedOut',
        `variables.sandboxRuntimeClasses.exists(r, r.endsWith('*') ? object.spec.?runtimeClassName.orValue('').startsWith(r.substring(0, r.size() - 1)) : object.spec.?runtimeClassName.orValue('') == r)`,
        `!object.spec.?hostUsers.orValue(true)`,
        'variables.badWord',
        'variables.badFiles',
        'variables.foreignLxcfs',
      ].join(' || '),
    },
    // What the pod's volumes hold under our names.
    {
      name: 'presentFiles',
      expression: `variables.files.filter(f, variables.volumes.exists(v, ${isOurVolume('v', 'f')}))`,
    },
    {
      name: 'absentFiles',
      expression: `variables.files.filter(f, !variables.volumes.exists(v, v.name == ${volumeName('f')}))`,
    },
    {
      name: 'conflictingFiles',
      expression: `variables.files.filter(f, !(f in variables.presentFiles) && !(f in variables.absentFiles))`,
    },
    // The plan, per container list.
    { name: 'debugging', expression: `request.?subResource.orValue('') == 'ephemeralcontainers'` },
    {
      name: 'oldEphemeralNames',
      expression: `variables.debugging ? oldObject.spec.?ephemeralContainers.orValue([]).map(c, c.name) : []`,
    },
    {
      name: 'initPlan',
      expression: `variables.debugging ? [] : ${filesToMount('initContainers')}`,
    },
    {
      name: 'containerPlan',
      expression: `variables.debugging ? [] : ${filesToMount('containers')}`,
    },
    {
      name: 'ephemeralPlan',
      expression: `variables.debugging ? ${filesToMount('ephemeralContainers')} : []`,
    },
    {
      name: 'newVolumes',
      expression: `variables.absentFiles.filter(f, (variables.initPlan + variables.containerPlan).exists(files, f in files))`,
    },
  ];
}

const PATCH = [
  'variables.skipPod ? [] : (',
  `  ${appendOps('has(object.spec.volumes)', "'/spec/volumes'", 'variables.newVolumes', volumeOf('f'))}`,
  `  + ${mountOps('initContainers', 'initPlan')}`,
  `  + ${mountOps('containers', 'containerPlan')}`,
  `  + ${mountOps('ephemeralContainers', 'ephemeralPlan')})`,
].join('\n');

function selector(
  expressions: Array<{ key: string; operator: string; values?: readonly string[] }>,
) {
  return {
    matchExpressions: expressions.map((e) => ({
      ...e,
      ...(e.values ? { values: [...e.values] } : {}),
    })),
  };
}

/** The MutatingAdmissionPolicy and its bindings: one binding per webhook entry, each pod matched by one at most. */
export function policyObjects(options: PolicyOptions): object[] {
  const { namespaceLabel: label, podLabel } = options;
  const modes = [NAMESPACE_LABEL.value, NAMESPACE_LABEL_REQUIRED];
  const policy = {
    apiVersion: options.apiVersion,
    kind: 'MutatingAdmissionPolicy',
    metadata: { name: POLICY_NAME, labels: { 'app.kubernetes.io/part-of': 'lxcfs-webhook' } },
    spec: {
      // A CEL error (a pod shape nobody foresaw) admits the pod unchanged, as the webhook never denies.
      failurePolicy: 'Ignore',
      // Another mutation after ours (a sidecar) gets its files in the API server's second round.
      reinvocationPolicy: 'IfNeeded',
      matchConstraints: {
        matchPolicy: 'Equivalent',
        resourceRules: [
          {
            operations: ['CREATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
          {
            operations: ['UPDATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods/ephemeralcontainers'],
            scope: 'Namespaced',
          },
        ],
        // As the webhook's entries: never our namespace or the system ones, nor one enforcing a Pod
        // Security level that rejects hostPath volumes; never a pod labelled disabled.
        namespaceSelector: selector([
          {
            key: NAMESPACE_NAME_LABEL,
            operator: 'NotIn',
            values: [...options.excludedNamespaces, options.namespace],
          },
          { key: POD_SECURITY_ENFORCE_LABEL, operator: 'NotIn', values: HOSTPATH_REJECTING_LEVELS },
        ]),
        objectSelector: selector([
          { key: podLabel, operator: 'NotIn', values: [POD_LABEL_DISABLED] },
        ]),
      },
      variables: variables(options.settings),
      mutations: [{ patchType: 'JSONPatch', jsonPatch: { expression: PATCH } }],
    },
  };
  const binding = (suffix: string, matchResources: object) => ({
    apiVersion: options.apiVersion,
    kind: 'MutatingAdmissionPolicyBinding',
    metadata: {
      name: `${POLICY_NAME}-${suffix}`,
      labels: { 'app.kubernetes.io/part-of': 'lxcfs-webhook' },
    },
    // Every selector written out, as the API server stores it (it defaults a missing one to {}).
    spec: {
      policyName: POLICY_NAME,
      matchResources: {
        namespaceSelector: {},
        objectSelector: {},
        matchPolicy: 'Equivalent',
        ...matchResources,
      },
    },
  });
  const mount = MOUNT_LXCFS_LABEL;
  return [
    policy,
    binding('namespaces', {
      namespaceSelector: selector([{ key: label, operator: 'In', values: modes }]),
    }),
    binding('pods', {
      namespaceSelector: selector([
        { key: label, operator: 'NotIn', values: modes },
        ...(options.mountLxcfsLabel
          ? [{ key: mount.key, operator: 'NotIn', values: [mount.value] }]
          : []),
      ]),
      objectSelector: selector([{ key: podLabel, operator: 'In', values: [POD_LABEL_ENABLED] }]),
    }),
    ...(options.mountLxcfsLabel
      ? [
          binding('mount-lxcfs', {
            namespaceSelector: selector([
              { key: mount.key, operator: 'In', values: [mount.value] },
              { key: label, operator: 'NotIn', values: modes },
            ]),
          }),
        ]
      : []),
  ];
}
