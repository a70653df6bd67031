{{/* The release's name for every object, at most 63 characters. */}}
{{- define "sla-timerd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sla-timerd.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sla-timerd.labels" -}}
{{ include "sla-timerd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sla-timerd.secretName" -}}
{{- default (include "sla-timerd.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "sla-timerd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sla-timerd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The rules file: the values' own, or the shipped one. */}}
{{- define "sla-timerd.rules" -}}
{{- if .Values.rules -}}
{{- .Values.rules -}}
{{- else -}}
{{- .Files.Get "files/config.toml" -}}
{{- end -}}
{{- end -}}

{{/* http.liveness_timeout in seconds, as the daemon will use it. */}}
{{- define "sla-timerd.livenessTimeout" -}}
{{- if .Values.http.livenessTimeoutSeconds -}}
{{- int .Values.http.livenessTimeoutSeconds -}}
{{- else -}}
60
{{- end -}}
{{- end -}}

{{/* Longer than the preStop sleep plus the daemon's drain (kafka.shutdown_timeout). */}}
{{- define "sla-timerd.terminationGracePeriodSeconds" -}}
{{- add (int .Values.lifecycle.preStopSleepSeconds) (int .Values.kafka.shutdownTimeoutSeconds) (int .Values.lifecycle.terminationMarginSeconds) -}}
{{- end -}}

{{/* Refuse values that contradict each other, at install time. */}}
{{- define "sla-timerd.validate" -}}
{{- $kinds := list "StatefulSet" "Deployment" -}}
{{- if not (has .Values.workload.kind $kinds) -}}
{{- fail (printf "workload.kind is %q; it must be StatefulSet or Deployment" .Values.workload.kind) -}}
{{- end -}}
{{- $live := .Values.probes.liveness -}}
{{- $window := mul (int $live.periodSeconds) (int $live.failureThreshold) -}}
{{- if ge (int $window) (int (include "sla-timerd.livenessTimeout" .)) -}}
{{- fail (printf "probes.liveness: periodSeconds x failureThreshold (%d s) must be shorter than http.liveness_timeout (%s s): /healthz already waits that long before it answers 503" $window (include "sla-timerd.livenessTimeout" .)) -}}
{{- end -}}
{{- if ge (int $live.timeoutSeconds) (int $live.periodSeconds) -}}
{{- fail "probes.liveness.timeoutSeconds must be shorter than its periodSeconds" -}}
{{- end -}}
{{- if lt (int .Values.kafka.shutdownTimeoutSeconds) 1 -}}
{{- fail "kafka.shutdownTimeoutSeconds must be at least 1" -}}
{{- end -}}
{{- if lt (int .Values.lifecycle.terminationMarginSeconds) 1 -}}
{{- fail "lifecycle.terminationMarginSeconds must be at least 1: the grace period must be longer than the drain" -}}
{{- end -}}
{{- end -}}
