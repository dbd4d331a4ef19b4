// Throwaway PostgreSQL servers for the tests (see postgres_server.hpp).
#include "harness/postgres_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <postgresql/libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace harness {
namespace {

const std::string pg_bin = "/usr/lib/postgresql/15/bin/";

// The user the server runs as: PostgreSQL refuses to run as root.
std::pair<uid_t, gid_t> server_user() {
  if (::geteuid() != 0) return {::geteuid(), ::getegid()};
  for (const char* name : {"postgres", "nobody"})
    if (passwd* pw = ::getpwnam(name)) return {pw->pw_uid, pw->pw_gid};
  throw std::runtime_error("running as root and there is neither a 'postgres' nor a 'nobody' user");
}

// fork, drop to uid/gid, output to `log_path`, exec. The parent-death signal (QUIT:
// immediate shutdown) is set after setuid, which would clear it.
pid_t spawn_as(uid_t uid, gid_t gid, const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid > 0) return pid;
  int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int in = ::open("/dev/null", O_RDONLY);
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(out, 2);
  if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)) {
    std::fprintf(stderr, "cannot switch to uid %d: %s\n", static_cast<int>(uid), std::strerror(errno));
    ::_exit(126);
  }
  ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
  ::execv(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

int wait_status(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

void chown_tree(const std::string& path, uid_t uid, gid_t gid) {
  if (::chown(path.c_str(), uid, gid) != 0) throw std::runtime_error("chown " + path + ": " + std::strerror(errno));
}

// One initdb per test process; each server copies it (cp -a keeps the owner).
const std::string& template_data_dir(uid_t uid, gid_t gid) {
  static TempDir dir;
  static std::string data;
  if (!data.empty()) return data;
  chown_tree(dir.path(), uid, gid);
  std::string path = dir.file("data");
  pid_t pid = spawn_as(uid, gid,
                       {pg_bin + "initdb", "-D", path, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--no-instructions"},
                       dir.file("initdb.log"));
  int status = wait_status(pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("initdb failed (is the postgresql package installed? " + pg_bin +
                             "):\n" + read_file(dir.file("initdb.log")));
  data = path;
  return data;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

PostgresServer::PostgresServer() {
  std::tie(uid_, gid_) = server_user();
  chown_tree(dir_.path(), uid_, gid_);
  data_dir_ = dir_.file("data");
  socket_dir_ = dir_.file("sock");
  log_path_ = dir_.file("postgres.log");
  RunResult copy = run({"/bin/cp", "-a", template_data_dir(uid_, gid_), data_dir_});
  if (copy.exit_code != 0) throw std::runtime_error("cp -a of the initdb template failed: " + copy.err);
  std::filesystem::create_directories(socket_dir_);
  chown_tree(socket_dir_, uid_, gid_);
  port_ = free_port();
  start();
}

PostgresServer::~PostgresServer() {
  try {
    stop();
  } catch (...) {
  }
}

std::string PostgresServer::url() const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
}

void PostgresServer::start() {
  if (pid_ > 0) return;
  pid_ = spawn_as(uid_, gid_,
                  {pg_bin + "postgres", "-D", data_dir_, "-k", socket_dir_, "-h", "127.0.0.1", "-p",
                   std::to_string(port_), "-c", "fsync=off", "-c", "synchronous_commit=off",
                   "-c", "full_page_writes=off", "-c", "max_connections=200", "-c",
                   "shared_buffers=64MB", "-c", "log_min_messages=warning"},
                  log_path_);
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) +
                         " dbname=postgres user=postgres connect_timeout=2";
  bool exited = false;
  bool ready = wait_until(
      [&] {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) return exited = true;
        return PQping(conninfo.c_str()) == PQPING_OK;
      },
      60s);
  if (exited || !ready) {
    if (!exited) ::kill(pid_, SIGKILL), wait_status(pid_);
    pid_ = -1;
    throw std::runtime_error(std::string("PostgreSQL ") + (exited ? "exited" : "did not accept connections") +
                             " on 127.0.0.1:" + std::to_string(port_) + ":\n" + log());
  }
}

void PostgresServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGINT);  // fast shutdown
  int status = 0;
  if (!wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 30s)) {
    ::kill(pid_, SIGKILL);
    wait_status(pid_);
  }
  pid_ = -1;
}

std::string PostgresServer::query(const std::string& sql) const {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(url().c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn.get()));
  std::unique_ptr<PGresult, void (*)(PGresult*)> result(PQexec(conn.get(), sql.c_str()), PQclear);
  auto status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
  if (PQntuples(result.get()) == 0 || PQnfields(result.get()) == 0) return "";
  return PQgetvalue(result.get(), 0, 0);
}

}  // namespace harness
