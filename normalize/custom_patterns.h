#pragma once
// Operator-supplied patterns for programs authwall does not know (configuration key `patterns:`,
// see docs/configuration.md "patterns").
//
// Each pattern is an RE2 expression (linear time, no backtracking, so a crafted log line cannot
// stall the pipeline) with named groups: `ip` (required: the client address), and optionally
// `user`, `port`, `service`. A pattern applies only to messages whose program (syslog TAG /
// APP-NAME) equals `program`, or starts with it when `program` ends with `*`.
//
// Life cycle (house style): YAML -> CustomPatternSpec (plain config, with positions) ->
// CustomPatternSet::build (compiles and validates everything, collecting every error) -> an
// immutable set shared by all normalizer threads. Reload builds a new set.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_error.h"
#include "ingest/syslog_message.h"
#include "normalize/auth_event.h"
#include "normalize/normalizer.h"

namespace YAML {
class Node;
}

namespace authwall::normalize {

struct CustomPatternSpec {
  std::string name;          // optional, for error messages
  std::string program;       // exact TAG / APP-NAME, or a prefix followed by '*'
  std::string regex;         // RE2 syntax, named groups ip (required), user, port, service
  std::string kind = "auth_failure";  // an EventKind name
  std::string reason = "custom";      // the event's `reason` code
  std::string service;       // fixed service when the pattern has no `service` group
  // Where the spec came from, for errors ("file:line:col: ...").
  std::string file;
  int line = 0;
  int column = 0;
};

// Parses EventKind names ("auth_failure", ...). False for anything else.
bool parse_event_kind(std::string_view text, EventKind& out) noexcept;

// A compiled, validated, immutable list of patterns. Thread-safe for concurrent match() calls
// (RE2 objects are safe to share).
class CustomPatternSet {
 public:
  ~CustomPatternSet();
  CustomPatternSet(const CustomPatternSet&) = delete;
  CustomPatternSet& operator=(const CustomPatternSet&) = delete;

  // Compiles every spec; appends one error per problem (bad regex, missing `ip` group, unknown
  // group name, unknown kind, empty program or reason). Returns nullptr if there was any error.
  static std::shared_ptr<const CustomPatternSet> build(const std::vector<CustomPatternSpec>& specs,
                                                       std::vector<ConfigError>& errors);

  bool empty() const noexcept;
  std::size_t size() const noexcept;

  // Tries the patterns for msg.app_name in order; the first that matches decides:
  //   event        - `out` filled (source custom; reason/service views point into this set,
  //                  user/ip/port into msg.message)
  //   unrecognized - a pattern matched but its `ip` group is not a valid address
  //   ignored      - no pattern for this program matched
  NormalizeResult match(const ingest::SyslogMessage& msg, AuthEvent& out) const noexcept;

 private:
  struct Compiled;
  CustomPatternSet();
  std::vector<std::unique_ptr<Compiled>> patterns_;
};

// Converts the `patterns:` node of the main configuration (a YAML list of mappings with keys
// name, program, regex, kind, reason, service; unknown keys are errors) into specs. Appends every
// problem to `errors` with its position in `file`; returns false if there was any. Compile the
// result with CustomPatternSet::build (which reports regex errors at the same positions).
bool parse_custom_patterns(const YAML::Node& node, const std::string& file,
                           std::vector<CustomPatternSpec>& out, std::vector<ConfigError>& errors);

}  // namespace authwall::normalize
