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

{{/* The Secret the webhook mounts: cert-manager's, the self-signed one, OpenShift's, or the given one. */}}
{{- define "lxcfs-webhook.tlsSecret" -}}
{{- if eq .Values.certificates.mode "secret" -}}
{{ required "certificates.secretName is required when certificates.mode is secret" .Values.certificates.secretName }}
{{- else -}}
lxcfs-webhook-tls
{{- end -}}
{{- end }}

{{/* Service DNS names, short to fully qualified, space-separated (splitList " " makes the list). */}}
{{- define "lxcfs-webhook.dnsNames" -}}
lxcfs-webhook lxcfs-webhook.{{ .Release.Namespace }} lxcfs-webhook.{{ .Release.Namespace }}.svc lxcfs-webhook.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{/*
The self-signed CA and serving certificate, as a dict of base64 PEM (ca.crt, tls.crt, tls.key). On
upgrade the existing Secret is read back, so that the caBundle stays the same; a new pair is made only
when there is none. Kept in .Values (shared by every template of one render) so that the Secret and the
webhook configuration see the same pair: include it for that effect, then read .Values.__selfSigned.
*/}}
{{- define "lxcfs-webhook.selfSigned" -}}
{{- if not (hasKey .Values "__selfSigned") -}}
{{- $data := dict -}}
{{- with (lookup "v1" "Secret" .Release.Namespace "lxcfs-webhook-tls").data -}}
{{- if and (index . "ca.crt") (index . "tls.crt") (index . "tls.key") }}{{ $data = pick . "ca.crt" "tls.crt" "tls.key" }}{{ end -}}
{{- end -}}
{{- if not $data -}}
{{- $days := int .Values.certificates.selfSignedValidityDays -}}
{{- $ca := genCA "lxcfs-webhook-ca" $days -}}
{{- $dns := list -}}
{{- range splitList " " (include "lxcfs-webhook.dnsNames" .) }}{{ $dns = append $dns . }}{{ end -}}
{{- $cert := genSignedCert (printf "lxcfs-webhook.%s.svc" .Release.Namespace) nil $dns $days $ca -}}
{{- $data = dict "ca.crt" ($ca.Cert | b64enc) "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set .Values "__selfSigned" $data -}}
{{- end -}}
{{- end }}
