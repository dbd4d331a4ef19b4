// What a pool's user: and group: become when preforkd is not root.
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/credentials.hpp"

namespace {

// Runs `check` in a child that dropped to nobody (uid and gid 65534); its exit status:
// 0 when `check` held.
int as_nobody(bool (*check)()) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    ::_exit(check() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}

}  // namespace

// Found by a probe: a supervisor that was not root ran `user: root` pools as itself
// without a word.
TEST(Credentials, AUserThatANonRootSupervisorCannotSwitchToIsNamedInAWarning) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to nobody";
  EXPECT_EQ(as_nobody([] {
              std::string note = preforkd::ignored_credentials_note("a", "root", "");
              return note == "pool=a: user root is ignored: preforkd is not root (it runs as uid 65534 "
                             "gid 65534), so its children run as it does; start preforkd as root to "
                             "switch users";
            }),
            0);
  // Its own user: nothing to say.
  EXPECT_EQ(as_nobody([] { return preforkd::ignored_credentials_note("a", "nobody", "").empty(); }), 0);
  EXPECT_EQ(as_nobody([] { return preforkd::ignored_credentials_note("a", "", "").empty(); }), 0);
  // Root switches: nothing to say either.
  EXPECT_EQ(preforkd::ignored_credentials_note("a", "nobody", ""), "");
}
