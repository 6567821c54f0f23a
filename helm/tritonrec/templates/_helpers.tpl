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

{{/* repository[:tag|@digest] of an image block {repository, tag, digest}. */}}
{{- define "tritonrec.image" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
{{- end }}

{{- define "tritonrec.adminKeySecretName" -}}
{{- default (printf "%s-admin-key" (include "tritonrec.fullname" .)) .Values.triton.restrictedApis.existingSecret }}
{{- end }}

{{/* Main Service DNS name and the headless one. */}}
{{- define "tritonrec.serviceHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "tritonrec.fullname" .) .Release.Namespace }}
{{- end }}
{{- define "tritonrec.headlessHost" -}}
{{- printf "%s-headless.%s.svc.cluster.local" (include "tritonrec.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
PromQL label matchers for the Triton pods of this release only. Deployment pods are named
<fullname>-<template hash>-<5 characters>; the locust and engine-build pods (<fullname>-locust-...,
<fullname>-engine-build-...) have more dashes and do not match (PromQL regexes are anchored).
*/}}
{{- define "tritonrec.podMatchers" -}}
{{- printf "namespace=\"%s\",pod=~\"%s-[a-z0-9]+-[a-z0-9]{5}\"" .Release.Namespace (include "tritonrec.fullname" .) }}
{{- end }}

{{/*
Per-pod PromQL of the autoscaling metric, shared by the prometheus-adapter rule, the KEDA trigger and the alerts
so they cannot disagree: average Triton queue time per successful request, microseconds. Idle pods give 0 (the
denominator is clamped) instead of NaN, so an idle deployment can scale down.
Arguments: dict "matchers" (label matchers without braces), "by" (grouping labels), "window".
*/}}
{{- define "tritonrec.queueTimeQuery" -}}
sum by ({{ .by }}) (rate(nv_inference_queue_duration_us{ {{- .matchers -}} }[{{ .window }}])) / clamp_min(sum by ({{ .by }}) (rate(nv_inference_request_success{ {{- .matchers -}} }[{{ .window }}])), 0.001)
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
{{- if and $v.probes.deadBackendCheck.enabled (not $v.probes.deadBackendCheck.command) }}
{{- fail "probes.deadBackendCheck.enabled needs probes.deadBackendCheck.command" }}
{{- end }}
{{- if and $v.loadTest.enabled (or (not $v.loadTest.image.repository) (not $v.loadTest.image.tag)) }}
{{- fail "loadTest.enabled needs loadTest.image.repository and loadTest.image.tag: build helm/images/locust.Dockerfile and push it" }}
{{- end }}
{{- if and $v.grpcRoute.enabled (not $v.grpcRoute.parentRefs) }}
{{- fail "grpcRoute.enabled needs grpcRoute.parentRefs (the Gateway to attach to)" }}
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
