#include "common/program.hpp"

#include <cstdio>
#include <cstdlib>

namespace bench {

namespace {
std::string name_ = "bench";
std::string temp_tag_ = "bench";
}  // namespace

void set_program(std::string name, std::string temp_tag) {
  name_ = std::move(name);
  temp_tag_ = std::move(temp_tag);
}

const std::string& program_name() { return name_; }
const std::string& program_temp_tag() { return temp_tag_; }

void die(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", name_.c_str(), message.c_str());
  std::exit(1);
}

}  // namespace bench
