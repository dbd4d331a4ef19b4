// The jobs half of a pool's YAML: handler, source, queues, per-child request limits,
// per-job timeout and the retry policy.
#include "config/pool_config.hpp"
#include "util/names.hpp"
#include "preforkd/job_handler.hpp"

namespace preforkd::config_detail {
namespace {

constexpr const char* job_only_keys[] = {"source",  "queues",        "max_requests_per_child",
                                         "max_requests_jitter", "timeout", "timeout_grace",
                                         "retry", "max_output_logged"};
constexpr std::initializer_list<const char*> retry_keys = {"max_attempts", "backoff", "base", "max"};

void read_handler(PoolConfig& pool, const YAML::Node& node, const std::string& path,
                  const std::string& base_dir, Problems& problems) {
  HandlerConfig& handler = pool.jobs.handler;
  if (node.IsScalar() && node.Scalar() == "in_process") {
    handler.kind = HandlerKind::in_process;
    return;
  }
  const char* usage = " must be { exec: [argv] }, { persistent: [argv] } or in_process";
  if (!node.IsMap() || node.size() != 1) {
    problems.at(node, path + usage);
    return;
  }
  auto entry = entries(node).front();
  if (entry.key == "exec") handler.kind = HandlerKind::exec;
  else if (entry.key == "persistent") handler.kind = HandlerKind::persistent;
  else {
    problems.at(entry.key_node, path + ": unknown handler kind '" + entry.key + "';" + usage);
    return;
  }
  auto argv = read_string_list(entry.value, path + "." + entry.key, problems);
  if (!argv) return;
  if (argv->empty()) {
    problems.at(entry.value, path + "." + entry.key + " must not be empty");
    return;
  }
  handler.argv = std::move(*argv);
  resolve_program(handler.argv.front(), pool, entry.value, path + "." + entry.key, base_dir,
                  problems);
}

void read_queues(PoolConfig& pool, const YAML::Node& node, const std::string& path,
                 Problems& problems) {
  auto queues = read_string_list(node, path, problems, "[mail, default]");
  if (!queues) return;
  if (queues->empty()) problems.at(node, path + " must name at least one queue");
  for (size_t i = 0; i < queues->size(); ++i) {
    const std::string& queue = (*queues)[i];
    if (!is_valid_queue_name(queue))
      problems.at(node[i], path + ": " + why_not_plain("queue name", queue, ":"));
    for (size_t j = 0; j < i; ++j)
      if ((*queues)[j] == queue) problems.at(node[i], path + ": queue '" + queue + "' listed twice");
  }
  pool.jobs.queues = std::move(*queues);
}

void read_retry(RetryConfig& retry, const YAML::Node& node, const std::string& path,
                Problems& problems) {
  if (!expect_map(node, path, problems)) return;
  reject_unknown_keys(node, retry_keys, path, problems);
  if (auto n = node["max_attempts"]) {
    if (auto v = read_count(n, path + ".max_attempts", problems)) {
      if (*v == 0) problems.at(n, path + ".max_attempts must be at least 1 (1 = never retry)");
      else retry.max_attempts = *v;
    }
  }
  if (auto n = node["backoff"]) {
    if (auto v = read_string(n, path + ".backoff", problems)) {
      if (*v == "exponential") retry.backoff = Backoff::exponential;
      else if (*v == "fixed") retry.backoff = Backoff::fixed;
      else problems.at(n, path + ".backoff: '" + *v + "' is not one of exponential, fixed");
    }
  }
  if (auto n = node["base"]) {
    if (auto v = read_duration(n, path + ".base", problems)) retry.base = *v;
  }
  if (auto n = node["max"]) {
    if (auto v = read_duration(n, path + ".max", problems)) retry.max = *v;
  }
  check_delay_cap(node, path, "base", retry.base, "max", retry.max, problems);
}

}  // namespace

void read_jobs(PoolConfig& pool, const YAML::Node& node, const std::string& path,
               const std::string& base_dir, Problems& problems) {
  JobsConfig& jobs = pool.jobs;
  read_handler(pool, node["handler"], path + ".handler", base_dir, problems);
  if (auto n = node["queues"]) read_queues(pool, n, path + ".queues", problems);
  else problems.at(node, path + ": a jobs pool needs 'queues: [name, ...]'");
  if (auto n = node["source"]) {
    if (auto v = read_string(n, path + ".source", problems)) jobs.source = *v;
  }
  if (auto n = node["max_requests_per_child"]) {
    if (auto v = read_count(n, path + ".max_requests_per_child", problems))
      jobs.max_requests_per_child = *v;
  }
  if (auto n = node["max_requests_jitter"]) {
    if (auto v = read_count(n, path + ".max_requests_jitter", problems))
      jobs.max_requests_jitter = *v;
  }
  if (jobs.max_requests_jitter > 0 && jobs.max_requests_per_child == 0)
    problems.at(node["max_requests_jitter"], path + ".max_requests_jitter adds to max_requests_per_child, "
                                             "which is not set (no limit): set it, or drop the jitter");
  if (auto n = node["timeout"]) {
    if (auto v = read_duration(n, path + ".timeout", problems)) jobs.timeout = *v;
  }
  if (auto n = node["timeout_grace"]) {
    if (auto v = read_duration(n, path + ".timeout_grace", problems)) jobs.timeout_grace = *v;
  }
  if (auto n = node["max_output_logged"]) {
    if (auto v = read_size(n, path + ".max_output_logged", problems)) jobs.max_output_logged = *v;
  }
  if (pool.graceful_timeout <= jobs.timeout_grace) {
    // On TERM the supervisor KILLs its workers after graceful_timeout; a worker waits up
    // to timeout_grace for its handler before it gives the job back.
    YAML::Node at = node["graceful_timeout"] ? node["graceful_timeout"] : node["timeout_grace"];
    // One of the two may be the default, which the operator never wrote.
    auto shown = [&](const char* key, Duration value) {
      return std::to_string(value.count()) + (node[key] ? "ms" : "ms, the default");
    };
    if (at)
      problems.at(at, path + ".graceful_timeout (" + shown("graceful_timeout", pool.graceful_timeout) +
                          ") must be longer than " + path + ".timeout_grace (" +
                          shown("timeout_grace", jobs.timeout_grace) +
                          "): on TERM a worker would be KILLed while its handler still has its grace, "
                          "and the job it runs would not be given back (it would wait for its lease); "
                          "raise graceful_timeout or lower timeout_grace");
  }
  if (auto n = node["retry"]) read_retry(jobs.retry, n, path + ".retry", problems);

  if (jobs.handler.kind == HandlerKind::in_process && problems.checks_host()) {
    for (size_t i = 0; i < jobs.queues.size(); ++i) {
      if (find_job_handler(jobs.queues[i])) continue;
      std::string known;
      for (const auto& name : registered_job_handlers()) known += " " + name;
      problems.at(node["queues"][i],
                  path + ".queues: no in-process handler is registered for queue '" +
                      jobs.queues[i] + "' (" +
                      (known.empty() ? "this program registers none: in_process needs a program "
                                       "that links libpreforkd and calls register_job_handler"
                                     : "registered:" + known) + ")");
    }
  }
}

void reject_job_keys(const YAML::Node& node, const std::string& path, Problems& problems) {
  if (!node.IsMap()) return;
  for (const char* key : job_only_keys) {
    if (!node[key]) continue;
    for (const auto& entry : entries(node))
      if (entry.key == key)
        problems.at(entry.key_node, path + "." + key +
                                        " applies only to jobs pools (those with 'handler:')");
  }
}

}  // namespace preforkd::config_detail
