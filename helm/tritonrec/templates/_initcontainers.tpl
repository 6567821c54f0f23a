{{/* Init container that copies the model repository from S3/GCS into the pod's emptyDir with rclone. */}}
{{- define "tritonrec.fetchContainer" -}}
{{- $repo := .Values.modelRepository -}}
{{- $f := $repo.fetcher -}}
- name: fetch-model-repository
  image: {{ include "tritonrec.image" (dict "image" $f.image "root" .) }}
  imagePullPolicy: {{ $f.image.pullPolicy }}
  args:
    - copy
    {{- if eq $repo.source "s3" }}
    - {{ printf "src:%s/%s" $repo.s3.bucket $repo.s3.prefix | trimSuffix "/" }}
    {{- else }}
    - {{ printf "src:%s/%s" $repo.gcs.bucket $repo.gcs.prefix | trimSuffix "/" }}
    {{- end }}
    - {{ $repo.mountPath }}
    {{- range $f.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    # rclone remote "src" configured from the environment only (no config file on a read-only filesystem).
    - name: HOME
      value: /tmp
    {{- if eq $repo.source "s3" }}
    - name: RCLONE_CONFIG_SRC_TYPE
      value: s3
    - name: RCLONE_CONFIG_SRC_PROVIDER
      value: {{ if $repo.s3.endpoint }}Other{{ else }}AWS{{ end }}
    - name: RCLONE_CONFIG_SRC_ENV_AUTH
      value: "true"
    {{- with $repo.s3.region }}
    - name: RCLONE_CONFIG_SRC_REGION
      value: {{ . | quote }}
    {{- end }}
    {{- with $repo.s3.endpoint }}
    - name: RCLONE_CONFIG_SRC_ENDPOINT
      value: {{ . | quote }}
    {{- end }}
    {{- else }}
    - name: RCLONE_CONFIG_SRC_TYPE
      value: google cloud storage
    - name: RCLONE_CONFIG_SRC_BUCKET_POLICY_ONLY
      value: "true"
    {{- if $repo.credentialsSecret }}
    - name: RCLONE_CONFIG_SRC_SERVICE_ACCOUNT_FILE
      value: /var/secrets/gcs/key.json
    {{- else }}
    - name: RCLONE_CONFIG_SRC_ENV_AUTH
      value: "true"
    {{- end }}
    {{- end }}
  {{- if and $repo.credentialsSecret (eq $repo.source "s3") }}
  envFrom:
    - secretRef:
        name: {{ $repo.credentialsSecret }}
  {{- end }}
  resources:
    {{- toYaml $f.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: model-repository
      mountPath: {{ $repo.mountPath }}
    - name: tmp
      mountPath: /tmp
    {{- if and $repo.credentialsSecret (eq $repo.source "gcs") }}
    - name: gcs-credentials
      mountPath: /var/secrets/gcs
      readOnly: true
    {{- end }}
{{- end }}

{{/* Container running export/build_trt_engines.sh (shipped in the engine-build ConfigMap) once per engine. */}}
{{- define "tritonrec.engineBuildContainer" -}}
{{- $repo := .Values.modelRepository -}}
{{- $e := .Values.engineBuild -}}
- name: build-trt-engines
  image: {{ include "tritonrec.image" (dict "image" $e.image "root" .) }}
  imagePullPolicy: {{ $e.image.pullPolicy }}
  command: ["/bin/bash", "-c"]
  args:
    - |
      set -euo pipefail
      # engineBuild.timeoutSeconds bounds all builds of this container: a hung build must not hold the pod forever.
      deadline=$((SECONDS + {{ $e.timeoutSeconds }}))
      build() {
        left=$((deadline - SECONDS))
        (( left > 0 )) || { echo "engine builds ran past engineBuild.timeoutSeconds ({{ $e.timeoutSeconds }} s)" >&2; exit 1; }
        timeout "$left" /opt/tritonrec/build_trt_engines.sh "$@"{{ if $e.replaceOtherGpuPlans }} --replace-other-gpu{{ end }}
      }
      {{- range $e.engines }}
      build --repo {{ $repo.mountPath | quote }} --model {{ .model | quote }} --precision {{ .precision }} --onnx {{ printf "%s/%s" $repo.mountPath .onnx | quote }}
      {{- end }}
  env:
    - name: HOME
      value: /tmp
    - name: TRITONREC_OPT_BATCH
      value: {{ $e.shapes.optBatch | quote }}
    - name: TRITONREC_OPT_CANDIDATES
      value: {{ $e.shapes.optCandidates | quote }}
    {{- with $e.extraArgs }}
    - name: TRITONREC_TRTEXEC_EXTRA_ARGS
      value: {{ join " " . | quote }}
    {{- end }}
  resources:
    requests:
      {{- toYaml $e.resources.requests | nindent 6 }}
      {{ .Values.gpu.resourceName }}: 1
    limits:
      {{- toYaml $e.resources.limits | nindent 6 }}
      {{ .Values.gpu.resourceName }}: 1
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: model-repository
      mountPath: {{ $repo.mountPath }}
      {{- if and (eq $repo.source "pvc") $repo.pvc.subPath }}
      subPath: {{ $repo.pvc.subPath }}
      {{- end }}
    - name: tmp
      mountPath: /tmp
    - name: engine-build-script
      mountPath: /opt/tritonrec
      readOnly: true
{{- end }}
