// libFuzzer target for configuration loading: arbitrary bytes as a rule file (parse_rule_text)
// and as the main configuration file (load_full_config from a file in a private temp
// directory, with a rule file beside it). Configuration is written by the operator, not the
// attacker, but a typo must give errors, never a crash, an escaped exception or a hang.
//
// Invariants checked beyond "no crash, no sanitizer report, no uncaught exception":
//   - a load either succeeds with no errors or fails with at least one, and every error
//     names the file and has a message (the `file:line:col: message` contract);
//   - a successful rule parse yields rules a RuleEngine can be built from.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "app/config.h"
#include "rules/rule_config.h"
#include "rules/rule_engine.h"

namespace {

using namespace authwall;

const std::string& temp_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/authwall-config-fuzz-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (d == nullptr) std::abort();
    const std::string rules = std::string(d) + "/rules.yaml";
    FILE* f = std::fopen(rules.c_str(), "w");
    if (f == nullptr) std::abort();
    std::fputs("rules:\n  - name: r\n    match: { kind: auth_failure }\n    window: 1m\n"
               "    threshold: 2\n    ban: { duration: 1h }\n",
               f);
    std::fclose(f);
    return std::string(d);
  }();
  return dir;
}

void check_errors(bool ok, const std::vector<ConfigError>& errors) {
  if (ok != errors.empty()) std::abort();
  for (const auto& e : errors) {
    if (e.file.empty() || e.line < 0 || e.column < 0 || e.message.empty()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  rules::RuleSet set;
  std::vector<ConfigError> errors;
  const bool ok = rules::parse_rule_text(text, "fuzz.yaml", set, errors);
  check_errors(ok, errors);
  if (ok && !set.rules.empty()) {
    rules::RuleEngineOptions options;
    options.seed = 1;
    options.max_tracked_keys = 64;
    rules::RuleEngine engine(set, {}, {}, options);
    if (engine.rule_count() != set.rules.size()) std::abort();
  }

  const std::string path = temp_dir() + "/authwall.yaml";
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  app::LoadedConfig loaded;
  errors.clear();
  check_errors(app::load_full_config(path, loaded, errors), errors);
  return 0;
}
