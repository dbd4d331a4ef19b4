// Who is talking: the driver's name, which its messages start with, and the tag of its
// temp dirs. Set once, first thing in main(), so the shared helpers speak for it.
#pragma once

#include <string>

namespace bench {

// name: "bench_redis" ("bench_redis: ..." on stderr); temp_tag: "benchredis"
// (/tmp/preforkd-benchredis-TAG-XXXXXX).
void set_program(std::string name, std::string temp_tag);
const std::string& program_name();
const std::string& program_temp_tag();

// "NAME: message" on stderr, exit status 1: a setup step failed and no figure taken
// after it would mean anything.
[[noreturn]] void die(const std::string& message);

}  // namespace bench
