variable "bucket" {
  description = "Datasets bucket the team's principals upload to and read from."
  type        = string
}

variable "team" {
  description = "Team name: the path segment after incoming/, datasets/ and reports/ (validated by the tunedrop module's teams variable)."
  type        = string
}

variable "principals" {
  description = "IAM principals of the team (user:, group:, serviceAccount: or domain:)."
  type        = set(string)
}

variable "incoming_prefix" {
  description = "Prefix of the uploads Tunedrop validates (incoming/)."
  type        = string
}

variable "datasets_prefix" {
  description = "Prefix of the teams' own datasets (datasets/)."
  type        = string
}

variable "reports_prefix" {
  description = "Prefix of the validation reports Tunedrop writes (reports/)."
  type        = string
}
