#pragma once
// AuthEvent -> the contract JSON object (PRODUCT.md "Event schema"), appended to a caller-owned
// buffer. Used by `authwall check --jsonl`, the golden tests and anything else that prints events.
//
// The output is always valid JSON, whatever bytes the log line held: control characters are
// escaped and invalid UTF-8 is replaced by U+FFFD. Appending never allocates once the buffer
// has grown to its working size, so a reused buffer costs nothing per event.
#include <cstdint>
#include <string>
#include <string_view>

#include "normalize/auth_event.h"

namespace authwall::normalize {

// Appends `{"time":...,"host":...,...}` (no trailing newline) with the fields in contract order:
// time, host, program, source, service, kind, reason, ip, port, user, mechanism, attempts,
// session, and `line` when `line` >= 0.
void append_event_json(const AuthEvent& event, std::string& out, std::int64_t line = -1);

// Appends `text` as a JSON string literal (with the quotes).
void append_json_string(std::string_view text, std::string& out);

}  // namespace authwall::normalize
