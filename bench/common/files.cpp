#include "common/files.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <vector>

#include "common/program.hpp"

namespace bench {

std::string make_temp_dir(const char* tag) {
  std::string pattern = "/tmp/preforkd-" + program_temp_tag() + "-" + tag + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data())) die("mkdtemp: " + std::string(std::strerror(errno)));
  return buffer.data();
}

TempDir::TempDir(const char* tag, bool keep) : path_(make_temp_dir(tag)), keep_(keep) {}

TempDir::~TempDir() {
  if (keep_) return;
  // Not the throwing overload: an exception out of a destructor would abort the run.
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) std::fprintf(stderr, "%s: cannot remove %s: %s\n", program_name().c_str(), path_.c_str(), ec.message().c_str());
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) die("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string tail_of(const std::string& path, size_t bytes) {
  std::string text = read_file(path);
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

}  // namespace bench
