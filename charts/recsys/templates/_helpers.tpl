{{/*
The stages, in the order a request runs them after the gateway: the image command, the gRPC port the
service listens on by default (its code's default), the stages it calls, whether it loads models before it
listens (a startup probe) and whether it reads the artifacts (models, indexes).
*/}}
{{- define "recsys.stageTable" -}}
gateway: {command: gateway, port: 50050, calls: [retrieval, preranking, ranking, reranking, features], loadsModels: false, artifacts: false}
features: {command: features, port: 50051, calls: [], loadsModels: false, artifacts: false}
retrieval: {command: retrieval, port: 50052, calls: [features], loadsModels: true, artifacts: true}
preranking: {command: preranking, port: 50053, calls: [features], loadsModels: true, artifacts: true}
ranking: {command: ranking, port: 50054, calls: [features], loadsModels: true, artifacts: true}
reranking: {command: reranking, port: 50055, calls: [features], loadsModels: false, artifacts: false}
{{- end -}}

{{- define "recsys.stageNames" -}}
[gateway, features, retrieval, preranking, ranking, reranking]
{{- end -}}

{{- define "recsys.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "recsys.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; pass (dict "root" $ "component" "ranking"). */}}
{{- define "recsys.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: recsys
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "recsys.selectorLabels" . }}
{{- end -}}

{{- define "recsys.selectorLabels" -}}
app.kubernetes.io/name: {{ include "recsys.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Object name of a component: <fullname>-<component>. */}}
{{- define "recsys.componentName" -}}
{{- printf "%s-%s" (include "recsys.fullname" .root) .component -}}
{{- end -}}

{{- define "recsys.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "recsys.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Deep merge of .over onto .base: maps merge key by key, anything else (lists, false, 0) replaces. */}}
{{- define "recsys.merge" -}}
{{- $base := deepCopy .base -}}
{{- range $key, $value := .over -}}
{{- $current := get $base $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := set $base $key (include "recsys.merge" (dict "base" $current "over" $value) | fromYaml) -}}
{{- else -}}
{{- $_ := set $base $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $base -}}
{{- end -}}

{{/* A stage's settings: its block under .Values.stages over .Values.defaults, with its table row as .table. */}}
{{- define "recsys.stage" -}}
{{- $over := index .root.Values.stages .name | default dict -}}
{{- $merged := include "recsys.merge" (dict "base" .root.Values.defaults "over" $over) | fromYaml -}}
{{- $_ := set $merged "table" (index (include "recsys.stageTable" . | fromYaml) .name) -}}
{{- $_ := set $merged "name" .name -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* A stage's address as its clients dial it: the headless Service's DNS name, resolved to every ready replica. */}}
{{- define "recsys.address" -}}
{{- $table := index (include "recsys.stageTable" .root | fromYaml) .name -}}
{{- printf "dns:///%s.%s.svc.%s:%d" (include "recsys.componentName" (dict "root" .root "component" .name)) .root.Release.Namespace .root.Values.clusterDomain (int $table.port) -}}
{{- end -}}

{{- define "recsys.image" -}}
{{- $repository := .root.Values.image.repository -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag -}}
{{- if and .gpu .root.Values.gpu.enabled -}}
{{- $repository = .root.Values.gpu.image.repository -}}
{{- $tag = default $tag .root.Values.gpu.image.tag -}}
{{- end -}}
{{- if and .root.Values.image.digest (not (and .gpu .root.Values.gpu.enabled)) -}}
{{- printf "%s@%s" $repository .root.Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "recsys.qdrantUrl" -}}
{{- if .Values.qdrant.enabled -}}
{{- printf "http://%s.%s.svc.%s:6333" (include "recsys.componentName" (dict "root" . "component" "qdrant")) .Release.Namespace .Values.clusterDomain -}}
{{- else -}}
{{- .Values.qdrant.external.url -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding Qdrant's API key, or nothing. */}}
{{- define "recsys.qdrantApiKeyEnv" -}}
{{- if .Values.qdrant.apiKey.existingSecret }}
- name: QDRANT_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.qdrant.apiKey.existingSecret }}
      key: {{ .Values.qdrant.apiKey.key }}
{{- end }}
{{- end -}}

{{/*
Checks across values that the schema cannot express; each fails the render with what to change. The CRD checks
apply when rendering for a cluster (install, upgrade, template), not to `helm lint`, which knows no cluster.
*/}}
{{- define "recsys.validate" -}}
{{- if and (eq .Values.index.backend "qdrant") (not .Values.qdrant.enabled) (not .Values.qdrant.external.url) -}}
{{- fail "index.backend=qdrant needs qdrant.enabled=true (built-in) or qdrant.external.url" -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not .Values.redis.external.existingSecret) -}}
{{- fail "redis.enabled=false needs redis.external.existingSecret (a Secret whose redis.external.urlKey holds the redis:// URL)" -}}
{{- end -}}
{{- if and (not .Values.apiKeys.authDisabled) (not .Values.apiKeys.existingSecret) -}}
{{- fail "apiKeys.existingSecret is required (a Secret of API keys), or apiKeys.authDisabled=true for a trial" -}}
{{- end -}}
{{- if eq .Values.artifacts.source "bundle" -}}
{{- if or (not .Values.artifacts.bundle.url) (not .Values.artifacts.bundle.sha256) -}}
{{- fail "artifacts.source=bundle needs artifacts.bundle.url and artifacts.bundle.sha256" -}}
{{- end -}}
{{- if or .Values.jobs.train.enabled .Values.jobs.buildIndex.enabled .Values.jobs.retrain.enabled -}}
{{- fail "artifacts.source=bundle is read-only: the train, buildIndex and retrain jobs write to artifacts.source=volume; disable jobs.train, jobs.buildIndex and jobs.retrain" -}}
{{- end -}}
{{- end -}}
{{- range $name := include "recsys.stageNames" . | fromYamlArray -}}
{{- $s := include "recsys.stage" (dict "root" $ "name" $name) | fromYaml -}}
{{- if and $s.autoscaling.enabled (gt (int $s.autoscaling.minReplicas) (int $s.autoscaling.maxReplicas)) -}}
{{- fail (printf "stages.%s.autoscaling: minReplicas (%d) must not exceed maxReplicas (%d)" $name (int $s.autoscaling.minReplicas) (int $s.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and $s.autoscaling.enabled (eq $s.autoscaling.mode "keda") -}}
{{- if not $s.autoscaling.keda.serverAddress -}}
{{- fail (printf "stages.%s.autoscaling.mode=keda needs autoscaling.keda.serverAddress (the Prometheus the trigger queries)" $name) -}}
{{- end -}}
{{- if and (or $.Release.IsInstall $.Release.IsUpgrade) (not ($.Capabilities.APIVersions.Has "keda.sh/v1alpha1/ScaledObject")) -}}
{{- fail (printf "stages.%s.autoscaling.mode=keda needs KEDA (keda.sh/v1alpha1 ScaledObject) in the cluster; with helm template pass --api-versions keda.sh/v1alpha1/ScaledObject" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (or .Release.IsInstall .Release.IsUpgrade) (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) -}}
{{- fail "metrics.serviceMonitor.enabled needs the Prometheus Operator (monitoring.coreos.com/v1 ServiceMonitor); with helm template pass --api-versions monitoring.coreos.com/v1/ServiceMonitor" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" -}}
{{- end -}}
{{- end -}}

{{- define "recsys.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "recsys.artifactsClaim" -}}
{{- default (include "recsys.componentName" (dict "root" . "component" "artifacts")) .Values.artifacts.volume.existingClaim -}}
{{- end -}}

{{/* Environment from Secrets (never in a ConfigMap): Redis's URL for the feature service, Qdrant's API key for retrieval. */}}
{{- define "recsys.stageSecretEnv" -}}
{{- $root := .root -}}
{{- if eq .s.name "features" }}
{{- include "recsys.redisUrlEnv" $root }}
{{- end }}
{{- if and (eq .s.name "retrieval") (eq $root.Values.index.backend "qdrant") }}
{{- include "recsys.qdrantApiKeyEnv" $root }}
{{- end }}
{{- end -}}

{{- define "recsys.redisUrlEnv" -}}
{{- if .Values.redis.enabled }}
{{- $host := printf "%s.%s.svc.%s:6379" (include "recsys.componentName" (dict "root" . "component" "redis")) .Release.Namespace .Values.clusterDomain }}
{{- if .Values.redis.auth.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.auth.existingSecret }}
      key: {{ .Values.redis.auth.passwordKey }}
- name: REDIS_URL
  value: redis://:$(REDIS_PASSWORD)@{{ $host }}
{{- else }}
- name: REDIS_URL
  value: redis://{{ $host }}
{{- end }}
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.urlKey }}
{{- end }}
{{- end -}}

{{/* The built-in Redis's configuration: append-only persistence, features never evicted. */}}
{{- define "recsys.redisConf" -}}
bind 0.0.0.0 -::*
port 6379
dir /data
appendonly yes
appendfsync {{ .Values.redis.appendfsync }}
auto-aof-rewrite-percentage 100
auto-aof-rewrite-min-size 64mb
aof-use-rdb-preamble yes
save ""
maxmemory-policy noeviction
{{- with .Values.redis.maxmemory }}
maxmemory {{ . }}
{{- end }}
protected-mode no
{{- end -}}

{{/* A Job's spec (also a CronJob's jobTemplate.spec): the image command, the chart's flags, then the job's args. */}}
{{- define "recsys.jobSpec" -}}
{{- $root := .root -}}
{{- $component := dict "root" $root "component" .job.component -}}
backoffLimit: {{ int .v.backoffLimit }}
activeDeadlineSeconds: {{ int .v.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ int $root.Values.jobs.ttlSecondsAfterFinished }}
template:
  metadata:
    labels:
      {{- include "recsys.labels" $component | nindent 6 }}
  spec:
    restartPolicy: Never
    serviceAccountName: {{ include "recsys.serviceAccountName" $root }}
    automountServiceAccountToken: false
    {{- with $root.Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext:
      runAsNonRoot: true
      runAsUser: 10001
      runAsGroup: 10001
      fsGroup: 10001
      seccompProfile:
        type: RuntimeDefault
    {{- if eq $root.Values.artifacts.source "bundle" }}
    initContainers:
      {{- include "recsys.fetchBundleInit" (dict "root" $root "gpu" false) | nindent 6 }}
    {{- end }}
    containers:
      - name: {{ .job.component }}
        image: {{ include "recsys.image" (dict "root" $root "gpu" false) }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        args: {{ concat .v.command .job.flags .v.args | toJson }}
        {{- if and (has .job.key (list "buildIndex" "retrain")) (eq $root.Values.index.backend "qdrant") }}
        {{- with include "recsys.qdrantApiKeyEnv" $root }}
        env:
          {{- . | nindent 10 }}
        {{- end }}
        {{- end }}
        resources:
          {{- toYaml .v.resources | nindent 10 }}
        securityContext:
          {{- include "recsys.containerSecurityContext" $root | nindent 10 }}
        volumeMounts:
          - name: tmp
            mountPath: /tmp
          - name: artifacts
            mountPath: {{ $root.Values.artifacts.mountPath }}
            {{- if eq .job.key "loadFeatures" }}
            readOnly: true
            {{- end }}
    volumes:
      - name: tmp
        emptyDir:
          sizeLimit: 1Gi
      - name: artifacts
        {{- if eq $root.Values.artifacts.source "volume" }}
        persistentVolumeClaim:
          claimName: {{ include "recsys.artifactsClaim" $root }}
        {{- else }}
        emptyDir: {}
        {{- end }}
{{- end -}}


{{/* The init container that fetches the artifacts bundle and checks its sha256 (artifacts.source=bundle). */}}
{{- define "recsys.fetchBundleInit" -}}
{{- $root := .root -}}
- name: fetch-bundle
  image: {{ include "recsys.image" (dict "root" $root "gpu" .gpu) }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - node
    - -e
    - {{ $root.Files.Get "files/fetch-bundle.js" | quote }}
    - {{ $root.Values.artifacts.bundle.url | quote }}
    - {{ $root.Values.artifacts.bundle.sha256 | quote }}
    - {{ $root.Values.artifacts.mountPath }}
  resources:
    requests:
      cpu: 100m
      memory: 128Mi
    limits:
      memory: 512Mi
  securityContext:
    {{- include "recsys.containerSecurityContext" $root | nindent 4 }}
  volumeMounts:
    - name: artifacts
      mountPath: {{ $root.Values.artifacts.mountPath }}
    - name: tmp
      mountPath: /tmp
{{- end -}}
