{{/* Chart name and release-scoped names, truncated to DNS label limits. */}}
{{- define "keyva.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "keyva.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 54 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 54 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "keyva.operatorName" -}}
{{- printf "%s-operator" (include "keyva.fullname" .) -}}
{{- end -}}

{{- define "keyva.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "keyva.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "keyva.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "keyva.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: keyva
{{- end -}}

{{- define "keyva.operatorSelector" -}}
app.kubernetes.io/name: {{ include "keyva.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "keyva.operatorImage" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) -}}
{{- end -}}

{{- define "keyva.nodeImage" -}}
{{- default (printf "ghcr.io/keyva/keyva-node:%s" .Chart.AppVersion) .Values.cluster.image -}}
{{- end -}}

{{/* The rules the operator needs, and nothing more (docs/operations.md lists why each is there). */}}
{{- define "keyva.operatorRules" -}}
- apiGroups: ["keyva.io"]
  resources: ["keyvaclusters"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["keyva.io"]
  resources: ["keyvaclusters/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
