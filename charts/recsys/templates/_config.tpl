{{/*
A stage's environment as its ConfigMap holds it: what the chart sets (listen addresses, ports, the other
stages' addresses, directories, drain and tracing settings), then the stage's own `config` entries, which may
not redefine what the chart sets. Pass (dict "root" $ "s" <stage settings>).
*/}}
{{- define "recsys.stageConfig" -}}
{{- $root := .root -}}
{{- $s := .s -}}
{{- $name := $s.name -}}
{{- $dataDir := $root.Values.artifacts.mountPath -}}
{{- $env := dict
  "GRPC_HOST" "0.0.0.0"
  "GRPC_PORT" (toString (int $s.table.port))
  "METRICS_HOST" "0.0.0.0"
  "METRICS_PORT" (ternary (toString (int $root.Values.metrics.port)) "-1" $root.Values.metrics.enabled)
  "SHUTDOWN_TIMEOUT_MS" (toString (int $s.drain.shutdownTimeoutMs))
  "GRPC_MAX_CONNECTION_AGE_MS" (toString (int $s.maxConnectionAgeMs))
-}}
{{- range $callee := $s.table.calls -}}
{{- $_ := set $env (printf "%s_ADDRESS" (upper $callee)) (include "recsys.address" (dict "root" $root "name" $callee)) -}}
{{- end -}}
{{- if eq $name "gateway" -}}
{{- $_ := set $env "HTTP_HOST" "0.0.0.0" -}}
{{- $_ := set $env "HTTP_PORT" (toString (int $s.service.httpPort)) -}}
{{- if $root.Values.apiKeys.authDisabled -}}
{{- $_ := set $env "AUTH_DISABLED" "true" -}}
{{- else -}}
{{- $_ := set $env "API_KEYS_FILE" "/etc/recsys/api-keys" -}}
{{- end -}}
{{- end -}}
{{- if eq $name "features" -}}
{{- if $root.Values.redis.keyPrefix -}}
{{- $_ := set $env "REDIS_KEY_PREFIX" $root.Values.redis.keyPrefix -}}
{{- end -}}
{{- end -}}
{{- if $s.table.artifacts -}}
{{- $_ := set $env "MODELS_DIR" (printf "%s/models" $dataDir) -}}
{{- end -}}
{{- if eq $name "retrieval" -}}
{{- $_ := set $env "INDEX_BACKEND" $root.Values.index.backend -}}
{{- if eq $root.Values.index.backend "qdrant" -}}
{{- $_ := set $env "QDRANT_URL" (include "recsys.qdrantUrl" $root) -}}
{{- $_ := set $env "QDRANT_COLLECTION" $root.Values.qdrant.collection -}}
{{- else -}}
{{- $_ := set $env "INDEX_DIR" (printf "%s/indexes" $dataDir) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $name "reranking") $s.rules -}}
{{- $_ := set $env "RERANKING_RULES_FILE" "/etc/recsys/rules/rules.yaml" -}}
{{- end -}}
{{- if $root.Values.tracing.enabled -}}
{{- $_ := set $env "OTEL_SERVICE_NAME" $name -}}
{{- $_ := set $env "OTEL_TRACES_EXPORTER" "otlp" -}}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" $root.Values.tracing.endpoint -}}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_PROTOCOL" $root.Values.tracing.protocol -}}
{{- $_ := set $env "OTEL_TRACES_SAMPLER" $root.Values.tracing.sampler -}}
{{- $_ := set $env "OTEL_TRACES_SAMPLER_ARG" (toString $root.Values.tracing.samplerArg) -}}
{{- range $key, $value := $root.Values.tracing.env -}}
{{- $_ := set $env $key (toString $value) -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := $s.config -}}
{{- if hasKey $env $key -}}
{{- fail (printf "stages.%s.config.%s is set by the chart (%s); change the value it comes from instead" $name $key (get $env $key)) -}}
{{- end -}}
{{- $_ := set $env $key (toString $value) -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}
