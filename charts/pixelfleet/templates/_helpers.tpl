{{/* Names and labels. */}}
{{- define "pixelfleet.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pixelfleet.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pixelfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "pixelfleet.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The PIXELFLEET_* settings every role reads. */}}
{{- define "pixelfleet.env" -}}
- name: PIXELFLEET_ENV
  value: {{ .Values.config.env | quote }}
- name: PIXELFLEET_LAUNCHER
  value: kubernetes
- name: PIXELFLEET_CELERY_QUEUE
  value: {{ .Values.config.celeryQueue | quote }}
- name: PIXELFLEET_TASK_SOFT_TIME_LIMIT_SECONDS
  value: {{ .Values.config.taskSoftTimeLimitSeconds | quote }}
- name: PIXELFLEET_TASK_TIME_LIMIT_SECONDS
  value: {{ .Values.config.taskTimeLimitSeconds | quote }}
- name: PIXELFLEET_IMAGEJOB_TTL_SECONDS
  value: {{ .Values.config.imagejobTtlSeconds | quote }}
- name: PIXELFLEET_KUBERNETES_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- with .Values.config.storageUrl }}
- name: PIXELFLEET_STORAGE_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
