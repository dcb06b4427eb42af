"""Every issue code Tunedrop reports, declared once: whether it is an error or a warning, what it means
and how to fix it. The README's table of codes is generated from this table (`python -m
shared.validation.codes`), and tests/unit/test_readme.py checks that every code the source can emit is here.

An error is what Vertex AI refuses, drops or truncates (or what Tunedrop cannot read); a warning is worth a
look but does not stop the job. A hygiene finding (``hygiene=True``) is a warning unless the operator asks
for strict validation (TUNEDROP_STRICT_VALIDATION, `tunedrop validate --strict`), which makes it an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class IssueCode:
    code: str
    severity: Severity
    meaning: str
    fix: str
    hygiene: bool = False  # a warning that strict validation turns into an error

    def is_error(self, *, strict: bool) -> bool:
        return self.severity is Severity.ERROR or (strict and self.hygiene)

    @property
    def shown_severity(self) -> str:
        return "warning (error when strict)" if self.hygiene else self.severity.value


E, W = Severity.ERROR, Severity.WARNING

ISSUE_CODES: tuple[IssueCode, ...] = (
    # ---- a line that is not an example
    IssueCode("empty_line", E, "A blank line: every line must be one example.", "Remove the blank line."),
    IssueCode(
        "not_json",
        E,
        "The line is not valid JSON (or starts with a byte order mark).",
        "Fix the JSON; save the file as UTF-8 without BOM, one example per line.",
    ),
    IssueCode("not_utf8", E, "The line is not UTF-8 text.", "Save the file as UTF-8."),
    IssueCode(
        "trailing_data",
        E,
        "Something follows the JSON object on the same line.",
        "Put each example on a line of its own.",
    ),
    IssueCode(
        "not_object", E, "The line is JSON but not an object.", 'Make each line an object like {"contents": [...]}.'
    ),
    IssueCode(
        "line_too_long",
        E,
        "The line is longer than any example the model accepts could be; it was not read.",
        "Remove padding and ignored fields, or shorten or split the example.",
    ),
    IssueCode(
        "too_many_values",
        E,
        "The line holds more JSON values than any example the model accepts could; it was not read.",
        "Merge small parts and turns, or split the example.",
    ),
    # ---- the example's shape
    IssueCode(
        "missing_contents",
        E,
        'The example has no "contents" list of turns (or uses the legacy "messages" format on a model that '
        "does not read it).",
        'Give the example a non-empty "contents" list.',
    ),
    IssueCode(
        "bad_turn",
        E,
        "A turn (or legacy message) is not an object.",
        'Write each turn as {"role": ..., "parts": [...]}.',
    ),
    IssueCode("bad_role", E, "A turn's role is not one the model accepts.", 'Use "user" or "model".'),
    IssueCode(
        "role_order",
        E,
        "Turns do not alternate between user and model as the model requires.",
        "Merge consecutive turns of the same role.",
    ),
    IssueCode("missing_parts", E, 'A turn has no "parts".', 'Give the turn a non-empty "parts" list.'),
    IssueCode(
        "last_turn_not_model",
        E,
        "The example does not end with the model's answer, so there is nothing to learn from it.",
        "End the example with a model turn.",
    ),
    IssueCode(
        "bad_part", E, "A part is malformed or empty.", 'Give each part one of "text", "fileData" or a function part.'
    ),
    IssueCode("bad_text", E, "A text value is not a string (or is empty).", "Make the text a non-empty string."),
    IssueCode(
        "bad_system_instruction",
        E,
        "The systemInstruction is malformed or holds something other than text.",
        'Write it as {"parts": [{"text": "..."}]}.',
    ),
    IssueCode(
        "duplicate_field",
        E,
        "Two spellings of the same field are set (such as fileData and file_data).",
        "Keep only one of them.",
    ),
    IssueCode(
        "unknown_field",
        W,
        "A field is not part of a tuning example; Vertex AI ignores it.",
        "Remove it if it was not meant to be there, or move its data into a field the format reads.",
    ),
    # ---- media
    IssueCode(
        "media_not_supported",
        E,
        "The example holds a kind of media the model cannot be tuned on.",
        "Use a model that tunes this kind of media, or remove the media parts.",
    ),
    IssueCode(
        "bad_file_data",
        E,
        "A fileData part is malformed or has no mimeType.",
        'Write it as {"mimeType": ..., "fileUri": ...}.',
    ),
    IssueCode(
        "unsupported_mime_type",
        E,
        "The fileData MIME type is not one the model accepts.",
        "Convert the file to a supported type.",
    ),
    IssueCode("bad_file_uri", E, "A fileData part has no usable fileUri.", "Give a gs:// URI of the file."),
    # ---- issue 12 rules (RULES): per-model function calling, media resolution, video length, http://, keys
    IssueCode(
        "insecure_file_uri",
        E,
        "A fileData part's fileUri uses plain http://.",
        "Give the file as gs://bucket/object or an https:// URL.",
    ),
    IssueCode(
        "duplicate_key",
        W,
        "The line spells a key twice in one object; only the last value is read (found on lines the precise "
        "path reads; the fast tiers keep the last value without a word).",
        "Keep one of each key.",
    ),
    IssueCode(
        "function_calling_not_supported",
        E,
        "The example holds functionCall or functionResponse parts, which Vertex AI refuses for this model.",
        "Tune a model that accepts function calls (the message names them), or remove those parts.",
    ),
    IssueCode(
        "media_resolution_not_supported",
        E,
        "A media part sets its own mediaResolution, which only Gemini 3 and later models accept.",
        "Set generationConfig.mediaResolution for the whole example instead.",
    ),
    IssueCode(
        "bad_media_resolution",
        E,
        "A mediaResolution (or the generationConfig holding it) is not a value Vertex AI knows.",
        "Use MEDIA_RESOLUTION_LOW, MEDIA_RESOLUTION_MEDIUM or MEDIA_RESOLUTION_HIGH.",
    ),
    IssueCode(
        "bad_video_metadata",
        E,
        'A videoMetadata\'s offsets are not durations such as "5s", or the segment ends before it starts.',
        'Write {"startOffset": "5s", "endOffset": "25s"}.',
    ),
    IssueCode(
        "video_too_long",
        E,
        "A video segment is longer than the model takes at the example's mediaResolution: Vertex AI drops the example.",
        "Shorten the segment, or use MEDIA_RESOLUTION_LOW, which allows longer videos.",
    ),
    IssueCode(
        "mixed_media_resolution",
        E,
        "Examples with a video set different mediaResolution values; Vertex AI requires one for the whole dataset.",
        "Set the same generationConfig.mediaResolution on every line.",
    ),
    IssueCode(
        "too_many_dropped_examples",
        E,
        "More than 10% of the examples have a video over the length limit: Vertex AI drops them and fails the job.",
        "Shorten the videos or use MEDIA_RESOLUTION_LOW.",
    ),
    IssueCode(
        "may_drop_too_many_examples",
        W,
        "So many examples hold a video whose length the data does not state that more than 10% could be over "
        "the limit, dropped by Vertex AI, and the job failed.",
        "Check the videos' lengths, or state each segment with videoMetadata start and end offsets.",
    ),
    IssueCode(
        "too_many_media",
        E,
        "The example holds more media files than the model accepts per example.",
        "Split the example or remove media parts.",
    ),
    IssueCode(
        "missing_file",
        E,
        "A gs:// file an example references does not exist or cannot be read (checked with --check-files).",
        "Upload the file, or fix the fileUri.",
    ),
    IssueCode(
        "media_file_too_large",
        E,
        "A gs:// file is larger than the base model's limit for its media kind (checked with --check-files; PDFs "
        "and images 20 MB, video and audio 100 MB where documented). Google's tuning pages give the maximum but "
        "not whether Vertex AI then fails the job or drops the example.",
        "Compress the file or split it into smaller files (chunk a video, adjusting its timestamps).",
    ),
    IssueCode(
        "uri_check_failed",
        W,
        "Tunedrop could not check whether a referenced file exists.",
        "Check the file yourself, or validate again.",
    ),
    # ---- length
    IssueCode(
        "too_many_tokens",
        E,
        "The example has more tokens (counted exactly, or proved by a bound) than the model accepts per example.",
        "Shorten the example or split the conversation into several examples.",
    ),
    IssueCode(
        "may_exceed_token_limit",
        W,
        "The example may be over the per-example token limit, but its length was not counted exactly.",
        "Shorten or split it, or validate with a token counter (--tokenizer or --count-tokens).",
    ),
    # ---- hygiene: no Google tuning page mentions duplicates or train/validation overlap (the dataset rules are on
    # https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/supervised-tuning and its
    # prepare-data page), and Vertex AI accepts such a dataset: warnings, errors only under strict validation.
    IssueCode(
        "duplicate_example",
        W,
        "The example repeats an earlier line of the same file exactly.",
        "Remove the copy.",
        hygiene=True,
    ),
    IssueCode(
        "train_validation_overlap",
        W,
        "A validation example is also in the training file, so validation metrics look better than they are.",
        "Remove it from one of the files.",
        hygiene=True,
    ),
    # ---- a file in another tool's format (shared.validation.diagnosis): one issue for the file, its lines counted
    IssueCode(
        "openai_chat_format",
        E,
        "The file is in OpenAI's chat fine-tuning format (messages with system, user, assistant and tool roles).",
        "Convert it: tunedrop convert IN OUT --from openai.",
    ),
    IssueCode(
        "legacy_messages_format",
        E,
        'The file is in the legacy gemini-1.0-pro-002 "messages" format, which the model does not read.',
        "Convert it: tunedrop convert IN OUT --from messages.",
    ),
    IssueCode(
        "prompt_completion_format",
        E,
        "The file holds prompt/completion pairs (OpenAI's legacy completion format).",
        "Convert it: tunedrop convert IN OUT --from prompt-completion.",
    ),
    IssueCode(
        "input_output_format",
        E,
        "The file holds input/output pairs (with an optional instruction).",
        "Convert it: tunedrop convert IN OUT --from prompt-completion.",
    ),
    IssueCode(
        "pretty_printed_json",
        E,
        "The file is one JSON document over several lines (pretty-printed, or an array), not JSON Lines.",
        "Write one example per line: tunedrop convert IN OUT.",
    ),
    # ---- the dataset as a whole
    IssueCode("empty_dataset", E, "The file holds no examples.", "Upload a file with at least one example."),
    IssueCode("too_few_examples", E, "The training file has fewer examples than the model needs.", "Add examples."),
    IssueCode(
        "too_many_examples",
        E,
        "The training file has more examples than the model accepts.",
        "Sample or split the dataset.",
    ),
    IssueCode(
        "validation_too_large",
        E,
        "The validation file has more examples than the model accepts (a count, or a share of the training set).",
        "Keep a random subset, or move examples to the training file.",
    ),
    IssueCode("file_too_large", E, "The file is larger than the model accepts.", "Split or sample the dataset."),
    # ---- model, region, hyper-parameters
    IssueCode("unknown_model", E, "The base model is not one Tunedrop can tune.", "Use a model from the models table."),
    IssueCode(
        "model_tuning_closed",
        E,
        "Google no longer accepts new tuning jobs for the base model.",
        "Move to the model's successor.",
    ),
    IssueCode("model_retired", E, "The base model is retired.", "Move to the model's successor."),
    IssueCode(
        "model_retiring",
        W,
        "New tuning of the base model closes soon.",
        "Plan the move to its successor.",
    ),
    IssueCode(
        "unsupported_region", E, "The model cannot be tuned in the region asked for.", "Use a region the model lists."
    ),
    IssueCode("bad_epochs", E, "The epoch count is outside what the model allows.", "Use an allowed epoch count."),
    IssueCode("bad_adapter_size", E, "The adapter size is not one the model allows.", "Use an allowed adapter size."),
    IssueCode(
        "bad_learning_rate_multiplier",
        E,
        "The learning-rate multiplier is outside what the model allows.",
        "Use an allowed multiplier.",
    ),
    IssueCode(
        "unknown_hyper_parameter",
        E,
        "A hyper-parameter Tunedrop does not know.",
        "Use epoch_count, adapter_size or learning_rate_multiplier.",
    ),
    # ---- the upload
    IssueCode("bad_base_model", E, "The base model names another project or region.", "Give the model's name only."),
    IssueCode(
        "nested_too_deep",
        E,
        "The upload is more than one folder below incoming/.",
        "Upload directly under incoming/ or one team folder below it.",
    ),
    IssueCode(
        "bad_team_folder",
        E,
        "The upload is in a folder under incoming/ that is not a team name (1-63 lowercase letters, digits or -, "
        "not starting or ending with -).",
        "Upload into your team's folder, incoming/<team>/, or directly under incoming/ (the default team).",
    ),
    IssueCode(
        "unsupported_object",
        E,
        "The uploaded object is neither a .jsonl dataset nor a manifest.",
        "Upload a .jsonl dataset or a .json/.yaml manifest.",
    ),
    IssueCode(
        "object_missing",
        E,
        "A dataset the upload names does not exist (or was deleted before validation).",
        "Upload it, or fix the path that names it.",
    ),
    IssueCode(
        "dataset_changed",
        E,
        "A dataset was replaced between validation and keeping it.",
        "Upload again (drop the manifest again for a dataset a manifest names).",
    ),
    IssueCode(
        "unprocessable_input",
        E,
        "Tunedrop could not process the upload.",
        "Check it with `tunedrop validate`; if that passes, report it to the operators.",
    ),
    IssueCode("bad_metadata", E, "An object metadata value is not allowed.", "Fix or remove the metadata value."),
    # ---- the manifest
    IssueCode("manifest_not_utf8", E, "The manifest is not UTF-8.", "Save it as UTF-8."),
    IssueCode("manifest_not_json", E, "The manifest is not valid JSON.", "Fix the JSON."),
    IssueCode("manifest_not_yaml", E, "The manifest is not valid YAML.", "Fix the YAML."),
    IssueCode("manifest_too_large", E, "The manifest is over 64 KiB.", "Keep it under 64 KiB."),
    IssueCode(
        "manifest_too_deep",
        E,
        "The manifest nests too deeply.",
        "Only labels, hyper_parameters and continue_from nest, one level each; evaluation holds metrics (each with "
        "its aggregations) and an autorater.",
    ),
    IssueCode("manifest_not_object", E, "The manifest is not an object.", "Make it an object with a training_dataset."),
    IssueCode("manifest_missing_training", E, "The manifest names no training_dataset.", "Add a training_dataset."),
    IssueCode(
        "manifest_bad_dataset",
        E,
        "A dataset the manifest names is not a .jsonl path in the bucket.",
        "Name a .jsonl file in the bucket.",
    ),
    IssueCode(
        "manifest_other_bucket",
        E,
        "A dataset the manifest names is in another bucket.",
        "Copy the file into the upload bucket.",
    ),
    IssueCode(
        "manifest_other_team",
        E,
        "A dataset the manifest names is not its own team's: a manifest may name only objects under "
        "incoming/<team>/ or datasets/<team>/ of the team whose folder it was uploaded to (the default team's also "
        "directly under incoming/ and datasets/).",
        "Copy the dataset into your team's datasets/<team>/, or upload the manifest to the dataset's team folder.",
    ),
    IssueCode("manifest_bad_value", E, "A manifest value has the wrong type or form.", "Fix the value."),
    IssueCode("manifest_bad_label", E, "A label is not a valid Vertex AI label.", "Fix the label's key or value."),
    IssueCode(
        "manifest_bad_evaluation",
        E,
        "The evaluation is not one Vertex AI can run (the message names the value at fault): each metric needs a "
        "name and a kind (pointwise, pairwise, exact_match, bleu or rouge), pointwise and pairwise a "
        "prompt_template; autorater.sampling_count is 1 to 32.",
        "Fix the value the message names (README: Evaluation during tuning).",
    ),
    IssueCode(
        "evaluation_needs_validation",
        E,
        "The manifest asks for evaluation during tuning without a validation_dataset: Vertex AI evaluates the "
        "checkpoints on the validation dataset.",
        "Add a validation_dataset, or leave evaluation out.",
    ),
    IssueCode(
        "evaluation_not_in_region",
        E,
        "Evaluation during tuning (Preview) is available only in us-central1, and this deployment tunes in "
        "another region (TUNEDROP_REGION).",
        "Leave evaluation out, or ask an operator for a deployment in us-central1.",
    ),
    # ---- beyond the team's policy (TUNEDROP_TEAM_POLICIES, set by operators)
    IssueCode(
        "policy_model_not_allowed",
        E,
        "The base model is not one the team's policy allows (the message names the team and the models it allows).",
        "Pick an allowed model, or ask an operator to change the team's policy.",
    ),
    IssueCode(
        "policy_priority_too_high",
        E,
        "The priority is above the team's policy maximum; Tunedrop never lowers it for you.",
        "Ask for the policy's maximum or less, or ask an operator to raise it.",
    ),
    IssueCode(
        "policy_epochs_too_high",
        E,
        "hyper_parameters.epochs is above the team's policy maximum.",
        "Ask for fewer epochs, or ask an operator to raise the team's maximum.",
    ),
    IssueCode(
        "policy_label_key_not_allowed",
        E,
        "A label key is not one the team's policy allows.",
        "Use only the allowed label keys, or ask an operator to add the key to the team's policy.",
    ),
    IssueCode(
        "service_account_not_allowed",
        E,
        "The service_account is not one the operators allow tuning jobs to run as (TUNEDROP_TUNING_SERVICE_ACCOUNTS).",
        "Name an allowed account (the message lists them), or leave it out for the default.",
    ),
    IssueCode(
        "encryption_key_not_allowed",
        E,
        "The encryption_key is not one the operators allow (TUNEDROP_ENCRYPTION_KEYS).",
        "Name an allowed key (the message lists them), or leave it out for the default.",
    ),
    IssueCode(
        "continue_from_not_found",
        E,
        "continue_from names a job Tunedrop does not know.",
        "Name a job id `tunedrop jobs` lists.",
    ),
    IssueCode(
        "continue_from_not_allowed",
        E,
        "The job continue_from names cannot be tuned on: another team's, not SUCCEEDED with a tuned model, another "
        "base model, tuned before 2025-07-11, another encryption key, or without the checkpoint asked for (the "
        "message says which).",
        "Name your team's succeeded job on the same model and key, or leave continue_from out.",
    ),
    IssueCode(
        "manifest_incomplete_gate",
        E,
        "The manifest asks for the evaluation gate (promote_as, evaluation_dataset or gate) without promote_as and "
        "evaluation_dataset, which it needs.",
        "Give promote_as and a held-out evaluation_dataset, or leave the gate out.",
    ),
    IssueCode(
        "manifest_bad_gate",
        E,
        "The gate is not one Tunedrop can run (the message names the value at fault).",
        "Fix the value (README: The evaluation gate).",
    ),
    IssueCode(
        "evaluation_overlap",
        E,
        "Examples of the evaluation_dataset are also in the training file: a held-out set must be examples the "
        "model never saw.",
        "Remove them from one of the files.",
    ),
    IssueCode(
        "evaluation_too_small",
        E,
        "The evaluation_dataset has fewer examples than the gate judges on (gate.min_examples, 100 by default).",
        "Add held-out examples, or lower gate.min_examples.",
    ),
    IssueCode(
        "alias_other_team",
        E,
        "promote_as names an alias another team's jobs made: an alias belongs to its team.",
        "Choose another alias name.",
    ),
    IssueCode(
        "model_no_continuous_tuning",
        E,
        "The manifest continues an earlier job (continue_from), and its base model is not among those the "
        "documentation lists for continuous tuning (Gemini 3.5 Flash, 3.1 Flash-Lite and 2.5 Pro as read 2026-11-30).",
        "Leave continue_from out, or continue a job of a model that supports it (`tunedrop models`).",
    ),
    IssueCode(
        "model_no_cmek",
        E,
        "The job would be encrypted with a customer-managed key (its encryption_key, or the operators' default), and "
        "the documentation says its base model does not support CMEK (or does not say it does).",
        "Choose a model that supports CMEK (`tunedrop models`), or ask an operator.",
    ),
    IssueCode(
        "policy_budget_needs_price",
        E,
        "The team's policy sets a monthly budget, and the registry records no tuning price for the base model, so "
        "the job's cost could not be counted against the budget.",
        "Pick a model with a recorded price (`tunedrop models`), or ask an operator to lift the team's budget.",
    ),
)

CODES: dict[str, IssueCode] = {entry.code: entry for entry in ISSUE_CODES}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The README's table of codes, one row per code in declaration order."""
    rows = ["| Code | Error or warning | Meaning | Fix |", "| --- | --- | --- | --- |"]
    rows += [
        f"| `{entry.code}` | {entry.shown_severity} | {_cell(entry.meaning)} | {_cell(entry.fix)} |"
        for entry in ISSUE_CODES
    ]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
