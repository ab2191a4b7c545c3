{{- define "sitewise-operator.name" -}}sitewise-operator{{- end }}

{{- define "sitewise-operator.labels" -}}
app.kubernetes.io/name: sitewise-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "sitewise-operator.selector" -}}
app.kubernetes.io/name: sitewise-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
