{{/* Labels Helm's conventions put on every object (the kustomize install has only part-of). */}}
{{- define "lxcfs-webhook.labels" -}}
app.kubernetes.io/part-of: lxcfs-webhook
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The selector labels of one component; call with (dict "component" "webhook"). */}}
{{- define "lxcfs-webhook.selector" -}}
app.kubernetes.io/name: lxcfs-webhook
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* metadata.labels of a component's objects: its selector labels, then the common ones. */}}
{{- define "lxcfs-webhook.componentLabels" -}}
{{ include "lxcfs-webhook.selector" (dict "component" .component) }}
{{ include "lxcfs-webhook.labels" .root }}
{{- end }}

{{/* registry/repository@digest, or :tag (the chart's appVersion when empty); call with (dict "image" ... "root" $). */}}
{{- define "lxcfs-webhook.image" -}}
{{- $repo := printf "%s/%s" .image.registry .image.repository | trimPrefix "/" -}}
{{- if .image.digest -}}
{{ $repo }}@{{ .image.digest }}
{{- else -}}
{{ $repo }}:{{ .image.tag | default .root.Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* imagePullSecrets entries, as a flow list, from a list of Secret names. */}}
{{- define "lxcfs-webhook.pullSecrets" -}}
{{- $out := list -}}
{{- range . }}{{ $out = append $out (dict "name" .) }}{{ end -}}
{{ toJson $out }}
{{- end }}

{{/* The Secret the webhook mounts: cert-manager's or OpenShift's, the one the `certs` Job makes, or the given one. */}}
{{- define "lxcfs-webhook.tlsSecret" -}}
{{- if eq .Values.certificates.mode "secret" -}}
{{ required "certificates.secretName is required when certificates.mode is secret" .Values.certificates.secretName }}
{{- else if eq .Values.certificates.mode "self-signed" -}}
lxcfs-webhook-self-signed
{{- else -}}
lxcfs-webhook-tls
{{- end -}}
{{- end }}

{{/* Service DNS names, short to fully qualified, space-separated (splitList " " makes the list). */}}
{{- define "lxcfs-webhook.dnsNames" -}}
lxcfs-webhook lxcfs-webhook.{{ .Release.Namespace }} lxcfs-webhook.{{ .Release.Namespace }}.svc lxcfs-webhook.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{/*
The pod and container security of everything that runs the webhook image (the webhook, the `certs` Job
and CronJob, the test Pod, the uninstall check): non-root, read-only root filesystem, no capabilities.
Call with (dict "root" $ "part" "pod") or (dict "root" $ "part" "container").
*/}}
{{- define "lxcfs-webhook.restricted" -}}
{{- if eq .part "pod" -}}
runAsNonRoot: true
{{- if not .root.Values.openshift.enabled }}
# OpenShift's restricted-v2 SCC assigns each namespace its own UID range: there, none is fixed.
runAsUser: 65532
runAsGroup: 65532
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- else -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
{{- end }}
