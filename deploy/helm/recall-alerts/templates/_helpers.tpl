{{/* Names and labels. */}}
{{- define "recall-alerts.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "recall-alerts.labels" -}}
app.kubernetes.io/part-of: recall-alerts
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The pod selector of one service: (dict "root" $ "name" "notifier") */}}
{{- define "recall-alerts.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* One service's settings: defaults overlaid with services.<name> (as YAML; fromYaml to use). */}}
{{- define "recall-alerts.service" -}}
{{- $svc := mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy (index .root.Values.services .name)) -}}
{{- toYaml $svc -}}
{{- end -}}

{{- define "recall-alerts.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/* Environment variables from the operator's Secret: a map of variable -> key. */}}
{{- define "recall-alerts.secretEnv" -}}
{{- range $var, $key := .env }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $.secret }}
      key: {{ $key }}
{{- end }}
{{- end -}}

{{/* Plain environment variables from a map (the Jobs: as hooks they run before the ConfigMaps exist). */}}
{{- define "recall-alerts.plainEnv" -}}
{{- range $var, $value := . }}
- name: {{ $var }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
