{{/* Names and labels shared by every template. */}}

{{- define "tritonrec.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tritonrec.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Namespace of every object: the release's, or namespaceOverride (charts used as subcharts). */}}
{{- define "tritonrec.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tritonrec.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of the Triton pods: stable across upgrades (Deployment selectors are immutable). */}}
{{- define "tritonrec.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tritonrec.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "tritonrec.labels" -}}
helm.sh/chart: {{ include "tritonrec.chart" . }}
app.kubernetes.io/name: {{ include "tritonrec.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tritonrec
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tritonrec.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tritonrec.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
[registry/]repository[:tag|@digest] of an image block {registry, repository, tag, digest}; global.imageRegistry
(a mirror) replaces every block's registry. Arguments: dict "image" (the block), "root" (the chart's context).
*/}}
{{- define "tritonrec.image" -}}
{{- $registry := default .image.registry ((.root.Values.global | default dict).imageRegistry) }}
{{- $name := .image.repository }}
{{- if $registry }}
{{- $name = printf "%s/%s" (trimSuffix "/" $registry) .image.repository }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s@%s" $name .image.digest }}
{{- else }}
{{- printf "%s:%s" $name .image.tag }}
{{- end }}
{{- end }}

{{- define "tritonrec.adminKeySecretName" -}}
{{- default (printf "%s-admin-key" (include "tritonrec.fullname" .)) .Values.triton.restrictedApis.existingSecret }}
{{- end }}

{{/* Main Service DNS name and the headless one. */}}
{{- define "tritonrec.serviceHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "tritonrec.fullname" .) (include "tritonrec.namespace" .) }}
{{- end }}
{{- define "tritonrec.headlessHost" -}}
{{- printf "%s-headless.%s.svc.cluster.local" (include "tritonrec.fullname" .) (include "tritonrec.namespace" .) }}
{{- end }}

{{/*
PromQL label matchers for this release's Triton series: the namespace and the `job` label, which the Prometheus
Operator sets to the name of the Service a ServiceMonitor scrapes (<fullname>, the one Service with the metrics
port). Only Triton pods are endpoints of that Service, and the label does not depend on pod names (which
Kubernetes truncates for long release names).
*/}}
{{- define "tritonrec.metricsJob" -}}
{{- include "tritonrec.fullname" . }}
{{- end }}
{{- define "tritonrec.seriesMatchers" -}}
{{- printf "namespace=\"%s\",job=\"%s\"" (include "tritonrec.namespace" .) (include "tritonrec.metricsJob" .) }}
{{- end }}

{{/*
Per-pod (or per-group) PromQL of the queue-time guard, shared by the prometheus-adapter rule, the KEDA trigger, the
recording rule and the alert so they cannot disagree: average Triton queue time per successful request,
microseconds. Idle pods give 0 (the denominator is clamped) instead of NaN, so an idle deployment can scale down.
Arguments: dict "matchers" (label matchers without braces), "by" (grouping labels; empty: one series), "window".
*/}}
{{- define "tritonrec.queueTimeQuery" -}}
{{- $by := ternary "" (printf " by (%s)" .by) (empty .by) -}}
sum{{ $by }} (rate(nv_inference_queue_duration_us{ {{- .matchers -}} }[{{ .window }}])) / clamp_min(sum{{ $by }} (rate(nv_inference_request_success{ {{- .matchers -}} }[{{ .window }}])), 0.001)
{{- end }}

{{/*
PromQL of the proportional autoscaling metric: inferences per second (nv_inference_count counts users scored,
the batch dimension), summed over models. Same arguments as tritonrec.queueTimeQuery.
*/}}
{{- define "tritonrec.inferenceRateQuery" -}}
{{- $by := ternary "" (printf " by (%s)" .by) (empty .by) -}}
sum{{ $by }} (rate(nv_inference_count{ {{- .matchers -}} }[{{ .window }}]))
{{- end }}

{{/*
Seconds a new Triton pod may take before it serves: image pull allowance, the engine build when it runs in an init
container (its timeout), and the startup probe's budget (period x failure threshold). The Deployment's progress
deadline and the `for:` of the alerts a scale-up trips are derived from it.
*/}}
{{- define "tritonrec.startupBudgetSeconds" -}}
{{- $v := .Values }}
{{- $budget := add $v.updateStrategy.imagePullSeconds (mul $v.probes.startup.periodSeconds $v.probes.startup.failureThreshold) }}
{{- if and $v.engineBuild.enabled (eq $v.engineBuild.mode "initContainer") }}
{{- $budget = add $budget $v.engineBuild.timeoutSeconds }}
{{- end }}
{{- $budget }}
{{- end }}

{{- define "tritonrec.progressDeadlineSeconds" -}}
{{- $set := int .Values.updateStrategy.progressDeadlineSeconds }}
{{- ternary (include "tritonrec.startupBudgetSeconds" .) (toString $set) (eq $set 0) }}
{{- end }}

{{/* `for:` of the alerts a normal scale-up trips (pods saturated until new ones serve): the startup budget. */}}
{{- define "tritonrec.scaleUpFor" -}}
{{- default (printf "%dm" (div (add (int (include "tritonrec.startupBudgetSeconds" .)) 59) 60)) .Values.metrics.prometheusRule.scaleUpFor }}
{{- end }}

{{/*
Fingerprint of what the engine-build Job builds: engines, TensorRT image, shapes, trtexec flags, the script and the
repository location and revision. The Deployment records it; on upgrade the hook Job runs only when it changed.
*/}}
{{- define "tritonrec.engineBuildFingerprint" -}}
{{- $e := .Values.engineBuild }}
{{- $r := .Values.modelRepository }}
{{- $inputs := list $e.engines $e.image $e.shapes $e.extraArgs $e.replaceOtherGpuPlans $r.pvc $r.revision (.Files.Get "scripts/build_trt_engines.sh") }}
{{- toJson $inputs | sha256sum | trunc 16 }}
{{- end }}

{{/*
"true" when the engine-build hook Job is rendered: job mode, and on upgrade only when the fingerprint differs from
the one the running Deployment records (or engineBuild.alwaysRunJob). `lookup` answers only against a cluster:
`helm template` and client-side dry runs see no Deployment, so they always render the Job.
*/}}
{{- define "tritonrec.engineBuildJobRuns" -}}
{{- $e := .Values.engineBuild }}
{{- if and $e.enabled (eq $e.mode "job") }}
{{- $run := true }}
{{- if and .Release.IsUpgrade (not $e.alwaysRunJob) }}
{{- $deployed := lookup "apps/v1" "Deployment" (include "tritonrec.namespace" .) (include "tritonrec.fullname" .) | default dict }}
{{- $annotations := dig "spec" "template" "metadata" "annotations" dict $deployed }}
{{- if eq (get $annotations "tritonrec.io/engine-build-inputs" | default "") (include "tritonrec.engineBuildFingerprint" .) }}
{{- $run = false }}
{{- end }}
{{- end }}
{{- if $run }}true{{ end }}
{{- end }}
{{- end }}

{{/* A number as a Kubernetes quantity: 280 -> "280", 0.8 -> "800m" (HPA targets). */}}
{{- define "tritonrec.quantity" -}}
{{- $milli := int (round (mulf (float64 .) 1000.0) 0) }}
{{- if eq (mod $milli 1000) 0 }}{{ div $milli 1000 }}{{ else }}{{ $milli }}m{{ end }}
{{- end }}

{{/* A CPU quantity in millicores: "8" -> 8000, "1500m" -> 1500, 2.5 -> 2500. */}}
{{- define "tritonrec.cpuMilli" -}}
{{- $q := toString . }}
{{- if hasSuffix "m" $q }}{{ int (trimSuffix "m" $q) }}{{ else }}{{ int (round (mulf (float64 $q) 1000.0) 0) }}{{ end }}
{{- end }}

{{/* Checks across keys that the JSON schema cannot state readably. */}}
{{- define "tritonrec.validate" -}}
{{- $v := .Values }}
{{- $needed := add $v.termination.preStopSleepSeconds $v.triton.exitTimeoutSeconds }}
{{- if lt (int $v.termination.gracePeriodSeconds) (int $needed) }}
{{- fail (printf "termination.gracePeriodSeconds (%d) must be at least termination.preStopSleepSeconds + triton.exitTimeoutSeconds (%d): in-flight requests would be killed" (int $v.termination.gracePeriodSeconds) (int $needed)) }}
{{- end }}
{{- if and $v.engineBuild.enabled (eq $v.engineBuild.mode "job") (ne $v.modelRepository.source "pvc") }}
{{- fail "engineBuild.mode=job writes engines onto the PVC and needs modelRepository.source=pvc; with object storage use engineBuild.mode=initContainer" }}
{{- end }}
{{- if and $v.engineBuild.enabled (eq (int $v.gpu.count) 0) }}
{{- fail "engineBuild.enabled needs a GPU: TensorRT engines are built on the GPU they will run on (gpu.count is 0)" }}
{{- end }}
{{- if and (eq $v.triton.modelControlMode "explicit") (not $v.triton.loadModels) }}
{{- fail "triton.modelControlMode=explicit with an empty triton.loadModels loads no model: list the models to serve" }}
{{- end }}
{{- if and $v.loadTest.enabled (or (not $v.loadTest.image.repository) (not $v.loadTest.image.tag)) }}
{{- fail "loadTest.enabled needs loadTest.image.repository and loadTest.image.tag: build helm/images/locust.Dockerfile and push it" }}
{{- end }}
{{- if and $v.grpcRoute.enabled (not $v.grpcRoute.parentRefs) }}
{{- fail "grpcRoute.enabled needs grpcRoute.parentRefs (the Gateway to attach to)" }}
{{- end }}
{{- $a := $v.autoscaling }}
{{- if and $a.enabled (le (float64 $a.inferenceRate.targetPerPod) 0.0) }}
{{- fail "autoscaling.enabled needs autoscaling.inferenceRate.targetPerPod: the inferences per second one pod should serve, about 70% of what `tritonrec bench sweep` measures for one pod of your GPU type within the latency SLA (helm/README.md, \"How autoscaling gets its metric\")" }}
{{- end }}
{{- if and $a.enabled $a.gpuUtilization.enabled (hasPrefix "nvidia.com/mig-" $v.gpu.resourceName) }}
{{- fail (printf "autoscaling.gpuUtilization on MIG slices (gpu.resourceName %s) is refused: Triton exports no GPU utilisation for a MIG slice (nv_gpu_utilization would be absent or the whole GPU's), so the HPA would scale on nothing; scale on autoscaling.inferenceRate" $v.gpu.resourceName) }}
{{- end }}
{{- $cpuRequest := dig "requests" "cpu" "" $v.resources }}
{{- $cpuLimit := dig "limits" "cpu" "" $v.resources }}
{{- if and (eq (int $v.gpu.count) 0) $cpuLimit }}
{{- $limitMilli := int (include "tritonrec.cpuMilli" $cpuLimit) }}
{{- if or (ne (mod $limitMilli 1000) 0) (ne (int (include "tritonrec.cpuMilli" ($cpuRequest | default $cpuLimit))) $limitMilli) }}
{{- fail (printf "CPU pods (gpu.count 0): resources.requests.cpu (%v) must equal resources.limits.cpu (%v), a whole number of CPUs: ranker_cpu shares the limit out as instances x ONNX Runtime threads, and threads beyond the request are throttled under contention (helm/README.md, CPU pods)" $cpuRequest $cpuLimit) }}
{{- end }}
{{- end }}
{{- if and $a.enabled $a.gpuUtilization.enabled (eq (int $v.gpu.count) 0) }}
{{- fail "autoscaling.gpuUtilization needs GPU pods (gpu.count is 0): CPU pods export no nv_gpu_utilization" }}
{{- end }}
{{- $budget := int (include "tritonrec.startupBudgetSeconds" .) }}
{{- $deadline := int $v.updateStrategy.progressDeadlineSeconds }}
{{- if and (gt $deadline 0) (lt $deadline $budget) }}
{{- fail (printf "updateStrategy.progressDeadlineSeconds (%d) is shorter than a new pod's startup budget (%d s: updateStrategy.imagePullSeconds + engine build timeout in an init container + startup probe period x failureThreshold): every rollout that pulls or builds would be marked failed; raise it or set 0 to derive it" $deadline $budget) }}
{{- end }}
{{- if and $v.networkPolicy.enabled $v.networkPolicy.egress.enabled (has $v.modelRepository.source (list "s3" "gcs")) (not $v.networkPolicy.egress.rules) }}
{{- fail (printf "networkPolicy.egress.enabled with modelRepository.source=%s needs networkPolicy.egress.rules that reach the object store (the fetch init container would be cut off)" $v.modelRepository.source) }}
{{- end }}
{{- end }}

{{/* nodeSelector and tolerations of GPU pods (engine build included) or CPU pods. */}}
{{- define "tritonrec.scheduling" -}}
{{- $gpu := gt (int .Values.gpu.count) 0 }}
{{- $selector := .Values.nodeSelector }}
{{- $tolerations := .Values.tolerations }}
{{- if $gpu }}
{{- $selector = merge (deepCopy .Values.nodeSelector) .Values.gpu.nodeSelector }}
{{- $tolerations = concat .Values.gpu.tolerations .Values.tolerations }}
{{- end }}
{{- with $selector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The dead-backend liveness command: the user's, or infer_probe.py (files/) on the models Triton serves.
*/}}
{{- define "tritonrec.deadBackendCommand" -}}
{{- $check := .Values.probes.deadBackendCheck -}}
{{- if $check.command -}}
{{- toYaml $check.command }}
{{- else -}}
{{- $models := $check.models | default .Values.triton.loadModels -}}
{{- if not $models -}}
{{- fail "probes.deadBackendCheck needs the models to probe: set probes.deadBackendCheck.models (or triton.loadModels)" -}}
{{- end -}}
- python3
- /opt/tritonrec/probe/infer_probe.py
- --url
- http://127.0.0.1:{{ .Values.ports.http }}
- --models
- {{ join "," $models | quote }}
- --timeout-s
- {{ max 1 (sub .Values.probes.liveness.timeoutSeconds 1) | quote }}
{{- end -}}
{{- end }}
