{{/* Pod spec shared by the locust master (Job or Deployment) and workers. */}}
{{- define "tritonrec.loadTestPodSpec" -}}
{{- /* Arguments: dict "root" ., "role" master|worker, "args" list, "restartPolicy". */}}
{{- $lt := .root.Values.loadTest -}}
restartPolicy: {{ .restartPolicy }}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
containers:
  - name: locust-{{ .role }}
    image: {{ include "tritonrec.image" (dict "image" $lt.image "root" .root) }}
    imagePullPolicy: {{ $lt.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      - name: TRITONREC_SCENARIO
        value: {{ $lt.scenario | quote }}
      - name: HOME
        value: /tmp
      {{- with $lt.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- if eq .role "master" }}
    ports:
      - name: web
        containerPort: 8089
      - name: master
        containerPort: 5557
    {{- end }}
    resources:
      {{- toYaml $lt.resources | nindent 6 }}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: ["ALL"]
    volumeMounts:
      - name: tmp
        mountPath: /tmp
volumes:
  - name: tmp
    emptyDir: {}
{{- end }}
