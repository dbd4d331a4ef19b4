// Temp dirs and the small file reads and writes around the processes a driver starts
// (configs, payloads, logs).
#pragma once

#include <cstddef>
#include <string>

namespace bench {

// A new /tmp/preforkd-<program temp tag>-<tag>-XXXXXX; dies if it cannot.
std::string make_temp_dir(const char* tag);

// One scenario's directory (make_temp_dir): removed with all in it when the scenario
// returns, whichever way it returns, unless `keep` (--keep: to read the logs after).
class TempDir {
 public:
  TempDir(const char* tag, bool keep);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // dir / "daemon.log": a file in it.
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool keep_;
};

// Dies if the file cannot be written: a run without its config or payloads is no run.
void write_file(const std::string& path, const std::string& text);
// The whole file; "" when it cannot be read (a log that was never written).
std::string read_file(const std::string& path);
// The end of a log, for a problem report.
std::string tail_of(const std::string& path, size_t bytes = 1500);

}  // namespace bench
