{{/* The release's base name: the release name when it contains "zonegate", else <release>-zonegate. */}}
{{- define "zonegate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 54 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 54 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of the operator's Deployment, ServiceAccount, ClusterRole, Service and Lease. */}}
{{- define "zonegate.operator" -}}
{{- printf "%s-operator" (include "zonegate.fullname" .) -}}
{{- end -}}

{{- define "zonegate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "zonegate.labels" -}}
{{ include "zonegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: zonegate
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Leader election is on exactly when more than one replica runs. */}}
{{- define "zonegate.leaderElect" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ else }}false{{ end -}}
{{- end -}}

{{- define "zonegate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The nameserver pods' image: server.image, else the operator's. */}}
{{- define "zonegate.serverImage" -}}
{{- $repo := .Values.server.image.repository | default .Values.image.repository -}}
{{- if .Values.server.image.tag -}}
{{- printf "%s:%s" $repo .Values.server.image.tag -}}
{{- else if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* A resources map as the operator's NAME=QUANTITY,... flag value (sorted by name). */}}
{{- define "zonegate.quantities" -}}
{{- $out := list -}}
{{- range $k, $v := . -}}
{{- $out = append $out (printf "%s=%v" $k $v) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* The domain policy file: a YAML mapping of namespace globs to domain suffixes. */}}
{{- define "zonegate.domainPolicy" -}}
{{- toYaml .Values.domainPolicy -}}
{{- end -}}


{{/* The nameservers' placement as the JSON of --server-placement: the set fields of
server.placement, imagePullSecrets defaulting to the operator's; empty when nothing is set. */}}
{{- define "zonegate.serverPlacement" -}}
{{- $p := dict -}}
{{- range $k, $v := .Values.server.placement -}}
{{- if $v -}}{{- $_ := set $p $k $v -}}{{- end -}}
{{- end -}}
{{- if and (not (hasKey $p "imagePullSecrets")) .Values.imagePullSecrets -}}
{{- $_ := set $p "imagePullSecrets" .Values.imagePullSecrets -}}
{{- end -}}
{{- if $p -}}{{- toJson $p -}}{{- end -}}
{{- end -}}
