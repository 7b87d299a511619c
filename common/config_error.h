#pragma once
// One configuration problem, located. Configuration loaders collect all of them rather than
// stopping at the first, so `authwall validate` can print every error at once.
#include <string>

namespace authwall {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
  std::string message;

  // "file:line:col: message" (line/col omitted when unknown).
  std::string to_string() const {
    std::string s = file;
    if (line > 0) {
      s += ':' + std::to_string(line);
      if (column > 0) s += ':' + std::to_string(column);
    }
    s += ": ";
    s += message;
    return s;
  }
};

}  // namespace authwall
