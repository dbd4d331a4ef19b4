// Signal names as written in YAML (TERM, SIGTERM, term) and in log lines.
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

#include "preforkd/config.hpp"

namespace preforkd {
namespace {

constexpr std::pair<const char*, int> signal_table[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"ABRT", SIGABRT}, {"FPE", SIGFPE},   {"KILL", SIGKILL},   {"USR1", SIGUSR1},
    {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},   {"WINCH", SIGWINCH},
    {"BUS", SIGBUS},   {"TRAP", SIGTRAP}, {"URG", SIGURG},     {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"IO", SIGIO},
    {"SYS", SIGSYS},
};

}  // namespace

int signal_from_name(const std::string& name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  if (upper.rfind("SIG", 0) == 0) upper.erase(0, 3);
  for (const auto& [text, signo] : signal_table)
    if (upper == text) return signo;
  return 0;
}

std::string signal_name(int signo) {
  for (const auto& [text, number] : signal_table)
    if (number == signo) return text;
  return std::to_string(signo);
}

}  // namespace preforkd
