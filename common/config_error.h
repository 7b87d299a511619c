#pragma once
// One configuration problem with its position, shared by every loader (main config, rule files)
// so `authwall validate` prints them all the same way.
#include <string>

namespace authwall {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
  std::string message;

  // "file:line:col: message" (position parts omitted when unknown).
  std::string to_string() const {
    std::string out = file;
    if (line > 0) {
      out += ':';
      out += std::to_string(line);
      if (column > 0) {
        out += ':';
        out += std::to_string(column);
      }
    }
    out += ": ";
    out += message;
    return out;
  }
};

}  // namespace authwall
