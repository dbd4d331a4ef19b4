// The fork server that forks function and jobs pools' children: they stay the
// supervisor's own children, glibc's view of them is right, and losing the server or
// reloading loses no child.
#include <elf.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "harness/harness.hpp"

using namespace harness;

namespace {

std::string status_field(pid_t pid, const std::string& field) {
  std::istringstream status(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field + ":", 0) == 0) return line.substr(line.find('\t') + 1);
  return "";
}

pid_t parent_of(pid_t pid) { return std::stoi(status_field(pid, "PPid")); }

struct FunctionPool {
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");

  // `env`: the pool's env mapping in flow style, "{ NAME: value }".
  explicit FunctionPool(const std::string& function, int workers = 2, const std::string& env = "{}") {
    write_file(config, "pools:\n  f:\n    function: " + function + "\n    workers: " +
                           std::to_string(workers) + "\n    graceful_timeout: 5s\n    env: " + env +
                           "\n");
  }
};

bool gone(pid_t pid) { return !pid_alive(pid); }

// Whether the ELF program at `path` names a program interpreter (ld.so): false for a
// program linked whole (-static-pie).
bool has_interpreter(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Elf64_Ehdr header{};
  if (!in.read(reinterpret_cast<char*>(&header), sizeof header)) throw std::runtime_error("cannot read " + path);
  for (int i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr segment{};
    in.seekg(static_cast<std::streamoff>(header.e_phoff + i * sizeof segment));
    if (!in.read(reinterpret_cast<char*>(&segment), sizeof segment)) throw std::runtime_error("short " + path);
    if (segment.p_type == PT_INTERP) return true;
  }
  return false;
}

}  // namespace

TEST(ForkServer, FunctionPoolChildrenAreTheSupervisorsOwnAndNamedLikeIt) {
  FunctionPool pool("ready_and_idle", 3);
  Daemon daemon(pool.config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  ASSERT_TRUE(daemon.wait_children(3)) << daemon.output();
  auto servers = daemon.fork_servers();
  ASSERT_EQ(servers.size(), 1u) << daemon.output();
  EXPECT_EQ(parent_of(servers[0]), daemon.pid());
  std::string supervisor_name = process_name(daemon.pid());
  for (pid_t child : daemon.children()) {
    EXPECT_EQ(parent_of(child), daemon.pid()) << "child " << child;
    EXPECT_EQ(process_name(child), supervisor_name) << "child " << child;
  }
}

TEST(ForkServer, ChildrenAskedForInBatchesEachGetTheirOwnStatusSocket) {
  // 70 children at start: the spare, then batches of requests (64 at most in one
  // message), each request with its child's socket. Each child must hold only its own,
  // and the supervisor must read each pid's reports from that pid's socket.
  constexpr int workers = 70;
  FunctionPool pool("requests_by_pid", workers);
  Daemon daemon(pool.config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready", 30s)) << daemon.output();
  ASSERT_TRUE(daemon.wait_children(workers)) << daemon.output();
  for (pid_t child : daemon.children()) {
    int sockets = 0;
    for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(child) + "/fd"))
      if (std::filesystem::read_symlink(fd.path()).string().rfind("socket:", 0) == 0) ++sockets;
    EXPECT_EQ(sockets, 1) << "child " << child << " holds another child's status socket";
  }
  daemon.signal(SIGQUIT);
  ASSERT_EQ(exit_code(daemon.wait_exit(15s)), 0) << daemon.output();
  std::regex exited("exited pool=f pid=(\\d+) .* (\\d+) request\\(s\\)");
  std::istringstream lines(daemon.output());
  int seen = 0;
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, exited)) continue;
    ++seen;
    EXPECT_EQ(std::stoi(m[2]), std::stoi(m[1]) % 7 + 1) << line;
  }
  EXPECT_EQ(seen, workers) << daemon.output();
}

TEST(ForkServer, AChildsPthreadSelfCallsActOnTheChildAndNotOnTheServer) {
  if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "needs two CPUs";
  FunctionPool pool("pin_self_to_cpu0", 1);
  Daemon daemon(pool.config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  ASSERT_TRUE(daemon.wait_children(1)) << daemon.output();
  auto servers = daemon.fork_servers();
  ASSERT_EQ(servers.size(), 1u);
  pid_t child = daemon.children().at(0);
  EXPECT_EQ(status_field(child, "Cpus_allowed_list"), "0");
  EXPECT_EQ(status_field(servers[0], "Cpus_allowed_list"),
            status_field(daemon.pid(), "Cpus_allowed_list"))
      << "the child's pthread_setaffinity_np(pthread_self()) pinned the fork server";
}

TEST(ForkServer, AKilledServerIsReplacedWithoutLosingAChild) {
  FunctionPool pool("ready_and_idle", 2);
  Daemon daemon(pool.config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  ASSERT_TRUE(daemon.wait_children(2)) << daemon.output();
  auto before = daemon.children();
  pid_t server = daemon.fork_servers().at(0);
  ::kill(server, SIGKILL);
  ASSERT_TRUE(daemon.wait_output("fork server pid=" + std::to_string(server) + " killed by signal 9"))
      << daemon.output();
  EXPECT_TRUE(wait_until([&] { return gone(server); })) << "the dead server was not reaped";
  for (pid_t child : before) EXPECT_TRUE(pid_alive(child)) << "child " << child << " was lost";

  // The next spawn starts another server.
  ::kill(before[0], SIGKILL);
  ASSERT_TRUE(wait_until([&] {
    auto now = daemon.children();
    return now.size() == 2 && std::find(now.begin(), now.end(), before[0]) == now.end() &&
           daemon.fork_servers().size() == 1;
  })) << daemon.output();
  EXPECT_NE(daemon.fork_servers().at(0), server);
  EXPECT_EQ(daemon.output().find("forking children directly"), std::string::npos)
      << "the dead server was still asked: " << daemon.output();
}

TEST(ForkServer, AServerThatStopsAnsweringIsKilledAndTheChildrenAreForkedDirectly) {
  // A stopped (or wedged) server gets 5 s to answer, then it is killed: whatever it
  // forked and answered for is kept, and the rest is forked by the supervisor itself.
  FunctionPool pool("ready_and_idle", 3);
  Daemon daemon(pool.config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  ASSERT_TRUE(daemon.wait_children(3)) << daemon.output();
  ASSERT_TRUE(wait_until([&] { return daemon.spares().size() == 1; })) << daemon.output();
  pid_t server = daemon.fork_servers().at(0);
  ASSERT_EQ(::kill(server, SIGSTOP), 0);
  auto before = daemon.children();
  // Two replacements: the spare takes one, the stopped server is asked for the other.
  ::kill(before[0], SIGKILL);
  ::kill(before[1], SIGKILL);
  ASSERT_TRUE(daemon.wait_output("fork server pid=" + std::to_string(server) +
                                 " did not answer: forking children directly", 20s))
      << daemon.output();
  EXPECT_TRUE(wait_until([&] { return gone(server); })) << "the stopped server was left behind";
  // Exactly three children: none lost, none running unknown to the supervisor.
  ASSERT_TRUE(wait_until([&] {
    auto now = daemon.children();
    return now.size() == 3 && std::find(now.begin(), now.end(), before[0]) == now.end() &&
           std::find(now.begin(), now.end(), before[1]) == now.end();
  })) << daemon.output();
  EXPECT_EQ(daemon.count_output("exited pool=f"), 2u) << daemon.output();
}

TEST(ForkServer, AReloadStartsANewServerAndTheOldOneGoes) {
  FunctionPool pool("ready_and_idle", 2);
  Daemon daemon(pool.config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  pid_t first = daemon.fork_servers().at(0);
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.wait_output("generation 2 ready")) << daemon.output();
  EXPECT_TRUE(wait_until([&] { return gone(first); })) << "the old server is still there";
  EXPECT_TRUE(daemon.wait_children(2)) << daemon.output();
  auto servers = daemon.fork_servers();
  ASSERT_EQ(servers.size(), 1u);
  EXPECT_NE(servers[0], first);
}

TEST(ForkServer, KillingTheSupervisorTakesTheServerAndEveryChildWithIt) {
  FunctionPool pool("ready_and_idle", 2);
  Daemon daemon(pool.config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  ASSERT_TRUE(daemon.wait_children(2)) << daemon.output();
  auto everyone = daemon.children();
  everyone.push_back(daemon.fork_servers().at(0));
  daemon.signal(SIGKILL);
  daemon.wait_exit();
  for (pid_t pid : everyone)
    EXPECT_TRUE(wait_until([&] { return gone(pid); })) << "pid " << pid << " outlived the supervisor";
}

namespace {

// Two report_atfork children (`extra_keys`: more lines of the pool) until they are up:
// what each wrote about its atfork handler, and how many fork servers there were.
struct AtforkRun {
  std::string log;
  size_t fork_servers = 0;
};

AtforkRun run_report_atfork(const std::string& extra_keys) {
  TempDir dir;
  std::string config = dir.file("preforkd.yaml");
  std::string log = dir.file("atfork.log");
  write_file(config, "pools:\n  f:\n    function: report_atfork\n    workers: 2\n" + extra_keys +
                         "    env: { ATFORK_LOG: \"" + log + "\" }\n");
  Daemon daemon(config, {}, {}, test_inprocess_bin());
  // Each child writes its line before it reports ready.
  EXPECT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  return {read_file(log), daemon.fork_servers().size()};
}

}  // namespace

TEST(ForkServer, APoolWithForkServerFalseIsForkedByTheSupervisorAndRunsAtforkHandlers) {
  AtforkRun run = run_report_atfork("    fork_server: false\n");
  EXPECT_EQ(run.fork_servers, 0u);
  EXPECT_EQ(run.log, "ran\nran\n");
}

TEST(ForkServer, ChildrenOfTheServerDoNotRunAtforkHandlersAgain) {
  // What the README says about fork_server: true (the default).
  AtforkRun run = run_report_atfork("");
  EXPECT_EQ(run.fork_servers, 1u);
  EXPECT_EQ(run.log, "did not run\ndid not run\n");
}

TEST(ForkServer, AReloadToCommandPoolsOnlyLeavesNoServerBehind) {
  FunctionPool pool("ready_and_idle", 1);
  Daemon daemon(pool.config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready")) << daemon.output();
  pid_t server = daemon.fork_servers().at(0);
  write_file(pool.config, "pools:\n  c:\n    command: [" + test_child_bin() + ", idle]\n");
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.wait_output("generation 2 ready")) << daemon.output();
  EXPECT_TRUE(wait_until([&] { return gone(server); })) << "an idle fork server was left behind";
  EXPECT_TRUE(daemon.fork_servers().empty());
}

namespace {

// The pool's one spare, once there is exactly one.
pid_t the_spare(const Daemon& daemon) {
  pid_t spare = 0;
  wait_until([&] {
    auto spares = daemon.spares();
    spare = spares.size() == 1 ? spares[0] : 0;
    return spare != 0;
  });
  return spare;
}

// A function pool of one idle child, up, and the spare that follows it. The child
// notes its pid in `pid_log` once it runs its function (note_pid_and_idle).
struct PoolOfOne {
  explicit PoolOfOne(const std::string& function = "ready_and_idle")
      : pool(function, 1, "{ PID_LOG: \"" + pid_log + "\" }") {}

  TempDir logs;
  std::string pid_log = logs.file("pids");
  FunctionPool pool;
  Daemon daemon{pool.config, {}, {}, test_inprocess_bin()};
  pid_t child = 0;
  pid_t spare = 0;

  bool up() {
    if (!daemon.wait_output("generation 1 ready") || !daemon.wait_children(1)) return false;
    child = daemon.children().at(0);
    spare = the_spare(daemon);
    return spare != 0;
  }

  // A spare other than the first one, once the server has forked it.
  pid_t next_spare() const {
    pid_t next = 0;
    wait_until([&] {
      auto spares = daemon.spares();
      next = spares.size() == 1 && spares[0] != spare ? spares[0] : 0;
      return next != 0;
    });
    return next;
  }

  // Kills the child; true once the spare, made a child in its place, ran its function.
  bool spare_runs_after_the_child_is_killed() const {
    ::kill(child, SIGKILL);
    return wait_until([&] { return read_file(pid_log).find(std::to_string(spare) + "\n") != std::string::npos; });
  }

  // Kills the child; true once one other child has taken its place.
  bool replace_child(pid_t* replacement) {
    ::kill(child, SIGKILL);
    return wait_until([&] {
      auto now = daemon.children();
      *replacement = now.size() == 1 ? now[0] : 0;
      return *replacement != 0 && *replacement != child;
    });
  }
};

}  // namespace

TEST(ForkServer, ASpareWaitsForTheNextChildAndBecomesIt) {
  PoolOfOne p;
  ASSERT_TRUE(p.up()) << "no child or no spare: " << p.daemon.output();
  EXPECT_EQ(parent_of(p.spare), p.daemon.pid());
  // Its first step renames it: until then it carries the server's name.
  EXPECT_TRUE(wait_until([&] { return process_name(p.spare) == "preforkd-spare"; }))
      << process_name(p.spare);

  // The spare is the replacement: the same process, now the pool's child with
  // preforkd's name; and the server forks the next spare.
  pid_t replacement = 0;
  ASSERT_TRUE(p.replace_child(&replacement)) << p.daemon.output();
  EXPECT_EQ(replacement, p.spare);
  EXPECT_EQ(process_name(replacement), process_name(p.daemon.pid()));
  EXPECT_NE(p.next_spare(), 0) << p.daemon.output();
}

TEST(ForkServer, AKilledSpareCostsNoChildAndIsReplaced) {
  PoolOfOne p;
  ASSERT_TRUE(p.up()) << "no child or no spare: " << p.daemon.output();
  ::kill(p.spare, SIGKILL);
  ASSERT_TRUE(p.daemon.wait_output("spare pid=" + std::to_string(p.spare) + " killed by signal 9"))
      << p.daemon.output();
  EXPECT_TRUE(wait_until([&] { return gone(p.spare); })) << "the dead spare was not reaped";
  EXPECT_TRUE(pid_alive(p.child));

  // With no spare the server forks the replacement itself, then keeps a spare again.
  pid_t replacement = 0;
  ASSERT_TRUE(p.replace_child(&replacement)) << p.daemon.output();
  EXPECT_NE(replacement, p.spare);
  EXPECT_NE(p.next_spare(), 0) << p.daemon.output();
}

TEST(ForkServer, NoSpareOutlivesAReloadOrAStop) {
  PoolOfOne p;
  ASSERT_TRUE(p.up()) << "no child or no spare: " << p.daemon.output();
  p.daemon.signal(SIGHUP);
  ASSERT_TRUE(p.daemon.wait_output("generation 2 ready")) << p.daemon.output();
  EXPECT_TRUE(gone(p.spare)) << "the old server's spare is still there";  // reaped at once
  pid_t second = p.next_spare();
  ASSERT_NE(second, 0) << p.daemon.output();

  p.daemon.signal(SIGTERM);
  ASSERT_EQ(exit_code(p.daemon.wait_exit()), 0) << p.daemon.output();
  EXPECT_TRUE(gone(second)) << "the spare outlived the supervisor";
}

TEST(ForkServer, KillingTheSupervisorTakesTheSpareWithIt) {
  PoolOfOne p;
  ASSERT_TRUE(p.up()) << "no child or no spare: " << p.daemon.output();
  p.daemon.signal(SIGKILL);
  p.daemon.wait_exit();
  EXPECT_TRUE(wait_until([&] { return gone(p.spare); })) << "the spare outlived the supervisor";
}

TEST(ForkServer, ASignalToPreforkdsProcessGroupDoesNotWaitInASpareForItsChild) {
  // Ctrl-Z in a terminal sends TSTP to preforkd's process group. A spare in that group,
  // its signals blocked while it waits, kept the signal pending, and the child it became
  // stopped as soon as it unblocked them, before running its function.
  PoolOfOne p("note_pid_and_idle");
  ASSERT_TRUE(p.up()) << p.daemon.output();
  Daemon& daemon = p.daemon;

  // What the terminal does, to preforkd's group but not to this test, which shares it.
  pid_t group = ::getpgid(daemon.pid());
  std::vector<pid_t> in_group{daemon.pid()};
  for (pid_t pid : children_of(daemon.pid()))
    if (::getpgid(pid) == group) in_group.push_back(pid);
  // Queued (pending) when kill returns. Whether preforkd itself stops depends on its
  // group: in an orphaned one (a CI run without a terminal) the kernel drops TSTP
  // there; a child in a group of its own would still stop.
  for (pid_t pid : in_group) ::kill(pid, SIGTSTP);
  daemon.signal(SIGCONT);

  EXPECT_TRUE(p.spare_runs_after_the_child_is_killed())
      << "the spare, made a child, did not run its function (state "
      << process_state(p.spare) << "):\n" << daemon.output();
}

TEST(ForkServer, ASignalSentToAWaitingSpareIsNotActedOnByTheChildItBecomes) {
  // A spare waits with its signals blocked. A HUP sent to it by hand (or by
  // `systemctl kill`, which signals every process of the unit) stayed pending, and
  // killed the child the spare became as soon as it unblocked its signals: a failure
  // and a respawn backoff, hours later. A TERM made it return at once.
  PoolOfOne p("note_pid_and_idle");
  ASSERT_TRUE(p.up()) << p.daemon.output();
  Daemon& daemon = p.daemon;
  pid_t spare = p.spare;
  for (int signo : {SIGHUP, SIGTERM, SIGUSR1}) ::kill(spare, signo);
  // Blocked, so pending: what the spare would act on once it is a child.
  ASSERT_TRUE(wait_until([&] {
    std::string status = read_file("/proc/" + std::to_string(spare) + "/status");
    return status.find("ShdPnd:\t0000000000004201") != std::string::npos;
  })) << read_file("/proc/" + std::to_string(spare) + "/status");

  ASSERT_TRUE(p.spare_runs_after_the_child_is_killed()) << daemon.output();
  EXPECT_TRUE(pid_alive(spare)) << daemon.output();
  EXPECT_EQ(daemon.children(), std::vector<pid_t>{spare}) << daemon.output();
  EXPECT_EQ(daemon.count_output("exit status 0"), 0u) << daemon.output();
  EXPECT_EQ(daemon.count_output("killed by signal"), 1u) << "only the child killed here:\n" << daemon.output();
}

TEST(ForkServer, AServerKilledInTheMiddleOfABatchLeavesNoChildUnknownToTheSupervisor) {
  // A server killed between a clone and its reply left a child that no one announced:
  // running the pool's function, never told to stop at a reload, never counted. Here
  // every reload's new server is killed as soon as it appears, while it forks the
  // generation's 40 children; afterwards the pool must settle at its 40 children.
  FunctionPool pool("ready_and_idle", 40);
  Daemon daemon(pool.config, {}, {}, test_inprocess_bin());
  ASSERT_TRUE(daemon.wait_output("generation 1 ready") && daemon.wait_children(40)) << daemon.output();
  pid_t last_killed = 0;
  for (int round = 0; round < 30; ++round) {
    daemon.signal(SIGHUP);
    pid_t server = 0;
    wait_until([&] {
      auto servers = daemon.fork_servers();
      server = servers.size() == 1 && servers[0] != last_killed ? servers[0] : 0;
      return server != 0;
    }, 5s);
    if (server != 0) ::kill(server, SIGKILL);
    last_killed = server;
  }
  EXPECT_TRUE(wait_until([&] { return daemon.children().size() == 40; }))
      << daemon.children().size() << " children:\n" << daemon.output();
  daemon.signal(SIGQUIT);
  EXPECT_EQ(exit_code(daemon.wait_exit()), 0) << daemon.output();
}

// Every library pool test runs the fixture program; outside the sanitizer build (ASan
// cannot link a static program) it is linked as README recommends for speed, with
// preforkd_static_program, so those tests cover such a program. Guards that coverage.
TEST(ForkServer, TheTestsLibraryPoolProgramIsLinkedWholeOutsideTheSanitizerBuild) {
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_TRUE(has_interpreter(test_inprocess_bin()));
#else
  EXPECT_FALSE(has_interpreter(test_inprocess_bin()));
  EXPECT_TRUE(has_interpreter(preforkd_bin()));  // the preforkd binary stays dynamic
#endif
}
