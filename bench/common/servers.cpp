#include "common/servers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/processes.hpp"
#include "common/program.hpp"
#include "common/timing.hpp"

namespace bench {

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind: " + std::string(std::strerror(errno)));
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

bool wait_until_serving(pid_t pid, int tries, int every_ms, const std::function<bool()>& ready) {
  for (int i = 0; i < tries; ++i) {
    if (!is_live(pid) || reap_if_exited(pid)) break;
    if (ready()) return true;
    sleep_ms(every_ms);
  }
  stop_process(pid, SIGKILL, 5);
  return false;
}

}  // namespace bench
