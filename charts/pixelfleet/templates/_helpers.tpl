{{/* ---- Names and labels ------------------------------------------------------------------ */}}
{{- define "pixelfleet.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pixelfleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "pixelfleet.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: (dict "root" . "component" "api") -> <fullname>-api, at most
     52 characters, so that the names Kubernetes derives from it (StatefulSet pods and their
     revision labels, a Job's pod labels) stay within 63. */}}
{{- define "pixelfleet.componentName" -}}
{{- $room := sub 51 (len .component) | int -}}
{{- printf "%s-%s" (include "pixelfleet.fullname" .root | trunc $room | trimSuffix "-") .component -}}
{{- end -}}

{{/* Labels of a component's objects: (dict "root" . "component" "api") */}}
{{- define "pixelfleet.labels" -}}
{{ include "pixelfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pixelfleet
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "pixelfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pixelfleet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* A component's metadata block: name, namespace, labels. */}}
{{- define "pixelfleet.metadata" -}}
name: {{ include "pixelfleet.componentName" . }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "pixelfleet.labels" . | nindent 2 }}
{{- end -}}

{{- define "pixelfleet.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* ---- Where the secrets are ------------------------------------------------------------- */}}
{{/* The chart's own Secret: generated keys, and passwords given as values. */}}
{{- define "pixelfleet.secretName" -}}
{{- include "pixelfleet.fullname" . -}}
{{- end -}}

{{- define "pixelfleet.appSecretName" -}}
{{- .Values.secrets.existingSecret | default (include "pixelfleet.secretName" .) -}}
{{- end -}}

{{- define "pixelfleet.razorpaySecretName" -}}
{{- .Values.razorpay.existingSecret | default (include "pixelfleet.secretName" .) -}}
{{- end -}}

{{/* ---- PostgreSQL: the chart's own, or an external server --------------------------------- */}}
{{- define "pixelfleet.database.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "pixelfleet.componentName" (dict "root" . "component" "postgresql") -}}
{{- else -}}
{{- required "externalDatabase.host is required when postgresql.enabled is false" .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "pixelfleet.database.url" -}}
{{- if .Values.postgresql.enabled -}}
{{- printf "postgresql+asyncpg://%s@%s:5432/%s" .Values.postgresql.auth.username (include "pixelfleet.database.host" .) .Values.postgresql.auth.database -}}
{{- else -}}
{{- with .Values.externalDatabase -}}
{{- printf "postgresql+asyncpg://%s@%s:%d/%s" .user (include "pixelfleet.database.host" $) (int .port) .database -}}
{{- with .ssl }}?ssl={{ . }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* (secret name, key) of the database password, as a secretKeyRef body */}}
{{- define "pixelfleet.database.passwordRef" -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret -}}
name: {{ .Values.externalDatabase.existingSecret }}
key: {{ .Values.externalDatabase.existingSecretPasswordKey }}
{{- else -}}
name: {{ include "pixelfleet.secretName" . }}
key: database-password
{{- end -}}
{{- end -}}

{{/* The chart's Secret holds a database password unless an external one comes from elsewhere. */}}
{{- define "pixelfleet.database.passwordInChartSecret" -}}
{{- if or .Values.postgresql.enabled (and (not .Values.externalDatabase.existingSecret) .Values.externalDatabase.password) -}}
true
{{- end -}}
{{- end -}}

{{- define "pixelfleet.database.hasPassword" -}}
{{- if or (include "pixelfleet.database.passwordInChartSecret" .) (and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret) -}}
true
{{- end -}}
{{- end -}}

{{/* ---- Redis: the chart's own, or an external server ------------------------------------- */}}
{{- define "pixelfleet.redis.url" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s:6379/0" (include "pixelfleet.componentName" (dict "root" . "component" "redis")) -}}
{{- else -}}
{{- with .Values.externalRedis -}}
{{- printf "%s://%s:%d/%d" (ternary "rediss" "redis" (.tls | default false)) (required "externalRedis.host is required when redis.enabled is false" .host) (int .port) (int .database) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pixelfleet.redis.passwordRef" -}}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.existingSecret -}}
name: {{ .Values.externalRedis.existingSecret }}
key: {{ .Values.externalRedis.existingSecretPasswordKey }}
{{- else -}}
name: {{ include "pixelfleet.secretName" . }}
key: redis-password
{{- end -}}
{{- end -}}

{{- define "pixelfleet.redis.passwordInChartSecret" -}}
{{- if or .Values.redis.enabled (and (not .Values.externalRedis.existingSecret) .Values.externalRedis.password) -}}
true
{{- end -}}
{{- end -}}

{{- define "pixelfleet.redis.hasPassword" -}}
{{- if or (include "pixelfleet.redis.passwordInChartSecret" .) (and (not .Values.redis.enabled) .Values.externalRedis.existingSecret) -}}
true
{{- end -}}
{{- end -}}

{{/* ---- The settings every role reads: (dict "root" . "launcher" "kubernetes") ------------ */}}
{{- define "pixelfleet.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
- name: PIXELFLEET_ENV
  value: {{ $v.config.env | quote }}
- name: PIXELFLEET_LAUNCHER
  value: {{ .launcher | quote }}
- name: PIXELFLEET_DATABASE_URL
  value: {{ include "pixelfleet.database.url" $root | quote }}
{{- if include "pixelfleet.database.hasPassword" $root }}
- name: PIXELFLEET_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- include "pixelfleet.database.passwordRef" $root | nindent 6 }}
{{- end }}
- name: PIXELFLEET_REDIS_URL
  value: {{ include "pixelfleet.redis.url" $root | quote }}
{{- if include "pixelfleet.redis.hasPassword" $root }}
- name: PIXELFLEET_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- include "pixelfleet.redis.passwordRef" $root | nindent 6 }}
{{- end }}
- name: PIXELFLEET_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "pixelfleet.appSecretName" $root }}
      key: jwt-secret
- name: PIXELFLEET_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "pixelfleet.appSecretName" $root }}
      key: webhook-secret
{{- with $v.razorpay }}
{{- if .keyId }}
- name: PIXELFLEET_RAZORPAY_KEY_ID
  value: {{ .keyId | quote }}
- name: PIXELFLEET_RAZORPAY_KEY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "pixelfleet.razorpaySecretName" $root }}
      key: razorpay-key-secret
- name: PIXELFLEET_RAZORPAY_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "pixelfleet.razorpaySecretName" $root }}
      key: razorpay-webhook-secret
{{- end }}
{{- end }}
{{- with $v.config.publicUrl }}
- name: PIXELFLEET_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- with $v.mail }}
{{- if or .smtpUrl .existingSecret }}
- name: PIXELFLEET_SMTP_URL
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | default (include "pixelfleet.secretName" $root) }}
      key: smtp-url
{{- end }}
{{- if .from }}
- name: PIXELFLEET_MAIL_FROM
  value: {{ .from | quote }}
{{- end }}
{{- if .productName }}
- name: PIXELFLEET_PRODUCT_NAME
  value: {{ .productName | quote }}
{{- end }}
- name: PIXELFLEET_REQUIRE_EMAIL_VERIFICATION
  value: {{ .requireEmailVerification | quote }}
{{- end }}
- name: PIXELFLEET_STORAGE_URL
  value: {{ $v.storage.url | default "file:///var/lib/pixelfleet/files" | quote }}
{{- with $v.storage.s3 }}
{{- if .endpointUrl }}
- name: PIXELFLEET_S3_ENDPOINT_URL
  value: {{ .endpointUrl | quote }}
{{- end }}
{{- if .region }}
- name: PIXELFLEET_S3_REGION
  value: {{ .region | quote }}
{{- end }}
{{- if .existingSecret }}
- name: PIXELFLEET_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: access-key-id
- name: PIXELFLEET_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: secret-access-key
{{- end }}
{{- end }}
- name: PIXELFLEET_CELERY_QUEUE
  value: {{ $v.config.celeryQueue | quote }}
- name: PIXELFLEET_TASK_SOFT_TIME_LIMIT_SECONDS
  value: {{ $v.config.taskSoftTimeLimitSeconds | quote }}
- name: PIXELFLEET_TASK_TIME_LIMIT_SECONDS
  value: {{ $v.config.taskTimeLimitSeconds | quote }}
- name: PIXELFLEET_IMAGEJOB_TTL_SECONDS
  value: {{ $v.config.imagejobTtlSeconds | int64 | quote }}
- name: PIXELFLEET_SIGNUP_CREDITS
  value: {{ $v.config.signupCredits | int64 | quote }}
- name: PIXELFLEET_MAX_UPLOAD_BYTES
  value: {{ $v.config.maxUploadBytes | int64 | quote }}
- name: PIXELFLEET_TRUSTED_PROXIES
  value: {{ $v.config.trustedProxies | quote }}
- name: PIXELFLEET_OPERATOR_LIVENESS_PORT
  value: {{ $v.operator.livenessPort | int64 | quote }}
- name: PIXELFLEET_WORKER_METRICS_PORT
  value: {{ $v.metrics.workerPort | int64 | quote }}
- name: PIXELFLEET_OPERATOR_METRICS_PORT
  value: {{ $v.metrics.operatorPort | int64 | quote }}
- name: PIXELFLEET_OPERATOR_RESYNC_SECONDS
  value: {{ $v.operator.resyncSeconds | quote }}
- name: PIXELFLEET_KUBERNETES_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- with $v.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* ---- Pod pieces every role shares ------------------------------------------------------- */}}
{{/* What every PixelFleet pod has: a non-root user, pull secrets, scheduling; a pod that
     mounts a ReadWriteOnce files volume must run on the node that has it attached.
     (dict "root" . "role" .Values.api "files" true) */}}
{{- define "pixelfleet.podCommon" -}}
{{ include "pixelfleet.podSecurityContext" (dict "uid" 10001) }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $affinity := deepCopy (.role.affinity | default dict) }}
{{- if and .files (include "pixelfleet.files.pinned" .root) }}
{{- $podAffinity := get $affinity "podAffinity" | default dict }}
{{- $required := get $podAffinity "requiredDuringSchedulingIgnoredDuringExecution" | default list }}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "pixelfleet.files.podLabel" .root | fromYaml)) }}
{{- $_ := set $podAffinity "requiredDuringSchedulingIgnoredDuringExecution" (append $required $term) }}
{{- $_ := set $affinity "podAffinity" $podAffinity }}
{{- end }}
{{- with $affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Labels of a PixelFleet pod: (dict "root" . "component" "api" "files" true) */}}
{{- define "pixelfleet.podLabels" -}}
{{ include "pixelfleet.labels" . }}
{{- if and .files (include "pixelfleet.files.shared" .root) }}
{{ include "pixelfleet.files.podLabel" .root }}
{{- end }}
{{- end -}}

{{/* ---- The shared files volume (when storage.url names no S3 bucket) --------------------- */}}
{{- define "pixelfleet.files.shared" -}}
{{- if not .Values.storage.url -}}true{{- end -}}
{{- end -}}

{{/* Attachable to one node only: every pod that mounts it is kept on that node. */}}
{{- define "pixelfleet.files.pinned" -}}
{{- if and (include "pixelfleet.files.shared" .) (has "ReadWriteOnce" .Values.storage.files.accessModes) -}}true{{- end -}}
{{- end -}}

{{- define "pixelfleet.files.claimName" -}}
{{- .Values.storage.files.existingClaim | default (include "pixelfleet.componentName" (dict "root" . "component" "files")) -}}
{{- end -}}

{{- define "pixelfleet.files.podLabel" -}}
pixelfleet.dev/files-volume: {{ include "pixelfleet.files.claimName" . | trunc 63 | trimSuffix "-" | quote }}
{{- end -}}

{{/* A pod running as a non-root user: (dict "uid" 10001) */}}
{{- define "pixelfleet.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .uid }}
  runAsGroup: {{ .uid }}
  fsGroup: {{ .uid }}
  fsGroupChangePolicy: OnRootMismatch
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "pixelfleet.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end -}}

{{/* PixelFleet's volumes: scratch space, and (for the roles that read and write images) the
     shared files unless storage is S3: (dict "root" . "files" true) */}}
{{- define "pixelfleet.volumeMounts" -}}
- name: data
  mountPath: /var/lib/pixelfleet
- name: tmp
  mountPath: /tmp
{{- if and .files (include "pixelfleet.files.shared" .root) }}
- name: files
  mountPath: /var/lib/pixelfleet/files
{{- end }}
{{- end -}}

{{- define "pixelfleet.volumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if and .files (include "pixelfleet.files.shared" .root) }}
- name: files
  persistentVolumeClaim:
    claimName: {{ include "pixelfleet.files.claimName" .root }}
{{- end }}
{{- end -}}

{{/* The container of a PixelFleet role: (dict "root" . "name" "api" "args" (list ...)
     "launcher" "kubernetes" "resources" .Values.api.resources "files" true) */}}
{{- define "pixelfleet.container" -}}
- name: {{ .name }}
  image: {{ include "pixelfleet.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args:
    {{- toYaml .args | nindent 4 }}
  env:
    {{- include "pixelfleet.env" (dict "root" .root "launcher" .launcher) | nindent 4 }}
  {{- include "pixelfleet.containerSecurityContext" . | nindent 2 }}
  {{- with .resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    {{- include "pixelfleet.volumeMounts" (dict "root" .root "files" .files) | nindent 4 }}
{{- end -}}

{{/* Runs before a role starts: waits until the database is migrated to the code's schema. */}}
{{- define "pixelfleet.waitForSchema" -}}
- name: wait-for-schema
  image: {{ include "pixelfleet.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  # The code's schema, or a newer one while an upgrade rolls (or after a rollback).
  args: [migrate, --check, --allow-newer, --wait, {{ .root.Values.migrations.waitSeconds | quote }}]
  env:
    {{- include "pixelfleet.env" (dict "root" .root "launcher" .launcher) | nindent 4 }}
  {{- include "pixelfleet.containerSecurityContext" . | nindent 2 }}
  {{- with .root.Values.migrations.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end -}}

{{/* A Secret value, base64: the one given, else the one in the cluster, else a new random one.
     (dict "current" <data of the Secret in the cluster> "key" "jwt-secret" "given" "" "length" 64) */}}
{{- define "pixelfleet.secretValue" -}}
{{- if .given -}}
{{- .given | b64enc -}}
{{- else if hasKey .current .key -}}
{{- index .current .key -}}
{{- else -}}
{{- randAlphaNum (int .length) | b64enc -}}
{{- end -}}
{{- end -}}

{{/* The `data` volume claim of a StatefulSet: (dict "c" <component dict> "persistence" ...) */}}
{{- define "pixelfleet.dataClaim" -}}
- metadata:
    name: data
    labels:
      {{- include "pixelfleet.selectorLabels" .c | nindent 6 }}
  spec:
    accessModes: [ReadWriteOnce]
    {{- with .persistence.storageClass }}
    storageClassName: {{ . | quote }}
    {{- end }}
    resources:
      requests:
        storage: {{ .persistence.size }}
{{- end -}}

{{/* A pod's annotations: Prometheus' scrape annotations (metrics.podAnnotations) and the role's
     own. (dict "root" . "role" .Values.api "port" 8000) */}}
{{- define "pixelfleet.podAnnotations" -}}
{{- $annotations := dict -}}
{{- if .root.Values.metrics.podAnnotations -}}
{{- $_ := set $annotations "prometheus.io/scrape" "true" -}}
{{- $_ := set $annotations "prometheus.io/port" (toString .port) -}}
{{- $_ := set $annotations "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- $annotations = merge (deepCopy (.role.podAnnotations | default dict)) $annotations -}}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
What the operator does with ImageJobs and CreditBindings in a namespace it watches: Kopf watches
both and keeps its finalizer and progress on them; ImageJobs are read, given their status, and
deleted when their TTL after finishing runs out; a CreditBinding is listed at each admission and
given its spend; Events tell a job's story.
*/}}
{{- define "pixelfleet.operatorJobRules" -}}
- apiGroups: [pixelfleet.dev]
  resources: [imagejobs]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [pixelfleet.dev]
  resources: [creditbindings]
  verbs: [list, watch, patch]
- apiGroups: [pixelfleet.dev]
  resources: [imagejobs/status, creditbindings/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/*
The worker pools, as JSON ({"pools": [...]}): the default one on config.celeryQueue (component
`worker`), then one per entry of worker.queues (component `worker-<name>`, on the queue <name>),
each with the worker settings and autoscaling bounds it overrides merged over the defaults.
*/}}
{{- define "pixelfleet.workerPools" -}}
{{- $defaults := omit .Values.worker "queues" -}}
{{- $pools := list (dict "component" "worker" "queue" .Values.config.celeryQueue "worker" $defaults "autoscaling" .Values.autoscaling) -}}
{{- range .Values.worker.queues -}}
{{- $worker := mergeOverwrite (deepCopy $defaults) (omit . "name" "autoscaling") -}}
{{- $autoscaling := mergeOverwrite (deepCopy $.Values.autoscaling) (.autoscaling | default dict) -}}
{{- $pools = append $pools (dict "component" (printf "worker-%s" .name) "queue" .name "worker" $worker "autoscaling" $autoscaling) -}}
{{- end -}}
{{- toJson (dict "pools" $pools) -}}
{{- end -}}
