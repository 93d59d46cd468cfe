{{- define "packreg.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "packreg.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "packreg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "packreg.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "packreg.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "packreg.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "packreg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "packreg.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* embedded: a store lives on the data volume, so one replica only. */}}
{{- define "packreg.embedded" -}}
{{- if or (eq .Values.storage "") (eq .Values.database "") -}}true{{- end -}}
{{- end -}}

{{- define "packreg.secretName" -}}
{{- default (include "packreg.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/* config.yaml as packreg reads it: the chart's keys, then .Values.config. */}}
{{- define "packreg.config" -}}
{{- $c := dict "addr" ":5000" "data" "/var/lib/packreg" "allow_anonymous" .Values.allowAnonymous -}}
{{- $_ := set $c "log" (dict "level" .Values.logLevel "format" "json") -}}
{{- if .Values.storage }}{{ $_ := set $c "storage" .Values.storage }}{{ end -}}
{{- if .Values.database }}{{ $_ := set $c "database" .Values.database }}{{ end -}}
{{- $_ := set $c "metrics" (dict "enabled" .Values.metrics.enabled) -}}
{{- with .Values.auth.htpasswdSecret }}
{{- $a := dict "htpasswd" "/etc/packreg-auth/htpasswd" "admins" $.Values.auth.admins "rules" $.Values.auth.rules "anonymous" $.Values.auth.anonymous -}}
{{- if $.Values.auth.tokenKeySecret }}{{ $_ := set $a "token" (dict "key" "/etc/packreg-token/token-key.pem") }}{{ end -}}
{{- $_ := set $c "auth" $a -}}
{{- end }}
{{- if .Values.tls.secret }}{{ $_ := set $c "tls" (dict "cert" "/etc/packreg-tls/tls.crt" "key" "/etc/packreg-tls/tls.key") }}{{ end -}}
{{- if .Values.insecureHTTP }}{{ $_ := set $c "insecure_http" true }}{{ end -}}
{{- toYaml (mustMergeOverwrite $c (deepCopy .Values.config)) -}}
{{- end -}}
