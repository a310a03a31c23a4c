{{/* Names and labels shared by every object of the chart. */}}
{{- define "baton.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "baton.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "baton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "baton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "baton.labels" -}}
{{ include "baton.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
Checks the values before anything renders. batond has no clustering yet: no
--node_id or --peers flag, so more than one replica would be independent
servers each granting the same locks.
*/}}
{{- define "baton.validate" -}}
{{- if ne (int .Values.replicaCount) 1 -}}
{{- fail (printf "replicaCount is %v, but clustering is not available yet: batond runs as a single server (replicaCount: 1) until it has --node_id/--peers" .Values.replicaCount) -}}
{{- end -}}
{{- if and .Values.tls.mutual (not .Values.tls.secretName) -}}
{{- fail "tls.mutual needs tls.secretName: the Secret's ca.crt is the CA that signs client certificates" -}}
{{- end -}}
{{- if and .Values.tls.mutual (not .Values.tls.testClientSecretName) -}}
{{- fail "tls.mutual needs tls.testClientSecretName: the kubernetes.io/tls Secret the helm test Pod presents as its client certificate" -}}
{{- end -}}
{{- if and .Values.auth.tokensSecretName (not .Values.auth.policy) -}}
{{- fail "auth.tokensSecretName without auth.policy: batond needs the policy that grants the tokens' principals their roles" -}}
{{- end -}}
{{- range $key := list "listen" "data_dir" "config" "metrics_listen" "tls_cert" "tls_key" "client_ca" "allow_plaintext" "auth_policy" "auth_tokens" -}}
{{- if hasKey $.Values.config $key -}}
{{- fail (printf "config.%s is set by the chart (port, persistence.*, metrics.*, tls.*, auth.*); remove it from config" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The TOML file batond reads with --config: one `key = value` per entry of
.Values.config. YAML numbers reach templates as float64, so whole numbers are
printed as integers (1000000, not 1e+06).
*/}}
{{- define "baton.configToml" -}}
# batond settings from the chart's values (config:). `batond --help` lists them.
{{- range $key, $value := .Values.config }}
{{- if kindIs "string" $value }}
{{ $key }} = {{ $value | quote }}
{{- else if kindIs "bool" $value }}
{{ $key }} = {{ $value }}
{{- else if and (kindIs "float64" $value) (eq $value (float64 (int64 $value))) }}
{{ $key }} = {{ int64 $value }}
{{- else if or (kindIs "float64" $value) (kindIs "int" $value) (kindIs "int64" $value) }}
{{ $key }} = {{ $value }}
{{- else }}
{{- fail (printf "config.%s must be a string, number or boolean" $key) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Whether batond serves the metrics listener: asked for, or needed by the probes (TLS). */}}
{{- define "baton.metricsListener" -}}
{{- if or .Values.metrics.enabled .Values.tls.secretName -}}true{{- end -}}
{{- end -}}
