{{/* tritonserver command line, one flag per list item. */}}
{{- define "tritonrec.tritonArgs" -}}
{{- $t := .Values.triton -}}
- tritonserver
- --model-repository={{ .Values.modelRepository.mountPath }}
- --model-control-mode={{ $t.modelControlMode }}
{{- if eq $t.modelControlMode "explicit" }}
{{- range $t.loadModels }}
- --load-model={{ . }}
{{- end }}
{{- end }}
{{- if eq $t.modelControlMode "poll" }}
- --repository-poll-secs={{ $t.repositoryPollSeconds }}
{{- end }}
- --strict-readiness={{ $t.strictReadiness }}
- --exit-timeout-secs={{ $t.exitTimeoutSeconds }}
- --log-format={{ $t.logFormat }}
- --log-verbose={{ $t.logVerbose }}
- --http-port={{ .Values.ports.http }}
- --grpc-port={{ .Values.ports.grpc }}
- --metrics-port={{ .Values.ports.metrics }}
- --allow-metrics=true
- --allow-gpu-metrics={{ and $t.gpuMetrics (gt (int .Values.gpu.count) 0) }}
- --metrics-interval-ms={{ $t.metricsIntervalMs }}
{{- with $t.restrictedApis.protocols }}
{{- $list := join "," . }}
- --grpc-restricted-protocol={{ $list }}:{{ $t.restrictedApis.header }}=$(TRITON_ADMIN_KEY)
- --http-restricted-api={{ $list }}:{{ $t.restrictedApis.header }}=$(TRITON_ADMIN_KEY)
{{- end }}
{{- /* Clients may ping idle connections every 10 s or less often without a GOAWAY "too_many_pings"; the same
flags as tritonrec.serving.server.KEEPALIVE_ARGS (a chart test compares them). */}}
- --grpc-keepalive-permit-without-calls=1
- --grpc-http2-min-recv-ping-interval-without-data=10000
{{- if gt (int $t.grpcMaxConnectionAgeSeconds) 0 }}
{{- /* Milliseconds, the unit of the bundled tritonserver 2.51 (`tritonserver --help`). */}}
- --grpc-max-connection-age={{ mul $t.grpcMaxConnectionAgeSeconds 1000 }}
- --grpc-max-connection-age-grace={{ mul $t.grpcMaxConnectionAgeGraceSeconds 1000 }}
{{- end }}
{{- range $t.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
