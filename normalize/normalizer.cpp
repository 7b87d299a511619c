#include "normalize/normalizer.h"

#include "normalize/custom_patterns.h"
#include "normalize/json_normalizer.h"

namespace authwall::normalize {

std::string_view to_string(EventSource s) noexcept {
  switch (s) {
    case EventSource::postfix: return "postfix";
    case EventSource::dovecot: return "dovecot";
    case EventSource::custom: return "custom";
  }
  return "unknown";
}

std::string_view to_string(EventKind k) noexcept {
  switch (k) {
    case EventKind::auth_failure: return "auth_failure";
    case EventKind::auth_success: return "auth_success";
    case EventKind::protocol_abuse: return "protocol_abuse";
    case EventKind::rejected: return "rejected";
    case EventKind::no_auth_disconnect: return "no_auth_disconnect";
  }
  return "unknown";
}

Normalizer::Normalizer(std::shared_ptr<const CustomPatternSet> patterns)
    : json_(std::make_unique<JsonNormalizer>()), patterns_(std::move(patterns)) {}

Normalizer::~Normalizer() = default;

void Normalizer::set_patterns(std::shared_ptr<const CustomPatternSet> patterns) noexcept {
  patterns_ = std::move(patterns);
}

NormalizeResult Normalizer::normalize(const ingest::SyslogMessage& msg, AuthEvent& out) noexcept {
  // JSON first: one look at the first byte(s) of the body, and a JSON body never matches the
  // plain-text templates anyway.
  std::string_view json;
  if (JsonNormalizer::extract(msg.message, json)) {
    switch (json_->normalize(msg, json, out, embedded_)) {
      case JsonOutcome::event:
        return {NormalizeOutcome::event, out.source};
      case JsonOutcome::unrecognized:
        return {NormalizeOutcome::unrecognized, EventSource::dovecot};
      case JsonOutcome::embedded:
        // The wrapped line is read exactly like a plain syslog message, once (no recursion).
        return normalize_text(embedded_, out);
      case JsonOutcome::ignored:
        // Not for the daemon templates (their failure heuristics would misread JSON text), but
        // an operator's pattern may be written for this program's JSON lines.
        if (patterns_ != nullptr && !patterns_->empty()) return patterns_->match(msg, out);
        return {NormalizeOutcome::ignored, EventSource::postfix};
    }
  }
  return normalize_text(msg, out);
}

NormalizeResult Normalizer::normalize_text(const ingest::SyslogMessage& msg,
                                           AuthEvent& out) noexcept {
  // Each per-daemon normalizer rejects foreign programs by their tag in a few byte compares,
  // so asking both costs nothing measurable, and keeps every tag form they accept (RFC 5424
  // APP-NAME `postfix`, 32-character truncated tags, Dovecot log-file `imap-login`/`auth`)
  // defined in one place: the normalizer that reads that daemon's lines.
  NormalizeResult r = normalize_postfix(msg, out);
  if (r.outcome != NormalizeOutcome::ignored) return r;
  r = normalize_dovecot(msg, out);
  if (r.outcome != NormalizeOutcome::ignored) return r;
  if (patterns_ != nullptr && !patterns_->empty()) return patterns_->match(msg, out);
  return {NormalizeOutcome::ignored, EventSource::postfix};
}

}  // namespace authwall::normalize
