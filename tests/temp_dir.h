#pragma once
// A fresh directory under the system's temp directory for one test, removed with everything in
// it when the object goes out of scope. Unique per process and per object.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace authwall::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "authwall-test")
      : path_(std::filesystem::temp_directory_path() /
              (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(next_id()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  std::string file(const char* name) const { return (path_ / name).string(); }

 private:
  static unsigned next_id() {
    static std::atomic<unsigned> id{0};
    return id++;
  }
  std::filesystem::path path_;
};

}  // namespace authwall::testing
